"""The impact tables in the pipeline, on the demo organisation: influence is the month's pagerank, read from
the network snapshot of the same run (the network stage publishes the correlations again); departments
are as of the month and people without one are not a department; only the demo has an intervention."""

from __future__ import annotations  # noqa: I001

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats as sps

from pipelines import jobs, warehouse
from pipelines.config import Settings, SourceConfig
from pipelines.metrics import compute_python_metrics
from pipelines.metrics.config import load_impact_config

from conftest import demo_settings, frame  # noqa: I001  (pipelines must be imported first)

START = dt.date(2026, 5, 1)
DAYS = 61  # May and June: two month snapshots
MAY = dt.date(2026, 5, 1)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, sa.Engine, jobs.Interval]:
    """A run as `esn run` does it: publish, then the network stage over the interval."""
    from pipelines.network_stage import run_network_range

    settings = demo_settings(tmp_path_factory.mktemp("impact"), 300, DAYS)
    interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, interval, engine=engine)
    run_network_range(settings, interval.start, interval.end, engine=engine)
    return settings, engine, interval


def _lake_outcomes(settings: Settings) -> pd.DataFrame:
    files = sorted((Path(settings.lake_dir) / "outcomes").glob("*.parquet"))
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    df["period"] = pd.to_datetime(df["period"]).dt.date
    return df


def _month_pagerank(engine: sa.Engine) -> pd.DataFrame:
    pr = frame(engine, "select person_key, window_start, pagerank from fct_person_network where window_name = 'month'")
    return pr.assign(period=pd.to_datetime(pr["window_start"]).dt.date)[["person_key", "period", "pagerank"]]


def _used_months(engine: sa.Engine) -> pd.DataFrame:
    df = frame(engine, "select person_key, cast(date_trunc('month', activity_date) as date) as period "
                       "from fct_person_daily_activity union select person_key, "
                       "cast(date_trunc('month', as_of_date) as date) from fct_person_usage_daily")
    return df.assign(period=pd.to_datetime(df["period"]).dt.date).drop_duplicates()


def test_influence_is_the_months_pagerank(run) -> None:
    from pipelines.metrics import _person_months

    settings, engine, interval = run
    pr = _month_pagerank(engine)
    assert set(pr["period"]) == {dt.date(2026, 5, 1), dt.date(2026, 6, 1)}
    with engine.connect() as conn:
        pm = _person_months(conn, interval.end)
    both = pm.merge(pr, on=["person_key", "period"], how="inner")
    assert len(both) > 100 and np.allclose(both["influence"], both["pagerank"])
    # a person's two months differ: the month's own figure, not the largest over every window and date
    wide = pr.pivot(index="person_key", columns="period", values="pagerank").dropna()
    assert (wide.iloc[:, 0] != wide.iloc[:, 1]).mean() > 0.5
    # months without a snapshot have no influence (none here: both months have one)
    assert pm.loc[~pm.set_index(["person_key", "period"]).index.isin(both.set_index(["person_key", "period"]).index),
                  "influence"].isna().all()


def _sees_the_runs_snapshot(settings: Settings, engine: sa.Engine, interval: jobs.Interval) -> None:
    corr = frame(engine, "select * from mart_impact_correlation where engagement_measure = 'influence' "
                         "and outcome = 'sales_attainment' order by lag_months")
    assert list(corr["lag_months"]) == [0, 1]
    # lag 0: the May and June outcomes against the May and June snapshots this run's network stage wrote,
    # over the person-months the correlations use (with activity or a usage segment in the month)
    out = _lake_outcomes(settings)
    out = out[out["outcome"] == "sales_attainment"].merge(_used_months(engine), on=["person_key", "period"])
    joined = out.merge(_month_pagerank(engine), on=["person_key", "period"])
    rho = sps.spearmanr(joined["pagerank"], joined["value"]).statistic
    row = corr.iloc[0]
    assert row["n"] == len(joined) > 20 and not row["suppressed"]
    assert row["rho"] == pytest.approx(rho)
    # lag 1: May's influence against June's outcome
    may = _month_pagerank(engine)
    may = may[may["period"] == dt.date(2026, 5, 1)].assign(period=dt.date(2026, 6, 1))
    lagged = _lake_outcomes(settings).query("outcome == 'sales_attainment'")
    used_may = _used_months(engine).query("period == @MAY").assign(period=dt.date(2026, 6, 1))
    lagged = lagged[lagged["period"] == dt.date(2026, 6, 1)].merge(used_may, on=["person_key", "period"]).merge(
        may, on=["person_key", "period"])
    assert corr.iloc[1]["n"] == len(lagged)
    assert corr.iloc[1]["rho"] == pytest.approx(sps.spearmanr(lagged["pagerank"], lagged["value"]).statistic)
    # a publication of the same data again publishes the same correlations (the influence is read from
    # the month snapshots, not from whichever windows happen to exist)
    before = frame(engine, "select * from mart_impact_correlation order by outcome, level, engagement_measure, "
                           "lag_months")
    jobs.publish(settings, interval, engine=engine)
    after = frame(engine, "select * from mart_impact_correlation order by outcome, level, engagement_measure, "
                          "lag_months")
    pd.testing.assert_frame_equal(before, after)


