"""A failed esn_daily run emails the on-call recipients, through a real Airflow (dag.test) and an SMTP
server on loopback reached through the Airflow SMTP connection.

The runs fail in their first task on purpose (a bad `date`/`end_date` param, or a configuration that
enables no source), so no data is extracted and each test takes seconds: what is under test is the
failure path, the notifier (pipelines.alerting.FailureNotifier) and the days-param validation as Airflow
really runs them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

import pytest
import yaml

from tests.airflow.conftest import REPO, ProbeResult, probe

pytestmark = [pytest.mark.airflow]

LOGICAL = "2026-05-10T00:00:00+00:00"


class Inbox:
    """An aiosmtpd server on 127.0.0.1 that keeps (recipients, message) of every email it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], Message]] = []
        with socket.socket() as probe_socket:  # a free port (aiosmtpd's own start-up check needs a real one)
            probe_socket.bind(("127.0.0.1", 0))
            self.port = int(probe_socket.getsockname()[1])

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def _env(airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox, config: dict) -> dict[str, str]:
    path = tmp_path / "esn.yaml"
    path.write_text(yaml.safe_dump({"lake_dir": str(tmp_path / "lake"),
                                    "warehouse_url": f"duckdb:///{tmp_path / 'warehouse.duckdb'}", **config}))
    env = dict(airflow_env)
    env["ESN_CONFIG"] = str(path)
    env["ESN_PSEUDONYM_KEY"] = "test-key-not-a-secret"
    env["AIRFLOW_CONN_ESN_ALERTS_SMTP"] = json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": inbox.port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow@example.org"}})
    env["AIRFLOW__API__BASE_URL"] = "http://airflow.example.org:8080"
    return env


DEMO = {"name": "demo", "kind": "demo", "options": {"people": 60, "days": 20, "start": "2026-05-01"}}
ALERTS = {"email_on_failure": ["oncall@example.org"], "smtp_conn_id": "esn_alerts_smtp",
          "sender": "esn-alerts@example.org"}


def _run(env: dict[str, str], conf: dict | None) -> ProbeResult:
    args = ["run", "esn_daily", LOGICAL]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    return probe(env, *args, timeout=180)


