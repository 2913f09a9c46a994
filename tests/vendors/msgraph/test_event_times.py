"""Event times through the whole job (extract, stage, validate, land, publish) on the Graph emulator: a
reaction made today to a 5-day-old message is today's activity (Graph's `createdDateTime` of the
reaction) and leaves the published figures of 5 days ago unchanged; rerunning either day neither loses
nor doubles it, and a rerun gives byte-identical published tables."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, lake, warehouse
from pipelines.config import SourceConfig
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.privacy import Pseudonymiser
from pipelines.sources import msgraph
from pipelines.sources.demo_org import build_org
from tests.conftest import demo_settings
from tests.crash import harness

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
def job(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """(settings, emulator, engine) of a Teams source with its HR directory; the warehouse is DuckDB, or
    PostgreSQL when the test is parametrized with "postgresql"."""
    org = build_org(PEOPLE, DAYS, START, SEED, 1.0)
    for name, value in GRAPH.items():
        monkeypatch.setenv(name, value)
    url = request.getfixturevalue("pg_url") if getattr(request, "param", "duckdb") == "postgresql" else None
    settings = demo_settings(tmp_path, warehouse_url=url)
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


@pytest.mark.parametrize("job", ["duckdb", "postgresql"], indirect=True)
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


def _tables(settings) -> dict[str, pd.DataFrame]:
    """The warehouse's tables, without run ids (bookkeeping: they differ from run to run by design)."""
    return {name: df.drop(columns=["run_id"], errors="ignore")
            for name, df in harness.warehouse_tables(warehouse.make_engine(settings.warehouse_url)).items()}


class _Killed(BaseException):
    """Stands for a kill -9 inside the extraction (not an Exception: nothing may catch it)."""


def _world(settings, root: Path):
    """A copy of the lake and the DuckDB warehouse of `settings` under `root`, with settings pointing at it."""
    shutil.copytree(settings.lake_dir, root / "lake")
    shutil.copy(settings.warehouse_url.removeprefix("duckdb:///"), root / "warehouse.duckdb")
    return settings.model_copy(update={"lake_dir": root / "lake",
                                       "warehouse_url": f"duckdb:///{root / 'warehouse.duckdb'}"})


@pytest.mark.parametrize("kill", ["after_a_reactions_partition", "after_the_posts_day"])
def test_a_kill_while_landing_reactions_changes_nothing_published_and_the_rerun_equals_a_clean_run(
        job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kill: str) -> None:
    settings, emu, engine = job
    yesterday = TODAY - dt.timedelta(days=1)
    emu.advance_to(yesterday)
    jobs.run(settings, jobs.Interval(START, yesterday), engine=engine)
    engine.dispose()
    tenant = emu.tenant
    old_start = dt.datetime(OLD.year, OLD.month, OLD.day, tzinfo=dt.UTC).timestamp()
    post = next(m for ch in sorted(tenant.channels.values(), key=lambda c: c.id) for m in ch.roots
                if m.user and not m.system and m.delete_at is None and m.reactions
                and old_start <= m.created < old_start + 86400)
    noon = dt.datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=dt.UTC).timestamp()
    # a reaction made today, and the post's latest earlier reaction taken back
    gone = post.reactions.pop(max(range(len(post.reactions)), key=lambda i: post.reactions[i][0]))
    post.reactions.append((noon, "surprised", next(u.id for u in tenant.users if u.id != post.user)))
    emu.advance_to(TODAY)

    clean = _world(settings, tmp_path / "clean")
    jobs.run(clean, jobs.Interval(TODAY, TODAY))
    want = _tables(clean)

    killed = _world(settings, tmp_path / "killed")
    published = _tables(killed)
    real = lake.write_partition
    seen: list[str] = []

    def dying(base: Path, day: dt.date, table):
        stream = base.name.removeprefix("stream=")
        out = real(base, day, table)
        seen.append(stream)
        if kill == "after_a_reactions_partition" and stream == "reactions" or \
                kill == "after_the_posts_day" and stream == "messages" and day == OLD:
            raise _Killed
        return out

    monkeypatch.setattr(lake, "write_partition", dying)
    with pytest.raises(_Killed):
        jobs.run(killed, jobs.Interval(TODAY, TODAY))
    monkeypatch.setattr(lake, "write_partition", real)
    assert gone[0] < noon
    harness.assert_same_tables(_tables(killed), published,
                               f"after the kill {kill}")
    jobs.run(killed, jobs.Interval(TODAY, TODAY))
    harness.assert_same_tables(_tables(killed), want,
                               f"rerun after the kill {kill}")
    harness.assert_same_lake(harness.lake_files(killed.lake_dir), harness.lake_files(clean.lake_dir),
                             f"lake after the kill {kill}")


def _landing(ctx, start: dt.date, end: dt.date, rows: list[dict]):
    """A `_Run` that only lands `rows` (raw message rows), as the extraction does after its API calls."""
    run = msgraph._Run.__new__(msgraph._Run)
    run.ctx, run.name, run.start, run.end, run.first_day = ctx, ctx.source.name, start, end, START
    run.rows = {(r["container_id"], r["message_id"]): r for r in rows}
    return run


