"""End-to-end on a small demo organisation: planted patterns found by the alerts, daily runs equal to one
batch, every published mart column in the catalogue, impact tables non-empty."""

from __future__ import annotations  # noqa: I001

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.catalogue import load_entries
from pipelines.metrics import compute_python_metrics

from conftest import demo_settings, frame  # noqa: I001  (pipelines must be imported first)

START = dt.date(2026, 5, 1)
DAYS = 184
PEOPLE = 600


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    from pipelines.metrics.thresholds import load_thresholds

    original = jobs.model_params
    jobs.model_params = lambda s, i: {**original(s, i), **load_thresholds()}  # type: ignore[assignment]
    try:
        tmp = tmp_path_factory.mktemp("demo")
        settings = demo_settings(tmp, PEOPLE, DAYS)
        interval = jobs.Interval(START, START + dt.timedelta(days=DAYS - 1))
        engine = warehouse.make_engine(settings.warehouse_url)
        jobs.run(settings, interval, engine=engine)
        with engine.begin() as conn:
            compute_python_metrics(conn, settings, interval)
    finally:
        jobs.model_params = original  # type: ignore[assignment]
    return engine


def test_alerts_name_sales_and_legal_and_no_other_department(demo_engine: sa.Engine) -> None:
    end = START + dt.timedelta(days=DAYS - 1)
    alerts = frame(demo_engine, "select * from mart_alerts where alert_date > :s and segment_type = 'department'",
                   s=end - dt.timedelta(days=28))
    decline = set(alerts.loc[alerts.alert_type == "decline_after_enthusiasm", "segment_value"])
    leaders = set(alerts.loc[alerts.alert_type == "absent_leaders", "segment_value"])
    assert decline == {"Sales"}
    assert leaders == {"Legal", "Sales"}
    assert not set(alerts.loc[alerts.alert_type == "single_department_adoption", "segment_value"])
    assert set(alerts.loc[alerts.alert_type == "silent_segment", "segment_value"]) == {"Legal"}
    # over the whole run, the adoption alerts (decline, silence) never name another department
    every = frame(demo_engine, "select alert_type, segment_value from mart_alerts where segment_type = 'department' "
                               "and alert_type in ('decline_after_enthusiasm', 'silent_segment')")
    assert set(every.loc[every.alert_type == "silent_segment", "segment_value"]) == {"Legal"}
    assert set(every.loc[every.alert_type == "decline_after_enthusiasm", "segment_value"]) == {"Sales"}
    row = alerts[alerts.alert_type == "decline_after_enthusiasm"].iloc[-1]
    assert "since its peak on" in row.evidence and row.severity in ("high", "medium", "low")
    # rising unanswered questions need two consecutive weekly checks: no single-day noise
    rising = alerts[alerts.alert_type == "rising_unanswered_questions"]
    assert rising.empty or (rising.segment_type != "container").all()


def test_alerts_have_exactly_the_email_columns(demo_engine: sa.Engine) -> None:
    cols = list(frame(demo_engine, "select * from mart_alerts limit 0").columns)
    assert cols == ["alert_date", "alert_type", "severity", "segment_type", "segment_value", "metric",
                    "observed", "threshold", "evidence"]


def test_small_department_is_suppressed_everywhere(demo_engine: sa.Engine) -> None:
    df = frame(demo_engine, "select suppressed, mau from mart_engagement_daily where segment_value = 'Internal Audit'")
    assert df.suppressed.all() and df.mau.isna().all()


def test_every_published_column_is_catalogued_and_entries_exist(demo_engine: sa.Engine) -> None:
    entries = load_entries()
    names = {e.name for e in entries}
    cols = frame(demo_engine, "select table_name, column_name from information_schema.columns "
                 "where table_name like 'mart%' or table_name like 'fct%'")
    published = cols[cols.table_name.str.startswith("mart_") & ~cols.table_name.str.startswith("mart_network")
                     & ~cols.table_name.str.endswith("__build")]
    missing = sorted(f"{t}.{c}" for t, c in published.itertuples(index=False) if f"{t}.{c}" not in names)
    assert not missing, f"published columns without a catalogue entry: {missing}"
    existing = {f"{t}.{c}" for t, c in cols.itertuples(index=False)}
    # shared column templates apply only where present; section 3 tables come from the network job
    dangling = [e.name for e in entries if e.section != "3" and not e.shared and e.name not in existing]
    assert not dangling, f"catalogue entries naming a missing table or column: {dangling}"


def test_impact_tables_say_association_with_n_and_interval(demo_engine: sa.Engine) -> None:
    for table in ("mart_impact_engaged_vs_not", "mart_impact_correlation", "mart_esn_scorecard"):
        df = frame(demo_engine, f"select * from {table}")
        assert len(df) and (df.interpretation == "association, not causation").all()
        ok = df[~df.suppressed]
        assert len(ok) and ok["n"].notna().all() and ok["ci_low"].notna().any()
    corr = frame(demo_engine, "select * from mart_impact_correlation where outcome = 'sales_attainment' "
                 "and engagement_measure = 'actions' and lag_months = 0")
    assert corr.rho.iloc[0] > 0 and corr.ci_low.iloc[0] < corr.rho.iloc[0] < corr.ci_high.iloc[0]


def _tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    insp = sa.inspect(engine)
    out = {}
    for t in sorted(insp.get_table_names()):
        if t.startswith(("mart_", "fct_", "int_")) and not t.endswith("__build"):
            df = frame(engine, f"select * from {t}")
            out[t] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def test_daily_runs_equal_one_batch(tmp_path: Path, thresholds_in_params: None) -> None:
    days, tail = 70, 3
    end = START + dt.timedelta(days=days - 1)
    batch = demo_settings(tmp_path / "batch", 300, days)
    jobs.run(batch, jobs.Interval(START, end), engine=(e1 := warehouse.make_engine(batch.warehouse_url)))
    daily = demo_settings(tmp_path / "daily", 300, days)
    e2 = warehouse.make_engine(daily.warehouse_url)
    jobs.run(daily, jobs.Interval(START, end - dt.timedelta(days=tail)), engine=e2)
    for i in range(tail - 1, -1, -1):
        day = end - dt.timedelta(days=i)
        jobs.run(daily, jobs.Interval(day, day), engine=e2)
    a, b = _tables(e1), _tables(e2)
    assert set(a) == set(b)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)
