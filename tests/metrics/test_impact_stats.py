"""The statistics behind the impact tables, against hand computations: the bootstrap of person-months
resamples people (all their months together), the interrupted time series has Newey-West errors on a
weekly series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from pipelines.metrics import impact, stats


def _pm(rows: list[tuple[str, str, str, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(person_months, outcomes) from (person, month, usage segment, outcome value) rows."""
    pm = pd.DataFrame([{"person_key": p, "period": dt.date.fromisoformat(m), "department": "Sales",
                        "usage_segment": seg} for p, m, seg, _ in rows])
    out = pd.DataFrame([{"level": "person", "person_key": p, "department": None,
                         "period": dt.date.fromisoformat(m), "outcome": "sales", "value": v} for p, m, _, v in rows])
    return pm, out


def test_cluster_bootstrap_resamples_people_with_all_their_months() -> None:
    # eight people, each with one engaged month (value 100 i + 5) and one not engaged (100 i): whichever
    # people a replicate draws, with whatever multiplicity, both groups hold the same people as often, so
    # the replicate's difference is mean(100 i + 5) - mean(100 i) = 5 exactly: the interval is [5, 5].
    # Resampling the sixteen months one by one mixes people and gives a wide interval around 5.
    rows = []
    for i in range(8):
        rows += [(f"p{i}", "2026-03-01", "habitual", 100.0 * i + 5), (f"p{i}", "2026-04-01", "novice", 100.0 * i)]
    values = np.array([v for *_, v in rows])
    engaged = np.array([seg == "habitual" for _, _, seg, _ in rows])
    people = np.array([p for p, *_ in rows])
    est = stats.cluster_bootstrap_mean_difference(values, engaged, people, samples=500, seed=3)
    assert est.value == pytest.approx(5.0)
    assert (est.ci_low, est.ci_high) == pytest.approx((5.0, 5.0))
    independent = stats.bootstrap_mean_difference(values[engaged], values[~engaged], samples=500, seed=3)
    assert independent.ci_high - independent.ci_low > 100  # what the months resampled alone give
    # the published table uses the people bootstrap
    pm, outcomes = _pm(rows)
    ev = impact.engaged_vs_not(pm, outcomes, min_group_size=5, engaged_segments=["habitual"], samples=500, seed=3)
    org = ev[ev.segment_type == "org"].iloc[0]
    assert (org.n, org.n_engaged, org.n_not_engaged, org.difference) == (16, 8, 8, 5.0)
    assert (org.ci_low, org.ci_high) == pytest.approx((5.0, 5.0))


def test_cluster_bootstrap_by_hand_on_two_people() -> None:
    # two people: A engaged 10 and not engaged 4, B engaged 2 only. The draws of two people are AA, AB,
    # BA, BB with probability 1/4 each: AA gives 10 - 4 = 6, AB and BA give (10 + 2) / 2 - 4 = 2, BB has
    # no not-engaged month (left out). So 1/3 of the usable replicates give 6 and 2/3 give 2: the 2.5%
    # percentile is 2 and the 97.5% one is 6; the estimate is mean(10, 2) - 4 = 2.
    values = np.array([10.0, 4.0, 2.0])
    engaged = np.array([True, False, True])
    people = np.array(["A", "A", "B"])
    est = stats.cluster_bootstrap_mean_difference(values, engaged, people, samples=4000, seed=0)
    assert est.value == 2.0 and (est.ci_low, est.ci_high) == (2.0, 6.0)


def _hac_by_hand(x: np.ndarray, e: np.ndarray, lags: int) -> np.ndarray:
    """Newey-West covariance written as the double sum of its definition, term by term."""
    n, k = x.shape
    s = np.zeros((k, k))
    for t in range(n):
        for u in range(n):
            lag = abs(t - u)
            if lag <= lags:
                s += (1 - lag / (lags + 1)) * e[t] * e[u] * np.outer(x[t], x[u])
    bread = np.linalg.inv(x.T @ x)
    return bread @ s @ bread * n / (n - k)


