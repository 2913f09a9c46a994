"""HR history: segment membership is point in time. A reorganisation (a person moves from one department to
another, a person leaves the directory) changes the figures from the day it takes effect and never the
days before it, in table-materialised and incremental marts alike; a day-by-day run equals a full recompute.

On the hand organisation (tests/metrics/hand_data.py, both engines) and on the demo organisation (a
Sales person moves to Finance and an Engineering person leaves the directory on MOVE, with daily
snapshots before and after)."""

from __future__ import annotations  # noqa: I001

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from pipelines import canonical, dbt_project, jobs, lake, warehouse
from pipelines.config import SourceConfig, load_settings
from pipelines.network_stage import run_network
from pipelines.sources import demo

from conftest import demo_settings, frame, load_lake, run_models  # noqa: I001  (pipelines must be imported first)
from hand_data import D1, D2, D3, D4, RUN_START, SHORT_ACTIVITIES, SHORT_CONTAINERS, SHORT_PEOPLE

DAY = dt.timedelta(days=1)


# --------------------------------------------------------------------------------- the hand organisation
def _hand_snapshot(moved: bool) -> pd.DataFrame:
    """The directory of the hand organisation; `moved`: d has moved from Sales to Legal and g (Legal,
    who never acts) is no longer listed."""
    people = SHORT_PEOPLE.drop(columns=["snapshot_date"])
    if moved:
        people = people[people.person_key != "g"].copy()
        people.loc[people.person_key == "d", "department"] = "Legal"
    return canonical.merge_people({"hr": people})


def _load_hand(engine: sa.Engine, snapshots: list[tuple[dt.date, pd.DataFrame]], until: dt.date) -> None:
    """The warehouse's lake as a publish up to `until` loads it: the activities landed by then, the
    people and their history from the snapshots landed by then."""
    people, history = canonical.people_over_time([(d, s, None) for d, s in snapshots if d <= until])
    acts = SHORT_ACTIVITIES[SHORT_ACTIVITIES.activity_date <= until]
    load_lake(engine, acts, people.assign(snapshot_date=until), SHORT_CONTAINERS)
    with engine.begin() as conn:
        warehouse.replace_table(conn, "lake_people_history", pa.Table.from_pandas(history, preserve_index=False))


