"""The issue's acceptance test: one organisation on Slack, Teams and Viva Engage at once (the demo
generator, served by the three emulators) goes through the whole job (`jobs.run`: extract, stage,
validate, land, publish) with its HR directory from a `demo` source (`directory_only: true`). It gives
one person-resolved set of tables: one row per person in `stg_people`, one key per person on every
platform (all three sources key people by email), and an org MAU that counts each person once, however
many platforms they use.

Credentials: `jobs.run` passes none to the sources (the DAG passes an Airflow connection's to
`jobs.extract`), so each source reads them from the environment variables its options name, as the CLI
does.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import jobs, lake, warehouse
from pipelines.config import SourceConfig
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.emulators.slack import SlackEmulator
from pipelines.emulators.yammer import YammerEmulator
from pipelines.network_stage import run_network
from pipelines.privacy import Pseudonymiser, resolve_key
from pipelines.sources.demo_org import build_org, simulate
from tests.conftest import demo_settings

START = dt.date(2026, 3, 2)
DAYS = 21
END = START + dt.timedelta(days=DAYS - 1)
PEOPLE, SEED = 120, 5
PLATFORMS = ("slack", "teams", "engage")
SLACK_TOKEN, YAMMER_TOKEN = "xoxb-multi-platform", "yammer-multi-platform"
GRAPH = {"MP_GRAPH_TENANT": "tenant", "MP_GRAPH_CLIENT": "emu-client", "MP_GRAPH_SECRET": "emu-secret"}


@pytest.fixture(scope="module")
def org():
    return build_org(PEOPLE, DAYS, START, SEED, 1.0)


@pytest.fixture
def published(org, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MP_SLACK_TOKEN", SLACK_TOKEN)
    monkeypatch.setenv("MP_YAMMER_TOKEN", YAMMER_TOKEN)
    for name, value in GRAPH.items():
        monkeypatch.setenv(name, value)
    settings = demo_settings(tmp_path, warehouse_url=pg_url)
    # not a demo-only run: publishing (the impact metrics) needs the pseudonymisation key, as in the DAG
    monkeypatch.setenv(settings.privacy.pseudonym_key_env, "multi-platform-test-key")
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED, "directory_only": True}
    with SlackEmulator(org, token=SLACK_TOKEN, period_s=0.05) as s_emu, \
            GraphEmulator(org) as g_emu, \
            YammerEmulator(org, token=YAMMER_TOKEN, period_s=0.02) as y_emu:
        for emu in (s_emu, g_emu, y_emu):
            emu.advance_to(END)
        fast = {"backoff_base_s": 0.01}
        settings.sources = [
            SourceConfig(name="hr", kind="demo", options=directory),
            SourceConfig(name="slack", kind="slack", options={
                **fast, "base_url": s_emu.url, "token_env": "MP_SLACK_TOKEN", "rate_period_s": 0.05,
                "auto_join": True, "include_private": True}),
            SourceConfig(name="teams", kind="msgraph", options={
                **fast, "base_url": g_emu.url, "token_url": g_emu.token_url, "rate_period_s": 0.002,
                "include_chats": True, "tenant_id_env": "MP_GRAPH_TENANT", "client_id_env": "MP_GRAPH_CLIENT",
                "client_secret_env": "MP_GRAPH_SECRET"}),
            SourceConfig(name="engage", kind="yammer", options={
                **fast, "base_url": y_emu.url, "token_env": "MP_YAMMER_TOKEN", "rate_period_s": 0.02}),
        ]
        engine = warehouse.make_engine(pg_url)
        try:
            report = jobs.run(settings, jobs.Interval(START, END), engine=engine)
            network = run_network(settings, END, engine=engine)
            yield {"settings": settings, "report": report, "network": network, "engine": engine}
        finally:
            engine.dispose()


def _canonical_activities(settings, source: str) -> pd.DataFrame:
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source}"
    files = lake.partition_files(base, lake.days_between(START, END))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _query(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return warehouse.read_frame(conn, sql, params)


def test_one_person_resolved_set_of_tables_across_three_platforms(org, published) -> None:
    settings, report, engine = published["settings"], published["report"], published["engine"]
    ps = Pseudonymiser(resolve_key(None, env_var=settings.privacy.pseudonym_key_env))

    # every source went through validation without a blocking failure, and landed activity
    assert set(report["sources"]) == {"hr", *PLATFORMS}
    for name, steps in report["sources"].items():
        assert steps["validate"]["blocking_failures"] == 0, name
    for name in PLATFORMS:
        assert report["sources"][name]["land"]["activities"] > 0, name

    # one row per person of the directory, nobody twice
    people = _query(engine, "select person_key from stg_people")
    assert len(people) == PEOPLE
    assert people["person_key"].is_unique
    directory = set(people["person_key"])
    assert directory == {ps.email(e) for e in org.people["email"]}

    # each platform keys people by email: every actor is a person of the directory (no per-platform
    # identities), and the people who posted most in the demo carry the same key on all three platforms
    acts = {name: _canonical_activities(settings, name) for name in PLATFORMS}
    actors = {name: set(df.loc[~df["is_deleted"], "actor_key"]) for name, df in acts.items()}
    for name, keys in actors.items():
        assert keys <= directory, name
    posters = Counter(e for _, events in simulate(org, until=END)
                      for e in events.loc[events["verb"] == "post", "actor_email"])
    busiest = [ps.email(e) for e, _ in posters.most_common(5)]
    for key in busiest:
        for name in PLATFORMS:
            assert key in actors[name], name
            posts = acts[name].loc[(acts[name]["actor_key"] == key) & (acts[name]["verb"] == "post")]
            assert len(posts) > 0, name
    everywhere = actors["slack"] & actors["teams"] & actors["engage"]
    assert len(everywhere) >= 0.5 * len(set().union(*actors.values()))

    # org MAU on the last day: each person once, whatever the number of platforms
    expected = set().union(*actors.values())
    mau = _query(engine, "select mau, headcount from mart_engagement_daily where activity_date = :d "
                         "and segment_type = 'org'", d=END)
    assert len(mau) == 1
    assert int(mau["mau"].iloc[0]) == len(expected)
    assert len(expected) < sum(len(k) for k in actors.values())  # the overlap is real: summing would double count
    assert int(mau["mau"].iloc[0]) <= int(mau["headcount"].iloc[0]) <= PEOPLE
    daily = _query(engine, "select activity_date, person_key, count(*) as n from fct_person_daily_activity "
                           "group by activity_date, person_key having count(*) > 1")
    assert daily.empty

    # the network: one node per person for the 28-day window (the people employed at its end, and the
    # departed people who still interacted in it), never one per platform identity
    assert published["network"]["rows"]
    net = _query(engine, "select person_key from fct_person_network where window_name = 'rolling_28d' "
                         "and window_end = :d", d=END)
    assert net["person_key"].is_unique
    nodes = set(net["person_key"])
    employed = org.people[(org.people["hire_date"] <= END)
                          & (org.people["termination_date"].isna() | (org.people["termination_date"] > END))]
    assert {ps.email(e) for e in employed["email"]} <= nodes <= directory
    assert len(nodes) <= PEOPLE
