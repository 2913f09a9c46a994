"""End to end through Airflow: after esn_daily has published, esn_network and esn_reports run for real.

Both are triggered manually with their params (the asset-triggered path is covered by the helpers' unit
tests); each must succeed and leave its outputs: the network tables in the warehouse, the rendered
emails on disk and the messages on an SMTP server on loopback.
"""

from __future__ import annotations

import json
import shutil
import socket
from email import message_from_bytes
from pathlib import Path

import duckdb
import pytest
import yaml

from tests.airflow.conftest import fresh_env, probe
from tests.airflow.test_esn_daily_e2e import DAY, Published

pytestmark = [pytest.mark.airflow, pytest.mark.slow]


def _copy(published: Published, root: Path, extra: dict | None = None) -> Path:
    shutil.copytree(published.lake, root / "lake")
    shutil.copy2(published.warehouse, root / "warehouse.duckdb")
    config = root / "esn.yaml"
    config.write_text(yaml.safe_dump({
        "lake_dir": str(root / "lake"), "warehouse_url": f"duckdb:///{root / 'warehouse.duckdb'}",
        "sources": [{"name": "demo", "kind": "demo", "options": {"people": 80, "days": 20, "start": "2026-05-01"}}],
        **(extra or {})}))
    return config


def test_network_dag_publishes_the_network_tables(published: Published, airflow_template: Path,
                                                  tmp_path: Path) -> None:
    config = _copy(published, tmp_path)
    env = fresh_env(airflow_template, tmp_path)
    env["ESN_CONFIG"] = str(config)
    env["ESN_PSEUDONYM_KEY"] = "any"
    result = probe(env, "run", "esn_network", "2026-05-11T00:00:00+00:00", "--no-retries",
                   "--conf", json.dumps({"end_date": DAY.isoformat()}), timeout=240)
    assert result.data["state"] == "success", result.output[-12000:]
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        con.execute("set search_path = 'esn_internal,esn_marts,esn_staging'")
        windows = {w for (w,) in con.execute("select distinct window_name from mart_network_org").fetchall()}
        people = con.execute("select count(*) from fct_person_network where window_end = ?", [DAY]).fetchone()[0]
    assert windows == {"rolling_28d", "rolling_90d"} and people > 0


def test_reports_dag_sends_the_emails_to_an_smtp_server(published: Published, airflow_template: Path,
                                                        tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    received: list[tuple[list[str], bytes]] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            received.append((list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    with socket.socket() as probe_socket:  # a free port (aiosmtpd's own start-up check needs a real one)
        probe_socket.bind(("127.0.0.1", 0))
        port = int(probe_socket.getsockname()[1])
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = _copy(published, tmp_path, {"reports": {
            "organisation_name": "Demo Corp", "output_dir": str(tmp_path / "reports"),
            "audiences": [{"name": "leadership", "recipients": ["ceo@demo-corp.example"]}],
            "delivery": {"sender": "esn@demo-corp.example", "transport": "smtp",
                         "smtp": {"host": "127.0.0.1", "port": port}, "backoff_seconds": 0}}})
        env = fresh_env(airflow_template, tmp_path)
        env["ESN_CONFIG"] = str(config)
        # 2026-05-10 is a Sunday: the weekly period of the leadership audience closes on it
        result = probe(env, "run", "esn_reports", "2026-05-11T07:00:00+00:00", "--no-retries",
                       "--conf", json.dumps({"as_of": DAY.isoformat()}), timeout=240)
    finally:
        controller.stop()
    assert result.data["state"] == "success", result.output[-12000:]
    assert [r for r, _ in received] == [["ceo@demo-corp.example"]]
    message = message_from_bytes(received[0][1])
    assert "Demo Corp" in message["Subject"] and message.is_multipart()
    assert (tmp_path / "reports").exists()
