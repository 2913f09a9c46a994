"""Completeness of fetched threads and the late-reply revisit schedule, against the Slack emulator (the
demo organisation's workspace): an emulator that withholds replies gives the exact score and a warning,
a complete one 1.0; a reply posted 40 days after its thread is found by the run of the weekly revisit
day, not before, and the report says which tier found it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pydantic
import pytest

from pipelines import completeness, lake
from pipelines.connectors import revisit
from pipelines.emulators.slack import SlackEmulator
from pipelines.emulators.slack_workspace import build_workspace, micros
from pipelines.sources import slack
from pipelines.sources.demo_org import build_org
from tests.connectors.conftest import make_ctx

START = dt.date(2026, 1, 5)
TOKEN = "xoxb-completeness"
FAST = {"rate_period_s": 0.05, "timeout_s": 0.5, "backoff_base_s": 0.01, "max_attempts": 10,
        "auto_join": True, "include_private": True}


@pytest.fixture(scope="module")
def org():
    return build_org(60, 30, START, 3, 1.0)


def _expected(emu: SlackEmulator, first: dt.date, last: dt.date) -> tuple[int, int]:
    """(announced, received) over the threads of [first, last] as the emulator holds them: every visible
    reply is announced by the parent's reply_count, the withheld ones are not handed out."""
    lo, hi = micros(f"{int(_midnight(first))}.000000"), micros(f"{int(_midnight(last + dt.timedelta(days=1)))}.000000")
    announced = received = 0
    for ch in emu.ws.channels.values():
        if ch.is_private and not ch.bot_is_member:
            continue
        for m in ch.messages:
            if m.is_reply() or not lo <= micros(m.ts) < hi:
                continue
            shown = m.render(emu.now)
            if shown is None or not shown.get("reply_count"):
                continue
            announced += shown["reply_count"]
            received += sum(not emu.withheld(r.ts) for r in m.visible_replies(emu.now))
    return announced, received


