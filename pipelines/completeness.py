"""Completeness of fetched threads: the replies a platform announces against the replies a run received.

Platforms announce how many replies a thread has next to the thread itself, and hand the replies out
separately (another call, another page): a missing scope, a page cut short, a proxy's stale cache or a
bug of the connector lose replies silently, and every reply metric undercounts without an error. Each
connector tallies, per thread it fetched, what was announced and what it received:

  Slack       `reply_count` of the parent (history) against the replies of `conversations.replies`;
  Teams       `replies@odata.count` of a root of `messages?$expand=replies` (the sweep; roots read only
              through the delta are not scored) against the replies received, inlined and through
              `replies@odata.nextLink`. In the Graph docs' sample the count is 3 for the 3 inlined
              replies while a nextLink leads to more: it counts at least the inlined page, not
              necessarily the thread, so it is a lower bound of what must be received (see below);
  Viva Engage the thread reference's `stats.updates` (messages of the thread, the starter included)
              against the thread's messages read in the All feed (threads started inside the sweep only:
              the feed is read newest first down to the sweep start, so all their messages were seen);
  Chatter     `CommentCount` of a FeedItem against the rows of its `FeedComments` sub-query.

A thread a connector found unchanged since a run that landed all its announced replies (Slack: its state)
counts as complete without being fetched again, so that a day's score covers all its threads whichever run
last fetched them. Per thread, received replies count up to the announced number (`min(received, announced)`): a thread
with more replies than announced (Graph's page count, a reply posted between the two calls) does not make
up for another thread's missing ones. The score of a set of threads is the sum of that over the sum
announced (1.0 when nothing was announced). Tallies are kept per thread day and revisit tier
(`pipelines.connectors.revisit`) and land, with the tiers a run revisited, in the quality tables
`dq_reply_completeness` and `dq_revisit_tiers` (`pipelines.jobs` writes them at validation), and the
latest figures of each source and thread day (its last validation that read the day) are published for
BI users in `mart_reply_completeness`
(rebuilt by every publish, `publish`); a run whose
score is below `quality.completeness_warn_below` is reported as a warning (log, run report, the
`replies_complete` record of `dq_validation_results`).

Limits: Chatter items are read again only when their SystemModstamp moves, so a Salesforce extraction
killed after its watermark was committed and before its report was recorded leaves no tally for its
items (the rerun does not read them again): `mart_reply_completeness` keeps the earlier figures of those
days. A Viva Engage thread is scored only when its starter is inside the sweep (older threads are seen in
part).

This module holds counts only: no ids of threads, people or messages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

#: quality tables (bookkeeping records, appended per run like dq_validation_results)
COMPLETENESS_TABLE = "dq_reply_completeness"
COMPLETENESS_DDL = ("seq bigint, run_id varchar, source varchar, batch varchar, thread_date date, revisit_tier varchar, "
                    "announced_by varchar, threads bigint, threads_incomplete bigint, replies_announced bigint, "
                    "replies_fetched bigint, completeness double precision, warn_below double precision")
REVISIT_TABLE = "dq_revisit_tiers"
REVISIT_DDL = ("seq bigint, run_id varchar, source varchar, batch varchar, revisit_tier varchar, max_age_days integer, "
               "every_days integer, due boolean, swept boolean, first_day date, last_day date, next_due date, "
               "threads_checked bigint, threads_refetched bigint, replies_fetched bigint")


#: the table BI users read: the latest figures of each source and thread day
PUBLISHED = "mart_reply_completeness"
PUBLISHED_SQL = f"""
with latest as (
    -- the last validation of the source that read the day (seq: the order in which validations recorded)
    select *, dense_rank() over (partition by source, thread_date order by seq desc) as recency
    from {COMPLETENESS_TABLE}
)
select
    source,
    thread_date,
    max(batch) as batch,
    max(announced_by) as announced_by,
    cast(sum(threads) as bigint) as threads,
    cast(sum(threads_incomplete) as bigint) as threads_incomplete,
    cast(sum(replies_announced) as bigint) as replies_announced,
    cast(sum(replies_fetched) as bigint) as replies_fetched,
    case when sum(replies_announced) = 0 then 1.0
         else cast(sum(replies_fetched) as double precision) / sum(replies_announced) end as completeness,
    cast(max(warn_below) as double precision) as warn_below,
    case when sum(replies_announced) = 0 then false
         else cast(sum(replies_fetched) as double precision) / sum(replies_announced) < max(warn_below)
    end as below_threshold
