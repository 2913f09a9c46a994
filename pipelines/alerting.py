"""Failure alerts for the esn DAGs: one short email when a task (or a run) fails.

The on-call data engineer must hear about a failed night without watching the UI. `FailureNotifier` is
an Airflow notifier (`airflow.sdk.BaseNotifier`) set as `on_failure_callback` on every task of the esn
DAGs and on their runs. It is built at parse time, so it holds nothing and this module imports only the
notifier base class: the settings, the SMTP connection and the mail libraries are read when a failure
is notified, never when the scheduler parses a DAG file.

Recipients are the configuration's `alerts.email_on_failure` plus the comma-separated environment
variable `ESN_ALERT_EMAILS` (the second works when the configuration itself is what broke). With no
recipient it only logs. The email goes through the Airflow SMTP connection `alerts.smtp_conn_id`
(`pipelines.reports.deliver.AirflowTransport`, the provider's SmtpHook: host, TLS, login). A notifier
never raises: a failing alert is logged, and the task's own failure stays what Airflow reports.

What the email says: DAG, run id, task (and map index), try, the error's first lines and the log URL.
A run-level callback whose reason is a failed task sends nothing (the task's callback already did); a
run that failed for another reason (its `dagrun_timeout`, a deadlock) is notified.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

#: how many lines of the error the email shows (the log URL has the rest)
ERROR_LINES = 8
ENV_RECIPIENTS = "ESN_ALERT_EMAILS"
DEFAULT_SENDER = "esn-metrics@localhost"


@dataclass(frozen=True)
class Alert:
    """What a failure email says, taken from an Airflow callback context."""

    dag_id: str
    run_id: str
    task: str | None  # "task_id" or "task_id[map_index]"; None for a run-level failure
    try_number: int | None
    max_tries: int | None
    error: str
    log_url: str | None
    reason: str | None = None

    @property
    def subject(self) -> str:
        where = f"{self.dag_id}.{self.task}" if self.task else self.dag_id
        return f"[esn-metrics] {where} failed ({self.run_id})"

    def text(self) -> str:
        lines = [f"DAG:    {self.dag_id}", f"Run:    {self.run_id}"]
        if self.task:
            lines.append(f"Task:   {self.task}")
        if self.try_number is not None:
            tries = f" of {self.max_tries + 1}" if self.max_tries is not None else ""
            lines.append(f"Try:    {self.try_number}{tries}")
        if self.reason:
            lines.append(f"Reason: {self.reason}")
        lines += ["", "Error:", self.error or "(no error message)"]
        if self.log_url:
            lines += ["", f"Log: {self.log_url}"]
        lines += ["", "Runbook: docs/operations.md (rerun a day, a range, what a failed validation means)"]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        rows = [("DAG", self.dag_id), ("Run", self.run_id)]
        if self.task:
            rows.append(("Task", self.task))
        if self.try_number is not None:
            tries = f" of {self.max_tries + 1}" if self.max_tries is not None else ""
            rows.append(("Try", f"{self.try_number}{tries}"))
        if self.reason:
            rows.append(("Reason", self.reason))
        table = "".join(f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        link = (f"<p><a href='{html.escape(self.log_url, quote=True)}'>Task log</a></p>" if self.log_url else "")
        return (f"<html><body><table>{table}</table><p><b>Error</b></p>"
                f"<pre>{html.escape(self.error or '(no error message)')}</pre>{link}"
                "<p>Runbook: docs/operations.md</p></body></html>")


def first_lines(error: Any, limit: int = ERROR_LINES) -> str:
    """The error as `Type: message`, cut to its first `limit` lines (a rejected batch's message is long)."""
    if error is None:
        return ""
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    lines = text.strip().splitlines()
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines in the task log)"]
    return "\n".join(lines)


