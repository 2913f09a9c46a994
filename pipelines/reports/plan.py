"""The ESN action plan in the reports (issue 16, part 5): each objective's status, trend and history.

An objective (`reports.plan.objectives`, else `DEFAULT_OBJECTIVES`: the scorecard's seven targets grouped
into four objectives) has metrics with targets. For each of the last `history_periods` periods of the
audience's frequency (the period ending on `as_of` and those before it) every metric is read at the
period's last day from the mart that publishes it, for the whole organisation: the latest row on or before
that day (`segment_type = 'org'`, the 28-day window where the mart has several, never a suppressed row);
metrics only the scorecard carries (`mart_esn_scorecard`) are read from it. A metric is met, not met, or
has no data; an objective is on track (every metric with data met), off track (one not met) or has no
data. The trend compares the period with the one before, better or worse in the metric's direction.

The history is computed from the marts' own history (they keep every day), so a rerun shows the same;
the organisation's figures only, never a group under `min_group_size` (the organisation is checked).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.reports_config import Frequency, Objective, Plan, PlanMetric

if TYPE_CHECKING:
    from pipelines.reports.content import MetricRef, Warehouse, _Builder

#: where a metric is published (table, column), first table that exists; anything else: mart_esn_scorecard
METRIC_TABLES: dict[str, list[tuple[str, str]]] = {
    "participation_rate": [("mart_engagement_daily", "participation_rate")],
    "contributor_rate": [("mart_engagement_daily", "contributor_rate")],
    "stickiness": [("mart_engagement_daily", "stickiness")],
    "activity_per_active_user": [("mart_engagement_daily", "activity_per_active_user")],
    "answered_rate": [("mart_knowledge_sharing", "answered_rate"), ("mart_knowledge_sharing_daily", "answered_rate")],
    "cross_department_share": [("mart_network_org", "cross_department_share")],
    "leader_posting_share": [("mart_leader_engagement", "leader_posting_share")],
}
SCORECARD = "mart_esn_scorecard"
PCT_METRICS = {"participation_rate", "contributor_rate", "stickiness", "answered_rate", "cross_department_share",
               "leader_posting_share", "retention_next_month"}


def _targets() -> dict[str, tuple[float, str]]:
    """The scorecard's targets (pipelines/metrics/impact_defaults.yaml, or $ESN_IMPACT_CONFIG)."""
    try:
        from pipelines.metrics.config import load_impact_config

        return {k: (float(t.target), str(t.direction)) for k, t in load_impact_config().targets.items()}
    except Exception:  # noqa: BLE001 - a plan without targets is still a plan: fall back to the defaults
        return {"participation_rate": (0.6, "min"), "activity_per_active_user": (10.0, "min"),
                "answered_rate": (0.8, "min"), "median_hours_to_first_response": (4.0, "max"),
                "cross_department_share": (0.2, "min"), "leader_posting_share": (0.7, "min"),
                "retention_next_month": (0.7, "min")}


#: the default plan: what successful ESN programmes start from, with the scorecard's targets
DEFAULT_OBJECTIVES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("adoption", "Adoption that lasts", ("participation_rate", "retention_next_month", "activity_per_active_user")),
    ("knowledge-sharing", "Questions get answered", ("answered_rate", "median_hours_to_first_response")),
    ("cross-silo", "Cross-silo collaboration", ("cross_department_share",)),
    ("leadership", "Leadership visibility", ("leader_posting_share",)),
)


def default_plan() -> Plan:
    targets = _targets()
    objectives = [Objective(name=name, title=title, metrics=[
        PlanMetric(metric=m, target=targets[m][0], direction=targets[m][1]) for m in metrics if m in targets])
        for name, title, metrics in DEFAULT_OBJECTIVES]
    return Plan.model_validate({"objectives": [o for o in objectives if o.metrics]})