def test_interrupted_time_series_has_newey_west_errors() -> None:
    # 16 weekly points, a jump of 10 and a slope change of 1 a week at week 0, AR(1) noise (rho 0.7)
    rng = np.random.default_rng(5)
    t = np.arange(-8, 8, dtype=float)
    noise = np.zeros(len(t))
    for i in range(1, len(t)):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(0, 1)
    y = 50 + 0.5 * t + np.where(t >= 0, 10 + 1.0 * t, 0) + noise
    x = np.column_stack([np.ones_like(t), t, (t >= 0), t * (t >= 0)]).astype(float)
    beta = np.linalg.solve(x.T @ x, x.T @ y)
    e = y - x @ beta
    lags = int(np.floor(4 * (16 / 100) ** (2 / 9)))  # Newey-West's rule: 2
    assert lags == 2
    se = np.sqrt(np.diag(_hac_by_hand(x, e, lags)))
    q = sps.t.ppf(0.975, 16 - 4)
    res = stats.interrupted_time_series(t, y, 0.0)
    assert res.lags == 2 and (res.n_before, res.n_after) == (8, 8)
    assert res.level_change.value == pytest.approx(beta[2])
    assert (res.level_change.ci_low, res.level_change.ci_high) == pytest.approx((beta[2] - q * se[2],
                                                                                 beta[2] + q * se[2]))
    assert (res.slope_change.ci_low, res.slope_change.ci_high) == pytest.approx((beta[3] - q * se[3],
                                                                                 beta[3] + q * se[3]))
    # with no lag it is White's heteroskedasticity-robust covariance (HC1)
    white = np.linalg.inv(x.T @ x) @ (x * e[:, None]).T @ (x * e[:, None]) @ np.linalg.inv(x.T @ x) * 16 / 12
    assert stats.hac_covariance(x, e, 0) == pytest.approx(white)


def test_interrupted_series_is_weekly() -> None:
    # a daily 7-day metric (wau) over 8 weeks each side of the date: the weekly series is its value on
    # each week's last day (weeks start on the intervention date), so that week 0 counts only days after
    start = dt.date(2026, 6, 3)
    days = [start + dt.timedelta(days=i) for i in range(-56, 56)]
    rng = np.random.default_rng(2)
    wau = 200 + np.arange(-56, 56) * 0.2 + rng.normal(0, 3, len(days))
    daily = pd.DataFrame({"activity_date": days, "wau": wau, "dau": wau / 3})
    out = impact.interrupted_series(daily, [("launch", start, "wau"), ("launch", start, "dau")], window_days=56)
    r = out[out.metric == "wau"].iloc[0]
    assert (r.n, r.n_before, r.n_after) == (16, 8, 8) and not r.suppressed
    week_end = np.arange(-56, 56) % 7 == 6
    weeks = (np.arange(-56, 56)[week_end] - 6) // 7
    res = stats.interrupted_time_series(weeks.astype(float), wau[week_end], 0.0)
    assert r.level_change == pytest.approx(res.level_change.value)
    assert (r.slope_change_per_week, r.slope_ci_low, r.slope_ci_high) == pytest.approx(
        (res.slope_change.value, res.slope_change.ci_low, res.slope_change.ci_high))
    # a one-day metric (dau) is averaged over the week's seven days
    d = out[out.metric == "dau"].iloc[0]
    means = (wau / 3).reshape(-1, 7).mean(axis=1)
    res = stats.interrupted_time_series(np.arange(-8, 8, dtype=float), means, 0.0)
    assert d.level_change == pytest.approx(res.level_change.value) and d.n == 16
    # a week with a missing day is left out, not averaged over six days
    gap = impact.interrupted_series(daily.drop(index=3), [("launch", start, "dau")], window_days=56)
    assert (gap.n.iloc[0], gap.n_before.iloc[0]) == (15, 7)