def alert_from_context(context: Mapping[str, Any]) -> Alert:
    """An Alert from a task's or a run's failure-callback context (keys absent in one or the other)."""
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    dag_id = str(getattr(ti, "dag_id", None) or getattr(dag, "dag_id", None) or getattr(dag_run, "dag_id", "?"))
    run_id = str(context.get("run_id") or getattr(ti, "run_id", None) or getattr(dag_run, "run_id", "?"))
    task = None
    if ti is not None and getattr(ti, "task_id", None):
        map_index = getattr(ti, "map_index", -1)
        task = ti.task_id + (f"[{map_index}]" if isinstance(map_index, int) and map_index >= 0 else "")
    log_url = None
    if ti is not None:
        try:
            log_url = str(ti.log_url)
        except Exception:  # a run-level context's task instance may lack what the URL needs
            log_url = None
    return Alert(dag_id=dag_id, run_id=run_id, task=task,
                 try_number=getattr(ti, "try_number", None), max_tries=getattr(ti, "max_tries", None),
                 error=first_lines(context.get("exception")), log_url=log_url,
                 reason=str(context["reason"]) if context.get("reason") else None)


def recipients(configured: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """The config's addresses then ESN_ALERT_EMAILS' (comma- or space-separated), without repeats."""
    env = os.environ if env is None else env
    extra = [a.strip() for a in env.get(ENV_RECIPIENTS, "").replace(";", ",").replace(" ", ",").split(",")]
    out: list[str] = []
    for address in [*configured, *extra]:
        if address and address not in out:
            out.append(address)
    return out


def build_message(alert: Alert, sender: str, to: Sequence[str]) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = alert.subject
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg.set_content(alert.text())
    msg.add_alternative(alert.html(), subtype="html")
    return msg


def _alert_settings() -> tuple[list[str], str, str | None]:
    """(configured recipients, SMTP conn id, sender) from the settings; defaults when they do not load (a
    broken configuration is a failure to alert about, not a reason to stay silent)."""
    from pipelines.config import load_settings

    try:
        settings = load_settings()
    except Exception as exc:
        log.warning("failure alert: the settings could not be read (%s); using %s and smtp_default",
                    first_lines(exc, 2), ENV_RECIPIENTS)
        return [], "smtp_default", None
    alerts = settings.alerts
    sender = alerts.sender
    if sender is None and "sender" in settings.reports.delivery.model_fields_set:
        sender = settings.reports.delivery.sender
    return list(alerts.email_on_failure), alerts.smtp_conn_id, sender


def send_alert(alert: Alert, to: Sequence[str], smtp_conn_id: str, sender: str | None) -> None:
    """One message to all recipients through the Airflow SMTP connection; raises on failure."""
    from pipelines.reports.deliver import AirflowTransport, airflow_connection_sender

    exists, conn_sender = airflow_connection_sender(smtp_conn_id)
    if not exists:
        raise RuntimeError(f"the Airflow SMTP connection {smtp_conn_id!r} (alerts.smtp_conn_id) is not defined")
    from_addr = sender or conn_sender or DEFAULT_SENDER
    client = AirflowTransport(smtp_conn_id, default_sender=conn_sender).open()
    try:
        client.send_message(build_message(alert, from_addr, to), from_addr=from_addr, to_addrs=list(to))
    finally:
        try:
            client.quit()
        except Exception:
            client.close()


class FailureNotifier(BaseNotifier):
    """Email the on-call recipients about a failed esn task or run (module doc). Never raises."""

    def notify(self, context: Any) -> None:
        try:
            self._notify(context)
        except Exception:  # an alert that cannot be sent must not hide or replace the task's own failure
            log.exception("failure alert could not be sent")

    def _notify(self, context: Mapping[str, Any]) -> None:
        alert = alert_from_context(context)
        # a run-level callback (the only one with a reason) carries the last task instance in Airflow 3: when
        # the run failed because a task failed, that task's own callback has sent the alert
        if alert.reason == "task_failure":
            log.info("run %s of %s failed on a task; that task's alert was sent already", alert.run_id,
                     alert.dag_id)
            return
        configured, conn_id, sender = _alert_settings()
        to = recipients(configured)
        if not to:
            log.warning("failure alert for %s: no recipients (alerts.email_on_failure, %s); not emailed:\n%s",
                        alert.subject, ENV_RECIPIENTS, alert.text())
            return
        send_alert(alert, to, conn_id, sender)
        log.info("failure alert for %s sent to %d recipient(s) via %s", alert.subject, len(to), conn_id)
