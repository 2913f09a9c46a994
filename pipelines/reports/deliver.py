"""Deliver rendered emails: one message per recipient, retried with backoff, failures reported not raised.

Two transports open an authenticated `smtplib` client: the Airflow SMTP connection (through the provider's
`SmtpHook`, which resolves the connection, STARTTLS/SSL and login), or plain `smtplib` with host and port
from the reports configuration when no Airflow connection is defined. Each recipient gets its own copy
(so one address never sees the others and one bounce cannot sink the rest); a refused recipient, a 4xx
answer or a dropped connection is retried `max_attempts` times with exponential backoff, then reported.

This module must never render or query anything, never raise because one recipient failed, and never
log message bodies. Credentials come only from the Airflow connection or environment variables.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.reports.render import RenderedEmail
from pipelines.reports_config import Delivery, SmtpServer

log = logging.getLogger(__name__)


class Transport(Protocol):
    name: str
    default_sender: str | None

    def open(self) -> smtplib.SMTP: ...


@dataclass
class SmtplibTransport:
    """Plain smtplib to the configured host; user and password from the named environment variables."""

    server: SmtpServer
    name: str = "smtp"
    default_sender: str | None = None

    def open(self) -> smtplib.SMTP:
        s = self.server
        client: smtplib.SMTP
        if s.ssl:
            client = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
            if s.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
        user = os.environ.get(s.username_env, "") if s.username_env else ""
        password = os.environ.get(s.password_env, "") if s.password_env else ""
        if user and password:
            client.login(user, password)
        return client


@dataclass
class AirflowTransport:
    """The Airflow SMTP connection `conn_id`, logged in by the provider's SmtpHook."""

    conn_id: str
    name: str = "airflow"
    default_sender: str | None = None

    def open(self) -> smtplib.SMTP:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        hook = SmtpHook(smtp_conn_id=self.conn_id)
        hook.get_conn()
        # SmtpHook.send_email_smtp can only build multipart/mixed HTML with application/* attachments and
        # sends to all recipients in one transaction; we need multipart/alternative + related (cid images)
        # and one envelope per recipient, so we use the client the hook connected and logged in.
        client = getattr(hook, "_smtp_client", None)
        if client is None:  # pragma: no cover - only if the provider changes its internals
            raise RuntimeError("SmtpHook.get_conn() left no SMTP client; the provider API has changed")
        return client  # type: ignore[no-any-return]


def airflow_connection_sender(conn_id: str) -> tuple[bool, str | None]:
    """Whether the Airflow connection exists (env var, secrets backend or metadata DB), and its from_email."""
    try:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        conn = SmtpHook.get_connection(conn_id)
    except Exception as exc:  # not installed, not configured, or no such connection
        log.info("Airflow SMTP connection %r not available (%s): using plain smtplib", conn_id, exc)
        return False, None
    return True, conn.extra_dejson.get("from_email")


def choose_transport(delivery: Delivery, smtp_conn_id: str | None) -> Transport:
    if delivery.transport == "smtp" or not smtp_conn_id:
        return SmtplibTransport(delivery.smtp)
    exists, sender = airflow_connection_sender(smtp_conn_id)
    if exists:
        return AirflowTransport(smtp_conn_id, default_sender=sender)
    if delivery.transport == "airflow":
        raise RuntimeError(f"reports.delivery.transport is 'airflow' but connection {smtp_conn_id!r} is not defined")
    return SmtplibTransport(delivery.smtp)


@dataclass
class Attempt:
    number: int
    code: int | None
    error: str


@dataclass
class RecipientResult:
    audience: str
    recipient: str
    delivered: bool
    attempts: list[Attempt] = field(default_factory=list)
    message_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"audience": self.audience, "recipient": self.recipient,
                               "delivered": self.delivered, "attempts": len(self.attempts) + self.delivered}
        if self.attempts:
            last = self.attempts[-1]
            out["errors"] = [{"attempt": a.number, "code": a.code, "error": a.error} for a in self.attempts]
            if not self.delivered:
                out["code"], out["error"] = last.code, last.error
        return out


class _Failure(Exception):
    def __init__(self, code: int | None, error: str, reconnect: bool) -> None:
        super().__init__(error)
        self.code, self.error, self.reconnect = code, error, reconnect


def _send_once(client: smtplib.SMTP, msg: Any, sender: str, rcpt: str) -> None:
    try:
        refused = client.send_message(msg, from_addr=sender, to_addrs=[rcpt])
    except smtplib.SMTPRecipientsRefused as exc:
        code, resp = exc.recipients.get(rcpt, (None, b""))
        raise _Failure(code, _text(resp), reconnect=False) from None
    except smtplib.SMTPResponseException as exc:  # sender refused, data refused, ...
        raise _Failure(exc.smtp_code, _text(exc.smtp_error), reconnect=exc.smtp_code == 421) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise _Failure(None, f"{type(exc).__name__}: {exc}", reconnect=True) from None
    if rcpt in refused:  # cannot happen with one recipient, but never report a refusal as delivered
        code, resp = refused[rcpt]
        raise _Failure(code, _text(resp), reconnect=False)


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


@dataclass
class Deliverer:
    transport: Transport
    delivery: Delivery
    sleep: Callable[[float], None] = time.sleep
    _client: smtplib.SMTP | None = None

    @property
    def sender(self) -> str:
        if "sender" not in self.delivery.model_fields_set and self.transport.default_sender:
            return self.transport.default_sender
        return self.delivery.sender

    def _close(self) -> None:
        if self._client is not None:
            try:
                self._client.quit()
            except (smtplib.SMTPException, OSError):
                self._client.close()
            self._client = None

    def send(self, email: RenderedEmail, recipients: Sequence[str]) -> list[RecipientResult]:
        results = []
        try:
            for rcpt in recipients:
                results.append(self._send_one(email, rcpt))
        finally:
            self._close()
        return results

    def _send_one(self, email: RenderedEmail, rcpt: str) -> RecipientResult:
        d = self.delivery
        result = RecipientResult(email.audience, rcpt, delivered=False)
        msg = email.message(self.sender, [rcpt], d.reply_to)
        for number in range(1, d.max_attempts + 1):
            try:
                if self._client is None:
                    try:
                        self._client = self.transport.open()
                    except Exception as exc:  # connection refused, TLS, login, Airflow errors alike
                        raise _Failure(getattr(exc, "smtp_code", None), f"{type(exc).__name__}: {exc}",
                                       reconnect=True) from None
                _send_once(self._client, msg, self.sender, rcpt)
            except _Failure as failure:
                result.attempts.append(Attempt(number, failure.code, failure.error))
                log.warning("%s -> %s attempt %d/%d failed: %s %s", email.audience, rcpt, number, d.max_attempts,
                            failure.code, failure.error)
                if failure.reconnect:
                    self._close()
                permanent = failure.code is not None and 500 <= failure.code < 600
                if permanent and not d.retry_permanent_failures:
                    break
                if number < d.max_attempts:
                    self.sleep(d.backoff_seconds * d.backoff_factor ** (number - 1))
                continue
            result.delivered = True
            result.message_id = str(msg["Message-ID"])
            break
        return result