def _midnight(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _extract(org, tmp_path, start: dt.date, end: dt.date, **emu_kw: Any) -> tuple[Any, tuple[int, int]]:
    with SlackEmulator(org, token=TOKEN, workspace=build_workspace(org), period_s=0.05, **emu_kw) as emu:
        emu.advance_to(end)
        ctx = make_ctx(tmp_path, "slack", {**FAST, "base_url": emu.url})
        report = slack.extract(ctx, start, end, token=TOKEN)
        return report, _expected(emu, start, end)


def test_withheld_replies_give_the_exact_score_and_a_warning(org, tmp_path) -> None:
    end = START + dt.timedelta(days=13)
    report, (announced, received) = _extract(org, tmp_path, START, end, withhold_replies=0.25)
    c = report.details["completeness"]
    assert announced > 50 and 0 < received < announced  # the scenario really withholds replies
    assert (c["replies_announced"], c["replies_fetched"]) == (announced, received)
    assert c["score"] == pytest.approx(received / announced, abs=1e-6)
    assert c["threads_incomplete"] > 0 and c["announced_by"] == "slack reply_count"
    assert sum(d["replies_announced"] for d in c["days"]) == announced  # per thread day, adding up
    assert {d["revisit_tier"] for d in c["days"]} == {"current"}
    message = completeness.warning(c, 0.98)
    assert message is not None and f"{received} of the {announced}" in message


def test_a_complete_workspace_scores_one_and_does_not_warn(org, tmp_path) -> None:
    end = START + dt.timedelta(days=13)
    report, (announced, received) = _extract(org, tmp_path, START, end)
    c = report.details["completeness"]
    assert announced == received == c["replies_announced"] == c["replies_fetched"] > 50
    assert c["score"] == 1.0 and c["threads_incomplete"] == 0
    assert completeness.warning(c, 0.98) is None


def _quiet_parent(emu: SlackEmulator, day: dt.date) -> tuple[str, str, str]:
    """(channel, ts, a member) of a person's top-level post of `day` without replies, in a channel the
    bot reads."""
    lo, hi = _midnight(day), _midnight(day) + 86400
    for ch in sorted(emu.ws.channels.values(), key=lambda c: c.id):
        if not ch.bot_is_member or not ch.members:
            continue
        for m in ch.messages:
            if lo <= m.at < hi and m.user and not m.subtype and not m.replies and m.delete_at is None:
                return ch.id, m.ts, ch.members[-1]
    raise AssertionError(f"no quiet post on {day}")


def test_a_reply_40_days_after_its_thread_is_found_on_the_weekly_revisit_day(org, tmp_path) -> None:
    thread_day = START + dt.timedelta(days=3)
    while (thread_day + dt.timedelta(days=40)).toordinal() % 7 != 5:  # the reply on a Friday
        thread_day += dt.timedelta(days=1)
    reply_day = thread_day + dt.timedelta(days=40)
    saturday, sunday = reply_day + dt.timedelta(days=1), reply_day + dt.timedelta(days=2)
    assert sunday.toordinal() % 7 == 0  # the weekly tier's day
    backfill_end = thread_day + dt.timedelta(days=2)
    with SlackEmulator(org, token=TOKEN, workspace=build_workspace(org), period_s=0.05) as emu:
        ctx = make_ctx(tmp_path, "slack", {**FAST, "base_url": emu.url})  # the default schedule
        emu.advance_to(backfill_end)
        slack.extract(ctx, START, backfill_end, token=TOKEN)
        channel, parent_ts, member = _quiet_parent(emu, thread_day)
        late = emu.add_reply(channel, parent_ts, _midnight(reply_day) + 12 * 3600, member)
        base = lake.raw_dir(ctx.lake_dir, "slack", "messages")

        def landed() -> bool:
            table = lake.read_partition(base, reply_day)
            return table is not None and any(r["ts"] == late for r in table.to_pylist())

        emu.advance_to(saturday)
        report = slack.extract(ctx, saturday, saturday, token=TOKEN)
        assert not landed()  # a 41-day-old thread is not re-read on an ordinary day
        tiers = report.details["completeness"]["revisit"]["tiers"]
        assert not tiers["weekly"]["due"] and not tiers["weekly"]["swept"]
        assert tiers["weekly"]["next_due"] == sunday.isoformat()

        emu.advance_to(sunday)
        report = slack.extract(ctx, sunday, sunday, token=TOKEN)
        assert landed(), "the weekly revisit did not find the late reply"
        c = report.details["completeness"]
        weekly = c["revisit"]["tiers"]["weekly"]
        assert weekly["due"] and weekly["swept"]
        assert weekly["first_day"] <= thread_day.isoformat() <= weekly["last_day"]
        assert weekly["threads_refetched"] >= 1 and weekly["replies_fetched"] >= 1
        assert weekly["threads_checked"] >= weekly["threads_refetched"]
        assert reply_day.isoformat() in report.details["days_rewritten_before_start"]
        # a rerun of the same date revisits the same tiers over the same days
        again = slack.extract(ctx, sunday, sunday, token=TOKEN).details["completeness"]["revisit"]
        assert {k: (v["due"], v["first_day"], v["last_day"]) for k, v in again["tiers"].items()} == \
            {k: (v["due"], v["first_day"], v["last_day"]) for k, v in c["revisit"]["tiers"].items()}


def test_the_schedule_depends_on_the_dates_only() -> None:
    tiers = revisit.default_tiers()
    first = dt.date(2025, 1, 1)
    sunday = dt.date(2026, 3, 8)
    assert sunday.toordinal() % 7 == 0 and sunday.toordinal() % 28 != 0  # weekly, not the monthly day
    p = revisit.plan(tiers, sunday, sunday, first)
    assert p == revisit.plan(tiers, sunday, sunday, first)
    assert p.sweep_start == sunday - dt.timedelta(days=91)
    assert p.tier_of(sunday - dt.timedelta(days=40)) == "weekly"
    assert p.tier_of(sunday - dt.timedelta(days=3)) == "daily"
    assert p.tier_of(sunday - dt.timedelta(days=200)) == "monthly"
    monday = revisit.plan(tiers, sunday + dt.timedelta(days=1), sunday + dt.timedelta(days=1), first)
    assert monday.sweep_start == sunday + dt.timedelta(days=1) - dt.timedelta(days=7)
    # a catch-up run whose interval contains the revisit day revisits too
    assert revisit.plan(tiers, sunday - dt.timedelta(days=2), sunday + dt.timedelta(days=1), first).tiers[1].due
    monthly = revisit.plan(tiers, sunday - dt.timedelta(days=7), sunday - dt.timedelta(days=7), first)
    assert monthly.tiers[2].due and monthly.sweep_start == sunday - dt.timedelta(days=7 + 365)
    # the first run has nothing older to revisit
    assert revisit.plan(tiers, sunday, sunday, None).sweep_start == sunday


def test_revisit_options_are_validated_and_the_old_horizon_keeps_its_meaning() -> None:
    with pytest.raises(pydantic.ValidationError, match="not both"):
        slack.SlackOptions.model_validate({"late_reply_horizon_days": 7, "revisit": []})
    with pytest.raises(pydantic.ValidationError, match="increasing max_age_days"):
        slack.SlackOptions.model_validate({"revisit": [{"name": "a", "max_age_days": 30},
                                                       {"name": "b", "max_age_days": 7, "every_days": 7}]})
    with pytest.raises(pydantic.ValidationError, match="more often"):
        slack.SlackOptions.model_validate({"revisit": [{"name": "a", "max_age_days": 7, "every_days": 7},
                                                       {"name": "b", "max_age_days": 30, "every_days": 1}]})
    old = slack.SlackOptions.model_validate({"late_reply_horizon_days": 5})
    sunday = dt.date(2026, 3, 1)
    p = old.revisit_plan(sunday, sunday, dt.date(2025, 1, 1))
    assert p.sweep_start == sunday - dt.timedelta(days=5) and [t.name for t in p.tiers] == ["daily"]
    assert p.warning and "deprecated" in p.warning


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_the_score_and_the_warning_reach_the_quality_tables_and_the_run_report(
        org, tmp_path, backend, request, monkeypatch, caplog) -> None:
    from pipelines import jobs, warehouse
    from pipelines.config import SourceConfig
    from tests.conftest import demo_settings

    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    settings = demo_settings(tmp_path, warehouse_url=url)
    monkeypatch.setenv("COMPLETENESS_SLACK_TOKEN", TOKEN)
    end = START + dt.timedelta(days=6)
    interval = jobs.Interval(START, end)
    with SlackEmulator(org, token=TOKEN, workspace=build_workspace(org), period_s=0.05,
                       withhold_replies=0.25) as emu:
        emu.advance_to(end)
        settings.sources = [SourceConfig(name="slack", kind="slack", options={
            **FAST, "base_url": emu.url, "token_env": "COMPLETENESS_SLACK_TOKEN"})]
        announced, received = _expected(emu, START, end)
        engine = warehouse.make_engine(settings.warehouse_url)
        with caplog.at_level("WARNING", logger="pipelines.jobs"):
            extracted = jobs.extract(settings, "slack", interval)
            jobs.stage(settings, "slack", interval)
            validated = jobs.validate(settings, "slack", interval, engine=engine)
    assert 0 < received < announced
    assert extracted["warnings"] and "replies incomplete" in extracted["warnings"][0]
    assert validated["warnings"] >= 1
    assert sum("replies incomplete" in r.getMessage() for r in caplog.records) >= 2  # extract and validate
    with engine.begin() as conn:  # what the publish step builds for BI users
        completeness.publish(conn)
    with engine.connect() as conn:
        days = warehouse.read_frame(conn, "select * from dq_reply_completeness")
        tiers = warehouse.read_frame(conn, "select * from dq_revisit_tiers")
        record = warehouse.read_frame(conn, "select * from dq_validation_results "
                                            "where expectation = 'replies_complete'")
        mart = warehouse.read_frame(conn, "select * from mart_reply_completeness")
    engine.dispose()
    assert mart.thread_date.is_unique and set(mart.source) == {"slack"}
    assert (int(mart.replies_announced.sum()), int(mart.replies_fetched.sum())) == (announced, received)
    assert mart.below_threshold.any() and (mart.batch == f"slack/{interval.batch}").all()
    assert (days.run_id == validated["run_id"]).all() and set(days.source) == {"slack"}
    assert (int(days.replies_announced.sum()), int(days.replies_fetched.sum())) == (announced, received)
    assert ((days.completeness - days.replies_fetched / days.replies_announced).abs() < 1e-6).all()
    assert (days.warn_below == 0.98).all()
    assert set(tiers.revisit_tier) == {"daily", "weekly", "monthly"} and not tiers.due.any()  # a first run
    assert len(record) == 1 and not record.success.iloc[0] and record.severity.iloc[0] == "warning"
    assert int(record.unexpected_count.iloc[0]) == announced - received
