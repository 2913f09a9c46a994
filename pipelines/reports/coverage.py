"""How much of a report's period the data really covers, per source (issue 16, part 1: freshness first).

`coverage(wh, settings, config, start, end)` reads what the pipeline recorded about every day of every
source and returns a `Coverage`: per source the last complete day, the days of the period it delivered
(its completeness score), what went wrong with the others, and the share of announced thread replies it
received; plus the last day the published marts hold. A report states it at the top; when the data is not
complete for the whole period the email carries an unmistakable "data incomplete" banner or is held,
as `reports.freshness.on_incomplete` (or the audience's own `on_incomplete`) says.

What a day of a source is, from `dq_source_days` (written at validation, `pipelines.jobs.record_source_days`):
`delivered` and `high` (more volume than usual) are complete; `low` (a volume drop let through as a
warning) is partial; `empty` and `stale` (let through as warnings) and a rejected batch are not delivered;
a day the table does not hold was never validated: the source is late. `mart_reply_completeness` adds the
replies: a day below its source's `warn_below` makes the source incomplete. The marts count too: a period
whose last day the engagement mart does not hold is not covered, whatever the sources say (a failed
publication). A warehouse without `dq_source_days` (built before it existed) is judged by the marts alone.

Nothing here reads the wall clock: "late" is relative to the period's end.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelines.config import Settings
    from pipelines.reports.content import Warehouse
    from pipelines.reports_config import ReportsConfig

COMPLETE_STATUSES = frozenset({"delivered", "high"})
PARTIAL_STATUSES = frozenset({"low"})
#: the name under which the published marts appear in a coverage (not a source)
MARTS = "published marts"


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def _fmt_days(days: list[dt.date], limit: int = 4) -> str:
    shown = ", ".join(f"{d:%d %b}" for d in days[:limit])
    return shown + (f" and {len(days) - limit} more" if len(days) > limit else "")


@dataclass(frozen=True)
class SourceCoverage:
    source: str
    start: dt.date
    end: dt.date
    complete_days: tuple[dt.date, ...]
    last_complete_day: dt.date | None
    problems: tuple[str, ...] = ()
    reply_completeness: float | None = None
    late_days: tuple[dt.date, ...] = ()  # the days after the last complete one that no batch brought

    @property
    def days_expected(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def score(self) -> float:
        """Share of the period's days this source delivered completely (0..1)."""
        return len(self.complete_days) / self.days_expected if self.days_expected > 0 else 0.0

    @property
    def status(self) -> str:
        """complete | late (every day complete up to a day, nothing after it) | incomplete | empty (no day)."""
        if not self.complete_days:
            return "empty"
        if len(self.complete_days) == self.days_expected and not self.problems:
            return "complete"
        if self.late_days and len(self.complete_days) + len(self.late_days) == self.days_expected \
                and len(self.problems) == 1:
            return "late"
        return "incomplete"

    @property
    def is_complete(self) -> bool:
        return self.status == "complete"

    @property
    def summary(self) -> str:
        last = f"{self.last_complete_day:%d %b %Y}" if self.last_complete_day else "none"
        text = (f"{self.source}: last complete day {last}, {len(self.complete_days)} of {self.days_expected} "
                f"day(s) complete ({self.score:.0%})")
        if self.reply_completeness is not None:
            text += f", {self.reply_completeness:.1%} of announced replies received"
        return text + ("; " + "; ".join(self.problems) if self.problems else "")


@dataclass(frozen=True)
class Coverage:
    start: dt.date
    end: dt.date
    sources: tuple[SourceCoverage, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return bool(self.sources) and all(s.is_complete for s in self.sources)

    @property
    def data_through(self) -> dt.date | None:
        """The last day every source and the marts cover without a gap since the period's start (None: not
        even its first day). Never later than the period's end."""
        through: dt.date | None = self.end
        for s in self.sources:
            have = set(s.complete_days)
            day, last = self.start, None
            while day <= self.end and day in have:
                last, day = day, day + dt.timedelta(days=1)
            through = None if last is None or through is None else min(through, last)
        return through if self.sources else None

    @property
    def incomplete(self) -> list[SourceCoverage]:
        return [s for s in self.sources if not s.is_complete]

    @property
    def headline(self) -> str:
        """One line for the banner or the coverage line of a report."""
        if self.complete:
            return (f"Data complete for the whole period, {self.start:%d %b} to {self.end:%d %b %Y} "
                    f"({len(self.sources)} source(s) checked).")
        through = self.data_through
        names = ", ".join(f"{s.source} ({s.status})" for s in self.incomplete) or "no source recorded"
        covered = (f"complete only up to {through:%d %b %Y}" if through is not None
                   else "not complete for any day")
        return (f"Data incomplete: this period ({self.start:%d %b} to {self.end:%d %b %Y}) is {covered}. "
                f"Affected: {names}. Figures after that day are missing or partial and are not the real "
                "activity.")

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "complete": self.complete,
                "data_through": self.data_through.isoformat() if self.data_through else None,
                "sources": {s.source: {"status": s.status, "score": round(s.score, 4),
                                       "last_complete_day": s.last_complete_day.isoformat()
                                       if s.last_complete_day else None,
                                       "reply_completeness": s.reply_completeness,
                                       "problems": list(s.problems)} for s in self.sources}}


