"""When a connector goes back to older threads: the late-reply revisit schedule.

Replies, reactions and likes keep arriving on threads long after they were started; a connector that
re-reads only the last few days never sees them. Re-reading everything every day would spend the
platform's rate limit on threads that rarely change, so older threads are re-read less often, by tiers:

    revisit:
      - {name: daily, max_age_days: 7, every_days: 1}      # the last week, every run
      - {name: weekly, max_age_days: 91, every_days: 7}    # the last quarter, once a week
      - {name: monthly, max_age_days: 365, every_days: 28} # the last year, every four weeks

A tier covers the threads whose day is `max_age_days` or fewer days before the run's last day (and older
than the previous tier's). It is due on a run whose interval contains a day d with
`d.toordinal() % every_days == 0` (every 7 days: Sundays; every 28 days: every fourth Sunday), so the
schedule depends on the run's dates only: a rerun of the same dates revisits the same threads, and two
machines agree. `max_age_days: null` on the last tier means back to the first day ever extracted. A run
sweeps from the oldest bound of its due tiers to its end in one go (the connectors' sweeps are contiguous:
history pages, newest-first lists), so the shallower tiers are swept on that run too and are reported as
revisited. What each tier costs is bounded by the connector's request budget
(`pipelines.connectors.budget`): a revisit run takes longer, it never exceeds the platform's limits.

The single horizon of earlier releases (`late_reply_horizon_days: N`, Yammer `late_horizon_days`) is still
accepted and means exactly what it meant: one daily tier of N days and no older revisits (a warning says so
in the extract report); giving both it and `revisit` is refused.

This module is pure: dates in, dates out. It never reads the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: the upper bound of `max_age_days` (ten years); the last tier may be unbounded (null)
MAX_AGE_LIMIT = 3650


class RevisitTier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$",
                      description="the tier's name in the reports and the quality tables")
    max_age_days: int | None = Field(ge=0, le=MAX_AGE_LIMIT, description="threads up to this many days older "
                                     "than the run's last day; null: back to the first day ever extracted")
    every_days: int = Field(1, ge=1, le=366, description="due on days whose ordinal is a multiple of this")


DEFAULT_TIERS: tuple[RevisitTier, ...] = (
    RevisitTier(name="daily", max_age_days=7, every_days=1),
    RevisitTier(name="weekly", max_age_days=91, every_days=7),
    RevisitTier(name="monthly", max_age_days=365, every_days=28),
)


def default_tiers() -> list[RevisitTier]:
    return [t.model_copy() for t in DEFAULT_TIERS]


def check_tiers(tiers: list[RevisitTier]) -> list[RevisitTier]:
    """Tiers in order of age: names unique, `max_age_days` strictly increasing, only the last one
    unbounded, a tier never re-read more often than a younger one (a pydantic field validator)."""
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise ValueError(f"revisit tier names must be unique (got {names})")
    for i, (a, b) in enumerate(zip(tiers, tiers[1:], strict=False)):
        if a.max_age_days is None:
            raise ValueError(f"revisit tier {a.name!r}: only the last tier may have max_age_days null")
        if b.max_age_days is not None and b.max_age_days <= a.max_age_days:
            raise ValueError(f"revisit tiers must be in increasing max_age_days: {b.name!r} ({b.max_age_days}) "
                             f"after {a.name!r} ({a.max_age_days})")
        if b.every_days < a.every_days:
            raise ValueError(f"revisit tier {tiers[i + 1].name!r} is re-read more often (every {b.every_days} days) "
                             f"than the younger tier {a.name!r} (every {a.every_days}): older threads change less")
    return tiers


def resolve(revisit: list[RevisitTier] | None, horizon: int | None, horizon_option: str) -> tuple[
        list[RevisitTier], str | None]:
    """The tiers of a source's options and, for the old single horizon, the warning for the report.
    `revisit` None and no horizon: the default tiers. Both given: refused (a ValueError naming both)."""
    if revisit is not None and horizon is not None:
        raise ValueError(f"give either revisit or {horizon_option} (deprecated), not both")
    if horizon is None:
        return (list(revisit) if revisit is not None else default_tiers()), None
    tiers = [RevisitTier(name="daily", max_age_days=horizon, every_days=1)] if horizon > 0 else []
    return tiers, (f"{horizon_option}: {horizon} is deprecated: threads older than {horizon} days are never "
                   "revisited, so their late replies and reactions are never seen; set `revisit` (tiers, see "
                   "pipelines/connectors/revisit.py) instead")


class RevisitOptions(BaseModel):
    """The schedule part of a source's options (Slack, Teams, Viva Engage): each declares its own
    `revisit` field and its deprecated single horizon, named by `horizon_option`; this checks the tiers,
    refuses both at once, and makes the run's plan."""

    horizon_option: ClassVar[str] = "late_reply_horizon_days"
    revisit: list[RevisitTier] | None

    @field_validator("revisit")
    @classmethod
    def _tiers(cls, value: list[RevisitTier] | None) -> list[RevisitTier] | None:
        return check_tiers(value) if value is not None else None

    @model_validator(mode="after")
    def _one_schedule(self) -> RevisitOptions:
        self._resolved()
        return self

    def _resolved(self) -> tuple[list[RevisitTier], str | None]:
        return resolve(self.revisit, getattr(self, self.horizon_option), self.horizon_option)

    def revisit_plan(self, start: dt.date, end: dt.date, first_day: dt.date | None) -> Plan:
        tiers, warning = self._resolved()
        return plan(tiers, start, end, first_day, warning)