def _message(reactions: list[tuple[str, str, dt.datetime]]) -> dict:
    created = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    return {"container_id": "19:c@thread.tacv2", "container_kind": "channel", "message_id": "1772442000000",
            "reply_to_id": None, "created_at": created, "last_modified_at": None, "kind": "person",
            "message_type": "message", "event_type": None, "actor_key": "a" * 24, "parent_actor_key": None,
            "content_length": 5, "is_question": False, "is_edited": False, "is_deleted": False, "mention_keys": [],
            "reaction_types": [t for t, _, _ in reactions], "reaction_user_keys": [k for _, k, _ in reactions],
            "reaction_times": [w for _, _, w in reactions]}


def _reaction_days(ctx) -> dict[dt.date, list[str]]:
    frames = {d: msgraph.canonicalise(ctx, d).get("activities") for d in lake.days_between(START, TODAY)}
    return {d: sorted(f.loc[f["verb"] == "reaction", "event_id"]) for d, f in frames.items()
            if f is not None and (f["verb"] == "reaction").any()}


def test_a_kill_after_the_first_raw_partition_neither_keeps_a_removed_reaction_nor_loses_a_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.connectors.conftest import make_ctx

    ctx = make_ctx(tmp_path, "msgraph", {})
    b, c, d = "b" * 24, "c" * 24, "d" * 24
    day = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
    _landing(ctx, START, START + dt.timedelta(days=4), [_message([
        ("like", b, day + dt.timedelta(days=1)), ("heart", c, day + dt.timedelta(days=3))])]).land()
    assert _reaction_days(ctx) == {START + dt.timedelta(days=1): [f"19:c@thread.tacv2:1772442000000:reaction:like:{b}"],
                                   START + dt.timedelta(days=3): [f"19:c@thread.tacv2:1772442000000:reaction:heart:{c}"]}
    # on day 5 the heart is taken back and someone else reacts: the run is killed after its first raw file
    later = _message([("like", b, day + dt.timedelta(days=1)), ("laugh", d, day + dt.timedelta(days=5))])
    real = lake.write_partition

    def dying(base: Path, when: dt.date, table):
        real(base, when, table)
        raise _Killed

    monkeypatch.setattr(lake, "write_partition", dying)
    with pytest.raises(_Killed):
        _landing(ctx, START + dt.timedelta(days=5), START + dt.timedelta(days=5), [later]).land()
    monkeypatch.setattr(lake, "write_partition", real)
    _landing(ctx, START + dt.timedelta(days=5), START + dt.timedelta(days=5), [later]).land()  # the rerun
    assert _reaction_days(ctx) == {START + dt.timedelta(days=1): [f"19:c@thread.tacv2:1772442000000:reaction:like:{b}"],
                                   START + dt.timedelta(days=5): [f"19:c@thread.tacv2:1772442000000:reaction:laugh:{d}"]}


def test_a_lake_landed_before_the_reactions_stream_moves_its_reactions_to_their_days_once(tmp_path: Path) -> None:
    from pipelines.sources.msgraph_messages import rows_table
    from tests.connectors.conftest import make_ctx

    ctx = make_ctx(tmp_path, "msgraph", {})
    b = "b" * 24
    old = _message([("like", b, dt.datetime(2026, 3, 4, 8, tzinfo=dt.UTC))])
    lake.write_partition(lake.raw_dir(ctx.lake_dir, "msgraph", "messages"), START, rows_table([old]))
    event = f"19:c@thread.tacv2:1772442000000:reaction:like:{b}"
    assert _reaction_days(ctx) == {START: [event]}  # as landed then: dated at the message
    raw = lake.pending(ctx.lake_dir, "msgraph", "raw")
    raw.discard(raw.snapshot())  # that day was staged and published long ago
    _landing(ctx, START + dt.timedelta(days=6), START + dt.timedelta(days=6), []).land()
    assert _reaction_days(ctx) == {START + dt.timedelta(days=2): [event]}  # once, on its own day
    # both days are staged again, so the message's day loses it when its own reaction day gains it
    assert {START, START + dt.timedelta(days=2)} <= set(raw.days())


def test_reaction_rows_are_dated_when_made_never_before_the_message_and_once_per_reactor_and_type() -> None:
    from pipelines.sources.msgraph_messages import reaction_rows

    b, c = "b" * 24, "c" * 24
    created = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)
    row = _message([("like", b, created + dt.timedelta(days=2)), ("like", b, created + dt.timedelta(days=1)),
                    ("heart", c, created - dt.timedelta(minutes=5))])  # a skewed clock: before the message
    rows = reaction_rows(row)
    assert [(x["reaction_type"], x["actor_key"], x["reacted_at"]) for x in rows] == [
        ("heart", c, created), ("like", b, created + dt.timedelta(days=1))]
    assert all(x["target_key"] == row["actor_key"] for x in rows)
    assert reaction_rows({**row, "kind": "system"}) == [] and reaction_rows({**row, "kind": "deleted"}) == []
    assert all(x["target_key"] is None for x in reaction_rows({**row, "kind": "bot"}))
