"""Business impact (METRICS.md section 4): engaged vs not (interval by a bootstrap of people), Spearman
correlations (same month and lagged t -> t+1) and interrupted time series around dated interventions
(weekly series, Newey-West errors).

Pure functions from frames to frames; `pipelines.metrics.compute_python_metrics` reads the warehouse and
publishes. Every output row carries n, a 95% interval, a `suppressed` flag (groups below min_group_size
have their numbers NULLed, and in engaged vs not the departments that would give them back by
subtraction from the organisation row: complementary suppression, `pipelines.suppression`) and
interpretation = 'association, not causation'.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from pipelines.metrics import stats

INTERPRETATION = "association, not causation"

ENGAGED_COLUMNS = ["outcome", "segment_type", "segment_value", "n", "n_engaged", "n_not_engaged",
                   "mean_engaged", "mean_not_engaged", "difference", "ci_low", "ci_high", "suppressed",
                   "engaged_definition", "interpretation"]
CORRELATION_COLUMNS = ["outcome", "level", "engagement_measure", "lag_months", "n", "rho", "ci_low", "ci_high",
                       "p_value", "suppressed", "interpretation"]
ITS_COLUMNS = ["intervention", "intervention_date", "metric", "n", "n_before", "n_after", "level_change",
               "level_ci_low", "level_ci_high", "slope_change_per_week", "slope_ci_low", "slope_ci_high",
               "suppressed", "interpretation"]


def engaged_vs_not(person_months: pd.DataFrame, outcomes: pd.DataFrame, *, min_group_size: int,
                   engaged_segments: list[str], samples: int = 1000, seed: int = 0,
                   departments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Difference in each person-level outcome between engaged and not-engaged person-months.

    person_months: person_key, period (month start), usage_segment (at the month's end), department.
    outcomes: rows of `outcomes.load_outcomes` (person level used). A person-month with an outcome but no
    usage row counts as not engaged (non-user). Overall (segment org/all) and within each department.
    departments: person_key, period, department of the person in that month (as of the month, from the
    point-in-time segment membership), for every outcome person-month, active or not; without it the
    department of person_months. A person-month without a department (NULL: outside the HR directory, a
    gap of the directory) counts in the organisation row only: people without a department are not a
    department, and complementary suppression treats them as part of what the organisation row holds
    beyond the published departments.

    The interval resamples people, each with all their months (`stats.cluster_bootstrap_mean_difference`):
    the months of one person are not independent observations.
    """
    person = outcomes[outcomes["level"] == "person"]
    if person.empty:
        return pd.DataFrame(columns=ENGAGED_COLUMNS)
    dep = departments if departments is not None else person_months[["person_key", "period", "department"]]
    dep = dep[["person_key", "period", "department"]].drop_duplicates(["person_key", "period"])
    joined = (person.drop(columns=["department"])
              .merge(person_months.drop(columns=["department"], errors="ignore"), on=["person_key", "period"],
                     how="left")
              .merge(dep, on=["person_key", "period"], how="left"))
    joined["engaged"] = joined["usage_segment"].isin(engaged_segments)
    definition = "usage segment at the end of the month in " + "/".join(engaged_segments)
    rows = []
    for outcome, grp in joined.groupby("outcome", sort=True):
        groups = [("org", "all", grp)] + [("department", str(d), g)
                                          for d, g in grp.dropna(subset=["department"])
                                          .groupby("department", sort=True)]
        for seg_type, seg_value, g in groups:
            engaged = g["engaged"].to_numpy(bool)
            values = g["value"].to_numpy(float)
            a, b = values[engaged], values[~engaged]
            # suppression counts people, not person-months
            people_a = g.loc[g["engaged"], "person_key"].nunique()
            people_b = g.loc[~g["engaged"], "person_key"].nunique()
            suppressed = min(people_a, people_b) < min_group_size
            row = {"outcome": outcome, "segment_type": seg_type, "segment_value": seg_value, "n": len(g),
                   "n_engaged": len(a), "n_not_engaged": len(b), "mean_engaged": np.nan,
                   "mean_not_engaged": np.nan, "difference": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                   "suppressed": suppressed, "engaged_definition": definition, "interpretation": INTERPRETATION,
                   "_people_engaged": people_a, "_people_not_engaged": people_b}
            if not suppressed:
                est = stats.cluster_bootstrap_mean_difference(values, engaged, g["person_key"].to_numpy(),
                                                              samples=samples, seed=seed)
                row.update(mean_engaged=float(a.mean()), mean_not_engaged=float(b.mean()),
                           difference=est.value, ci_low=est.ci_low, ci_high=est.ci_high)
            rows.append(row)
    out = pd.DataFrame(rows, columns=ENGAGED_COLUMNS + ["_people_engaged", "_people_not_engaged"])
    out = _complementary(out, min_group_size)
    for c in ("n", "n_engaged", "n_not_engaged"):
        out[c] = out[c].astype("Int64")
    return out[ENGAGED_COLUMNS]


