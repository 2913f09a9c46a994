"""What a report says: warehouse queries turned into a typed, privacy-checked report model.

`build_report(conn, settings, config, audience, as_of)` reads only the published marts that exist (checked
with SQLAlchemy's inspector) and returns a `Report`: headline KPIs with their change against the previous
period, chart data, alerts with evidence, the unanswered backlog, influence tiers and (only where allowed)
a named leaderboard. A section whose table is absent, or which has nothing to say, is simply not in it.

Privacy: every figure carries the size of the group it describes; rows flagged `suppressed` or whose
group is smaller than `privacy.min_group_size` are dropped here, and rows whose group size cannot be
established are withheld too (fail closed). `Report.check_privacy()` re-verifies the whole model before
anything is rendered. This module must never write to the warehouse, never read person-level tables
except to name people when named leaderboards are allowed, and never put a person key in the model.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from pipelines.config import Settings
from pipelines.reports.coverage import Coverage, coverage
from pipelines.reports_config import Audience, Frequency, ReportsConfig, Scope, Section, load_names
from pipelines.warehouse import columns as warehouse_columns

log = logging.getLogger(__name__)

Fmt = Literal["int", "pct", "ratio"]
_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
TIER_ORDER: tuple[str, ...] = ("Top Influencer", "Active Influencer", "Observer")
_SEVERITY_RANK = {"critical": 0, "high": 1, "warning": 2, "medium": 2, "low": 3, "info": 4}


class PrivacyViolation(AssertionError):
    """A figure about a group smaller than min_group_size reached the report model."""


# ---------------------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Period:
    frequency: Frequency
    start: dt.date
    end: dt.date
    previous_start: dt.date
    previous_end: dt.date

    @classmethod
    def ending(cls, frequency: Frequency, as_of: dt.date) -> Period:
        if frequency is Frequency.daily:
            day = dt.timedelta(days=1)
            return cls(frequency, as_of, as_of, as_of - day, as_of - day)
        if frequency is Frequency.weekly:
            return cls(frequency, as_of - dt.timedelta(days=6), as_of,
                       as_of - dt.timedelta(days=13), as_of - dt.timedelta(days=7))
        start = as_of.replace(day=1)
        prev_end = start - dt.timedelta(days=1)
        return cls(frequency, start, as_of, prev_end.replace(day=1), prev_end)

    @property
    def label(self) -> str:
        if self.frequency is Frequency.monthly:
            return self.end.strftime("%B %Y") + ("" if self.end.day >= 28 else f" to {self.end:%d %b}")
        if self.frequency is Frequency.daily:
            return f"{self.end:%A %d %b %Y}"
        return f"Week {self.start:%d %b} to {self.end:%d %b %Y}"

    @property
    def previous_label(self) -> str:
        return {Frequency.monthly: "previous month", Frequency.daily: "previous day"}.get(self.frequency,
                                                                                            "previous week")


@dataclass(frozen=True)
class MetricRef:
    """A metric as the catalogue knows it, with the link to its definition."""

    name: str
    label: str
    url: str
    in_catalogue: bool
    definition: str = ""

    @property
    def is_inline(self) -> bool:
        """The link points at the definition inlined in the same email (no absolute docs URL configured)."""
        return self.url.startswith("#")

    @property
    def text_ref(self) -> str:
        """What the plain-text part shows for the link: the URL, or where the definition is below."""
        return f"see DEFINITIONS below ({self.label})" if self.is_inline else self.url


@dataclass(frozen=True)
class Figure:
    value: float
    fmt: Fmt
    group_size: int


@dataclass(frozen=True)
class KpiSide:
    label: str
    current: Figure | None
    previous: Figure | None
    small_base: int = 0  # reports.small_base: below it a change is a count (or neutral), never a percentage

    @property
    def small(self) -> bool:
        """The small-bases rule: a count whose previous value, or a rate whose group, is under
        `small_base` moves by chance; its change is shown as a count (or neutral points), never as an
        alarming percentage."""
        if self.current is None or self.previous is None or not self.small_base:
            return False
        if self.current.fmt == "int":
            return self.previous.value < self.small_base
        return min(self.current.group_size, self.previous.group_size) < self.small_base

    @property
    def count_change(self) -> float | None:
        if self.current is None or self.previous is None:
            return None
        return self.current.value - self.previous.value

    @property
    def change(self) -> float | None:
        """Percentage points for rates, relative change for counts; None without both values."""
        if self.current is None or self.previous is None:
            return None
        if self.current.fmt == "int":
            return (self.current.value - self.previous.value) / self.previous.value if self.previous.value else None
        return self.current.value - self.previous.value


@dataclass(frozen=True)
class Kpi:
    metric: MetricRef
    sides: list[KpiSide]


@dataclass(frozen=True)
class Series:
    label: str
    x: list[Any]
    y: list[float]
    group_size: int
    highlight: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    kind: Literal["line", "barh"]
    fmt: Fmt
    series: list[Series]
    reference: tuple[str, float, int] | None = None  # labelled line (e.g. the org value): label, value, group size


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    panels: list[Panel]
    metrics: list[MetricRef]
    note: str | None = None
    alt: str = ""


@dataclass(frozen=True)
class AlertItem:
    date: dt.date
    alert_type: str
    severity: str
    segment: str
    metric: MetricRef | None
    observed: Figure | None
    threshold: Figure | None
    evidence: str
    group_size: int

    @property
    def title(self) -> str:
        return self.alert_type.replace("_", " ").capitalize()


@dataclass(frozen=True)
class BacklogRow:
    container: str
    open_questions: Figure
    by_age: dict[str, Figure]
    group_size: int


@dataclass(frozen=True)
class TierRow:
    group: str
    group_size: int
    counts: dict[str, Figure]


@dataclass(frozen=True)
class ImpactRow:
    """One business-impact result: what was compared, the estimate and its 95 % interval."""

    kind: Literal["engaged_vs_not", "correlation", "campaign"]
    label: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    group_size: int  # the smaller of the groups compared (person-months, pairs or weeks)
    detail: str = ""


@dataclass(frozen=True)
class IntroductionRow:
    """A pair of departments to introduce (mart_group_connections): much shared topic interest, few ties."""

    rank: int
    group_a: str
    group_b: str
    shared_topics: Figure
    ties_per_100_pairs: Figure
    group_size: int  # the smaller side's people active on the shared topics


@dataclass(frozen=True)
class NamedInfluencer:
    rank: int
    name: str
    tier: str


@dataclass
class Report:
    audience: Audience
    organisation: str
    as_of: dt.date
    period: Period
    min_group_size: int
    kpis: list[Kpi] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    alerts: list[AlertItem] = field(default_factory=list)
    alerts_metric: MetricRef | None = None
    alerts_withheld: int = 0
    backlog: list[BacklogRow] = field(default_factory=list)
    backlog_metric: MetricRef | None = None
    backlog_withheld: int = 0
    tiers: list[TierRow] = field(default_factory=list)
    tiers_metric: MetricRef | None = None
    leaderboard: list[NamedInfluencer] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing_from_catalogue: list[str] = field(default_factory=list)
    coverage: Coverage | None = None
    definitions: list[MetricRef] = field(default_factory=list)  # inlined when no absolute docs URL is set
    objectives: list[Any] = field(default_factory=list)  # pipelines.reports.plan.ObjectiveStatus
    impact: list[ImpactRow] = field(default_factory=list)
    relationships: list[Any] = field(default_factory=list)  # pipelines.reports.plan.RelationshipStatus
    impact_metric: MetricRef | None = None
    introductions: list[IntroductionRow] = field(default_factory=list)
    introductions_metric: MetricRef | None = None

    @property
    def title(self) -> str:
        return f"{self.audience.display_title}: enterprise social network, {self.period.label}"

    def chart(self, key: str) -> Chart | None:
        return next((c for c in self.charts if c.key == key), None)

    @property
    def data_complete(self) -> bool:
        """Whether every source and the marts cover the whole period (no coverage recorded: not complete)."""
        return self.coverage is not None and self.coverage.complete

    @property
    def data_through(self) -> dt.date | None:
        return self.coverage.data_through if self.coverage is not None else None

    @property
    def is_empty(self) -> bool:
        return not (self.kpis or self.charts or self.alerts or self.backlog or self.tiers or self.leaderboard
                    or self.introductions)

    def figures(self) -> Iterable[tuple[str, float, int]]:
        """Every number of the report with the size of the group it is about."""
        for k in self.kpis:
            for side in k.sides:
                for f in (side.current, side.previous):
                    if f is not None:
                        yield f"kpi {k.metric.name} {side.label}", f.value, f.group_size
        for c in self.charts:
            for p in c.panels:
                for s in p.series:
                    for v in s.y:
                        yield f"chart {c.key} {s.label}", v, s.group_size
                if p.reference is not None:
                    yield f"chart {c.key} {p.reference[0]}", p.reference[1], p.reference[2]
        for a in self.alerts:
            for f in (a.observed, a.threshold):
                if f is not None:
                    yield f"alert {a.alert_type} {a.segment}", f.value, a.group_size
        for b in self.backlog:
            yield f"backlog {b.container}", b.open_questions.value, b.group_size
            for band, f in b.by_age.items():
                yield f"backlog {b.container} {band}", f.value, f.group_size
        for t in self.tiers:
            for tier, f in t.counts.items():
                yield f"tiers {t.group} {tier}", f.value, f.group_size
        for i in self.introductions:
            for f in (i.shared_topics, i.ties_per_100_pairs):
                yield f"introductions {i.group_a} / {i.group_b}", f.value, i.group_size
        for r in self.impact:
            for maybe in (r.estimate, r.ci_low, r.ci_high):
                if maybe is not None:
                    yield f"impact {r.label}", maybe, r.group_size
        for rel in self.relationships:
            for maybe in rel.values:
                if maybe is not None:
                    yield f"relationship {rel.label}", maybe, rel.group_size
        for o in self.objectives:
            for m in o.metrics:
                for v in m.values:
                    if v is not None:
                        yield f"objective {o.objective.name} {m.spec.metric}", v, o.group_size

    def check_privacy(self) -> None:
        small = [(what, size) for what, _, size in self.figures() if size < self.min_group_size]
        if small:
            raise PrivacyViolation(f"{len(small)} figure(s) about groups under {self.min_group_size} people: "
                                   f"{small[:5]}")


# ---------------------------------------------------------------------------------------- catalogue
def is_absolute_url(value: str | None) -> bool:
    return bool(value) and re.match(r"^https?://[^/\s]+", str(value)) is not None


def _slug(text: str) -> str:
    """GitHub-style heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