@dataclass(frozen=True)
class MetricStatus:
    spec: PlanMetric
    ref: MetricRef
    values: tuple[float | None, ...]  # oldest period first, the current period last

    @property
    def value(self) -> float | None:
        return self.values[-1]

    @property
    def fmt(self) -> str:
        return "pct" if self.spec.metric.split(".")[-1] in PCT_METRICS else "ratio"

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value >= self.spec.target if self.spec.direction == "min" else value <= self.spec.target

    @property
    def status(self) -> str:
        met = self.met(self.value)
        return "no data" if met is None else ("met" if met else "not met")

    @property
    def trend(self) -> str:
        """better / worse / steady against the previous period (in the metric's direction), or no trend."""
        if len(self.values) < 2 or self.values[-1] is None or self.values[-2] is None:
            return "no trend"
        delta = self.values[-1] - self.values[-2]
        if abs(delta) <= 1e-9 * max(1.0, abs(self.values[-2])):
            return "steady"
        return "better" if (delta > 0) == (self.spec.direction == "min") else "worse"


@dataclass(frozen=True)
class ObjectiveStatus:
    objective: Objective
    metrics: tuple[MetricStatus, ...]
    period_ends: tuple[dt.date, ...]
    group_size: int
    technology: tuple[tuple[str, str], ...] = ()  # (source, its coverage status of the period) it relies on

    def status_at(self, i: int) -> str:
        marks = [m.met(m.values[i]) for m in self.metrics]
        known = [x for x in marks if x is not None]
        if not known:
            return "no data"
        return "on track" if all(known) else "off track"

    @property
    def status(self) -> str:
        return self.status_at(len(self.period_ends) - 1)

    @property
    def history(self) -> list[tuple[dt.date, str]]:
        return [(d, self.status_at(i)) for i, d in enumerate(self.period_ends)]

    @property
    def trend(self) -> str:
        trends = {m.trend for m in self.metrics} - {"no trend"}
        if not trends:
            return "no trend"
        if trends == {"steady"}:
            return "steady"
        if "worse" in trends and "better" in trends:
            return "mixed"
        return "better" if "better" in trends else "worse"


def period_ends(frequency: Frequency, as_of: dt.date, n: int) -> list[dt.date]:
    """The last days of the n periods ending on as_of, oldest first."""
    ends = [as_of]
    for _ in range(n - 1):
        last = ends[-1]
        if frequency is Frequency.daily:
            ends.append(last - dt.timedelta(days=1))
        elif frequency is Frequency.weekly:
            ends.append(last - dt.timedelta(days=7))
        else:
            ends.append(last.replace(day=1) - dt.timedelta(days=1))
    return ends[::-1]


def _value_reader(wh: Warehouse, metric: str) -> Any:
    """fn(day) -> the organisation's value of the metric on the latest row on or before day, or None."""
    from pipelines.reports.content import DATE_COLUMNS, _ident, _num, _truthy

    table, column = metric.split(".", 1) if "." in metric else (None, metric)
    candidates = [(table, column)] if table else METRIC_TABLES.get(column, [])
    for t, c in candidates:
        if not wh.first([t]) or not wh.col(t, c):
            continue
        date_col = wh.col(t, *DATE_COLUMNS)
        if not date_col:
            continue
        where = []
        if wh.col(t, "segment_type"):
            where.append("segment_type = 'org'")
        if wh.col(t, "period_type"):
            where.append("period_type = 'rolling_28d'")
        if wh.col(t, "window_name"):
            where.append("window_name = 'rolling_28d'")
        sup = ", suppressed" if wh.col(t, "suppressed") else ""
        sql = (f"select {_ident(date_col)} as d, {_ident(c)} as v{sup} from {_ident(t)}"
               + (" where " + " and ".join(where) if where else "") + " order by 1")
        df = wh.frame(sql)
        if sup:
            df = df[~df["suppressed"].map(_truthy).astype(bool)]
        from pipelines.reports.content import _as_date

        rows = [(_as_date(d), _num(v)) for d, v in zip(df["d"], df["v"], strict=True)]

        def at(day: dt.date, rows: list[tuple[dt.date, float | None]] = rows) -> float | None:
            before = [v for d, v in rows if d <= day and d > day - dt.timedelta(days=7)]
            return before[-1] if before else None
        return at, t, c
    if wh.first([SCORECARD]) and wh.col(SCORECARD, "metric") and wh.col(SCORECARD, "value"):
        df = wh.frame(f"select as_of_date as d, value as v, suppressed from {SCORECARD} where metric = :m "
                      "order by 1", {"m": column})
        from pipelines.reports.content import _as_date

        rows = [(_as_date(d), _num(v)) for d, v, s in zip(df["d"], df["v"], df["suppressed"], strict=True)
                if not _truthy(s)]

        def at_card(day: dt.date, rows: list[tuple[dt.date, float | None]] = rows) -> float | None:
            hit = [v for d, v in rows if d == day]
            return hit[-1] if hit else None
        return at_card, SCORECARD, "value"
    return (lambda day: None), None, None


