"""A MangoApps batch through the run protocol: extracted from the emulator by `jobs.extract` (the source
registered here as kind mangoapps: the shared registry line is the integrator's), staged, validated by the
GX suites and landed in the canonical lake, then published: posts, replies and reactions reach
stg_activities."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import jobs, sources, warehouse
from pipelines.config import Settings, SourceConfig
from pipelines.emulators.mangoapps import MangoAppsEmulator
from pipelines.emulators.mangoapps_network import build_network
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import KEY

START = dt.date(2026, 1, 5)
DAYS = 14


@pytest.mark.slow
def test_a_mangoapps_batch_validates_lands_and_publishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sources.REGISTRY["mangoapps"] == "pipelines.sources.mangoapps"
    monkeypatch.setenv("MA_TEST_KEY", "emulator-api-key")
    monkeypatch.setenv("MA_TEST_USER", "admin@demo-corp.example")
    monkeypatch.setenv("MA_TEST_PASSWORD", "emulator-password")
    org = build_org(60, DAYS + 2, START, 7, 1.0)
    network = build_network(org)
    interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
    key = KEY.decode()
    with MangoAppsEmulator(org, network=network) as emu:
        emu.advance_to(interval.end)
        settings = Settings(
            lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
            sources=[SourceConfig.model_validate({
                "name": "mangoapps", "kind": "mangoapps", "quality": {"empty_day": "warning"},
                "options": {"base_url": emu.url, "api_key_env": "MA_TEST_KEY", "username_env": "MA_TEST_USER",
                            "password_env": "MA_TEST_PASSWORD", "requests_per_s": 1000}})])
        jobs.extract(settings, "mangoapps", interval, key=key)
    staged = jobs.stage(settings, "mangoapps", interval, key=key)
    validated = jobs.validate(settings, "mangoapps", interval)
    assert validated["blocking_failures"] == 0, validated
    jobs.land(settings, "mangoapps", interval)
    jobs.publish(settings, interval)
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            verbs: dict[str, int] = dict(conn.execute(sa.text("select verb, count(*) from stg_activities group by verb")).all())
            nested = conn.execute(sa.text(
                "select count(*) from stg_activities where verb = 'reply' and parent_id like 'comment:%'")).scalar_one()
    finally:
        engine.dispose()
    now = dt.datetime(interval.end.year, interval.end.month, interval.end.day, tzinfo=dt.UTC).timestamp() + 86399
    assert sum(verbs.values()) == staged["rows"]["activities"] > 0
    assert verbs == network.counts(now)
    assert nested > 0
