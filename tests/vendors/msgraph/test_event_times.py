"""Event times through the whole job (extract, stage, validate, land, publish) on the Graph emulator: a
reaction made today to a 5-day-old message is today's activity (Graph's `createdDateTime` of the
reaction) and leaves the published figures of 5 days ago unchanged; rerunning either day neither loses
nor doubles it, and a rerun gives byte-identical published tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.config import SourceConfig
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.privacy import Pseudonymiser
from pipelines.sources.demo_org import build_org
from tests.conftest import demo_settings

START = dt.date(2026, 3, 2)
DAYS = 14
TODAY = START + dt.timedelta(days=DAYS - 1)
OLD = TODAY - dt.timedelta(days=5)
PEOPLE, SEED = 60, 11
KEY = "event-times-test-key"
GRAPH = {"ET_GRAPH_TENANT": "tenant", "ET_GRAPH_CLIENT": "emu-client", "ET_GRAPH_SECRET": "emu-secret"}
DAILY = ("fct_person_daily_activity", "mart_engagement_daily")


def _frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return warehouse.read_frame(conn, sql, params)


def _day(engine: sa.Engine, table: str, day: dt.date) -> pd.DataFrame:
    df = _frame(engine, f"select * from {table} where activity_date = :d", d=day)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _table(engine: sa.Engine, table: str) -> pd.DataFrame:
    df = _frame(engine, f"select * from {table}")
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    org = build_org(PEOPLE, DAYS, START, SEED, 1.0)
    for name, value in GRAPH.items():
        monkeypatch.setenv(name, value)
    settings = demo_settings(tmp_path)
    monkeypatch.setenv(settings.privacy.pseudonym_key_env, KEY)
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED, "directory_only": True}
    with GraphEmulator(org) as emu:
        settings.sources = [
            SourceConfig(name="hr", kind="demo", options=directory),
            SourceConfig(name="teams", kind="msgraph", options={
                "base_url": emu.url, "token_url": emu.token_url, "rate_period_s": 0.002, "backoff_base_s": 0.01,
                "tenant_id_env": "ET_GRAPH_TENANT", "client_id_env": "ET_GRAPH_CLIENT",
                "client_secret_env": "ET_GRAPH_SECRET"}),
        ]
        engine = warehouse.make_engine(settings.warehouse_url)
        try:
            yield settings, emu, engine
        finally:
            engine.dispose()


def test_a_reaction_today_to_a_five_day_old_message_counts_today_only(job) -> None:
    settings, emu, engine = job
    yesterday = TODAY - dt.timedelta(days=1)
    emu.advance_to(yesterday)
    jobs.run(settings, jobs.Interval(START, yesterday), engine=engine)
    before = {t: _day(engine, t, OLD) for t in DAILY}
    assert len(before["fct_person_daily_activity"]) > 0

    # someone reacts today, at noon, to a person's channel post of 5 days ago
    tenant = emu.tenant
    old_start = dt.datetime(OLD.year, OLD.month, OLD.day, tzinfo=dt.UTC).timestamp()
    post = next(m for ch in sorted(tenant.channels.values(), key=lambda c: c.id) for m in ch.roots
                if m.user and not m.system and m.delete_at is None and old_start <= m.created < old_start + 86400)
    reactor = next(u for u in tenant.users if u.id != post.user)
    noon = dt.datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=dt.UTC).timestamp()
    post.reactions.append((noon, "surprised", reactor.id))
    event_id = f"{post.container}:{post.id}:reaction:surprised:{Pseudonymiser(KEY.encode()).email(reactor.mail)}"

    emu.advance_to(TODAY)
    jobs.run(settings, jobs.Interval(TODAY, TODAY), engine=engine)

    def where() -> pd.DataFrame:
        return _frame(engine, "select activity_date, actor_key, verb from lake_activities where event_id = :e",
                      e=event_id)

    found = where()
    assert len(found) == 1 and found["verb"].iloc[0] == "reaction"
    assert pd.Timestamp(found["activity_date"].iloc[0]).date() == TODAY
    reactor_today = _frame(engine, "select reactions from fct_person_daily_activity where activity_date = :d "
                                   "and person_key = :p", d=TODAY, p=found["actor_key"].iloc[0])
    assert len(reactor_today) == 1 and reactor_today["reactions"].iloc[0] >= 1
    for table in DAILY:  # the figures of 5 days ago did not move
        pd.testing.assert_frame_equal(_day(engine, table, OLD), before[table], obj=table)

    # a rerun of today, then a backfill of the message's day: still once, still today, tables identical
    published = {t: _table(engine, t) for t in DAILY}
    jobs.run(settings, jobs.Interval(TODAY, TODAY), engine=engine)
    for table in DAILY:
        pd.testing.assert_frame_equal(_table(engine, table), published[table], obj=table)
    jobs.run(settings, jobs.Interval(OLD, OLD), engine=engine)
    found = where()
    assert len(found) == 1 and pd.Timestamp(found["activity_date"].iloc[0]).date() == TODAY
    for table in DAILY:
        pd.testing.assert_frame_equal(_day(engine, table, OLD), before[table], obj=table)
        pd.testing.assert_frame_equal(_day(engine, table, TODAY), published[table].loc[
            pd.to_datetime(published[table]["activity_date"]).dt.date == TODAY].reset_index(drop=True), obj=table)
