"""The whole job on a small demo organisation: publication, idempotency, rejection and crash safety."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import jobs, lake, warehouse
from tests.conftest import SMALL_DEMO, demo_settings

START = SMALL_DEMO["start"]
FULL = jobs.Interval(START, START + dt.timedelta(days=SMALL_DEMO["days"] - 1))
MARTS = ("mart_engagement_daily", "fct_person_daily_activity", "int_interactions")


def snapshot(engine) -> dict[str, pd.DataFrame]:
    out = {}
    for table in MARTS + ("lake_activities",):
        df = warehouse.read_frame(engine, f"select * from {table}")
        out[table] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def assert_same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


@pytest.fixture
def published(tmp_path):
    settings = demo_settings(tmp_path)
    engine = warehouse.make_engine(settings.warehouse_url)
    report = jobs.run(settings, FULL, engine=engine)
    yield settings, engine, report
    engine.dispose()


def test_demo_run_publishes_marts_with_suppression(published):
    settings, engine, report = published
    assert report["sources"]["demo"]["validate"]["blocking_failures"] == 0
    mart = warehouse.read_frame(engine, "select * from mart_engagement_daily")
    assert set(mart["segment_type"]) == {"org", "department", "location", "level", "leader", "tenure_band"}
    org = mart[mart["segment_type"] == "org"].set_index("activity_date")
    last = org.loc[FULL.end]
    assert 0 < last["dau"] <= last["wau"] <= last["mau"] <= last["headcount"]
    # Internal Audit has 4 people: every figure is suppressed
    audit = mart[(mart["segment_type"] == "department") & (mart["segment_value"] == "Internal Audit")]
    assert len(audit) == FULL.days.__len__()
    assert audit["suppressed"].all()
    assert audit[["headcount", "dau", "mau", "participation_rate"]].isna().all().all()
    visible = mart[~mart["suppressed"]]
    assert (visible["headcount"] >= settings.privacy.min_group_size).all()


def test_mau_matches_an_independent_count_from_the_lake(published):
    settings, engine, _ = published
    acts = pd.concat(pq.read_table(f).to_pandas() for f in
                     (settings.canonical_dir / "activities" / "source=demo").glob("date=*/part-0.parquet"))
    acts["day"] = acts["occurred_at"].dt.date
    day = FULL.end
    window = acts[(acts["day"] > day - dt.timedelta(days=28)) & (acts["day"] <= day)]
    people = warehouse.read_frame(engine, "select person_key from stg_people")
    expected_mau = window[window["actor_key"].isin(people["person_key"])]["actor_key"].nunique()
    expected_dau = acts[acts["day"] == day]["actor_key"].nunique()
    got = warehouse.read_frame(engine, "select dau, mau from mart_engagement_daily where segment_type = 'org' "
                                       "and activity_date = :d", {"d": day})
    assert got.loc[0, "mau"] == expected_mau
    assert got.loc[0, "dau"] == expected_dau


def test_rerun_of_the_same_interval_gives_the_same_tables(published):
    settings, engine, _ = published
    before = snapshot(engine)
    jobs.run(settings, FULL, engine=engine)
    assert_same(before, snapshot(engine))


def test_daily_runs_give_the_same_tables_as_one_batch(tmp_path, published):
    settings, engine, _ = published
    daily = demo_settings(tmp_path / "daily")
    daily_engine = warehouse.make_engine(daily.warehouse_url)
    jobs.run(daily, jobs.Interval(FULL.start, FULL.end - dt.timedelta(days=3)), engine=daily_engine)
    for d in lake.days_between(FULL.end - dt.timedelta(days=2), FULL.end):
        jobs.run(daily, jobs.Interval(d, d), engine=daily_engine)
    a, b = snapshot(engine), snapshot(daily_engine)
    # the int_person_segments tenure band is as of each run's end date, so compare the last days only
    last = FULL.end - dt.timedelta(days=2)
    for name, col in (("mart_engagement_daily", "activity_date"), ("fct_person_daily_activity", "activity_date"),
                      ("int_interactions", "activity_date"), ("lake_activities", "activity_date")):
        x = a[name][a[name][col] >= last].reset_index(drop=True)
        y = b[name][b[name][col] >= last].reset_index(drop=True)
        pd.testing.assert_frame_equal(x, y, check_dtype=False, obj=name)
    daily_engine.dispose()


def _corrupt_raw(settings, day, mutate) -> None:
    f = lake.raw_dir(settings.lake_dir, "demo", "activities") / f"date={day}" / "part-0.parquet"
    df = pq.read_table(f).to_pandas()
    pq.write_table(pa.Table.from_pandas(mutate(df), preserve_index=False), f)


@pytest.mark.parametrize("mutation, expected", [
    (lambda df: pd.concat([df, df.iloc[[0]]]), "expect_compound_columns_to_be_unique"),
    # one actor outside the directory is only counted (a warning); most of them is a contract breach
    (lambda df: df.assign(actor_key=df["actor_key"].where(df.index % 4 == 0, "ffffffffffff" + df.index.astype(str))),
     "people_coverage: expect_column_values_to_be_between on column 'unknown_actor_share'"),
])
def test_bad_batch_is_quarantined_and_published_tables_are_unchanged(published, mutation, expected):
    settings, engine, _ = published
    before = snapshot(engine)
    day = FULL.end
    interval = jobs.Interval(day, day)
    jobs.extract(settings, "demo", interval)
    _corrupt_raw(settings, day, mutation)
    jobs.stage(settings, "demo", interval)
    with pytest.raises(jobs.BatchRejected) as err:
        jobs.validate(settings, "demo", interval, engine=engine)
    message = str(err.value)
    assert expected in message and "quarantined" in message and "demo/" in message
    quarantined = list((settings.quarantine_dir / "batches" / "source=demo").glob("batch=*/*/REJECTED.txt"))
    assert len(quarantined) == 1 and expected in quarantined[0].read_text()
    assert (quarantined[0].parent / "activities.parquet").exists()  # the evidence is kept, nothing lost
    results = warehouse.read_frame(engine, "select * from dq_validation_results where success = false "
                                           "and severity = 'blocking'")
    assert len(results) >= 1
    assert_same(before, snapshot(engine))


@pytest.mark.parametrize("where", ["dbt", "publication"])
def test_crash_midway_through_publish_leaves_published_tables_as_they_were(published, monkeypatch, where):
    """A crash during dbt's build (after mart_engagement_daily was built into the build schema) or
    inside the publication transaction (after other marts were refreshed) leaves the published marts
    exactly as they were."""
    from pipelines import publication, transform

    settings, engine, _ = published
    before = snapshot(engine)
    if where == "dbt":
        real_build = transform.build

        def build(*args, on_node=None, **kwargs):
            def node(name, status):
                if name == "mart_engagement_daily":
                    raise RuntimeError("simulated crash")

            return real_build(*args, on_node=node, **kwargs)

        monkeypatch.setattr(transform, "build", build)
    else:
        real_refresh = publication.refresh_range
        refreshed = []

        def refresh(conn, schemas, name, *args):
            if name == "mart_engagement_daily":
                assert refreshed, "other marts are refreshed first in this transaction"
                raise RuntimeError("simulated crash")
            refreshed.append(name)
            return real_refresh(conn, schemas, name, *args)

        monkeypatch.setattr(publication, "refresh_range", refresh)
    interval = jobs.Interval(FULL.end - dt.timedelta(days=5), FULL.end)
    with pytest.raises(RuntimeError, match="simulated crash"):
        jobs.publish(settings, interval, engine=engine, source_names=["demo"])
    assert_same(before, snapshot(engine))


def test_malformed_records_are_quarantined_with_counts_and_the_rest_published(published):
    settings, engine, _ = published
    day = FULL.end
    interval = jobs.Interval(day, day)
    jobs.extract(settings, "demo", interval)

    def add_bad(df):
        bad = df.iloc[:2].copy()
        bad["event_id"] = ["bad-1", "bad-2"]
        bad["verb"] = ["like", "post"]
        bad.loc[bad.index[1], "actor_key"] = None
        return pd.concat([df, bad])

    _corrupt_raw(settings, day, add_bad)
    summary = jobs.stage(settings, "demo", interval)
    assert summary["quarantined"] == {"unknown verb": 1, "missing actor_key": 1}
    jobs.validate(settings, "demo", interval, engine=engine)
    jobs.land(settings, "demo", interval)
    jobs.publish(settings, interval, engine=engine)
    ids = warehouse.read_frame(engine, "select event_id from lake_activities where event_id like 'bad-%'")
    assert ids.empty
    reasons = list((settings.quarantine_dir / "records").rglob("reasons.json"))
    assert len(reasons) == 1


def test_a_daily_run_after_the_network_stage_publishes_and_reads_influence(published):
    from pipelines.network_stage import run_network

    settings, engine, _ = published
    # the influence of a person-month is the month snapshot's pagerank: the network stage of May's last
    # day publishes the correlations again with it, in its own transaction
    network = run_network(settings, dt.date(2026, 5, 31), engine=engine, rolling=False)
    assert network["rows"]["fct_person_network"] > 0 and "mart_impact_correlation" in network["rows"]
    corr = warehouse.read_frame(engine, "select distinct engagement_measure from mart_impact_correlation")
    assert "influence" in set(corr["engagement_measure"])
    # the next publish reads the published month snapshots into the impact metrics
    jobs.publish(settings, jobs.Interval(FULL.end, FULL.end), engine=engine)
    corr = warehouse.read_frame(engine, "select distinct engagement_measure from mart_impact_correlation")
    assert "influence" in set(corr["engagement_measure"])