class Catalogue:
    """Links from (table, column) or metric name to docs/metrics.md#anchor; remembers what it lacked."""

    def __init__(self, path: Path, base_url: str | None) -> None:
        # an absolute http(s) URL links out; anything else inlines the definitions in the email itself
        self.base_url = base_url.split("#")[0] if base_url and is_absolute_url(base_url) else None
        self.used: dict[str, MetricRef] = {}
        self.by_column: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_name: dict[str, dict[str, Any]] = {}
        self.missing: list[str] = []
        if not path.exists():
            log.warning("metric catalogue %s not found: links point at anchors derived from metric names", path)
            return
        from pipelines.catalogue import load_entries

        for e in load_entries(path):  # the same entries the docs are generated from, network included
            meta = {"name": e.name, "anchor": e.doc_id, "definition": e.definition}
            self.by_column[(e.table, e.column)] = meta
            self.by_name.setdefault(e.name, meta)
            if not e.shared:
                self.by_name.setdefault(e.column, meta)

    def ref(self, name: str, label: str, table: str | None = None, column: str | None = None) -> MetricRef:
        entry = self.by_column.get((table or "", column or "")) or self.by_name.get(name)
        if entry is None:
            if name not in self.missing:
                self.missing.append(name)
            anchor = _slug(name)
        else:
            anchor = str(entry.get("anchor") or _slug(str(entry["name"])))
        definition = str(entry.get("definition") or "") if entry else ""
        # only a catalogue entry has a page anchor to link to; anything else is inlined, never a dead link
        url = f"{self.base_url}#{anchor}" if self.base_url and entry is not None else f"#def-{anchor}"
        ref = MetricRef(name=name, label=label, url=url, in_catalogue=entry is not None,
                        definition=definition or "Not in the metric catalogue yet.")
        self.used.setdefault(url, ref)
        return ref


# ---------------------------------------------------------------------------------------------- query
def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a safe table or column name: {name!r}")
    return name


