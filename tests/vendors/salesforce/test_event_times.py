"""Event times of Chatter likes (FeedLike `CreatedDate`) through the whole job on the Salesforce
emulator: a like made today on a 5-day-old post is today's activity and leaves the published figures of
5 days ago unchanged, and stays counted once when either day is rerun; a like taken back is removed from
the day it was made, even when it was the newest row of its post."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, lake, warehouse
from pipelines.config import SourceConfig
from pipelines.emulators.salesforce import SalesforceEmulator
from pipelines.emulators.salesforce_org import Like, build_chatter, make_id
from pipelines.sources import salesforce
from pipelines.sources.demo_org import build_org
from tests.conftest import demo_settings
from tests.vendors.yammer.helpers import make_ctx

START = dt.date(2026, 3, 2)
DAYS = 14
TODAY = START + dt.timedelta(days=DAYS - 1)
OLD = TODAY - dt.timedelta(days=5)
PEOPLE, SEED = 60, 11
DAILY = ("fct_person_daily_activity", "mart_engagement_daily")
CREDS = {"client_id_env": "ET_SF_CLIENT_ID", "client_secret_env": "ET_SF_CLIENT_SECRET", "backoff_base_s": 0.01,
         "requests_per_s": 1000}


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ET_SF_CLIENT_ID", "emulator-client")
    monkeypatch.setenv("ET_SF_CLIENT_SECRET", "emulator-secret")


def _frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return warehouse.read_frame(conn, sql, params)


def _day(engine: sa.Engine, table: str, day: dt.date) -> pd.DataFrame:
    df = _frame(engine, f"select * from {table} where activity_date = :d", d=day)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


def _ts(day: dt.date, hour: int) -> float:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC).timestamp()


def _post_of(chatter, day: dt.date):
    return next(i for i in chatter.items if i.type == "TextPost" and i.delete_at is None
                and _ts(day, 0) <= i.created < _ts(day, 0) + 86400)


@pytest.mark.parametrize("kind", ["duckdb", "postgresql"])
def test_a_like_today_on_a_five_day_old_post_counts_today_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               request: pytest.FixtureRequest, kind: str) -> None:
    org = build_org(PEOPLE, DAYS, START, SEED, 1.0)
    chatter = build_chatter(org)
    settings = demo_settings(tmp_path, warehouse_url=request.getfixturevalue("pg_url") if kind == "postgresql"
                             else None)
    monkeypatch.setenv(settings.privacy.pseudonym_key_env, "event-times-test-key")
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED, "directory_only": True}
    with SalesforceEmulator(org, chatter=chatter) as emu:
        settings.sources = [SourceConfig(name="hr", kind="demo", options=directory),
                            SourceConfig(name="chatter", kind="salesforce", options={**CREDS, "login_url": emu.url})]
        engine = warehouse.make_engine(settings.warehouse_url)
        try:
            yesterday = TODAY - dt.timedelta(days=1)
            emu.advance_to(yesterday)
            jobs.run(settings, jobs.Interval(START, yesterday), engine=engine)
            before = {t: _day(engine, t, OLD) for t in DAILY}
            assert len(before["fct_person_daily_activity"]) > 0

            post = _post_of(chatter, OLD)
            liker = next(u["Id"] for u in chatter.users if u["Id"] != post.author)
            like = Like(make_id("0I0", 999_983), _ts(TODAY, 12), liker)
            post.likes.append(like)
            emu.advance_to(TODAY)
            jobs.run(settings, jobs.Interval(TODAY, TODAY), engine=engine)

            def where() -> pd.DataFrame:
                return _frame(engine, "select activity_date, verb from lake_activities where event_id = :e",
                              e=salesforce.to18(like.id))

            for interval in (jobs.Interval(TODAY, TODAY), jobs.Interval(OLD, OLD), None):
                found = where()
                assert len(found) == 1 and found["verb"].iloc[0] == "reaction"
                assert pd.Timestamp(found["activity_date"].iloc[0]).date() == TODAY
                for table in DAILY:  # the figures of 5 days ago did not move
                    pd.testing.assert_frame_equal(_day(engine, table, OLD), before[table], obj=table)
                if interval is not None:  # rerun today, then backfill the post's day
                    jobs.run(settings, interval, engine=engine)
        finally:
            engine.dispose()


def test_a_like_taken_back_leaves_the_day_it_was_made(tmp_path: Path) -> None:
    org = build_org(PEOPLE, DAYS, START, SEED, 1.0)
    chatter = build_chatter(org)
    post = _post_of(chatter, OLD)
    post.comments.clear()
    others = [u["Id"] for u in chatter.users if u["Id"] != post.author]
    early, late = (Like(make_id("0I0", 999_983 + i), _ts(OLD + dt.timedelta(days=d), 9), others[i])
                   for i, d in enumerate((1, 3)))
    post.likes[:] = [early, late]
    ctx = make_ctx(tmp_path, "salesforce", {**CREDS, "login_url": "http://127.0.0.1:9"})
    run = salesforce._Run(ctx, None, None, START, TODAY)  # type: ignore[arg-type]  # land() calls no API

    def land(now: float) -> None:
        item = post.render(now, salesforce.DEFAULT_VERSION)
        run.land({salesforce.to18(post.id): run.rows(item)})

    land(_ts(TODAY - dt.timedelta(days=1), 23))
    likes_dir = lake.raw_dir(ctx.lake_dir, "salesforce", "feed_likes")
    late_day = OLD + dt.timedelta(days=3)
    assert salesforce.to18(late.id) in lake.read_partition(likes_dir, late_day).column("like_id").to_pylist()
    # the later like is taken back today: the item comes back (its SystemModstamp moved) with the early
    # one only, and nothing else of this run is later than the early like
    post.likes.remove(late)
    land(_ts(TODAY, 23))
    kept = lake.read_partition(likes_dir, late_day)
    assert salesforce.to18(late.id) not in (kept.column("like_id").to_pylist() if kept is not None else [])
    acts = pd.concat([salesforce.canonicalise(ctx, d).get("activities", pd.DataFrame(columns=["event_id"]))
                      for d in lake.days_between(START, TODAY)], ignore_index=True)
    assert salesforce.to18(early.id) in set(acts["event_id"])
    assert salesforce.to18(late.id) not in set(acts["event_id"])
