"""Completeness and revisits against the Viva Engage emulator (the demo organisation's network): replies
withheld from the feed give the exact score against the threads' `stats.updates`, a complete network
1.0; a like made 40 days after its message is landed by the run of the weekly revisit day, not before.
(A late reply needs no revisit here: it is a new message of the All feed, read by the next run.)"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines import completeness, lake
from pipelines.emulators.yammer import YammerEmulator
from pipelines.emulators.yammer_network import build_network
from pipelines.sources import yammer
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import make_ctx

START = dt.date(2026, 1, 5)
TOKEN = "yammer-completeness"
FAST = {"rate_period_s": 0.02, "timeout_s": 0.5, "backoff_base_s": 0.01, "max_attempts": 10}


@pytest.fixture(scope="module")
def org():
    return build_org(60, 30, START, 7, 1.0)


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _expected(emu: YammerEmulator, first: dt.date) -> tuple[int, int]:
    """(announced, received) replies over the threads started on or after `first` and existing now."""
    lo = _midnight(first)
    announced = received = 0
    for m in emu.net.messages:
        if m.replied_to is not None and m.thread is not None and m.thread is not m:
            continue
        if m.created < lo or not m.exists(emu.now) or m.thread_id != m.id:
            continue
        replies = [r for r in emu.net.messages if r.thread_id == m.id and r is not m and r.exists(emu.now)]
        announced += len(replies)
        received += sum(not emu.withheld(r) for r in replies)
    return announced, received


def _extract(org, tmp_path, end: dt.date, **kw: Any) -> tuple[Any, tuple[int, int]]:
    with YammerEmulator(org, token=TOKEN, period_s=0.02, network=build_network(org), **kw) as emu:
        emu.advance_to(end)
        ctx = make_ctx(tmp_path, "yammer", {**FAST, "base_url": emu.url})
        return yammer.extract(ctx, START, end, token=TOKEN), _expected(emu, START)


def test_withheld_replies_give_the_exact_score_and_a_warning(org, tmp_path) -> None:
    report, (announced, received) = _extract(org, tmp_path, START + dt.timedelta(days=9), withhold_replies=0.3)
    c = report.details["completeness"]
    assert announced > 20 and 0 < received < announced
    assert (c["replies_announced"], c["replies_fetched"]) == (announced, received)
    assert c["score"] == pytest.approx(received / announced, abs=1e-6)
    assert completeness.warning(c, 0.98) is not None


def test_a_complete_network_scores_one(org, tmp_path) -> None:
    report, (announced, received) = _extract(org, tmp_path, START + dt.timedelta(days=9))
    c = report.details["completeness"]
    assert announced == received == c["replies_announced"] > 20
    assert c["score"] == 1.0 and completeness.warning(c, 0.98) is None


def test_a_like_40_days_late_is_landed_on_the_weekly_revisit_day(org, tmp_path) -> None:
    day = START + dt.timedelta(days=3)
    while (day + dt.timedelta(days=40)).toordinal() % 7 != 5:  # the like on a Friday
        day += dt.timedelta(days=1)
    like_day = day + dt.timedelta(days=40)
    saturday, sunday = like_day + dt.timedelta(days=1), like_day + dt.timedelta(days=2)
    with YammerEmulator(org, token=TOKEN, period_s=0.02, network=build_network(org)) as emu:
        ctx = make_ctx(tmp_path, "yammer", {**FAST, "base_url": emu.url})
        emu.advance_to(day + dt.timedelta(days=2))
        yammer.extract(ctx, START, day + dt.timedelta(days=2), token=TOKEN)
        lo = _midnight(day)
        target = next(m for m in emu.net.messages if lo <= m.created < lo + 86400 and m.message_type != "system"
                      and m.delete_at is None and not m.likes)
        liker = next(u["id"] for u in emu.net.users if u["id"] != target.sender)
        emu.add_like(target.id, _midnight(like_day) + 3600, liker)
        base = lake.raw_dir(ctx.lake_dir, "yammer", "messages")

        def likes() -> int:
            rows = lake.read_partition(base, day).to_pylist()
            return sum(len(r["like_keys"] or []) for r in rows)

        before = likes()
        emu.advance_to(saturday)
        yammer.extract(ctx, saturday, saturday, token=TOKEN)
        assert likes() == before  # an ordinary day does not re-read a 41-day-old message
        emu.advance_to(sunday)
        report = yammer.extract(ctx, sunday, sunday, token=TOKEN)
        assert likes() == before + 1, "the weekly revisit did not see the late like"
        weekly = report.details["completeness"]["revisit"]["tiers"]["weekly"]
        assert weekly["due"] and weekly["swept"] and weekly["threads_checked"] > 0
        assert day.isoformat() in report.details["days_rewritten"]