def test_impact_after_the_network_stage_sees_that_runs_snapshot(run) -> None:
    _sees_the_runs_snapshot(*run)


def test_impact_after_the_network_stage_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    from pipelines.network_stage import run_network_range
    from tests.conftest import demo_settings as settings_at

    settings = settings_at(tmp_path, pg_url, people=300, days=DAYS, start=START, seed=7)
    interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        jobs.run(settings, interval, engine=engine)
        run_network_range(settings, interval.start, interval.end, engine=engine)
        _sees_the_runs_snapshot(settings, engine, interval)
    finally:
        engine.dispose()


def test_departments_are_as_of_the_month_and_unknown_is_no_department(run) -> None:
    settings, engine, interval = run
    ev = frame(engine, "select * from mart_impact_engaged_vs_not where outcome = 'sales_attainment'")
    assert "Unknown" not in set(ev["segment_value"]) and "unknown" not in set(ev["segment_value"])
    # every Sales person-month with an outcome is in the Sales row, with activity in the month or not
    out = _lake_outcomes(settings)
    sales = ev[ev["segment_value"] == "Sales"].iloc[0]
    org = ev[ev["segment_type"] == "org"].iloc[0]
    assert org["n"] == len(out[out["outcome"] == "sales_attainment"])
    assert sales["suppressed"] or sales["n"] == org["n"]
    active = frame(engine, "select distinct person_key, cast(date_trunc('month', activity_date) as date) as period "
                           "from fct_person_daily_activity")
    active["period"] = pd.to_datetime(active["period"]).dt.date
    months = out[out["outcome"] == "sales_attainment"][["person_key", "period"]]
    inactive = len(months.merge(active, how="left", indicator=True).query("_merge == 'left_only'"))
    assert inactive > 0  # the case: Sales person-months without any activity


@pytest.mark.parametrize("backend", ["duck", "pg"])
def test_department_of_a_person_month_is_the_membership_of_that_month(backend, request) -> None:
    from pipelines.metrics import _departments

    engine = request.getfixturevalue(backend)
    members = pd.DataFrame([
        ("p1", "department", "Sales", dt.date(1900, 1, 1), dt.date(2026, 5, 31)),
        ("p1", "department", "Legal", dt.date(2026, 6, 1), dt.date(9999, 12, 31)),
        ("p2", "department", "unknown", dt.date(1900, 1, 1), dt.date(9999, 12, 31)),
        ("p4", "department", "Sales", dt.date(2026, 6, 20), dt.date(9999, 12, 31)),
        ("p5", "department", "Legal", dt.date(1900, 1, 1), dt.date(2026, 5, 10)),  # left the directory
        ("p5", "department", "unknown", dt.date(2026, 5, 11), dt.date(9999, 12, 31)),
        ("p1", "location", "Paris", dt.date(1900, 1, 1), dt.date(9999, 12, 31)),
    ], columns=["person_key", "segment_type", "segment_value", "valid_from", "valid_to"])
    with engine.begin() as conn:
        import pyarrow as pa

        conn.exec_driver_sql("create table int_segment_membership (person_key varchar, segment_type varchar, "
                             "segment_value varchar, valid_from date, valid_to date)")
        warehouse.insert_arrow(conn, "int_segment_membership", pa.Table.from_pandas(members, preserve_index=False))
        pairs = pd.DataFrame({"person_key": ["p1", "p1", "p2", "p3", "p4", "p5", "p5"],
                              "period": [dt.date(2026, 5, 1), dt.date(2026, 6, 1), dt.date(2026, 5, 1),
                                         dt.date(2026, 5, 1), dt.date(2026, 6, 1), dt.date(2026, 5, 1),
                                         dt.date(2026, 6, 1)]})
        # June is as of the run's end (June 15): p4 joins Sales only on June 20; p5 leaves Legal on May 10:
        # Legal in May (the department they left from), none in June
        got = _departments(conn, pairs, dt.date(2026, 6, 15)).sort_values(["person_key", "period"])
    assert [d if isinstance(d, str) else None for d in got["department"]] == ["Sales", "Legal", None, None, None,
                                                                              "Legal", None]


def test_a_production_configuration_publishes_no_intervention(run) -> None:
    settings, engine, interval = run
    # the warehouse seen as an organisation's (not every source is the demo), with the shipped defaults:
    # no intervention, so no row
    production = settings.model_copy(update={"sources": [*settings.sources,
                                                         SourceConfig(name="slack", kind="slack")]})
    assert load_impact_config().interventions == []
    with engine.begin() as conn:
        compute_python_metrics(conn, production, interval)
    assert frame(engine, "select count(*) as n from mart_impact_its")["n"].iloc[0] == 0
    # the demo organisation: its own campaign, on the first of the month a third into its period
    # (May 1 + 61 // 3 days = May 21: May 1; the CLI's 184-day demo: July 1)
    with engine.begin() as conn:
        compute_python_metrics(conn, settings, interval)
    its = frame(engine, "select * from mart_impact_its")
    assert list(its["intervention"]) == ["summer-campaign"]
    assert pd.Timestamp(its["intervention_date"].iloc[0]).date() == dt.date(2026, 5, 1)
