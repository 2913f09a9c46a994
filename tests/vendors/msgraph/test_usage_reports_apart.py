"""Aggregate usage reports are kept apart from the activities, through the whole job (`jobs.run`) against the
Graph emulator: one tenant (the demo organisation) loaded once with its Teams messages (`msgraph`, chats
included) and once with its Teams messages *and* its usage reports (`m365_usage`, Teams and Viva Engage user
activity), with the HR directory of a `demo` source.

What a user who loads both expects, and what is checked:
  - no post, reply, response, container or network figure changes: the reports' counts are not events, and
    the Teams messages are already loaded (every activity table and mart is identical, row for row);
  - the usage segments and the adoption curve use the reports only for the product whose messages no
    source loads: Viva Engage here (its posted and liked counts are added to the actions), never Teams
    (its messages are loaded by msgraph, chats included);
  - the reports' own figures are in mart_usage_daily, from the reports only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.config import SourceConfig
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.sources.demo_org import build_org
from tests.conftest import demo_settings

START = dt.date(2026, 3, 2)
DAYS = 14
END = START + dt.timedelta(days=DAYS - 1)
PEOPLE, SEED = 60, 3
GRAPH = {"UR_GRAPH_TENANT": "tenant", "UR_GRAPH_CLIENT": "emu-client", "UR_GRAPH_SECRET": "emu-secret"}
CREDS = {"tenant_id_env": "UR_GRAPH_TENANT", "client_id_env": "UR_GRAPH_CLIENT", "client_secret_env": "UR_GRAPH_SECRET"}
#: every table the per-event sources feed: posts, replies, responses, containers, the network's inputs
EVENT_TABLES = ("lake_activities", "fct_posts", "int_post_responses", "int_interactions", "fct_person_daily_activity",
                "int_person_container_daily", "fct_answerers", "mart_engagement_daily", "mart_engagement_period",
                "mart_container_health", "mart_knowledge_sharing", "mart_unanswered_backlog",
                "mart_interactions_period", "mart_participation_inequality", "mart_leader_engagement",
                "mart_department_concentration")


@pytest.fixture(scope="module")
def org():
    return build_org(PEOPLE, DAYS, START, SEED, 1.0)


def _run(org, tmp: Path, with_reports: bool) -> sa.Engine:
    settings = demo_settings(tmp)
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED, "directory_only": True}
    with GraphEmulator(org) as emu:
        emu.advance_to(END)
        graph = {"base_url": emu.url, "token_url": emu.token_url, "rate_period_s": 0.002, "backoff_base_s": 0.01,
                 **CREDS}
        settings.sources = [SourceConfig(name="hr", kind="demo", options=directory),
                            SourceConfig(name="teams", kind="msgraph", options={**graph, "include_chats": True})]
        if with_reports:
            settings.sources.append(SourceConfig(name="usage", kind="m365_usage", options={
                **graph, "reports": ["teams_user", "engage_user"]}))
        engine = warehouse.make_engine(settings.warehouse_url)
        jobs.run(settings, jobs.Interval(START, END), engine=engine)
    return engine


@pytest.fixture(scope="module")
def runs(org, tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    for name, value in GRAPH.items():
        mp.setenv(name, value)
    mp.setenv("ESN_PSEUDONYM_KEY", "usage-reports-apart-test-key")
    try:
        out = {"messages": _run(org, tmp_path_factory.mktemp("messages"), False),
               "both": _run(org, tmp_path_factory.mktemp("both"), True)}
        yield out
    finally:
        for engine in out.values():
            engine.dispose()
        mp.undo()


def _table(engine: sa.Engine, table: str) -> pd.DataFrame:
    df = warehouse.read_frame(engine, f"select * from {table}")
    return df.sort_values(list(df.columns), kind="stable", ignore_index=True)


def _query(engine: sa.Engine, sql: str, **params: Any) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


def test_loading_the_usage_reports_changes_no_post_reply_or_network_figure(runs) -> None:
    for table in EVENT_TABLES:
        pd.testing.assert_frame_equal(_table(runs["both"], table), _table(runs["messages"], table),
                                      check_dtype=False, obj=table)
    people = "select person_key, department, location, level, is_leader, in_directory from stg_people"
    pd.testing.assert_frame_equal(_table(runs["both"], f"({people}) p"), _table(runs["messages"], f"({people}) p"))


def test_loading_both_the_messages_and_the_report_counts_no_post_twice(runs) -> None:
    both = runs["both"]
    assert _query(both, "select count(*) as n from lake_activities where source = 'usage' "
                        "or event_id like 'agg:%'")["n"].iloc[0] == 0
    # the report's own counts are there, apart: the same Teams posts, counted once by each
    report = _query(both, "select sum(teams_posts) as posts, sum(teams_replies) as replies from mart_usage_daily "
                          "where segment_type = 'org'").iloc[0]
    events = _query(both, "select sum(posts) as posts, sum(replies) as replies from mart_engagement_period "
                          "where segment_type = 'org' and period_type = 'day'").iloc[0]
    assert report["posts"] > 0 and report["replies"] > 0
    posts = _query(both, "select count(*) as n from fct_posts p join stg_containers c on c.container_id = "
                         "p.container_id where c.kind = 'channel'")["n"].iloc[0]
    # the report counts the same channel posts msgraph loaded (and the ones deleted since, which the events
    # no longer have): two counts of one thing, side by side in two tables, never added up
    assert posts <= int(report["posts"]) <= posts * 1.05
    assert int(events["posts"]) == int(_query(runs["messages"], "select sum(posts) as n from mart_engagement_period "
                                                                "where segment_type = 'org' and period_type = 'day'")
                                       ["n"].iloc[0])


def test_adoption_adds_the_report_counts_only_for_the_product_whose_messages_are_not_loaded(runs) -> None:
    sql = "select as_of_date, person_key, actions_12w from fct_person_usage_daily"
    merged = _query(runs["messages"], sql).merge(_query(runs["both"], sql), on=["as_of_date", "person_key"],
                                                 how="outer", suffixes=("_events", "_both")).fillna(0)
    engage = _query(runs["both"], "select usage_date, person_key, coalesce(channel_messages, 0) + "
                                  "coalesce(reactions, 0) as n from lake_usage_daily where product = 'engage'")
    assert engage["n"].sum() > 0
    engage["usage_date"] = pd.to_datetime(engage["usage_date"])
    merged["as_of_date"] = pd.to_datetime(merged["as_of_date"])
    # Viva Engage is loaded by no message source: its posted + liked counts of the 84 days ending on the day
    # are added; Teams (loaded by msgraph, chats included) adds nothing
    expected = [int(engage.loc[(engage["person_key"] == r.person_key) & (engage["usage_date"] <= r.as_of_date)
                               & (engage["usage_date"] > r.as_of_date - pd.Timedelta(days=84)), "n"].sum())
                for r in merged.itertuples()]
    assert (merged["actions_12w_both"] - merged["actions_12w_events"]).astype(int).tolist() == expected