def _published(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    with engine.connect() as conn:
        names = [m.name for m in dbt_project.discover_models() if warehouse.table_exists(conn, m.name)]
    out = {}
    for name in names:
        df = frame(engine, f"select * from {name}")
        out[name] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


@pytest.mark.parametrize("engine_name", ["duck", "pg"])
def test_a_move_on_the_hand_organisation_counts_from_its_day_and_a_daily_run_equals_a_recompute(
        engine_name: str, request: pytest.FixtureRequest) -> None:
    engine: sa.Engine = request.getfixturevalue(engine_name)
    snapshots = [(D1, _hand_snapshot(False)), (D3, _hand_snapshot(True))]
    # day by day: the run of D1..D2 sees the first snapshot only, the runs of D3 and D4 both
    _load_hand(engine, snapshots, D2)
    run_models(engine, RUN_START, D2)
    for day in (D3, D4):
        _load_hand(engine, snapshots, day)
        run_models(engine, day, day)
    daily = _published(engine)

    membership = frame(engine, "select valid_from, valid_to, segment_value from int_segment_membership "
                               "where person_key = 'd' and segment_type = 'department' order by valid_from")
    assert membership.segment_value.tolist() == ["Sales", "Legal"]
    assert pd.to_datetime(membership.valid_to).dt.date.iloc[0] == D3 - DAY
    assert pd.to_datetime(membership.valid_from).dt.date.iloc[1] == D3
    headcount = frame(engine, "select as_of_date, segment_value, headcount from int_segment_headcount_daily "
                              "where segment_type = 'department' and as_of_date in (:a, :b)", a=D2, b=D3)
    headcount = {(pd.Timestamp(r.as_of_date).date(), r.segment_value): r.headcount for r in headcount.itertuples()}
    # D2: Sales c, d; Legal e, g. D3: d is in Legal, g has left the directory (and is counted nowhere)
    assert (headcount[(D2, "Sales")], headcount[(D2, "Legal")]) == (2, 2)
    assert (headcount[(D3, "Sales")], headcount[(D3, "Legal")]) == (1, 2)
    org = frame(engine, "select as_of_date, headcount from int_segment_headcount_daily where segment_type = 'org' "
                        "and as_of_date in (:a, :b) order by as_of_date", a=D2, b=D3)
    assert org.headcount.tolist() == [6, 6]  # f joins on D3 (hired 2026-03-04), g leaves the directory
    dau = frame(engine, "select activity_date, segment_value, dau from mart_engagement_daily "
                        "where segment_type = 'department' and segment_value in ('Sales', 'Legal') "
                        "and activity_date in (:a, :b)", a=D1, b=D3)
    dau = {(pd.Timestamp(r.activity_date).date(), r.segment_value): r.dau for r in dau.itertuples()}
    # D1: c (p2) and d (x1) act, both in Sales; D3: d's p4 counts in Legal, c's r3 in Sales
    assert (dau[(D1, "Sales")], dau[(D1, "Legal")]) == (2, 0)
    assert (dau[(D3, "Sales")], dau[(D3, "Legal")]) == (1, 1)
    people = frame(engine, "select person_key, termination_date, delisted_on from stg_people where person_key = 'g'")
    assert pd.Timestamp(people.termination_date.iloc[0]).date() == D3 == pd.Timestamp(people.delisted_on.iloc[0]).date()

    # a full recompute of the whole range from the same lake gives the same tables
    run_models(engine, RUN_START, D4)
    full = _published(engine)
    assert set(full) == set(daily)
    for name in full:
        pd.testing.assert_frame_equal(full[name], daily[name], check_dtype=False, obj=name)


# --------------------------------------------------------------------------------- the demo organisation
START, MOVE = dt.date(2026, 5, 1), dt.date(2026, 6, 1)
END = MOVE + DAY
PEOPLE, DAYS = 200, (END - START).days + 1
#: the columns that date a row of a published table (its day, week or month)
DATE_COLUMNS = ("activity_date", "as_of_date", "alert_date", "month_start", "cohort_month", "activity_month",
                "thread_date", "window_end", "period_start")
#: tables without a day: segment structures as of the end, the impact tables (aggregates over every
#: month to the end of the run) and mart_topic_expertise (the 365 days up to the run's end, rebuilt whole:
#: `measured_through`)
UNDATED = {"int_segment_membership", "int_people_history", "int_person_segments", "mart_impact_correlation",
           "mart_impact_engaged_vs_not", "mart_impact_its", "mart_topic_expertise"}


def _run_daily(settings: Any, engine: sa.Engine) -> None:
    jobs.run(settings, jobs.Interval(START, MOVE - DAY), engine=engine)
    for day in (MOVE, END):
        jobs.run(settings, jobs.Interval(day, day), engine=engine)


def _tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    out = {}
    with engine.connect() as conn:
        names = [t for t in sa.inspect(conn).get_table_names()
                 if t.startswith(("mart_", "fct_", "int_")) and not t.endswith("__build")]
    for t in sorted(names):
        df = frame(engine, f"select * from {t}")
        out[t] = df.sort_values(list(df.columns)).reset_index(drop=True)
    return out


def _before(df: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    mask = pd.Series(True, index=df.index)
    for col in DATE_COLUMNS:
        if col in df.columns:
            mask &= pd.to_datetime(df[col]).dt.date < day
    return df[mask].reset_index(drop=True)


@pytest.fixture(scope="module")
def reorganised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Three daily-run warehouses of one demo organisation: `baseline` (no HR change), `changed` (on MOVE
    the directory moves one Sales person to Finance and no longer lists one Engineering person) and
    `recomputed` (one publish of the whole range from the lake of `changed`), each with the network
    windows ending on MOVE - 1 and on END."""
    from pipelines.metrics.thresholds import load_thresholds

    tmp = tmp_path_factory.mktemp("hr")
    with pytest.MonkeyPatch.context() as mp:
        original_params = jobs.model_params
        mp.setattr(jobs, "model_params", lambda s, i: {**original_params(s, i), **load_thresholds()})
        base = demo_settings(tmp / "baseline", PEOPLE, DAYS)
        e_base = warehouse.make_engine(base.warehouse_url)
        _run_daily(base, e_base)
        pick = ("select p.person_key from stg_people p join fct_person_daily_activity a on a.person_key = p.person_key "
                "where p.department = :dept and not p.is_leader and p.termination_date is null "
                "and p.hire_date < :start and a.activity_date between :move and :end "
                "group by p.person_key order by count(*) desc, p.person_key limit 1")
        mover = frame(e_base, pick, dept="Sales", start=START, move=MOVE, end=END).person_key.iloc[0]
        leaver = frame(e_base, pick, dept="Engineering", start=START, move=MOVE, end=END).person_key.iloc[0]

        original_extract = demo.extract

        def reorganising_extract(ctx: Any, start: dt.date, end: dt.date) -> Any:
            report = original_extract(ctx, start, end)
            if end >= MOVE:  # the HR directory landed from MOVE on shows the reorganisation
                base_dir = lake.raw_dir(ctx.lake_dir, ctx.source.name, "people")
                people = lake.read_partition(base_dir, end).to_pandas()
                people.loc[people.person_key == mover, "department"] = "Finance"
                people = people[people.person_key != leaver]
                lake.write_partition(base_dir, end, pa.Table.from_pandas(people, preserve_index=False))
            return report

        mp.setattr(demo, "extract", reorganising_extract)
        changed = demo_settings(tmp / "changed", PEOPLE, DAYS)
        e_changed = warehouse.make_engine(changed.warehouse_url)
        _run_daily(changed, e_changed)
        recompute = load_settings(None, lake_dir=tmp / "changed" / "lake",
                                  warehouse_url=f"duckdb:///{tmp / 'recomputed.duckdb'}",
                                  sources=[SourceConfig(name="demo", kind="demo", options={
                                      "people": PEOPLE, "days": DAYS, "start": START, "seed": 7})])
        e_recomputed = warehouse.make_engine(recompute.warehouse_url)
        jobs.publish(recompute, jobs.Interval(START, END), engine=e_recomputed)
        # the network windows ending on the last day before the move (a month end) and on the last day
        for settings, engine in ((base, e_base), (changed, e_changed), (recompute, e_recomputed)):
            for day in (MOVE - DAY, END):
                run_network(settings, day, engine=engine)
    yield {"baseline": _tables(e_base), "changed": _tables(e_changed), "recomputed": _tables(e_recomputed),
           "engines": (e_base, e_changed, e_recomputed), "mover": mover, "leaver": leaver}
    for e in (e_base, e_changed, e_recomputed):
        e.dispose()


def test_a_reorganisation_leaves_every_published_figure_of_the_days_before_it_unchanged(
        reorganised: dict[str, Any]) -> None:
    base, changed = reorganised["baseline"], reorganised["changed"]
    assert set(base) == set(changed)
    dated = {t for t, df in base.items() if any(c in df.columns for c in DATE_COLUMNS)}
    segmented = {t for t, df in base.items() if "segment_type" in df.columns or "department" in df.columns}
    assert segmented - dated <= UNDATED, f"segment tables without a date column: {sorted(segmented - dated - UNDATED)}"
    assert {"mart_cohort_retention", "fct_knowledge_brokers", "mart_engagement_daily", "mart_leader_engagement",
            "mart_department_concentration", "int_segment_headcount_daily"} <= dated
    for name in sorted(dated):
        pd.testing.assert_frame_equal(_before(base[name], MOVE), _before(changed[name], MOVE),
                                      check_dtype=False, obj=f"{name} before {MOVE}")


def test_after_the_move_the_person_counts_in_finance_and_the_leaver_nowhere(reorganised: dict[str, Any]) -> None:
    def headcount(tables: dict[str, pd.DataFrame], day: dt.date) -> dict[str, int]:
        h = tables["int_segment_headcount_daily"]
        h = h[(pd.to_datetime(h.as_of_date).dt.date == day) & h.segment_type.isin(["department", "org"])]
        return dict(zip(h.segment_value, h.headcount.astype(int), strict=True))

    for day in (MOVE, END):
        base, changed = headcount(reorganised["baseline"], day), headcount(reorganised["changed"], day)
        assert changed["Finance"] == base["Finance"] + 1
        assert changed["Sales"] == base["Sales"] - 1
        assert changed["Engineering"] == base["Engineering"] - 1
        assert changed["all"] == base["all"] - 1
        assert {k: v for k, v in changed.items() if k not in ("Finance", "Sales", "Engineering", "all")} == \
            {k: v for k, v in base.items() if k not in ("Finance", "Sales", "Engineering", "all")}
    # the mover acts on MOVE or END: the published 28-day active users of Finance gain them, Sales' keep them
    # (active in Sales within the window before the move)
    def mau(tables: dict[str, pd.DataFrame], dept: str) -> int:
        m = tables["mart_engagement_daily"]
        row = m[(pd.to_datetime(m.activity_date).dt.date == END) & (m.segment_type == "department")
                & (m.segment_value == dept)]
        assert not row.suppressed.iloc[0]
        return int(row.mau.iloc[0])

    assert mau(reorganised["changed"], "Finance") == mau(reorganised["baseline"], "Finance") + 1
    e_changed = reorganised["engines"][1]
    seen = frame(e_changed, "select segment_value from int_segment_membership where person_key = :k "
                            "and segment_type = 'department' and :d between valid_from and valid_to",
                 k=reorganised["mover"], d=END)
    assert seen.segment_value.tolist() == ["Finance"]
    gone = frame(e_changed, "select termination_date, delisted_on from stg_people where person_key = :k",
                 k=reorganised["leaver"])
    assert pd.Timestamp(gone.termination_date.iloc[0]).date() == MOVE == pd.Timestamp(gone.delisted_on.iloc[0]).date()


def test_a_full_recompute_equals_the_daily_runs_after_a_reorganisation(reorganised: dict[str, Any]) -> None:
    daily, full = reorganised["changed"], reorganised["recomputed"]
    assert set(daily) == set(full)
    for name in sorted(daily):
        pd.testing.assert_frame_equal(daily[name], full[name], check_dtype=False, obj=name)


def test_the_people_history_is_loaded_from_every_snapshot(reorganised: dict[str, Any]) -> None:
    e_changed = reorganised["engines"][1]
    history = frame(e_changed, "select * from lake_people_history where person_key = :k order by valid_from",
                    k=reorganised["mover"])
    assert history.department.tolist() == ["Sales", "Finance"]
    assert pd.Timestamp(history.valid_from.iloc[1]).date() == MOVE


def test_the_network_windows_take_each_department_as_of_their_end(reorganised: dict[str, Any]) -> None:
    person = reorganised["changed"]["fct_person_network"]
    mover = person[person.person_key == reorganised["mover"]]
    by_end = dict(zip(pd.to_datetime(mover.window_end).dt.date, mover.department, strict=False))
    assert by_end[MOVE - DAY] == "Sales" and by_end[END] == "Finance"
    # the leaver is in Engineering in the windows ending before they left; after it, their ties (they still
    # act) make them a node without a department, outside the directory
    leaver = person[person.person_key == reorganised["leaver"]]
    by_end = {d: (dept, bool(inside)) for d, dept, inside in zip(pd.to_datetime(leaver.window_end).dt.date,
                                                                  leaver.department, leaver.in_directory, strict=True)}
    assert by_end[MOVE - DAY] == ("Engineering", True)
    assert END not in by_end or (pd.isna(by_end[END][0]) and not by_end[END][1])
