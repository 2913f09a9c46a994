"""The daily esn_reports DAG run for real (`dag.test()` in a child Airflow, SQLite metadata) on the reports'
fixture warehouse, sending to a real SMTP server on loopback: each scheduled day sends exactly the
audiences whose period closed the day before (issue 16, part 4), the monthly one on a Saturday month end,
and a month the warehouse does not cover goes out with the "data incomplete" banner (part 1)."""

from __future__ import annotations

import socket
from email import message_from_bytes
from pathlib import Path

import pytest
import yaml
from aiosmtpd.controller import Controller

from tests.airflow.conftest import fresh_env, probe
from tests.reports.conftest import make_warehouse

pytestmark = pytest.mark.airflow

AUDIENCES = [
    {"name": "ops", "recipients": ["ops@fixture.example"], "frequency": "daily"},
    {"name": "leadership", "recipients": ["ceo@fixture.example"], "frequency": "weekly"},  # Sundays
    {"name": "friday-team", "recipients": ["team@fixture.example"], "frequency": "weekly", "weekday": "friday"},
    {"name": "board", "recipients": ["board@fixture.example"], "frequency": "monthly"},
]


class _Handler:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.received.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(("run_day", "expected"), [
    ("2026-10-26", {"ops@fixture.example", "ceo@fixture.example"}),    # as of Sunday 25 October
    ("2026-10-24", {"ops@fixture.example", "team@fixture.example"}),   # as of Friday 23 October
    ("2026-11-01", {"ops@fixture.example", "board@fixture.example"}),  # as of Saturday 31 October: month end
])
def test_a_daily_run_sends_the_audiences_whose_period_closed(airflow_template: Path, tmp_path: Path,
                                                              run_day: str, expected: set[str]) -> None:
    url = make_warehouse(tmp_path / "warehouse.duckdb")
    handler = _Handler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = tmp_path / "esn.yaml"
        config.write_text(yaml.safe_dump({
            "lake_dir": str(tmp_path / "lake"), "warehouse_url": url,
            "reports": {"organisation_name": "Fixture Co", "output_dir": str(tmp_path / "reports"),
                        "audiences": AUDIENCES,
                        "delivery": {"sender": "esn@fixture.example", "transport": "smtp",
                                     "smtp": {"host": "127.0.0.1", "port": port}, "backoff_seconds": 0}}}))
        env = fresh_env(airflow_template, tmp_path)
        env["ESN_CONFIG"] = str(config)
        env["ESN_PSEUDONYM_KEY"] = "any"
        result = probe(env, "run", "esn_reports", f"{run_day}T07:00:00+00:00", "--no-retries", timeout=240)
    finally:
        controller.stop()
    assert result.data["state"] == "success", result.output[-12000:]
    got = [r for rcpts, _ in handler.received for r in rcpts]
    assert sorted(got) == sorted(expected), got  # each due audience once, nobody else
    subjects = {rcpts[0]: message_from_bytes(raw)["Subject"] for rcpts, raw in handler.received}
    if "board@fixture.example" in expected:
        # the fixture warehouse ends on 25 October: October is not covered, and the email says so
        assert subjects["board@fixture.example"].startswith("[DATA INCOMPLETE]"), subjects
        assert "October 2026" in subjects["board@fixture.example"]