def test_a_bad_range_fails_the_first_task_at_once_and_emails_the_recipients(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    env = _env(airflow_env, tmp_path, inbox, {"sources": [DEMO], "alerts": ALERTS})
    env["ESN_ALERT_EMAILS"] = "data-team@example.org, oncall@example.org"
    result = _run(env, {"date": "2026-05-07", "end_date": "2026-05-01"})
    run = result.data
    states = {k: v["state"] for k, v in run["task_instances"].items()}
    assert run["state"] == "failed"
    assert states["list_sources"] == "failed" and run["task_instances"]["list_sources"]["try_number"] == 1
    assert "extract_source" not in states or states["extract_source"] in {"upstream_failed", "None", "none"}
    assert "param 'end_date' (2026-05-01) is before param 'date' (2026-05-07)" in result.output

    # one email (the run-level callback does not repeat the task's), to the config's and the env's addresses
    assert [rcpts for rcpts, _ in inbox.received] == [["oncall@example.org", "data-team@example.org"]]
    message = inbox.received[0][1]
    assert message["From"] == "esn-alerts@example.org"
    assert message["Subject"] == f"[esn-metrics] esn_daily.list_sources failed ({run['run_id']})"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Run:    {run['run_id']}" in text and "Task:   list_sources" in text and "Try:    1 of 3" in text
    assert "AirflowFailException: esn_daily: param 'end_date' (2026-05-01) is before param 'date'" in text
    assert "Log: http://airflow.example.org:8080/dags/esn_daily/runs/" in text
    html_body = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "list_sources" in html_body and "is before param" in html_body


def test_a_malformed_date_param_is_refused_with_the_param_named(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    env = _env(airflow_env, tmp_path, inbox, {"sources": [DEMO], "alerts": ALERTS})
    with pytest.raises(AssertionError) as raised:  # Airflow refuses to create the run: dag_probe exits non-zero
        _run(env, {"date": "20-05-2026"})
    # Airflow checks the Param's pattern before the run exists; its message names the param and the value
    assert "Invalid input for param date: '20-05-2026' does not match" in str(raised.value)
    assert inbox.received == []  # no run, nothing failed, nothing to alert about


def test_a_config_without_sources_fails_and_only_the_env_recipients_hear_of_it(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    disabled = {**DEMO, "enabled": False}
    env = _env(airflow_env, tmp_path, inbox, {"sources": [disabled], "alerts": {"smtp_conn_id": "esn_alerts_smtp"}})
    env["ESN_ALERT_EMAILS"] = "data-team@example.org"
    result = _run(env, {"date": "2026-05-10"})
    assert result.data["state"] == "failed"
    assert "the configuration enables no source" in result.output
    assert [rcpts for rcpts, _ in inbox.received] == [["data-team@example.org"]]
    message = inbox.received[0][1]
    assert message["From"] == "airflow@example.org"  # no alerts.sender: the connection's from_email
    assert "the configuration enables no source" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_without_recipients_the_failure_is_only_logged(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    env = _env(airflow_env, tmp_path, inbox, {"sources": [DEMO], "alerts": {"smtp_conn_id": "esn_alerts_smtp"}})
    result = _run(env, {"end_date": "2026-05-07"})
    assert result.data["state"] == "failed"
    assert "param 'end_date' needs param 'date'" in result.output
    assert "no recipients (alerts.email_on_failure, ESN_ALERT_EMAILS); not emailed" in result.output
    assert inbox.received == []


_RUN_CALLBACK = """
import sys
from airflow.dag_processing.dagbag import DagBag

dag = DagBag().dags["esn_daily"]
# what the DAG processor passes a run-level failure callback that has no task instance to show
for callback in dag.on_failure_callback if isinstance(dag.on_failure_callback, list) else [dag.on_failure_callback]:
    callback({"dag": dag, "run_id": sys.argv[1], "reason": sys.argv[2]})
"""


def test_a_run_that_fails_without_a_failed_task_is_emailed_once_and_a_task_failure_not_twice(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    # the DAG-level callback as the DAG processor runs it, in a child process (Airflow is never initialised
    # in the pytest process); Airflow's reasons: "timed_out" (dagrun_timeout) and "task_failure"
    env = _env(airflow_env, tmp_path, inbox, {"sources": [DEMO], "alerts": ALERTS})
    for reason in ("timed_out", "task_failure"):
        proc = subprocess.run([sys.executable, "-c", _RUN_CALLBACK, "scheduled__2026-05-10T00:00:00+00:00", reason],
                              env=env, cwd=str(REPO), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert [rcpts for rcpts, _ in inbox.received] == [["oncall@example.org"]]
    message = inbox.received[0][1]
    assert message["Subject"] == "[esn-metrics] esn_daily failed (scheduled__2026-05-10T00:00:00+00:00)"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Reason: timed_out" in text and "Task:" not in text


def test_invalid_source_options_fail_the_extraction_at_once_and_are_emailed(
        airflow_env: dict[str, str], tmp_path: Path, inbox: Inbox) -> None:
    # the demo needs at least 60 people: a configuration error that a retry (2 min later) cannot fix
    bad = {**DEMO, "options": {**DEMO["options"], "people": 20}}
    env = _env(airflow_env, tmp_path, inbox, {"sources": [bad], "alerts": ALERTS})
    result = _run(env, {"date": "2026-05-10"})
    run = result.data
    assert run["state"] == "failed"
    assert run["task_instances"]["extract_source[0]"] == {"state": "failed", "try_number": 1}
    assert "the options of source 'demo' in the configuration are invalid" in result.output
    assert [rcpts for rcpts, _ in inbox.received] == [["oncall@example.org"]]
    message = inbox.received[0][1]
    assert message["Subject"] == f"[esn-metrics] esn_daily.extract_source[0] failed ({run['run_id']})"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Try:    1 of 3" in text and "people" in text and "greater than or equal to 60" in text
