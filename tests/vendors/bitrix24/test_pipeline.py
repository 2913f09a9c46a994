"""A Bitrix24 batch through the run protocol: extracted from the emulator by `jobs.extract` (the source
registered as kind bitrix24, the webhook code from the environment), staged, validated by the GX suites and
landed in the canonical lake, then published: the Feed's posts, comments, mentions and readers reach
stg_activities, its people reach the people table with their departments."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import jobs, sources, warehouse
from pipelines.config import Settings, SourceConfig
from pipelines.emulators.bitrix24 import Bitrix24Emulator, Limits
from pipelines.emulators.bitrix24_portal import build_portal
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import KEY

START = dt.date(2026, 1, 5)
DAYS = 14


@pytest.mark.slow
def test_a_bitrix24_batch_validates_lands_and_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.REGISTRY["bitrix24"] == "pipelines.sources.bitrix24"
    monkeypatch.setenv("B24_TEST_WEBHOOK_CODE", "emulatorwebhookcode7")
    org = build_org(60, DAYS + 2, START, 7, 1.0)
    portal = build_portal(org)
    interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
    key = KEY.decode()
    with Bitrix24Emulator(org, portal=portal, limits=Limits(drain_per_s=1000, burst=100)) as emu:
        emu.advance_to(interval.end)
        settings = Settings(
            lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            sources=[SourceConfig(name="bitrix24", kind="bitrix24", quality={"empty_day": "warning"},
                                  options={"portal_url": emu.url, "webhook_user_id": emu.webhook_user,
                                           "webhook_code_env": "B24_TEST_WEBHOOK_CODE", "requests_per_s": 1000,
                                           "burst": 50})])
        jobs.extract(settings, "bitrix24", interval, key=key)
    staged = jobs.stage(settings, "bitrix24", interval, key=key)
    validated = jobs.validate(settings, "bitrix24", interval)
    assert validated["blocking_failures"] == 0, validated
    jobs.land(settings, "bitrix24", interval)
    jobs.publish(settings, interval)
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            verbs = dict(conn.execute(sa.text("select verb, count(*) from stg_activities group by verb")).all())
            people = conn.execute(sa.text(
                "select count(*), count(distinct department) from stg_people")).one()
    finally:
        engine.dispose()
    assert sum(verbs.values()) == staged["rows"]["activities"] > 0
    assert verbs.get("post", 0) > 0 and verbs.get("reply", 0) > 0 and verbs.get("mention", 0) > 0
    assert "reaction" not in verbs  # the API lists no likes (docs/sources/bitrix24.md)
    assert people[0] == len(portal.users) and people[1] > 1
