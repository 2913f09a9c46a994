"""Delivery to a real SMTP server on loopback (aiosmtpd), through plain smtplib and the Airflow connection."""

from __future__ import annotations

import email
import json
import re
from email import policy
from email.message import EmailMessage

import pytest

from pipelines.reports import send_reports

from .conftest import AS_OF, reports_config


def _config(catalogue, port: int, **delivery):
    return reports_config(catalogue, delivery={
        "sender": "esn@fixture.example", "transport": "smtp", "backoff_seconds": 0.01, "max_attempts": 3,
        "smtp": {"host": "127.0.0.1", "port": port, "timeout_seconds": 5}, **delivery})


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def test_email_arrives_with_both_parts_and_its_charts_attached_by_cid(settings, engine, catalogue, smtp_server,
                                                                      tmp_path) -> None:
    controller, handler = smtp_server
    sleeps: list[float] = []
    result = send_reports(settings, AS_OF, smtp_conn_id="", audiences=["sales-head"], engine=engine,
                          config=_config(catalogue, controller.port), out_dir=tmp_path, sleep=sleeps.append)
    assert result["transport"] == "smtp" and result["delivered"] == 1 and result["failed"] == [], result
    assert sleeps == []
    [(mail_from, rcpt_tos, raw)] = handler.messages
    assert mail_from == "esn@fixture.example" and rcpt_tos == ["sales.head@fixture.example"]
    msg = _parse(raw)
    assert msg["To"] == "sales.head@fixture.example" and msg["From"] == "esn@fixture.example"
    assert msg["Subject"] == "Sales: social network report, Week 19 Oct to 25 Oct 2026"
    assert msg["Message-ID"] and msg["Date"]
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and "HEADLINE FIGURES" in plain.get_content()
    assert html is not None and "Headline figures" in html.get_content()
    referenced = set(re.findall(r'src="cid:([^"]+)"', html.get_content()))
    images = {part["Content-ID"].strip("<>"): part for part in msg.walk() if part.get_content_type() == "image/png"}
    # 3 charts: adoption by department is withheld (complementary suppression of Tiny Team, test_content.py)
    assert referenced == set(images) and len(images) == 3
    for part in images.values():
        assert part.get_content_disposition() == "inline"
        assert part.get_content().startswith(b"\x89PNG\r\n\x1a\n")
    assert all(p.get_content_type() != "text/css" for p in msg.walk())
    assert "<script" not in html.get_content() and "<link" not in html.get_content()
    # the same run writes the static organisation report
    assert (tmp_path / "report.html").read_text().count('src="data:image/png;base64,') >= 3


def test_refused_and_transient_recipients_are_retried_and_reported_while_others_get_theirs(
        settings, engine, catalogue, smtp_server, tmp_path) -> None:
    controller, handler = smtp_server
    handler.reject.add("ceo@fixture.example")
    handler.transient.add("cfo@fixture.example")
    sleeps: list[float] = []
    result = send_reports(settings, AS_OF, smtp_conn_id="", audiences=["leadership", "sales-head"],
                          engine=engine, config=_config(catalogue, controller.port), out_dir=tmp_path,
                          sleep=sleeps.append)
    delivered = sorted(r["recipient"] for r in result["results"] if r["delivered"])
    assert delivered == ["cfo@fixture.example", "sales.head@fixture.example"]
    [failed] = result["failed"]
    assert failed["recipient"] == "ceo@fixture.example" and failed["code"] == 550
    assert failed["attempts"] == 3 and "mailbox unavailable" in failed["error"]
    cfo = next(r for r in result["results"] if r["recipient"] == "cfo@fixture.example")
    assert cfo["attempts"] == 2 and cfo["errors"][0]["code"] == 451
    assert handler.rcpt_calls["ceo@fixture.example"] == 3 and handler.rcpt_calls["cfo@fixture.example"] == 2
    assert sorted(t for _, tos, _ in handler.messages for t in tos) == delivered
    # exponential backoff: ceo waits 0.01 then 0.02; cfo waits 0.01 once
    assert sleeps == pytest.approx([0.01, 0.02, 0.01])


def test_permanent_refusal_is_not_retried_when_configured_strict(settings, engine, catalogue, smtp_server,
                                                                  tmp_path) -> None:
    controller, handler = smtp_server
    handler.reject.add("sales.head@fixture.example")
    result = send_reports(settings, AS_OF, smtp_conn_id="", audiences=["sales-head"], engine=engine,
                          config=_config(catalogue, controller.port, retry_permanent_failures=False),
                          out_dir=tmp_path, sleep=lambda s: None)
    assert result["failed"][0]["attempts"] == 1 and handler.rcpt_calls["sales.head@fixture.example"] == 1


def test_unreachable_server_reports_every_recipient_without_raising(settings, engine, catalogue, tmp_path) -> None:
    from .conftest import free_port

    result = send_reports(settings, AS_OF, smtp_conn_id="", audiences=["leadership"], engine=engine,
                          config=_config(catalogue, free_port()), out_dir=tmp_path, sleep=lambda s: None)
    assert result["delivered"] == 0 and len(result["failed"]) == 2
    assert all(f["code"] is None and "Connection" in f["error"] for f in result["failed"])


def test_only_due_audiences_are_sent(settings, engine, catalogue, smtp_server, tmp_path) -> None:
    controller, handler = smtp_server
    config = _config(catalogue, controller.port)
    saturday = AS_OF.replace(day=24)
    result = send_reports(settings, saturday, smtp_conn_id="", audiences=["sales-head"], engine=engine,
                          config=config, out_dir=tmp_path)
    assert result["skipped"] == {"sales-head": "not due (weekly) on 2026-10-24"} and not handler.messages


def test_delivery_through_the_airflow_smtp_connection(settings, engine, catalogue, smtp_server, tmp_path,
                                                      monkeypatch) -> None:
    controller, handler = smtp_server
    monkeypatch.setenv("AIRFLOW_CONN_ESN_SMTP_TEST", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "airflow-sender@fixture.example",
                  "timeout": 5}}))
    config = reports_config(catalogue, delivery={"transport": "auto", "backoff_seconds": 0.01})
    result = send_reports(settings, AS_OF, smtp_conn_id="esn_smtp_test", audiences=["leadership"], engine=engine,
                          config=config, out_dir=tmp_path, sleep=lambda s: None)
    assert result["transport"] == "airflow" and result["delivered"] == 2, result
    assert {mail_from for mail_from, _, _ in handler.messages} == {"airflow-sender@fixture.example"}
    msg = _parse(handler.messages[0][2])
    assert msg.get_body(("html",)) is not None and msg.get_body(("plain",)) is not None