def _source_names(settings: Settings, config: ReportsConfig, recorded: set[str]) -> list[str]:
    wanted = config.freshness.sources
    if wanted is not None:
        return list(wanted)
    enabled = [s.name for s in getattr(settings, "sources", []) or [] if getattr(s, "enabled", True)]
    return enabled or sorted(recorded)


def _source_coverage(name: str, start: dt.date, end: dt.date, rows: list[dict[str, Any]],
                     replies: list[dict[str, Any]]) -> SourceCoverage:
    by_day = {r["day"]: r for r in rows}
    complete: list[dt.date] = []
    not_delivered: dict[str, list[dt.date]] = {}
    for day in _days(start, end):
        r = by_day.get(day)
        if r is None:
            not_delivered.setdefault("no data received", []).append(day)
        elif r.get("rejected"):
            not_delivered.setdefault("batch rejected by validation", []).append(day)
        elif r["status"] in COMPLETE_STATUSES:
            complete.append(day)
        elif r["status"] in PARTIAL_STATUSES:
            not_delivered.setdefault("partial (volume far below usual)", []).append(day)
        else:
            not_delivered.setdefault(f"not delivered ({r['status']})", []).append(day)
    # the last complete day may lie before the period (a source silent for weeks)
    earlier = [d for d, r in by_day.items() if d < start and not r.get("rejected")
               and r["status"] in COMPLETE_STATUSES]
    last = max(complete) if complete else (max(earlier) if earlier else None)
    absent = not_delivered.get("no data received", [])
    late = tuple(d for d in absent if not complete or d > max(complete))
    problems = [f"{why}: {_fmt_days(days)}" for why, days in not_delivered.items()]
    reply = None
    if replies:
        announced = sum(float(r["replies_announced"] or 0) for r in replies)
        fetched = sum(float(r["replies_fetched"] or 0) for r in replies)
        reply = 1.0 if announced <= 0 else min(1.0, fetched / announced)
        low = sorted(r["thread_date"] for r in replies if r.get("below_threshold"))
        if low:
            problems.append(f"replies incomplete for threads of {_fmt_days(low)}")
    return SourceCoverage(name, start, end, tuple(complete), last, tuple(problems), reply, late)


def _marts_coverage(wh: Warehouse, table: str | None, start: dt.date, end: dt.date) -> SourceCoverage | None:
    if not table or not wh.col(table, "activity_date"):
        return None
    from pipelines.reports.content import _as_date

    df = wh.frame(f"select distinct activity_date as d from {table} where activity_date <= :e "
                  "and activity_date >= :s", {"s": start - dt.timedelta(days=366), "e": end})
    have = {_as_date(d) for d in df["d"]}
    complete = tuple(d for d in _days(start, end) if d in have)
    missing = [d for d in _days(start, end) if d not in have]
    late = tuple(d for d in missing if not complete or d > max(complete))
    problems = (f"not published: {_fmt_days(missing)}",) if missing else ()
    return SourceCoverage(MARTS, start, end, complete, max(have) if have else None, problems, None, late)


def coverage(wh: Warehouse, settings: Settings, config: ReportsConfig, start: dt.date, end: dt.date,
             engagement: str | None) -> Coverage:
    """The coverage of [start, end] by every source the reports depend on and by the published marts."""
    from pipelines.reports.content import _as_date

    sources: list[SourceCoverage] = []
    days_t = wh.first(["dq_source_days"])
    if days_t:
        cols = ["source", "day", "status"] + [c for c in ("rejected",) if wh.col(days_t, c)]
        df = wh.frame(f"select {', '.join(cols)} from {days_t} "
                      "where cast(day as date) between cast(:s as date) and cast(:e as date)",
                      {"s": start - dt.timedelta(days=366), "e": end})
        rows: dict[str, list[dict[str, Any]]] = {}
        for r in df.to_dict("records"):
            r["day"] = _as_date(r["day"])
            rows.setdefault(str(r["source"]), []).append(r)
        replies: dict[str, list[dict[str, Any]]] = {}
        rep_t = wh.first(["mart_reply_completeness"])
        if rep_t:
            rf = wh.frame(f"select source, thread_date, replies_announced, replies_fetched, below_threshold "
                          f"from {rep_t} where cast(thread_date as date) between cast(:s as date) and cast(:e as date)",
                          {"s": start, "e": end})  # the published mart holds the day as text
            for r in rf.to_dict("records"):
                r["thread_date"] = _as_date(r["thread_date"])
                replies.setdefault(str(r["source"]), []).append(r)
        for name in _source_names(settings, config, set(rows)):
            sources.append(_source_coverage(name, start, end, rows.get(name, []), replies.get(name, [])))
    marts = _marts_coverage(wh, engagement, start, end)
    if marts is not None:
        sources.append(marts)
    return Coverage(start, end, tuple(sources))