class Warehouse:
    """The existing tables and their columns, so that each section can ask whether it has something to read."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        insp = sa.inspect(conn)
        self._names = set(insp.get_table_names()) | set(insp.get_view_names())
        self._columns: dict[str, list[str]] = {}

    def first(self, candidates: Sequence[str]) -> str | None:
        return next((t for t in candidates if t in self._names), None)

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            self._columns[table] = warehouse_columns(self.conn, _ident(table))
        return self._columns[table]

    def col(self, table: str, *candidates: str) -> str | None:
        cols = self.columns(table)
        return next((c for c in candidates if c in cols), None)

    def frame(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        result = self.conn.execute(sa.text(sql), params or {})
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


DATE_COLUMNS = ("activity_date", "as_of_date", "snapshot_date", "window_end", "end_date", "metric_date",
                "report_date", "date", "week_end", "week_start")


def _num(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _truthy(value: Any) -> bool:
    return bool(value) and value is not pd.NA and not (isinstance(value, float) and math.isnan(value))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()


def _kept(cells: pd.DataFrame, shown: set[str], name: str, size: str, total: Any, k: int, *,
          category: str | None = None, totals: pd.DataFrame | None = None) -> set[str]:
    """The groups of a section that may stay shown next to the organisation's figure: the section's own
    table through `pipelines.suppression.complementary` (the groups it leaves out count as hidden; what
    the organisation minus the groups shown gives back must hold at least min_group_size people).

    cells: one row per group (per group and `category` for counts by category) with its `size` (NaN when
    unknown); total: the organisation's size (or, by category, `totals` rows with `category` and `size`)."""
    from pipelines import suppression

    frame = cells.assign(_family=0, _hidden=~cells[name].isin(shown))
    if category is None:
        tot = (None if _num(total) is None else
               pd.DataFrame({"_family": [0], size: [float(total)], "_hidden": [False]}))
        mask = suppression.complementary(frame, family=["_family"], cell=[name], size=size, hidden="_hidden",
                                         k=k, totals=tot, total_on=["_family"])
    else:
        tot = None if totals is None else totals.assign(_family=0, _hidden=False)
        mask = suppression.complementary(frame, family=["_family"], cell=[name], size=size, hidden="_hidden",
                                         k=k, totals=tot, total_on=["_family"], category=category,
                                         categories=True)
    return set(frame.loc[~mask.to_numpy(), name])