def due_on(tier: RevisitTier, start: dt.date, end: dt.date) -> bool:
    """Whether the tier is due on a run of [start, end]: some day of it is a multiple of `every_days`."""
    if tier.every_days == 1:
        return True
    first = start.toordinal()
    offset = (-first) % tier.every_days
    return first + offset <= end.toordinal()


def next_due(tier: RevisitTier, after: dt.date) -> dt.date:
    """The first day after `after` on which the tier is due."""
    o = after.toordinal() + 1
    return dt.date.fromordinal(o + (-o) % tier.every_days)


@dataclass(frozen=True)
class TierWindow:
    """One tier on one run: the thread days it covers (`first`..`last`, None when the tier lies wholly
    before the first extracted day), whether it is due and whether this run sweeps it."""

    name: str
    max_age_days: int | None
    every_days: int
    due: bool
    swept: bool
    first: dt.date | None
    last: dt.date | None
    next_due: dt.date

    def covers(self, day: dt.date) -> bool:
        return self.first is not None and self.last is not None and self.first <= day <= self.last


@dataclass(frozen=True)
class Plan:
    """What a run re-reads: `sweep_start`..end (contiguous) and the tiers, youngest first."""

    start: dt.date
    end: dt.date
    sweep_start: dt.date
    tiers: tuple[TierWindow, ...]
    warning: str | None = None

    def tier_of(self, day: dt.date) -> str:
        """The tier a thread day belongs to: `current` inside the run's own interval, the covering tier's
        name before it, `beyond` older than every tier."""
        if day >= self.start:
            return "current"
        for t in self.tiers:
            if t.covers(day):
                return t.name
        return "beyond"

    def oldest_kept(self) -> dt.date | None:
        """Threads older than this are never revisited again by any tier (their state can be forgotten);
        None when the last tier is unbounded."""
        if not self.tiers:
            return self.end
        last = self.tiers[-1]
        return None if last.max_age_days is None else self.end - dt.timedelta(days=last.max_age_days)

    def report(self) -> dict[str, Any]:
        return {"sweep_start": self.sweep_start.isoformat(), "tiers": {
            t.name: {"max_age_days": t.max_age_days, "every_days": t.every_days, "due": t.due, "swept": t.swept,
                     "first_day": t.first.isoformat() if t.first else None,
                     "last_day": t.last.isoformat() if t.last else None, "next_due": t.next_due.isoformat()}
            for t in self.tiers}, **({"warning": self.warning} if self.warning else {})}


def plan(tiers: list[RevisitTier], start: dt.date, end: dt.date, first_day: dt.date | None,
         warning: str | None = None) -> Plan:
    """The run's sweep. Without a first extracted day (the first run) nothing before `start` exists to
    revisit. A tier's days are clipped to [first_day, start - 1]: the run's own days are always read."""
    windows: list[TierWindow] = []
    younger = 0
    deepest: dt.date | None = None
    for t in tiers:
        due = first_day is not None and due_on(t, start, end)
        lo = first_day if t.max_age_days is None else end - dt.timedelta(days=t.max_age_days)
        hi = end - dt.timedelta(days=younger + 1) if younger else end
        if first_day is not None and lo is not None:
            lo = max(lo, first_day)
        hi = min(hi, start - dt.timedelta(days=1))
        real = first_day is not None and lo is not None and lo <= hi
        windows.append(TierWindow(t.name, t.max_age_days, t.every_days, due, False, lo if real else None,
                                  hi if real else None, next_due(t, end)))
        if due and real and (deepest is None or lo < deepest):  # type: ignore[operator]
            deepest = lo
        younger = t.max_age_days if t.max_age_days is not None else younger
    sweep_start = min(start, deepest) if deepest is not None else start
    swept = tuple(TierWindow(w.name, w.max_age_days, w.every_days, w.due,
                             w.first is not None and sweep_start <= w.first, w.first, w.last, w.next_due)
                  for w in windows)
    return Plan(start, end, sweep_start, swept, warning)