def objectives(b: _Builder) -> list[ObjectiveStatus]:
    """The plan's objectives with their status, trend and history for the builder's audience and as_of."""
    plan = b.config.plan or default_plan()
    size = b.group_size("org", "all")
    if not b.ok(size):
        return []
    assert size is not None
    ends = period_ends(b.audience.frequency, b.as_of, plan.history_periods)
    out = []
    for objective in plan.objectives:
        statuses = []
        for spec in objective.metrics:
            read, table, column = _value_reader(b.wh, spec.metric)
            name = spec.metric.split(".")[-1]
            ref = b.cat.ref(name, name.replace("_", " ").capitalize(), table, column if table != SCORECARD else name)
            values = tuple(read(d) for d in ends)
            statuses.append(MetricStatus(spec, ref, tuple(None if v is None or math.isnan(v) else v for v in values)))
        out.append(ObjectiveStatus(objective, tuple(statuses), tuple(ends), size, _technology(b, objective)))
    return out


def _technology(b: _Builder, objective: Objective) -> tuple[tuple[str, str], ...]:
    """The sources that carry the objective (its `sources`, else none listed) with each one's coverage of
    the period: a source the configuration does not know is said so, not dropped."""
    cov = {s.source: s.status for s in (b.report.coverage.sources if b.report.coverage else ())}
    known = {s.name for s in getattr(b.settings, "sources", []) or []}
    return tuple((src, cov.get(src) or ("not a configured source" if known and src not in known else "no record"))
                 for src in objective.sources)


LEADERS = "mart_leader_engagement"


@dataclass(frozen=True)
class RelationshipStatus:
    """One relationship of the plan: what it is, its measure over the periods (None: not measured)."""

    label: str
    measure: str | None
    values: tuple[float | None, ...]
    group_size: int
    note: str = ""
    unit: str = "share"  # share (shown as a percentage) or count

    @property
    def value(self) -> float | None:
        return self.values[-1] if self.values else None

    @property
    def shown(self) -> str:
        """The latest value as the emails print it."""
        if self.value is None:
            return ""
        return f"{self.value:.1%}" if self.unit == "share" else f"{self.value:,.0f}"

    @property
    def trend(self) -> str:
        if len(self.values) < 2 or self.values[-1] is None or self.values[-2] is None:
            return "no trend"
        delta = self.values[-1] - self.values[-2]
        return "steady" if abs(delta) < 1e-9 else ("better" if delta > 0 else "worse")


def relationships(b: _Builder) -> list[RelationshipStatus]:
    """The plan's relationships: for each department whose leaders should be reachable, the share of its
    leaders active and of its people who responded to a leader's post (28 days, `mart_leader_engagement`),
    never for fewer than min_group_size leaders or people; for each pair of departments whose ties should
    grow, the ties between them (`_grow_ties`)."""
    from pipelines.reports.content import _as_date, _num, _truthy

    plan = b.config.plan
    if plan is None:
        return []
    ends = period_ends(b.audience.frequency, b.as_of, plan.history_periods)
    out: list[RelationshipStatus] = []
    table = b.wh.first([LEADERS])
    have = table is not None and all(b.wh.col(table, c) for c in ("as_of_date", "segment_type", "segment_value",
                                                                   "period_type", "leaders", "leader_reach"))
    for dept in plan.relationships.leaders_reachable:
        size = b.group_size("department", dept)
        if not have or not b.ok(size):
            out.append(RelationshipStatus(f"Leaders of {dept} reachable", None, (), 0,
                                          "not measured: no leader figures for this department"
                                          if have else "not measured: mart_leader_engagement is absent"))
            continue
        sup = [c for c in ("suppressed", "leaders_suppressed") if b.wh.col(table, c)]  # type: ignore[arg-type]
        df = b.wh.frame(f"select as_of_date, leaders, leader_reach{''.join(', ' + c for c in sup)} from {table} "
                        "where segment_type = 'department' and segment_value = :d and period_type = 'rolling_28d' "
                        "and as_of_date between :s and :e", {"d": dept, "s": ends[0], "e": ends[-1]})
        by_day: dict[dt.date, float | None] = {}
        smallest: int | None = None
        for _, r in df.iterrows():
            leaders = _num(r["leaders"])
            if any(_truthy(r[c]) for c in sup) or leaders is None or not b.ok(int(leaders)):
                continue
            by_day[_as_date(r["as_of_date"])] = _num(r["leader_reach"])
            smallest = int(leaders) if smallest is None else min(smallest, int(leaders))
        values = tuple(by_day.get(d) for d in ends)
        if smallest is None or all(v is None for v in values):
            out.append(RelationshipStatus(f"Leaders of {dept} reachable", None, (), 0,
                                          f"not shown: fewer than {b.min} leaders, or no data"))
            continue
        assert size is not None
        out.append(RelationshipStatus(f"Leaders of {dept} reachable", "share of its people who responded to "
                                      "a leader's post (28 days)", values, min(smallest, size)))
    for a, c in plan.relationships.grow_ties:
        out.append(_grow_ties(b, a, c, ends))
    return out