# ---------------------------------------------------------------------------------------------- build
class _Builder:
    def __init__(self, wh: Warehouse, settings: Settings, config: ReportsConfig, audience: Audience,
                 as_of: dt.date) -> None:
        self.wh = wh
        self.settings = settings
        self.config = config
        self.audience = audience
        self.scope: Scope | None = audience.scope
        self.as_of = as_of
        self.min = settings.privacy.min_group_size
        self.period = Period.ending(audience.frequency, as_of)
        self.cat = Catalogue(config.catalogue_path, config.docs_base_url)
        self.report = Report(audience=audience, organisation=config.organisation_name, as_of=as_of,
                             period=self.period, min_group_size=self.min)
        self._sizes: dict[tuple[str, str], int | None] = {}
        self.engagement = wh.first(config.tables.engagement)

    def ok(self, size: int | None) -> bool:
        return size is not None and size >= self.min

    # ------------------------------------------------------------------ group sizes (fail closed)
    def group_size(self, segment_type: str | None, segment_value: str | None, on: dt.date | None = None) -> int | None:
        """Headcount of a segment on a day (as_of by default), None when unknown or suppressed."""
        st = (segment_type or "org").lower()
        sv = segment_value if st != "org" else "all"
        key = (st, f"{sv}@{on or self.as_of}")
        if key in self._sizes:
            return self._sizes[key]
        size: int | None = None
        if st == "container":
            size = self._container_size(sv)
        elif self.engagement:
            df = self.wh.frame(
                f"select suppressed, headcount from {_ident(self.engagement)} where activity_date = :d "
                f"and segment_type = :st and segment_value = :sv", {"d": on or self.as_of, "st": st, "sv": sv})
            if len(df) and not _truthy(df["suppressed"].iloc[0]) and _num(df["headcount"].iloc[0]) is not None:
                size = int(df["headcount"].iloc[0])
        self._sizes[key] = size
        return size

    def _container_info(self) -> dict[str, dict[str, Any]]:
        """container_id -> kind, owner_department, member_count from the container directory, if it exists."""
        table = self.wh.first(self.config.tables.containers)
        if not table or not self.wh.col(table, "container_id"):
            return {}
        cols = [c for c in ("kind", "owner_department", "member_count") if self.wh.col(table, c)]
        df = self.wh.frame(f"select container_id{''.join(', ' + c for c in cols)} from {_ident(table)}")
        return {str(r["container_id"]): {c: r[c] for c in cols} for _, r in df.iterrows()}

    def _container_size(self, container_id: str | None) -> int | None:
        table = self.wh.first(self.config.tables.containers)
        if not table or container_id is None or not self.wh.col(table, "member_count"):
            return None
        df = self.wh.frame(f"select max(member_count) as n from {_ident(table)} where container_id = :c",
                           {"c": container_id})
        n = _num(df["n"].iloc[0]) if len(df) else None
        return int(n) if n is not None else None

    # --------------------------------------------------------------------------------- engagement
    def _engagement_rows(self, start: dt.date, end: dt.date, extra: str = "", params: dict[str, Any] | None = None
                         ) -> pd.DataFrame:
        assert self.engagement
        cols = ["activity_date", "segment_type", "segment_value", "suppressed", "headcount", "dau", "wau", "mau",
                "participation_rate", "contributor_rate", "stickiness"]
        have = [c for c in cols if c in self.wh.columns(self.engagement)]
        df = self.wh.frame(
            f"select {', '.join(have)} from {_ident(self.engagement)} "
            f"where activity_date between :s and :e {extra} order by activity_date",
            {"s": start, "e": end, **(params or {})})
        if df.empty:
            return df
        df["activity_date"] = df["activity_date"].map(_as_date)
        # suppression: the mart's flag AND our own threshold (the mart may have been built with a smaller one)
        keep = ~df["suppressed"].map(_truthy) & df["headcount"].map(lambda v: self.ok(int(v) if _num(v) is not None
                                                                                  else None))
        return df[keep].reset_index(drop=True)

    def _segments(self) -> tuple[str, dict[str, Any]]:
        if self.scope is None:
            return "and segment_type = 'org'", {}
        return ("and (segment_type = 'org' or (segment_type = :st and segment_value = :sv))",
                {"st": self.scope.segment_type, "sv": self.scope.segment_value})

    def _is_scope(self, row: pd.Series) -> bool:
        return self.scope is not None and row["segment_type"] == self.scope.segment_type and \
            row["segment_value"] == self.scope.segment_value

    def add_engagement(self) -> None:
        if not self.engagement:
            return
        where, params = self._segments()
        p = self.period
        start = min(p.previous_end, self.as_of - dt.timedelta(days=self.config.trend_days - 1))
        df = self._engagement_rows(start, self.as_of, where, params)
        if df.empty:
            return
        org = df[df["segment_type"] == "org"]
        scope = df[df.apply(self._is_scope, axis=1)] if self.scope is not None else df.iloc[0:0]
        scope_known = self.scope is not None and bool((scope["activity_date"] == self.as_of).any())
        if self.scope is not None and not scope_known:
            self.report.notes.append(
                f"{self.scope.segment_value} has fewer than {self.min} people (or no data) on {self.as_of:%d %b %Y}: "
                f"its own figures are withheld and only the organisation's are shown.")
        if Section.kpis in self.audience.sections:
            active, active_name, active_label = {
                Frequency.daily: ("dau", "daily_active_users", "Daily active users"),
                Frequency.weekly: ("wau", "weekly_active_users", "Weekly active users"),
                Frequency.monthly: ("mau", "monthly_active_users", "Monthly active users")}[self.audience.frequency]
            # rolling-window metrics are read on the period's last day; stickiness (DAU/MAU) swings with the
            # weekday of a single day, so it is the mean over the period
            specs: list[tuple[str, str, str, Fmt, bool]] = [
                (active, active_name, active_label, "int", False),
                ("participation_rate", "participation_rate", "Participation (28 days)", "pct", False),
                ("contributor_rate", "contributor_rate", "Contributors (28 days)", "pct", False),
                ("stickiness", "stickiness", "Stickiness (DAU/MAU, period mean)", "pct", True),
            ]
            for column, name, label, fmt, mean in specs:
                if column not in df.columns:
                    continue
                ref = self.cat.ref(name, label, self.engagement, column)
                sides = []
                if self.scope is not None and scope_known:
                    sides.append(self._side(self.scope.segment_value, scope, column, fmt, mean))
                sides.append(self._side("Organisation", org, column, fmt, mean))
                if any(s.current is not None for s in sides):
                    self.report.kpis.append(Kpi(ref, sides))
        if Section.activity_trend in self.audience.sections:
            self._activity_chart(org, scope)
        if Section.adoption_by_department in self.audience.sections:
            self._adoption_chart()

    def _side(self, label: str, rows: pd.DataFrame, column: str, fmt: Fmt, mean: bool) -> KpiSide:
        def over(start: dt.date, end: dt.date) -> Figure | None:
            hit = rows[(rows["activity_date"] >= (start if mean else end)) & (rows["activity_date"] <= end)]
            values = pd.to_numeric(hit[column], errors="coerce").dropna()
            if values.empty or (not mean and hit["activity_date"].iloc[-1] != end):
                return None
            # the smallest headcount over the days averaged: every day's group passed the threshold
            return Figure(float(values.mean()), fmt, int(hit["headcount"].min()))
        p = self.period
        return KpiSide(label, over(p.start, p.end), over(p.previous_start, p.previous_end))

    def _window(self, rows: pd.DataFrame) -> pd.DataFrame:
        first = self.as_of - dt.timedelta(days=self.config.trend_days - 1)
        return rows[rows["activity_date"] >= first]

    def _activity_chart(self, org: pd.DataFrame, scope: pd.DataFrame) -> None:
        assert self.engagement
        is_org = self.scope is None or scope.empty
        main = self._window(org if is_org else scope)
        if len(main) < 2:
            return
        who = "Organisation" if is_org or self.scope is None else self.scope.segment_value
        size = int(main["headcount"].min())
        active = Panel(f"Active users: {who}", "line", "int", [
            Series(lbl, list(main["activity_date"]), [float(v) for v in main[col]], size)
            for col, lbl in (("mau", "monthly (28 d)"), ("wau", "weekly (7 d)"), ("dau", "daily"))
            if col in main.columns])
        part_series = []
        if not is_org:
            part_series.append(Series(who, list(main["activity_date"]),
                                      [float(v) for v in main["participation_rate"]], size, highlight=True))
        o = self._window(org)
        if not o.empty:
            part_series.append(Series("Organisation", list(o["activity_date"]),
                                      [float(v) for v in o["participation_rate"]], int(o["headcount"].min()),
                                      highlight=is_org))
        panels = [active]
        if part_series:
            panels.append(Panel("Participation rate (28-day active / headcount)", "line", "pct", part_series))
        refs = [self.cat.ref("monthly_active_users", "Active users", self.engagement, "mau"),
                self.cat.ref("participation_rate", "Participation rate", self.engagement, "participation_rate")]
        last = main.iloc[-1]
        self.report.charts.append(Chart(
            "activity_trend", "Active users and participation", panels, refs,
            alt=f"Active users and participation of {who} over the last {self.config.trend_days} days; "
                f"{int(last['mau']):,} monthly active users on {self.as_of:%d %b %Y}."))

    def _adoption_chart(self) -> None:
        assert self.engagement
        df = self._engagement_rows(self.as_of, self.as_of, "and segment_type in ('department', 'org')")
        depts = df[df["segment_type"] == "department"].dropna(subset=["participation_rate"])
        org = df[df["segment_type"] == "org"]
        everyone = self.wh.frame(
            f"select segment_value, headcount from {_ident(self.engagement)} where activity_date = :d "
            f"and segment_type = 'department'", {"d": self.as_of})
        # the organisation's rate times its headcount minus the departments shown gives back the others:
        # they must be at least min_group_size people together (complementary suppression)
        kept = _kept(everyone, set(depts["segment_value"]), "segment_value", "headcount",
                     org["headcount"].iloc[0] if not org.empty else None, self.min)
        depts = depts[depts["segment_value"].isin(kept)]
        if len(depts) < 2:
            return
        depts = depts.sort_values("participation_rate")
        hidden = len(everyone) - len(depts)
        series = [Series(str(r["segment_value"]), [str(r["segment_value"])], [float(r["participation_rate"])],
                         int(r["headcount"]), highlight=self._is_scope(r)) for _, r in depts.iterrows()]
        reference = (("Organisation", float(org["participation_rate"].iloc[0]), int(org["headcount"].iloc[0]))
                     if not org.empty else None)
        note = (f"{hidden} department(s) are not shown: fewer than {self.min} people, or they would let the "
                f"others be worked out from the organisation's figure." if hidden > 0 else None)
        lowest = depts.iloc[0]
        self.report.charts.append(Chart(
            "adoption_by_department", "Adoption by department", [
                Panel(f"Participation rate on {self.as_of:%d %b %Y}", "barh", "pct", series, reference)],
            [self.cat.ref("participation_rate", "Participation rate", self.engagement, "participation_rate")],
            note=note,
            alt=f"Participation by department; lowest {lowest['segment_value']} at "
                f"{float(lowest['participation_rate']):.0%}."))

    # ---------------------------------------------------------------------------------- questions
    def add_questions(self) -> None:
        table = self.wh.first(self.config.tables.questions)
        if not table:
            return
        date_col = self.wh.col(table, *DATE_COLUMNS)
        rate_col = self.wh.col(table, "answered_rate", "answered_rate_ever", "answer_rate", "answered_rate_24h")
        asked_col = self.wh.col(table, "questions", "questions_asked", "question_count", "questions_total")
        answered_col = self.wh.col(table, "answered_questions", "questions_answered", "answered",
                                   "answered_ever", "answered_count")
        if not date_col or not (rate_col or (asked_col and answered_col)):
            log.warning("%s has no date or answered-rate columns; the questions section is left out", table)
            return
        seg_cols = self.wh.col(table, "segment_type") and self.wh.col(table, "segment_value")
        cols = [date_col] + [c for c in (rate_col, asked_col, answered_col) if c]
        if self.wh.col(table, "suppressed"):
            cols.append("suppressed")
        if seg_cols:
            cols += ["segment_type", "segment_value"]
        first = self.as_of - dt.timedelta(days=self.config.trend_days - 1)
        # marts with a period_type carry several windows per day: daily rows only, summed over our periods
        period_filter = " and period_type = 'day'" if self.wh.col(table, "period_type") else ""
        df = self.wh.frame(f"select {', '.join(_ident(c) for c in cols)} from {_ident(table)} "
                           f"where {_ident(date_col)} between :s and :e{period_filter}",
                           {"s": min(first, self.period.previous_start), "e": self.as_of})
        if df.empty:
            return
        df["day"] = df[date_col].map(_as_date)
        if "suppressed" in df.columns:
            df = df[~df["suppressed"].map(_truthy).astype(bool)]
        groups: list[tuple[str, pd.DataFrame, int | None]] = []
        if seg_cols:
            if self.scope is not None:
                mask = (df["segment_type"] == self.scope.segment_type) & (df["segment_value"] == self.scope.segment_value)
                groups.append((self.scope.segment_value, df[mask],
                               self.group_size(self.scope.segment_type, self.scope.segment_value)))
            groups.append(("Organisation", df[df["segment_type"] == "org"], self.group_size("org", "all")))
        else:  # an org-wide table
            groups.append(("Organisation", df, self.group_size("org", "all")))
        groups = [(lbl, g, size) for lbl, g, size in groups if self.ok(size) and not g.empty]
        if not groups:
            return

        def rate(rows: pd.DataFrame, start: dt.date, end: dt.date) -> float | None:
            rows = rows[(rows["day"] >= start) & (rows["day"] <= end)]
            if rows.empty:
                return None
            if asked_col and answered_col:
                asked = float(pd.to_numeric(rows[asked_col], errors="coerce").sum())
                return float(pd.to_numeric(rows[answered_col], errors="coerce").sum()) / asked if asked else None
            vals = pd.to_numeric(rows[rate_col], errors="coerce").dropna()
            return float(vals.mean()) if len(vals) else None

        ref = self.cat.ref("answered_rate", "Answered questions", table, rate_col or answered_col)
        p = self.period
        if Section.kpis in self.audience.sections:
            sides = []
            for lbl, rows, size in groups:
                cur, prev = rate(rows, p.start, p.end), rate(rows, p.previous_start, p.previous_end)
                sides.append(KpiSide(lbl, Figure(cur, "pct", size) if cur is not None and size else None,
                                     Figure(prev, "pct", size) if prev is not None and size else None))
            if any(s.current is not None for s in sides):
                self.report.kpis.append(Kpi(ref, sides))
        if Section.questions in self.audience.sections:
            series = []
            for lbl, rows, size in groups:
                ends = [self.as_of - dt.timedelta(days=7 * i) for i in range(self.config.trend_days // 7 - 1, -1, -1)]
                pts = [(e, rate(rows, e - dt.timedelta(days=6), e)) for e in ends]
                kept = [(e, v) for e, v in pts if v is not None]
                if len(kept) >= 2 and size:
                    series.append(Series(lbl, [e for e, _ in kept], [float(v) for _, v in kept], size,
                                         highlight=lbl != "Organisation" or len(groups) == 1))
            if series:
                self.report.charts.append(Chart(
                    "answered_trend", "Answered questions", [
                        Panel("Share of the week's questions answered by someone else", "line", "pct", series)],
                    [ref], alt=f"Weekly answered-question rate of {', '.join(s.label for s in series)}."))

    def add_backlog(self) -> None:
        table = self.wh.first(self.config.tables.unanswered)
        if not table or Section.questions not in self.audience.sections:
            return
        cid = self.wh.col(table, "container_id", "container")
        by_segment = cid is None and bool(self.wh.col(table, "segment_type") and self.wh.col(table, "segment_value"))
        if by_segment:  # one row per segment; containers are segment_type = 'container'
            cid = "segment_value"
        count = self.wh.col(table, "unanswered_questions", "open_questions", "unanswered", "backlog",
                            "questions", "unanswered_backlog")
        wide = [c for c in self.wh.columns(table) if re.fullmatch(r"open_(\d+_\d+d|over_\d+d)", c)]
        if not cid or not count:
            log.warning("%s has no container or count column; the backlog section is left out", table)
            return
        band = self.wh.col(table, "age_band", "age_bucket")
        date_col = self.wh.col(table, *DATE_COLUMNS)
        cols = [cid, count] + wide + [c for c in (band, self.wh.col(table, "suppressed"),
                                           self.wh.col(table, "member_count", "members", "group_size"),
                                           self.wh.col(table, "kind", "container_kind"),
                                           self.wh.col(table, "owner_department", "department")) if c]
        sql = f"select {', '.join(_ident(c) for c in cols)} from {_ident(table)}"
        params: dict[str, Any] = {}
        conditions = ["segment_type = 'container'"] if by_segment else []
        if date_col:
            conditions.append(f"{_ident(date_col)} = (select max({_ident(date_col)}) from {_ident(table)} "
                              f"where {_ident(date_col)} <= :d)")
            params["d"] = self.as_of
        if conditions:
            sql += " where " + " and ".join(conditions)
        df = self.wh.frame(sql, params)
        if df.empty:
            return
        info = self._container_info()
        size_col = self.wh.col(table, "member_count", "members", "group_size")
        kind_col = self.wh.col(table, "kind", "container_kind")
        dept_col = self.wh.col(table, "owner_department", "department")
        rows: list[BacklogRow] = []
        withheld = 0
        for container, g in df.groupby(cid, sort=False):
            known = info.get(str(container), {})
            dept = g[dept_col].iloc[0] if dept_col else known.get("owner_department")
            if self.scope is not None and self.scope.segment_type == "department" and dept != self.scope.segment_value:
                continue
            # the smaller of the sizes the backlog mart and the container directory give; unknown = withheld
            candidates = ((g[size_col].max() if size_col else None), known.get("member_count"))
            sizes = [int(n) for n in (_num(v) for v in candidates) if n is not None]
            size = min(sizes) if sizes else None
            flagged = "suppressed" in g.columns and bool(g["suppressed"].map(_truthy).any())
            if flagged or not self.ok(size):
                withheld += 1
                continue
            assert size is not None
            counts = pd.to_numeric(g[count], errors="coerce").fillna(0)
            total = float(counts.sum()) if band else float(counts.iloc[0])
            if total <= 0:
                continue
            if band:
                by_age = {str(b): Figure(float(v), "int", size) for b, v in zip(g[band], counts, strict=True)}
            else:  # wide layout: open_0_1d, open_1_7d, open_7_30d, open_over_30d
                by_age = {c.removeprefix("open_").replace("over_", ">").replace("_", "-"):
                          Figure(float(_num(g[c].iloc[0]) or 0.0), "int", size) for c in wide}
            kind = g[kind_col].iloc[0] if kind_col else known.get("kind")
            label = f"{container} ({kind})" if kind else str(container)
            rows.append(BacklogRow(label, Figure(total, "int", size), by_age, size))
        rows.sort(key=lambda r: -r.open_questions.value)
        self.report.backlog = rows[:15]
        self.report.backlog_withheld = withheld
        if rows:
            self.report.backlog_metric = self.cat.ref("unanswered_backlog", "Unanswered questions", table, count)

    # ------------------------------------------------------------------------------------- alerts
    def add_alerts(self) -> None:
        table = self.wh.first(self.config.tables.alerts)
        if not table or Section.alerts not in self.audience.sections:
            return
        want = ["alert_date", "alert_type", "severity", "segment_type", "segment_value", "metric", "observed",
                "threshold", "evidence"]
        have = [c for c in want if c in self.wh.columns(table)]
        if "alert_date" not in have or "alert_type" not in have:
            return
        df = self.wh.frame(f"select {', '.join(have)} from {_ident(table)} where alert_date between :s and :e",
                           {"s": self.period.start, "e": self.period.end})
        items: list[AlertItem] = []
        withheld = 0
        for _, r in df.iterrows():
            st = str(r.get("segment_type") or "org")
            sv = None if r.get("segment_value") is None else str(r.get("segment_value"))
            if self.scope is not None and st != "org" and not (
                    st == self.scope.segment_type and sv == self.scope.segment_value):
                continue
            day = _as_date(r["alert_date"])
            size = self.group_size(st, sv, day) or self.group_size(st, sv)
            if not self.ok(size):
                withheld += 1
                continue
            assert size is not None
            metric = str(r["metric"]) if r.get("metric") else None
            # a metric of its own in the catalogue, else the alert table's list of alert metrics
            ref = (None if not metric else self.cat.ref(metric, metric.replace("_", " "), None, None)
                   if metric in self.cat.by_name else self.cat.ref(metric, metric.replace("_", " "), table, "metric"))
            obs, thr = _num(r.get("observed")), _num(r.get("threshold"))
            fmt: Fmt = "pct" if all(v is None or abs(v) <= 1 for v in (obs, thr)) else "ratio"
            items.append(AlertItem(
                date=day, alert_type=str(r["alert_type"]), severity=str(r.get("severity") or "warning"),
                segment="Organisation" if st == "org" else f"{sv} ({st.replace('_', ' ')})", metric=ref,
                observed=Figure(obs, fmt, size) if obs is not None else None,
                threshold=Figure(thr, fmt, size) if thr is not None else None,
                evidence=str(r.get("evidence") or ""), group_size=size))
        # an alert raised every day of the period is one finding: keep its latest evidence
        latest: dict[tuple[str, str, str], AlertItem] = {}
        for a in sorted(items, key=lambda a: a.date):
            latest[(a.alert_type, a.segment, a.metric.name if a.metric else "")] = a
        items = sorted(latest.values(), key=lambda a: (_SEVERITY_RANK.get(a.severity.lower(), 9), a.alert_type,
                                                       a.segment))
        self.report.alerts = items
        self.report.alerts_withheld = withheld
        if items:
            self.report.alerts_metric = self.cat.ref("alerts", "Alerts", table, "alert_type")

    # ------------------------------------------------------------------------------------ network
    def add_network(self) -> None:
        if Section.network not in self.audience.sections and Section.kpis not in self.audience.sections:
            return
        org_t = self.wh.first(self.config.tables.network_org)
        dept_t = self.wh.first(self.config.tables.network_department)
        org_size = self.group_size("org", "all")
        if not self.ok(org_size):
            return
        assert org_size is not None
        hist = pd.DataFrame()
        if org_t and self.wh.col(org_t, "cross_department_share"):
            date_col = self.wh.col(org_t, *DATE_COLUMNS)
            if date_col:
                win, wp = self._network_window(org_t)
                hist = self.wh.frame(f"select {_ident(date_col)} as d, cross_department_share as v "
                                     f"from {_ident(org_t)} where {_ident(date_col)} <= :e{win} order by 1",
                                     {"e": self.as_of, **wp})
                hist["d"] = hist["d"].map(_as_date)
            else:
                hist = self.wh.frame(f"select cross_department_share as v from {_ident(org_t)}")
                hist["d"] = self.as_of
            hist = hist.dropna(subset=["v"])
        dept_now = self._dept_network(dept_t)
        if hist.empty and dept_now.empty:
            return
        ref = self.cat.ref("cross_department_share", "Cross-department share", org_t or dept_t,
                           "cross_department_share")
        if Section.kpis in self.audience.sections and not hist.empty:
            cur = hist.iloc[-1]
            prev = hist[hist["d"] <= self.period.previous_end]
            sides = []
            if self.scope is not None and self.scope.segment_type == "department" and not dept_now.empty:
                mine = dept_now[dept_now["department"] == self.scope.segment_value]
                if not mine.empty:
                    sides.append(KpiSide(self.scope.segment_value, Figure(float(mine["v"].iloc[0]), "pct",
                                                                          int(mine["people"].iloc[0])), None))
            sides.append(KpiSide("Organisation", Figure(float(cur["v"]), "pct", org_size),
                                 Figure(float(prev["v"].iloc[-1]), "pct", org_size)
                                 if not prev.empty and prev["d"].iloc[-1] != cur["d"] else None))
            self.report.kpis.append(Kpi(ref, sides))
        if Section.network not in self.audience.sections:
            return
        first = self.as_of - dt.timedelta(days=self.config.trend_days - 1)
        recent = hist[hist["d"] >= first] if not hist.empty else hist
        if len(recent) >= 2:
            self.report.charts.append(Chart(
                "cross_department", "Cross-department interaction", [Panel(
                    "Share of interactions between people of different departments", "line", "pct",
                    [Series("Organisation", list(recent["d"]), [float(v) for v in recent["v"]], org_size,
                            highlight=True)])], [ref],
                alt=f"Cross-department share of interactions, now {float(recent['v'].iloc[-1]):.0%}."))
            return
        if len(dept_now) >= 2:
            dept_now = dept_now.sort_values("v")
            series = [Series(str(r["department"]), [str(r["department"])], [float(r["v"])], int(r["people"]),
                             highlight=self.scope is not None and r["department"] == self.scope.segment_value)
                      for _, r in dept_now.iterrows()]
            reference = ("Organisation", float(hist["v"].iloc[-1]), org_size) if not hist.empty else None
            self.report.charts.append(Chart(
                "cross_department", "Cross-department interaction", [Panel(
                    "Share of each department's interactions that involve another department", "barh", "pct",
                    series, reference)], [ref],
                alt="Cross-department share of interactions by department."))

    def _network_window(self, table: str) -> tuple[str, dict[str, Any]]:
        """The network marts hold several windows per date (rolling 28 and 90 days, month snapshots): the
        reports read the 28-day rolling window, so that no figure mixes windows."""
        if self.wh.col(table, "window_name"):
            return " and window_name = :window_name", {"window_name": "rolling_28d"}
        return "", {}

    def _latest(self, table: str) -> tuple[str, dict[str, Any]]:
        """`where` clause (and parameters) of a table's latest rows on or before as_of (one window)."""
        date_col = self.wh.col(table, *DATE_COLUMNS)
        win, params = self._network_window(table)
        if not date_col:
            return (" where 1 = 1" + win), params
        return (f" where {_ident(date_col)} = (select max({_ident(date_col)}) from {_ident(table)} "
                f"where {_ident(date_col)} <= :d{win}){win}"), {**params, "d": self.as_of}

    def _dept_network(self, table: str | None) -> pd.DataFrame:
        if not table or not self.wh.col(table, "cross_department_share") or not self.wh.col(table, "department"):
            return pd.DataFrame(columns=["department", "v", "people"])
        size_col = self.wh.col(table, "people", "headcount", "group_size")
        if not size_col:
            return pd.DataFrame(columns=["department", "v", "people"])
        sup = ", suppressed" if self.wh.col(table, "suppressed") else ""
        where, params = self._latest(table)
        df = self.wh.frame(f"select department, cross_department_share as v, {_ident(size_col)} as people{sup} "
                           f"from {_ident(table)}{where}", params)
        if df.empty:  # no window on or before as_of (the network stage has not run yet)
            return pd.DataFrame(columns=["department", "v", "people"])
        everyone = df.assign(people=pd.to_numeric(df["people"], errors="coerce"))
        if sup:
            df = df[~df["suppressed"].map(_truthy).astype(bool)]
        df = df.dropna(subset=["v", "people"])
        df = df[df["people"].map(lambda n: self.ok(int(n))).astype(bool)]
        # the organisation's figure is shown next to the departments: the ones left out must not come back
        # by subtraction (complementary suppression over the directory people of the window)
        kept = _kept(everyone, set(df["department"]), "department", "people", self._directory_people(), self.min)
        return df[df["department"].isin(kept)].reset_index(drop=True)

    def _directory_people(self) -> float | None:
        org_t = self.wh.first(self.config.tables.network_org)
        if not org_t or not self.wh.col(org_t, "directory_people"):
            return None
        where, params = self._latest(org_t)
        df = self.wh.frame(f"select directory_people as n from {_ident(org_t)}{where}", params)
        return _num(df["n"].iloc[0]) if len(df) else None

    # ---------------------------------------------------------------------------------- influence
    def add_influence(self) -> None:
        if Section.influence not in self.audience.sections:
            return
        table = self.wh.first(self.config.tables.influence_tiers)
        if table and all(self.wh.col(table, c) for c in ("influence_tier", "people")):
            size_col = self.wh.col(table, "group_size", "headcount")
            dept_col = self.wh.col(table, "department", "segment_value")
            sup = self.wh.col(table, "suppressed")
            cols = [c for c in (dept_col, "influence_tier", "people", size_col, sup) if c]
            where, params = self._latest(table)
            df = self.wh.frame(f"select {', '.join(_ident(c) for c in cols)} from {_ident(table)}{where}", params)
            rows: list[TierRow] = []
            key = dept_col or "__org"
            if not dept_col:
                df[key] = None
            df["_group"] = df[key].fillna("__org").map(lambda g: "Organisation" if g == "__org" else str(g))
            for label, g in df.groupby("_group", sort=True):
                if self.scope is not None and label != "Organisation" and not (
                        self.scope.segment_type == "department" and label == self.scope.segment_value):
                    continue
                if sup and g[sup].map(_truthy).any():
                    continue
                size = (int(g[size_col].max()) if size_col and _num(g[size_col].max()) is not None
                        else self.group_size("org" if label == "Organisation" else "department",
                                             None if label == "Organisation" else label))
                own = self.group_size("org" if label == "Organisation" else "department",
                                      None if label == "Organisation" else label)
                if not self.ok(size) or (own is not None and not self.ok(own)):
                    continue
                assert size is not None
                counts = {str(t): Figure(float(n), "int", size) for t, n in zip(g["influence_tier"], g["people"],
                                                                                strict=True) if _num(n) is not None}
                if counts:
                    rows.append(TierRow(label, size, counts))
            # the organisation's row minus the departments shown gives back the others, tier by tier: they
            # must hold min_group_size people of every tier (complementary suppression, by category)
            org_rows = df[df["_group"] == "Organisation"]
            shown = {r.group for r in rows if r.group != "Organisation"}
            if shown and not org_rows.empty and any(r.group == "Organisation" for r in rows):
                cells = df[df["_group"] != "Organisation"].assign(
                    people=lambda d: pd.to_numeric(d["people"], errors="coerce"))
                totals = org_rows.assign(people=pd.to_numeric(org_rows["people"], errors="coerce"))
                kept = _kept(cells, shown, "_group", "people", None, self.min, category="influence_tier",
                             totals=totals)
                rows = [r for r in rows if r.group == "Organisation" or r.group in kept]
            rows.sort(key=lambda r: (r.group != "Organisation", r.group))
            self.report.tiers = rows
            if rows:
                self.report.tiers_metric = self.cat.ref("influence_tier", "Influence tiers", table, "influence_tier")
        self._leaderboard()

    # ------------------------------------------------------------------------------- introductions
    def add_introductions(self) -> None:
        """Groups to introduce, for the organisation-wide (leadership) audience: the top 3 pairs of departments
        of mart_group_connections by connection gap, with their shared topics and ties per 100 pairs of
        people. Only pairs the mart did not suppress and whose smaller side holds min_group_size people on
        the shared topics; nothing when the mart is missing, empty or measured after as_of."""
        if self.scope is not None or Section.network not in self.audience.sections:
            return
        table = self.wh.first(["mart_group_connections"])
        need = ("department_a", "department_b", "suppressed", "gap_rank", "shared_topics", "ties_per_100_pairs",
                "people_a_on_shared_topics", "people_b_on_shared_topics")
        if not table or not all(self.wh.col(table, c) for c in need):
            return
        where = " and measured_through <= :d" if self.wh.col(table, "measured_through") else ""
        df = self.wh.frame(f"select {', '.join(need)} from {_ident(table)} where gap_rank is not null{where} "
                           f"order by gap_rank", {"d": self.as_of})
        rows: list[IntroductionRow] = []
        for _, r in df.iterrows():
            sizes = [_num(r["people_a_on_shared_topics"]), _num(r["people_b_on_shared_topics"])]
            shared, ties = _num(r["shared_topics"]), _num(r["ties_per_100_pairs"])
            if _truthy(r["suppressed"]) or None in sizes or shared is None or ties is None:
                continue
            size = int(min(s for s in sizes if s is not None))
            if not self.ok(size):
                continue
            rows.append(IntroductionRow(len(rows) + 1, str(r["department_a"]), str(r["department_b"]),
                                        Figure(shared, "int", size), Figure(ties, "ratio", size), size))
            if len(rows) == 3:
                break
        self.report.introductions = rows
        if rows:
            self.report.introductions_metric = self.cat.ref("connection_gap", "Groups to introduce", table,
                                                            "connection_gap")

    # ------------------------------------------------------------------------------------- impact
    def add_impact(self) -> None:
        """The business-impact results of the whole organisation (`pipelines.metrics`): engaged vs not,
        correlations with outcomes, campaign effects; only rows the mart did not suppress and whose
        smaller group holds min_group_size; never a department's (the audience may be one)."""
        if Section.kpis not in self.audience.sections or not self.ok(self.group_size("org", "all")):
            return
        rows: list[ImpactRow] = []
        ev = self.wh.first(["mart_impact_engaged_vs_not"])
        if ev and all(self.wh.col(ev, c) for c in ("outcome", "difference", "n_engaged", "n_not_engaged")):
            df = self.wh.frame(f"select * from {_ident(ev)} where segment_type = 'org' order by outcome")
            for _, r in df.iterrows():
                n = min(int(_num(r["n_engaged"]) or 0), int(_num(r["n_not_engaged"]) or 0))
                if _truthy(r.get("suppressed")) or _num(r["difference"]) is None or not self.ok(n):
                    continue
                rows.append(ImpactRow("engaged_vs_not", str(r["outcome"]).replace("_", " "),
                                      float(r["difference"]), _num(r.get("ci_low")), _num(r.get("ci_high")), n,
                                      f"engaged {float(r['mean_engaged']):,.2f} vs not engaged "
                                      f"{float(r['mean_not_engaged']):,.2f} ({r.get('engaged_definition') or ''})"))
        corr = self.wh.first(["mart_impact_correlation"])
        if corr and all(self.wh.col(corr, c) for c in ("outcome", "rho", "n", "engagement_measure")):
            df = self.wh.frame(f"select * from {_ident(corr)} order by outcome, engagement_measure")
            for _, r in df.iterrows():
                n = int(_num(r["n"]) or 0)
                if _truthy(r.get("suppressed")) or _num(r["rho"]) is None or not self.ok(n):
                    continue
                lag = int(_num(r.get("lag_months")) or 0)
                rows.append(ImpactRow("correlation", f"{r['engagement_measure']} and {r['outcome']}".replace("_", " "),
                                      float(r["rho"]), _num(r.get("ci_low")), _num(r.get("ci_high")), n,
                                      f"Spearman rho, {r.get('level') or ''} level"
                                      + (f", outcome {lag} month(s) later" if lag else ", same month")))
        its = self.wh.first(["mart_impact_its"])
        if its and all(self.wh.col(its, c) for c in ("intervention", "level_change", "n")):
            df = self.wh.frame(f"select * from {_ident(its)} order by intervention")
            for _, r in df.iterrows():
                n = min(int(_num(r.get("n_before")) or 0), int(_num(r.get("n_after")) or 0)) \
                    if self.wh.col(its, "n_before") else int(_num(r["n"]) or 0)
                if _truthy(r.get("suppressed")) or _num(r["level_change"]) is None or not self.ok(n):
                    continue
                rows.append(ImpactRow("campaign", f"{r['intervention']} ({r.get('metric') or ''})",
                                      float(r["level_change"]), _num(r.get("level_ci_low")),
                                      _num(r.get("level_ci_high")), n, "level change at the intervention"))
        self.report.impact = rows[:12]
        if rows:
            self.report.impact_metric = self.cat.ref("impact", "Business impact", ev or corr or its, "difference")

    def _leaderboard(self) -> None:
        names = load_names(self.settings, self.config)
        table = self.wh.first(self.config.tables.person_network)
        if not names or not table or not self.wh.col(table, "influence_rank"):
            return
        tier = "influence_tier" if self.wh.col(table, "influence_tier") else "null"
        where = "where influence_rank is not null"
        params: dict[str, Any] = {}
        if self.scope is not None:
            col = self.wh.col(table, _ident(self.scope.segment_type))
            if not col:
                return
            where += f" and {_ident(col)} = :sv"
            params["sv"] = self.scope.segment_value
        date_col = self.wh.col(table, *DATE_COLUMNS)
        if date_col:
            win, wp = self._network_window(table)
            where += (f" and {_ident(date_col)} = (select max({_ident(date_col)}) from {_ident(table)} "
                      f"where {_ident(date_col)} <= :d{win}){win}")
            params.update(d=self.as_of, **wp)
        df = self.wh.frame(f"select person_key, influence_rank, {tier} as tier from {_ident(table)} {where} "
                           f"order by influence_rank limit :n", {**params, "n": self.config.leaderboard_size})
        people = [NamedInfluencer(int(r["influence_rank"]), names[r["person_key"]], str(r["tier"] or ""))
                  for _, r in df.iterrows() if r["person_key"] in names]
        self.report.leaderboard = people
        if len(people) < len(df):
            self.report.notes.append(f"{len(df) - len(people)} of the top {len(df)} people have no display "
                                     f"name configured and are not listed.")


def build_report(conn: Connection, settings: Settings, config: ReportsConfig, audience: Audience,
                 as_of: dt.date) -> Report:
    """The privacy-checked content of one audience's report for the period ending `as_of`."""
    b = _Builder(Warehouse(conn), settings, config, audience, as_of)
    b.report.coverage = coverage(b.wh, settings, config, b.period.start, b.period.end, b.engagement)
    b.add_engagement()
    b.add_questions()
    b.add_network()
    b.add_alerts()
    b.add_backlog()
    b.add_influence()
    b.add_introductions()
    from pipelines.reports.plan import objectives, relationships

    b.report.objectives = objectives(b)
    b.report.relationships = relationships(b)
    b.add_impact()
    b.report.kpis = [Kpi(k.metric, [replace(side, small_base=config.small_base) for side in k.sides])
                     for k in b.report.kpis]
    b.report.missing_from_catalogue = list(b.cat.missing)
    b.report.definitions = sorted((m for m in b.cat.used.values() if m.is_inline), key=lambda m: m.label.lower())
    b.report.check_privacy()
    return b.report
