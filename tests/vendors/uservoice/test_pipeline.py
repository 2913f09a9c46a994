"""A UserVoice batch through the run protocol: extracted from the emulator by `jobs.extract` (the source
registered as kind uservoice), staged, validated by the GX suites (the idea verbs and statuses included)
and landed in the canonical lake, then published: ideas, votes and status changes reach stg_activities."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import jobs, sources, warehouse
from pipelines.config import Settings, SourceConfig
from pipelines.emulators.uservoice import UserVoiceEmulator
from pipelines.emulators.uservoice_account import build_account
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import KEY

START = dt.date(2026, 1, 5)
DAYS = 14


@pytest.mark.slow
def test_a_uservoice_batch_validates_lands_and_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.REGISTRY["uservoice"] == "pipelines.sources.uservoice"
    monkeypatch.setenv("UV_TEST_CLIENT_ID", "emulator-key")
    monkeypatch.setenv("UV_TEST_CLIENT_SECRET", "emulator-secret")
    org = build_org(60, DAYS + 2, START, 7, 1.0)
    account = build_account(org)
    interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
    key = KEY.decode()
    with UserVoiceEmulator(org, account=account) as emu:
        emu.advance_to(interval.end)
        settings = Settings(
            lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            sources=[SourceConfig(name="uservoice", kind="uservoice", quality={"empty_day": "warning"},
                                  options={"base_url": emu.url, "client_id_env": "UV_TEST_CLIENT_ID",
                                           "client_secret_env": "UV_TEST_CLIENT_SECRET", "requests_per_s": 1000})])
        jobs.extract(settings, "uservoice", interval, key=key)
    staged = jobs.stage(settings, "uservoice", interval, key=key)
    validated = jobs.validate(settings, "uservoice", interval)
    assert validated["blocking_failures"] == 0, validated
    jobs.land(settings, "uservoice", interval)
    jobs.publish(settings, interval)
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            verbs = dict(conn.execute(sa.text("select verb, count(*) from stg_activities group by verb")).all())
            statuses = {r[0] for r in conn.execute(sa.text(
                "select distinct idea_status from stg_activities where verb = 'status_change'"))}
            flagged = conn.execute(sa.text("select count(*) from stg_activities where is_idea")).scalar_one()
    finally:
        engine.dispose()
    assert sum(verbs.values()) == staged["rows"]["activities"] > 0
    assert verbs.get("idea", 0) > 0 and verbs.get("vote", 0) > 0 and verbs.get("status_change", 0) > 0
    assert flagged == verbs["idea"] and statuses and statuses <= {"open", "planned", "in_progress", "completed",
                                                                   "declined"}
