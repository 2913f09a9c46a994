"""Section 4 (business impact), hand-computed on small frames passed to the pure functions that
compute_python_metrics publishes (the published tables are exactly these frames)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.metrics import impact, scorecard
from pipelines.metrics.config import Target

COVERED: set[str] = set()
M = dt.date(2026, 3, 1)


def _cover(table: str, frame: pd.DataFrame) -> None:
    COVERED.update(f"{table}.{c}" for c in frame.columns)


def _outcomes(values: dict[str, float], period: dt.date = M) -> pd.DataFrame:
    return pd.DataFrame([{"level": "person", "person_key": k, "department": None, "period": period,
                          "outcome": "sales", "value": v} for k, v in values.items()])


def test_engaged_vs_not_difference() -> None:
    # engaged (habitual/power at month end): p1..p5 with 10, 12, 14, 16, 18 (mean 14);
    # the others p6..p10 with 8, 9, 10, 11, 12 (mean 10) -> difference 4
    keys = [f"p{i}" for i in range(1, 11)]
    pm = pd.DataFrame({"person_key": keys, "period": M, "department": "Sales",
                       "usage_segment": ["habitual", "power", "habitual", "power", "habitual"] + ["novice"] * 4 + [None]})
    out = impact.engaged_vs_not(pm, _outcomes(dict(zip(keys, [10, 12, 14, 16, 18, 8, 9, 10, 11, 12], strict=True))),
                                min_group_size=5, engaged_segments=["power", "habitual"], samples=2000, seed=1)
    _cover("mart_impact_engaged_vs_not", out)
    org = out[out.segment_type == "org"].iloc[0]
    assert (org.n, org.n_engaged, org.n_not_engaged) == (10, 5, 5)
    assert (org.mean_engaged, org.mean_not_engaged, org.difference) == (14.0, 10.0, 4.0)
    assert org.ci_low < 4.0 < org.ci_high and org.ci_low > 0  # the groups do not overlap much
    assert org.engaged_definition.endswith("power/habitual") and not org.suppressed
    # with min_group_size 6 each group (5 people) is too small: numbers NULL
    small = impact.engaged_vs_not(pm, _outcomes(dict(zip(keys, range(10), strict=True))), min_group_size=6,
                                  engaged_segments=["power", "habitual"], samples=100)
    assert small.suppressed.all() and small.difference.isna().all()


def test_people_without_a_department_are_not_a_department() -> None:
    # Sales and Legal: 6 engaged and 6 not-engaged people each; 2 + 2 people without a department (NULL:
    # outside the HR directory), and 3 Sales people with an outcome but no activity row at all (not engaged,
    # their department from the month's membership, not from activity). No 'Unknown' department: the people
    # without one are in the organisation row only. Their 2 + 2 are what the org row holds beyond the
    # departments, fewer than min_group_size 5: one department more is hidden so that nobody is given back
    # by subtraction (org - Sales - Legal).
    rows, deps = [], []
    for dept, n in (("Sales", 6), ("Legal", 6), (None, 2)):
        for i in range(2 * n):
            key = f"{dept}-{i}"
            rows.append({"person_key": key, "period": M, "usage_segment": "habitual" if i < n else "novice"})
            deps.append({"person_key": key, "period": M, "department": dept})
    inactive = [f"Sales-inactive-{i}" for i in range(3)]
    deps += [{"person_key": k, "period": M, "department": "Sales"} for k in inactive]
    pm = pd.DataFrame(rows)
    values = {r["person_key"]: float(i % 7) for i, r in enumerate(rows)} | {k: 1.0 for k in inactive}
    out = impact.engaged_vs_not(pm, _outcomes(values), min_group_size=5, engaged_segments=["habitual"],
                                samples=200, departments=pd.DataFrame(deps))
    assert set(out.segment_value) == {"all", "Sales", "Legal"}
    by = out.set_index("segment_value")
    assert (by.loc["all", "n"], by.loc["all", "n_not_engaged"]) == (31, 17)
    sales_n = by.loc["Sales", "n"]
    assert by.loc["Sales", "suppressed"] or sales_n == 15  # the three inactive Sales people are Sales
    assert out[out.segment_type == "department"].suppressed.sum() == 1


def test_spearman_on_five_points_and_lag() -> None:
    # actions 1..5 against outcomes 2, 1, 4, 3, 5: rank differences d = -1, 1, -1, 1, 0, sum d^2 = 4,
    # rho = 1 - 6 * 4 / (5 * 24) = 0.8
    keys = [f"p{i}" for i in range(1, 6)]
    pm = pd.DataFrame({"person_key": keys, "period": M, "actions": [1.0, 2, 3, 4, 5]})
    out = impact.correlations(pm, pd.DataFrame(), _outcomes(dict(zip(keys, [2, 1, 4, 3, 5], strict=True))),
                              min_group_size=5, measures=["actions"])
    _cover("mart_impact_correlation", out)
    row = out[(out.lag_months == 0)].iloc[0]
    assert row.level == "person" and row.engagement_measure == "actions" and row.n == 5
    assert row.rho == pytest.approx(0.8)
    # Fisher z interval: tanh(atanh(.8) -/+ 1.96 * 1.06 / sqrt(2))
    half = 1.959964 * 1.06 / np.sqrt(2)
    assert (row.ci_low, row.ci_high) == pytest.approx((np.tanh(np.arctanh(0.8) - half), np.tanh(np.arctanh(0.8) + half)),
                                                      abs=1e-5)
    assert 0 < row.p_value < 1
    # lagged: engagement in February against March outcomes -> the same five pairs, lag_months 1
    lagged = impact.correlations(pm.assign(period=dt.date(2026, 2, 1)), pd.DataFrame(),
                                 _outcomes(dict(zip(keys, [2, 1, 4, 3, 5], strict=True))), min_group_size=5,
                                 measures=["actions"])
    assert list(lagged.lag_months) == [1] and lagged.rho.iloc[0] == pytest.approx(0.8)


def test_interrupted_time_series_recovers_a_known_change() -> None:
    # y = 100 + 0.5 t before day 0; from day 0 on, 10 higher and 1.5 a day steeper (slope change 1/day).
    # The weekly series (weeks from the date) takes wau on each week's last day, t = 7 w + 6:
    # y = 103 + 3.5 w + (w >= 0) (16 + 7 w): a jump of 10 + 6 = 16 at week 0 and a slope change of 7 a week
    start = dt.date(2026, 6, 1)
    days = [start + dt.timedelta(days=i) for i in range(-56, 56)]
    t = np.arange(-56, 56)
    y = 100 + 0.5 * t + np.where(t >= 0, 10 + 1.0 * t, 0) + np.where((t // 7) % 2 == 0, 0.3, -0.3)  # tiny noise
    daily = pd.DataFrame({"activity_date": days, "wau": y})
    out = impact.interrupted_series(daily, [("launch", start, "wau")], window_days=56)
    _cover("mart_impact_its", out)
    r = out.iloc[0]
    assert (r.intervention, r.intervention_date, r.metric, r.n, r.n_before, r.n_after) == ("launch", start, "wau",
                                                                                           16, 8, 8)
    assert r.level_change == pytest.approx(16, abs=0.5) and r.level_ci_low < 16 < r.level_ci_high
    assert r.slope_change_per_week == pytest.approx(7, abs=0.2)
    assert r.slope_ci_low < 7 < r.slope_ci_high and not r.suppressed


def test_scorecard_against_targets() -> None:
    # participation 60 of 100 = 0.6 >= 0.5 met; answered 3 of 10 = 0.3 < 0.8 not met;
    # activity per active user mean(2, 4, 6, 8, 10) = 6 >= 5 met; median hours (1, 2, 3, 10, 20) = 3 <= 4 met;
    # leaders 2 of 3 (below min_group_size 5: suppressed); no input for the others
    targets = {"participation_rate": Target(target=0.5), "answered_rate": Target(target=0.8),
               "activity_per_active_user": Target(target=5),
               "median_hours_to_first_response": Target(target=4, direction="max"),
               "leader_posting_share": Target(target=0.7)}
    inputs = {"participation_rate": (60.0, 100.0), "answered_rate": (3.0, 10.0),
              "activity_per_active_user": np.array([2.0, 4, 6, 8, 10]),
              "median_hours_to_first_response": np.array([1.0, 2, 3, 10, 20]), "leader_posting_share": (2.0, 3.0)}
    out = scorecard.scorecard(M, inputs, targets, min_group_size=5, samples=500).set_index("metric")
    _cover("mart_esn_scorecard", out.reset_index())
    assert out.loc["participation_rate", "value"] == 0.6 and out.loc["participation_rate", "status"] == "met"
    assert out.loc["participation_rate", "dimension"] == "reach" and out.loc["participation_rate", "n"] == 100
    assert out.loc["answered_rate", "value"] == 0.3 and out.loc["answered_rate", "status"] == "not met"
    assert out.loc["activity_per_active_user", "value"] == 6.0 and out.loc["activity_per_active_user", "status"] == "met"
    assert out.loc["median_hours_to_first_response", "value"] == 3.0
    assert out.loc["median_hours_to_first_response", "direction"] == "max"
    assert out.loc["median_hours_to_first_response", "status"] == "met"
    assert out.loc["median_hours_to_first_response", "target"] == 4.0
    assert out.loc["leader_posting_share", "suppressed"] and np.isnan(out.loc["leader_posting_share", "value"])
    assert out.loc["cross_department_share", "status"] == "no target"
    lo, hi = out.loc["participation_rate", ["ci_low", "ci_high"]]
    assert lo < 0.6 < hi