def _complementary(out: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """The departments of one outcome add up to its organisation row (means times n are sums): the hidden
    departments must hold min_group_size engaged AND min_group_size not-engaged people (or all of the
    organisation's), or more departments are hidden, smallest first (`pipelines.suppression`)."""
    from pipelines import suppression

    if out.empty:
        return out
    sizes = ["_people_engaged", "_people_not_engaged"]
    is_org = (out["segment_type"] == "org").to_numpy()
    hidden = suppression.complementary(out[~is_org], family=["outcome"], cell=["segment_type", "segment_value"],
                                       size=sizes, hidden="suppressed", k=min_group_size, totals=out[is_org],
                                       total_on=["outcome"], categories=True)
    mask = out["suppressed"].to_numpy(bool).copy()
    mask[np.flatnonzero(~is_org)] |= hidden.to_numpy()
    measures = ["n", "n_engaged", "n_not_engaged", "mean_engaged", "mean_not_engaged", "difference", "ci_low",
                "ci_high"]
    return suppression.withhold(out, mask, measures)


def _next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def correlations(person_months: pd.DataFrame, dept_months: pd.DataFrame, outcomes: pd.DataFrame, *,
                 min_group_size: int, measures: list[str]) -> pd.DataFrame:
    """Spearman rho of each engagement measure with each outcome, same month (lag 0) and engagement in t
    against the outcome in t+1 (lag 1). Person-level outcomes use person_months[measures]; department-level
    outcomes use dept_months.participation_rate. Suppressed when n < max(min_group_size, 4)."""
    rows = []
    for lag in (0, 1):
        for level, data, cols, on in (
            ("person", person_months, measures, "person_key"),
            ("department", dept_months, ["participation_rate"], "department"),
        ):
            out = outcomes[outcomes["level"] == level]
            if out.empty or data.empty:
                continue
            eng = data.copy()
            if lag:  # the few distinct months mapped once, not each of the person-months
                eng["period"] = eng["period"].map({m: _next_month(m) for m in eng["period"].unique()})
            joined = out.drop(columns=[c for c in ("person_key", "department") if c != on]).merge(
                eng, on=[on, "period"], how="inner")
            for outcome, grp in joined.groupby("outcome", sort=True):
                for measure in cols:
                    g = grp.dropna(subset=[measure, "value"])
                    n = len(g)
                    row = {"outcome": outcome, "level": level, "engagement_measure": measure, "lag_months": lag,
                           "n": n, "rho": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
                           "suppressed": n < max(min_group_size, 4), "interpretation": INTERPRETATION}
                    if not row["suppressed"]:
                        try:
                            est, p = stats.spearman(g[measure].to_numpy(), g["value"].to_numpy())
                            row.update(rho=est.value, ci_low=est.ci_low, ci_high=est.ci_high, p_value=p)
                        except ValueError:
                            pass  # no variation: rho undefined, left NULL with its n
                    rows.append(row)
    out = pd.DataFrame(rows, columns=CORRELATION_COLUMNS)
    out["n"] = out["n"].astype("Int64")
    out["lag_months"] = out["lag_months"].astype("Int64")
    return out


#: metrics of one day: a week is the mean of its seven days. Every other column of mart_engagement_daily
#: is a window ending on the day (7 or 28 days): a week is its value on the week's last day, the window
#: that ends with the week (for the 7-day metrics exactly the week: no day counted in two weeks)
DAY_METRICS = frozenset({"dau", "posting_users_1d", "stickiness"})


def weekly_series(daily: pd.DataFrame, metric: str, date: dt.date, weeks: int) -> pd.DataFrame:
    """The weekly series of an org-wide daily metric around `date`: columns week (0 = the week starting on
    `date`, -1 the week before, ...) and value, for the `weeks` weeks before and after. A week of a day
    metric needs all seven days (a week with a missing day is left out rather than averaged on fewer)."""
    s = daily[["activity_date", metric]].dropna(subset=[metric])
    offset = np.array([(d - date).days for d in s["activity_date"]], dtype=int)
    frame = pd.DataFrame({"week": offset // 7, "day": offset % 7, "value": s[metric].to_numpy(float)})
    frame = frame[(frame["week"] >= -weeks) & (frame["week"] < weeks)]
    if metric in DAY_METRICS:
        g = frame.groupby("week", sort=True)["value"].agg(["mean", "size"])
        g = g[g["size"] == 7]
        return pd.DataFrame({"week": g.index.to_numpy(int), "value": g["mean"].to_numpy(float)})
    end = frame[frame["day"] == 6].sort_values("week")
    return pd.DataFrame({"week": end["week"].to_numpy(int), "value": end["value"].to_numpy(float)})


def interrupted_series(daily: pd.DataFrame, interventions: list[tuple[str, dt.date, str]], *,
                       window_days: int, min_weeks: int = 4) -> pd.DataFrame:
    """Level and slope change of an org-wide metric around each dated intervention, on its weekly series
    (`weekly_series`: window_days // 7 weeks on each side) with Newey-West errors
    (`stats.interrupted_time_series`): a daily series of rolling windows repeats most of each day in the
    next, and OLS errors on it were far too narrow. n, n_before and n_after count weeks; fewer than
    `min_weeks` weeks on a side: suppressed (no estimate).

    daily: activity_date plus one column per metric. The slope change is per week."""
    rows = []
    for name, date, metric in interventions:
        row = {"intervention": name, "intervention_date": date, "metric": metric, "n": 0, "n_before": 0,
               "n_after": 0, "level_change": np.nan, "level_ci_low": np.nan, "level_ci_high": np.nan,
               "slope_change_per_week": np.nan, "slope_ci_low": np.nan, "slope_ci_high": np.nan,
               "suppressed": True, "interpretation": INTERPRETATION}
        if metric in daily.columns:
            s = weekly_series(daily, metric, date, window_days // 7)
            t = s["week"].to_numpy(float)
            n_before, n_after = int((t < 0).sum()), int((t >= 0).sum())
            row.update(n=len(s), n_before=n_before, n_after=n_after)
            if min(n_before, n_after) >= min_weeks:
                res = stats.interrupted_time_series(t, s["value"].to_numpy(float), 0.0)
                row.update(level_change=res.level_change.value, level_ci_low=res.level_change.ci_low,
                           level_ci_high=res.level_change.ci_high,
                           slope_change_per_week=res.slope_change.value,
                           slope_ci_low=res.slope_change.ci_low, slope_ci_high=res.slope_change.ci_high,
                           suppressed=False)
        rows.append(row)
    out = pd.DataFrame(rows, columns=ITS_COLUMNS)
    for c in ("n", "n_before", "n_after"):
        out[c] = out[c].astype("Int64")
    return out
