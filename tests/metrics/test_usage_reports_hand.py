"""The Microsoft 365 usage reports (kind m365_usage) by hand, through the whole job (extract from the
reports API, stage, validate, land, publish) on the fixture CSVs of tests/data/msgraph/usage_hand (real
column order of the pnp/cli-microsoft365 sample, one concealed row each, a BOM on the first file).

Teams, 2026-03-02 (D1)        team chat  private  calls  meetings  posts  replies
  ana                              5         2       1       0        2      3
  ben                              0         4       0       2        0      0
  cho, eli                         0         0       0       0        0      0
  dev                              1         0       0       0       -      -      (no post/reply split)
  concealed (hash, zero GUID)      7         1       0       0        4      3      (no person: left out)
  fay (Is Deleted True)            0         0       0       0        0      0
Teams, 2026-03-03 (D2): ana team chat 1 (post 1, reply 0), cho private 3, the others 0; no concealed row.
Viva Engage, D1: ana posted 1, read 10, liked 2; ben 0; eli read 4; concealed posted 3 (left out). No D2.

People: the user reports are the platform's listing: ana ben cho dev eli fay, fay deactivated (deleted in
every report that names her), so the headcount is 5 (no HR directory: nobody has a department).
mart_usage_daily, org, D1: Teams-active ana ben dev (3), Engage-active ana eli (2), report-active ana ben
dev eli (4, 4/5); channel messages ana 2+3 + dev 1 = 6; posts 2, replies 3 (dev has no split); chat 2+4 = 6;
meetings 2; calls 1; Engage posted 1, likes 2, reads 14.
D2: Teams-active ana cho (2); Engage none (no report); channel messages 1, posts 1, replies 0, chat 3.
No activity is made of any of it: posts, DAU and every activity mart stay at zero.
Usage segments (no per-event source loads Teams or Engage messages, so the counts stand for actions;
reads do not): D1 ana 5 + 2 + 1 + 2 = 10, ben 4, dev 1; D2 ana 1, cho 3. Everyone is low (at most 11 in
12 weeks, under one a week); claimed D1 ana ben dev (3), D2 + cho (4).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from hand_helpers import check

from pipelines import jobs, lake, warehouse
from pipelines.model import ACTIVITIES, CONTAINERS, conform
from pipelines.sources import usage_reports
from tests.vendors.msgraph.usage_hand import D1, D2, INTERVAL, hand_settings, transport

COVERED: set[str] = set()


def _publish(tmp: Path, url: str | None = None) -> sa.Engine:
    settings = hand_settings(tmp, url)
    ctx = jobs._context(settings, "m365", None, False)
    report = usage_reports.extract(ctx, D1, D2, access_token="hand-token", transport=transport())
    assert report.details["unresolved_concealed"] == {"rows": 2, "activity": 4 + 3 + 1 + 3 + 1}
    jobs.stage(settings, "m365", INTERVAL)
    jobs.validate(settings, "m365", INTERVAL)
    jobs.land(settings, "m365", INTERVAL)
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.publish(settings, INTERVAL, engine=engine)
    return engine


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    engine = _publish(tmp_path_factory.mktemp("usage_hand"))
    yield engine
    engine.dispose()


def test_postgresql_gives_the_same_usage_tables(published: sa.Engine, tmp_path: Path, pg_url: str) -> None:
    engine = _publish(tmp_path, pg_url)
    try:
        for table, order in (("mart_usage_daily", "as_of_date, segment_type, segment_value"),
                             ("mart_adoption_daily", "as_of_date, segment_type, segment_value"),
                             ("fct_person_usage_daily", "as_of_date, person_key"),
                             ("int_person_report_actions_daily", "activity_date, person_key")):
            sql = f"select * from {table} order by {order}"
            pd.testing.assert_frame_equal(warehouse.read_frame(engine, sql), warehouse.read_frame(published, sql),
                                          check_dtype=False, obj=table)
    finally:
        engine.dispose()


def test_usage_mart_is_right_by_hand_on_the_fixture_csv(published: sa.Engine) -> None:
    check(published, "mart_usage_daily", {
        "suppressed": False, "headcount": 5, "report_active_users": 4, "report_active_rate": 4 / 5,
        "teams_active_users": 3, "teams_channel_messages": 6, "teams_posts": 2, "teams_replies": 3,
        "teams_chat_messages": 6, "teams_meetings": 2, "teams_calls": 1, "engage_active_users": 2,
        "engage_messages_posted": 1, "engage_likes": 2, "engage_reads": 14,
    }, COVERED, as_of_date=D1, segment_type="org", segment_value="all")
    check(published, "mart_usage_daily", {
        "headcount": 5, "report_active_users": 2, "report_active_rate": 2 / 5, "teams_active_users": 2,
        "teams_channel_messages": 1, "teams_posts": 1, "teams_replies": 0, "teams_chat_messages": 3,
        "engage_active_users": 0, "engage_messages_posted": 0,
    }, COVERED, as_of_date=D2, segment_type="org", segment_value="all")


def test_usage_reports_make_no_activity(published: sa.Engine) -> None:
    with published.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from lake_activities").scalar_one() == 0
        assert conn.exec_driver_sql("select count(*) from fct_posts").scalar_one() == 0
        assert conn.exec_driver_sql("select count(*) from lake_usage_daily").scalar_one() == 6 + 6 + 3
    check(published, "mart_engagement_daily", {"headcount": 5, "dau": 0, "posting_users_1d": 0},
          set(), activity_date=D1, segment_type="org", segment_value="all")


def test_adoption_counts_the_reports_where_no_messages_are_loaded(published: sa.Engine) -> None:
    got = warehouse.read_frame(published, "select person_key, as_of_date, actions_12w from fct_person_usage_daily "
                                          "order by as_of_date, actions_12w")
    assert got.groupby("as_of_date")["actions_12w"].apply(list).to_dict() == {D1: [1, 4, 10], D2: [1, 3, 4, 11]}
    check(published, "mart_adoption_daily", {"headcount": 5, "claimed": 3, "low_users": 3, "non_users": 2},
          set(), as_of_date=D1, segment_type="org", segment_value="all")
    check(published, "mart_adoption_daily", {"claimed": 4, "low_users": 4, "non_users": 1},
          set(), as_of_date=D2, segment_type="org", segment_value="all")


def test_the_usage_lake_is_partitioned_by_report_date(published: sa.Engine) -> None:
    lake_dir = Path(str(published.url.database)).parent / "lake"
    base = lake.canonical_dir(lake_dir, "usage") / "source=m365"
    assert lake.partition_days(base) == [D1, D2]


def _legacy_activities(usage: pd.DataFrame, day: dt.date) -> pa.Table:
    """What earlier versions landed for the reports: one synthetic activity per unit of each count (event
    ids `agg:<family>:<day>:<key>:<column>:<i>`, pseudo-containers `aggregate:...`), as posts and replies."""
    rows = []
    for r in usage[usage["usage_date"] == day].itertuples():
        for column, verb in (("posts", "post"), ("replies", "reply"), ("chat_messages", "post")):
            n = getattr(r, column)
            for i in range(0 if pd.isna(n) else int(n)):
                rows.append({"source": "m365", "event_id": f"agg:teams:{day}:{r.person_key}:{column}:{i}",
                             "occurred_at": pd.Timestamp(day, tz="UTC"), "actor_key": r.person_key, "verb": verb,
                             "container_id": "aggregate:teams-channels", "is_question": False, "is_edited": False,
                             "is_deleted": False})
    return conform(pa.Table.from_pylist(rows), ACTIVITIES)


def test_a_lake_with_synthetic_usage_activities_is_migrated_and_republished(tmp_path: Path) -> None:
    """A lake (and warehouse) written by the earlier version: the reports' counts landed as 'agg:' posts and
    replies and published. The next daily run re-stages those days from the raw landing into the usage
    table, empties their activity partitions, removes the pseudo-containers, and republishes them: no
    synthetic post is left anywhere, and the usage figures are those of a fresh lake."""
    settings = hand_settings(tmp_path)
    ctx = jobs._context(settings, "m365", None, False)
    usage_reports.extract(ctx, D1, D2, access_token="hand-token", transport=transport())
    usage = pd.concat([usage_reports.canonicalise(ctx, d)["usage"] for d in (D1, D2)], ignore_index=True)
    acts = lake.canonical_dir(settings.lake_dir, "activities") / "source=m365"
    legacy = {d: _legacy_activities(usage, d) for d in (D1, D2)}
    for d, table in legacy.items():
        lake.write_partition(acts, d, table)
    containers = lake.canonical_dir(settings.lake_dir, "containers") / "source=m365"
    lake.write_partition(containers, D2, conform(pa.Table.from_pylist([
        {"source": "m365", "container_id": "aggregate:teams-channels", "kind": "feed", "visibility": "public"}]),
        CONTAINERS))
    raw = lake.pending(settings.lake_dir, "m365", "raw")
    raw.discard(raw.snapshot())  # landed and published long ago
    engine = warehouse.make_engine(settings.warehouse_url)
    with engine.begin() as conn:  # ... by the earlier version, which loaded the synthetic rows
        warehouse.ensure_lake_tables(conn)
        for d, table in legacy.items():
            warehouse.insert_arrow(conn, "lake_activities", table.append_column(
                "activity_date", pa.array([d] * table.num_rows, pa.date32())))
    assert sum(t.num_rows for t in legacy.values()) == 2 + 3 + 6 + 1 + 3  # D1 posts, replies, chats; D2
    # the next daily run, for D2 only
    today = jobs.Interval(D2, D2)
    staged = jobs.stage(settings, "m365", today)
    assert staged["batch"] == INTERVAL.batch  # D1 is re-staged from its raw landing
    jobs.validate(settings, "m365", today)
    jobs.land(settings, "m365", today)
    jobs.publish(settings, today, engine=engine)
    assert all(pq.read_table(lake.partition_dir(acts, d) / lake.PART).num_rows == 0 for d in (D1, D2))
    assert lake.partition_days(containers) == []
    with engine.connect() as conn:
        assert conn.exec_driver_sql("select count(*) from lake_activities").scalar_one() == 0
        assert conn.exec_driver_sql("select count(*) from fct_posts").scalar_one() == 0
        assert conn.exec_driver_sql("select count(*) from fct_person_daily_activity").scalar_one() == 0
    check(engine, "mart_usage_daily", {"report_active_users": 4, "teams_posts": 2, "teams_chat_messages": 6},
          set(), as_of_date=D1, segment_type="org", segment_value="all")
    engine.dispose()
    # and a second run has nothing left to migrate
    assert usage_reports.migrate_lake(settings, "m365") == {"days_restaged": 0, "days_cleaned": 0,
                                                             "containers_snapshots_removed": 0}