def _grow_ties(b: _Builder, a: str, c: str, ends: list[dt.date]) -> RelationshipStatus:
    """The ties between departments a and c at each period end: the pairs of people, one in each, with at
    least one kept interaction in the network's 28-day window (`fct_network_ties`, the departments as of
    the window in `fct_person_network`), from the latest window ending in the 7 days up to the period end.
    Withheld when either department has fewer than min_group_size people (the count would describe a
    small group) or when the network stage has not run."""
    label = f"Ties between {a} and {c} grow"
    ties_t = b.wh.first(b.config.tables.network_ties)
    person_t = b.wh.first(b.config.tables.person_network)
    need = {ties_t: ("window_name", "window_end", "source_key", "target_key"),
            person_t: ("window_name", "window_end", "person_key", "department")}
    if ties_t is None or person_t is None or not all(b.wh.col(t, col) for t, cols in need.items()  # type: ignore[arg-type]
                                                      for col in cols):
        return RelationshipStatus(label, None, (), 0, "not measured: the network tables are absent")
    sizes = [b.group_size("department", d) for d in (a, c)]
    if not all(b.ok(s) for s in sizes):
        return RelationshipStatus(label, None, (), 0, f"not shown: a department with fewer than {b.min} people")
    from pipelines.reports.content import _as_date, _ident

    df = b.wh.frame(
        "select t.window_end as d, count(distinct case when t.source_key < t.target_key "
        "then t.source_key || '|' || t.target_key else t.target_key || '|' || t.source_key end) as ties "
        f"from {_ident(ties_t)} t "
        f"join {_ident(person_t)} p on p.window_name = t.window_name and p.window_end = t.window_end "
        "and p.person_key = t.source_key "
        f"join {_ident(person_t)} q on q.window_name = t.window_name and q.window_end = t.window_end "
        "and q.person_key = t.target_key "
        "where t.window_name = 'rolling_28d' and t.window_end between :s and :e "
        "and ((p.department = :a and q.department = :c) or (p.department = :c and q.department = :a)) "
        "group by t.window_end",
        {"a": a, "c": c, "s": ends[0] - dt.timedelta(days=6), "e": ends[-1]})
    windows = b.wh.frame(f"select distinct window_end as d from {_ident(person_t)} "
                         "where window_name = 'rolling_28d' and window_end between :s and :e",
                         {"s": ends[0] - dt.timedelta(days=6), "e": ends[-1]})
    counts = {_as_date(d): float(n) for d, n in zip(df["d"], df["ties"], strict=True)}
    days = sorted(_as_date(d) for d in windows["d"])

    def at(end: dt.date) -> float | None:
        run = [d for d in days if end - dt.timedelta(days=7) < d <= end]
        return counts.get(run[-1], 0.0) if run else None  # a window without a tie between them: 0
    values = tuple(at(e) for e in ends)
    if all(v is None for v in values):
        return RelationshipStatus(label, None, (), 0, "not measured: no network window in these periods")
    return RelationshipStatus(label, "pairs of people, one in each, who interacted (28 days)", values,
                              min(s for s in sizes if s is not None), unit="count")
