"""Completeness and revisits against the Graph emulator (the demo organisation's tenant): replies withheld
from `$expand=replies` / `.../replies` give the exact score against `replies@odata.count`, a complete
tenant 1.0 (also with replies beyond the inlined page, followed through `replies@odata.nextLink`); a
reply posted 40 days after its root is found by the run of the weekly revisit day, not before."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines import completeness, lake
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.emulators.msgraph_tenant import build_tenant
from pipelines.sources import msgraph
from pipelines.sources.demo_org import build_org
from tests.connectors.conftest import make_ctx

START = dt.date(2026, 1, 5)
CREDS = {"tenant_id": "tenant", "client_id": "emu-client", "client_secret": "emu-secret"}
FAST = {"rate_period_s": 0.002, "timeout_s": 0.5, "backoff_base_s": 0.01, "max_attempts": 12}


@pytest.fixture(scope="module")
def org():
    return build_org(60, 30, START, 7, 1.0)


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _expected(emu: GraphEmulator, first: dt.date, last: dt.date) -> tuple[int, int]:
    """(announced, received) replies over the roots created in [first, last] that exist now."""
    lo, hi = _midnight(first), _midnight(last) + 86400
    announced = received = 0
    for ch in emu.tenant.channels.values():
        for r in ch.roots:
            if lo <= r.created < hi and r.exists(emu.now):
                reps = [x for x in r.replies if x.exists(emu.now)]
                announced += len(reps)
                received += sum(not emu.withheld(x) for x in reps)
    return announced, received


def _extract(org, tmp_path, end: dt.date, **kw: Any) -> tuple[Any, tuple[int, int]]:
    with GraphEmulator(org, tenant=build_tenant(org), expand_limit=3, **kw) as emu:
        emu.advance_to(end)
        ctx = make_ctx(tmp_path, "msgraph", {**FAST, "base_url": emu.url, "token_url": emu.token_url})
        return msgraph.extract(ctx, START, end, **CREDS), _expected(emu, START, end)


def test_withheld_replies_give_the_exact_score_and_a_warning(org, tmp_path) -> None:
    report, (announced, received) = _extract(org, tmp_path, START + dt.timedelta(days=9), withhold_replies=0.3)
    c = report.details["completeness"]
    assert announced > 20 and 0 < received < announced
    assert (c["replies_announced"], c["replies_fetched"]) == (announced, received)
    assert c["score"] == pytest.approx(received / announced, abs=1e-6)
    assert c["announced_by"] == "graph replies@odata.count"
    assert completeness.warning(c, 0.98) is not None


def test_a_complete_tenant_scores_one_with_replies_beyond_the_inlined_page(org, tmp_path) -> None:
    report, (announced, received) = _extract(org, tmp_path, START + dt.timedelta(days=9))
    c = report.details["completeness"]
    assert announced == received == c["replies_announced"] > 20
    assert c["score"] == 1.0 and completeness.warning(c, 0.98) is None


def test_a_reply_40_days_after_its_root_is_found_on_the_weekly_revisit_day(org, tmp_path) -> None:
    tenant = build_tenant(org)

    def person_root(d: dt.date) -> tuple[str, Any] | None:
        lo = _midnight(d)
        return next(((c.id, r) for c in sorted(tenant.channels.values(), key=lambda c: c.id) for r in c.roots
                     if lo <= r.created < lo + 86400 and r.user and not r.system and r.delete_at is None), None)

    # a day with a person's root whose reply, 40 days later, falls on a Friday
    day = next(d for d in lake.days_between(START + dt.timedelta(days=3), START + dt.timedelta(days=25))
               if (d + dt.timedelta(days=40)).toordinal() % 7 == 5 and person_root(d) is not None)
    reply_day = day + dt.timedelta(days=40)
    saturday, sunday = reply_day + dt.timedelta(days=1), reply_day + dt.timedelta(days=2)
    with GraphEmulator(org, tenant=tenant, expand_limit=3) as emu:
        ctx = make_ctx(tmp_path, "msgraph", {**FAST, "base_url": emu.url, "token_url": emu.token_url})
        emu.advance_to(day + dt.timedelta(days=2))
        msgraph.extract(ctx, START, day + dt.timedelta(days=2), **CREDS)
        channel, root = person_root(day)  # type: ignore[misc]
        late = emu.add_reply(channel, root.id, _midnight(reply_day) + 12 * 3600, emu.tenant.users[-1].id)
        base = lake.raw_dir(ctx.lake_dir, "msgraph", "messages")

        def landed() -> bool:
            table = lake.read_partition(base, reply_day)
            return table is not None and any(r["message_id"] == late for r in table.to_pylist())

        emu.advance_to(saturday)
        msgraph.extract(ctx, saturday, saturday, **CREDS)
        assert not landed()  # an ordinary day does not re-read a 41-day-old thread
        emu.advance_to(sunday)
        report = msgraph.extract(ctx, sunday, sunday, **CREDS)
        assert landed(), "the weekly revisit did not find the late reply"
        weekly = report.details["completeness"]["revisit"]["tiers"]["weekly"]
        assert weekly["due"] and weekly["swept"] and weekly["threads_refetched"] > 0
        assert weekly["first_day"] <= day.isoformat() <= weekly["last_day"]
        assert reply_day.isoformat() in report.details["days_rewritten_before_start"]