from latest
where recency = 1
group by source, thread_date
"""


def record(conn: Any, threads: list[dict[str, Any]], tiers: list[dict[str, Any]], source: str) -> int:
    """Append a validation's rows to the record tables (created if needed) under the source's next
    sequence number, in the caller's transaction; returns the number. The number orders a source's
    validations without a clock: a rerun of an interval after a kill records after the killed run."""
    from pipelines import warehouse

    warehouse.record_rows(conn, COMPLETENESS_TABLE, [], COMPLETENESS_DDL)
    warehouse.record_rows(conn, REVISIT_TABLE, [], REVISIT_DDL)
    seq = 1 + max(int(conn.execute(sa.text(f"select coalesce(max(seq), 0) from {t} where source = :s"),
                                   {"s": source}).scalar_one()) for t in (COMPLETENESS_TABLE, REVISIT_TABLE))
    warehouse.record_rows(conn, COMPLETENESS_TABLE, [{"seq": seq, **r} for r in threads], COMPLETENESS_DDL)
    warehouse.record_rows(conn, REVISIT_TABLE, [{"seq": seq, **r} for r in tiers], REVISIT_DDL)
    return seq


def ensure_tables(conn: Any) -> None:
    """The record tables (internal schema), created when no validation wrote them yet."""
    from pipelines import warehouse

    warehouse.record_rows(conn, COMPLETENESS_TABLE, [], COMPLETENESS_DDL)
    warehouse.record_rows(conn, REVISIT_TABLE, [], REVISIT_DDL)


def publish(conn: Any) -> int:
    """Write-audit-publish `mart_reply_completeness` (in place, in the marts schema) inside the caller's
    (publish) transaction, from the records of every run."""
    from pipelines import warehouse

    ensure_tables(conn)
    frame = warehouse.read_frame(conn, PUBLISHED_SQL)
    return warehouse.publish_frame(conn, PUBLISHED, frame, key=["source", "thread_date"],
                                   not_null=["completeness", "threads", "replies_announced", "replies_fetched"])


def score(announced: int, fetched_capped: int) -> float:
    """Share of the announced replies received (1.0 when none was announced)."""
    return 1.0 if announced <= 0 else round(min(fetched_capped, announced) / announced, 6)


@dataclass
class _Cell:
    threads: int = 0
    incomplete: int = 0
    announced: int = 0
    fetched: int = 0  # capped per thread at what was announced
    refetched: int = 0
    checked: int = 0
    replies: int = 0  # every reply received, uncapped


@dataclass
class Tally:
    """What one run received against what was announced, per (thread day, tier)."""

    announced_by: str
    cells: dict[tuple[dt.date, str], _Cell] = field(default_factory=dict)

    def _cell(self, day: dt.date, tier: str) -> _Cell:
        return self.cells.setdefault((day, tier), _Cell())

    def thread(self, day: dt.date, tier: str, announced: int | None, fetched: int) -> None:
        """One thread fetched: `announced` None when the platform gave no count (nothing to compare)."""
        c = self._cell(day, tier)
        c.refetched += 1
        c.checked += 1
        c.replies += fetched
        if announced is None:
            return
        a = max(int(announced), 0)
        c.threads += 1
        c.announced += a
        c.fetched += min(fetched, a)
        if fetched < a:
            c.incomplete += 1

    def checked(self, day: dt.date, tier: str) -> None:
        """A thread looked at and found unchanged (not fetched again), with nothing to compare."""
        self._cell(day, tier).checked += 1

    def unchanged(self, day: dt.date, tier: str, announced: int) -> None:
        """A thread looked at and found unchanged since a run that landed every announced reply (the
        connector's state says so): complete without fetching it again. Counting it keeps a day's score
        about all its threads, whichever run last fetched them (a rerun after a kill that committed the
        state gives the same figures as a clean run)."""
        c = self._cell(day, tier)
        a = max(int(announced), 0)
        c.checked += 1
        c.threads += 1
        c.announced += a
        c.fetched += a

    @property
    def announced(self) -> int:
        return sum(c.announced for c in self.cells.values())

    @property
    def fetched(self) -> int:
        return sum(c.fetched for c in self.cells.values())

    def summary(self) -> dict[str, Any]:
        """For the extract report: totals, the score, per-day cells and per-tier revisit counts."""
        tiers: dict[str, dict[str, int]] = {}
        for (_, tier), c in self.cells.items():
            t = tiers.setdefault(tier, {"threads_checked": 0, "threads_refetched": 0, "replies_fetched": 0,
                                        "replies_announced": 0})
            t["threads_checked"] += c.checked
            t["threads_refetched"] += c.refetched
            t["replies_fetched"] += c.replies
            t["replies_announced"] += c.announced
        return {
            "announced_by": self.announced_by,
            "threads": sum(c.threads for c in self.cells.values()),
            "threads_incomplete": sum(c.incomplete for c in self.cells.values()),
            "replies_announced": self.announced, "replies_fetched": self.fetched,
            "score": score(self.announced, self.fetched),
            "by_tier": dict(sorted(tiers.items())),
            "days": [{"thread_date": day.isoformat(), "revisit_tier": tier, "threads": c.threads,
                      "threads_incomplete": c.incomplete, "replies_announced": c.announced,
                      "replies_fetched": c.fetched}
                     for (day, tier), c in sorted(self.cells.items()) if c.threads],
        }


def report(tally: Tally, plan: Any | None) -> dict[str, Any]:
    """The `completeness` entry of an extract report: the tally and, when the source revisits, its plan
    (`revisit.Plan.report()`) with each tier's counts."""
    out = tally.summary()
    if plan is not None:
        revisit = plan.report()
        for name, t in revisit["tiers"].items():
            t.update(out["by_tier"].get(name, {"threads_checked": 0, "threads_refetched": 0, "replies_fetched": 0,
                                              "replies_announced": 0}))
        out["revisit"] = revisit
    return out


def records(completeness: dict[str, Any], *, run_id: str, source: str, batch: str,
            warn_below: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of `dq_reply_completeness` and `dq_revisit_tiers` from an extract report's `completeness`."""
    by = completeness.get("announced_by")
    days = [{"run_id": run_id, "source": source, "batch": batch,
             "thread_date": dt.date.fromisoformat(d["thread_date"]), "revisit_tier": d["revisit_tier"],
             "announced_by": by, "threads": int(d["threads"]), "threads_incomplete": int(d["threads_incomplete"]),
             "replies_announced": int(d["replies_announced"]), "replies_fetched": int(d["replies_fetched"]),
             "completeness": score(int(d["replies_announced"]), int(d["replies_fetched"])),
             "warn_below": float(warn_below)} for d in completeness.get("days") or []]
    tiers = []
    for name, t in ((completeness.get("revisit") or {}).get("tiers") or {}).items():
        tiers.append({"run_id": run_id, "source": source, "batch": batch, "revisit_tier": name,
                      "max_age_days": t.get("max_age_days"), "every_days": t.get("every_days"),
                      "due": bool(t.get("due")), "swept": bool(t.get("swept")),
                      "first_day": _date(t.get("first_day")), "last_day": _date(t.get("last_day")),
                      "next_due": _date(t.get("next_due")), "threads_checked": int(t.get("threads_checked", 0)),
                      "threads_refetched": int(t.get("threads_refetched", 0)),
                      "replies_fetched": int(t.get("replies_fetched", 0))})
    return days, tiers


def warning(completeness: dict[str, Any] | None, warn_below: float) -> str | None:
    """The warning of a run whose score is below the threshold, or None."""
    if not completeness or int(completeness.get("replies_announced") or 0) == 0:
        return None
    s = float(completeness.get("score", 1.0))
    if s >= warn_below:
        return None
    missing = int(completeness["replies_announced"]) - int(completeness["replies_fetched"])
    return (f"replies incomplete: {completeness['replies_fetched']} of the {completeness['replies_announced']} "
            f"replies announced ({completeness.get('announced_by')}) were received ({s:.1%}, below "
            f"quality.completeness_warn_below {warn_below:.0%}): {missing} missing in "
            f"{completeness.get('threads_incomplete')} of {completeness.get('threads')} threads; reply metrics "
            "undercount. Check the token's scopes and the connector's warnings; the threads are fetched again "
            "on their next revisit")


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(value) if isinstance(value, str) and value else None
