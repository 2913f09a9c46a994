"""End to end against the Slack emulator: backfill + daily incremental runs under faults, late replies,
rate-limit usage, privacy of everything written."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import lake
from pipelines.connectors.errors import AuthError, MissingScopeError
from pipelines.emulators.slack import Faults, SlackEmulator
from pipelines.emulators.slack_workspace import build_workspace
from pipelines.sources import slack
from pipelines.sources.demo_org import build_org
from tests.connectors.conftest import make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 90
INCREMENTAL_DAYS = 3
TOKEN = "xoxb-emulator-token"
FAST = {"rate_period_s": 0.05, "timeout_s": 0.15, "backoff_base_s": 0.01, "max_attempts": 10,
        "auto_join": True, "include_private": True, "late_reply_horizon_days": 7}


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


def _emulator(org, **kw: Any) -> SlackEmulator:
    return SlackEmulator(org, token=TOKEN, workspace=build_workspace(org), **kw)


def _canonical(ctx, days: list[dt.date]) -> pd.DataFrame:
    frames = [slack.canonicalise(ctx, d).get("activities") for d in days]
    df = pd.concat([f for f in frames if f is not None], ignore_index=True)
    return df.sort_values("event_id").reset_index(drop=True)


def _run(org, root: Path, faults: Faults | None, *, incremental: bool) -> dict[str, Any]:
    last = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
    with _emulator(org, period_s=0.05, faults=faults or Faults(timeout_delay_s=0.3)) as emu:
        ctx = make_ctx(root, "slack", {**FAST, "base_url": emu.url})
        reports = []
        if incremental:
            end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
            emu.advance_to(end)
            reports.append(slack.extract(ctx, START, end, token=TOKEN))
            for i in range(INCREMENTAL_DAYS):
                day = end + dt.timedelta(days=i + 1)
                emu.advance_to(day)
                reports.append(slack.extract(ctx, day, day, token=TOKEN))
        else:
            emu.advance_to(last)
            reports.append(slack.extract(ctx, START, last, token=TOKEN))
        truth = emu.visible_messages(last)
        users = list(emu.ws.users)
        faults_seen = sum(emu.stats.faults.values())
    return {"ctx": ctx, "reports": reports, "truth": truth, "users": users, "faults": faults_seen,
            "activities": _canonical(ctx, lake.days_between(START, last)), "root": root}


@pytest.fixture(scope="module")
def runs(org, tmp_path_factory):
    return {
        "faulty": _run(org, tmp_path_factory.mktemp("faulty"), Faults(rate=0.1, seed=5, timeout_delay_s=0.3),
                       incremental=True),
        "clean": _run(org, tmp_path_factory.mktemp("clean"), None, incremental=True),
        "fresh": _run(org, tmp_path_factory.mktemp("fresh"), None, incremental=False),
    }


def test_faulty_incremental_runs_give_exactly_the_fault_free_activities(runs) -> None:
    faulty, clean = runs["faulty"], runs["clean"]
    assert faulty["faults"] > 20  # the faults really happened ...
    retries = sum(sum(r.details["http"]["retries"].values()) for r in faulty["reports"])
    assert retries >= faulty["faults"] - 5  # ... and were retried (a few timeouts can outlive a run)
    pd.testing.assert_frame_equal(faulty["activities"], clean["activities"])


def test_incremental_runs_equal_a_fresh_backfill_at_the_same_clock(runs) -> None:
    pd.testing.assert_frame_equal(runs["clean"]["activities"], runs["fresh"]["activities"])


def test_late_replies_between_runs_are_all_picked_up(runs) -> None:
    clean = runs["clean"]
    daily = clean["reports"][1:]
    assert all(r.details["replies_fetched"] == r.details["replies_announced"] for r in clean["reports"])
    # replies to older threads arrived between runs and were fetched by re-reading just those threads
    assert all(r.details["days_rewritten_before_start"] for r in daily)
    assert all(r.details["threads_unchanged"] > 0 for r in daily)
    truth_replies = sum(1 for m in clean["truth"] if m.get("thread_ts") not in (None, m["ts"])
                        and m.get("user") and not m.get("bot_id"))
    acts = clean["activities"]
    assert (acts["verb"] == "reply").sum() == truth_replies


def test_counts_match_the_emulator_ground_truth(runs) -> None:
    truth, acts = runs["clean"]["truth"], runs["clean"]["activities"]
    people = [m for m in truth if m.get("user") and not m.get("bot_id") and m.get("subtype") in (None, "thread_broadcast")]
    posts = [m for m in people if m.get("thread_ts") in (None, m["ts"])]
    tombstones = [m for m in truth if m.get("subtype") == "tombstone"]
    reactions = sum(len(r["users"]) for m in truth for r in m.get("reactions", []))
    mentions = 0
    for m in people:
        ids = set(re.findall(r"<@([UW][A-Z0-9]+)>", m["text"]))
        ids |= {e["user_id"] for b in m.get("blocks", []) for s in b["elements"] for e in s["elements"]}
        mentions += len(ids - {m["user"]})
    counts = acts["verb"].value_counts().to_dict()
    assert counts["post"] == len(posts)  # Slackbot tombstones are nobody's post
    assert tombstones, "the scenario should contain deleted parents with replies"
    assert counts["reaction"] == reactions
    assert counts["mention"] == mentions
    assert acts["is_edited"].sum() > 0
    assert acts["event_id"].is_unique


def test_nothing_written_contains_ids_emails_or_text(runs) -> None:
    for name in ("faulty", "fresh"):
        run = runs[name]
        users = run["users"]
        ids = {u["id"] for u in users}
        emails = {u["profile"]["email"].lower() for u in users if u["profile"].get("email")}
        texts = {m["text"] for m in run["truth"] if len(m.get("text", "")) >= 12}
        needles = ids | emails | texts
        cells: list[str] = []
        files = [p for p in Path(run["root"]).rglob("*") if p.is_file()]
        assert files
        for p in files:
            if p.suffix == ".parquet":
                table = pq.read_table(p)
                cells += [str(v) for col in table.columns for v in col.to_pylist()]
                cells += table.column_names
            elif p.suffix != ".duckdb" and not p.name.endswith(".wal"):
                cells.append(p.read_bytes().decode(errors="replace"))
        engine = sa.create_engine(f"duckdb:///{run['root'] / 'warehouse.duckdb'}")
        with engine.connect() as conn:
            for schema, table in conn.execute(sa.text("select table_schema, table_name from information_schema.tables")).all():
                for row in conn.execute(sa.text(f'select * from "{schema}"."{table}"')).all():  # noqa: S608
                    cells += [str(v) for v in row]
        engine.dispose()
        blob = "\n".join(cells)
        leaks = [n for n in needles if n in blob or n.lower() in blob.lower()]
        assert leaks == [], f"{name}: found {leaks[:5]}"


def test_rate_limit_is_used_at_80_percent_or_more_without_repeated_429s(org, tmp_path) -> None:
    period = 1.0
    with _emulator(org, period_s=period, per_minute={"conversations.replies": 50}) as emu:
        emu.advance_to(START + dt.timedelta(days=30))
        ctx = make_ctx(tmp_path, "slack", {"base_url": emu.url, "rate_period_s": period, "auto_join": True,
                                           "include_private": True, "fetch_members": False})
        slack.extract(ctx, START, START + dt.timedelta(days=30), token=TOKEN)
        st = emu.stats
        n = st.requests["conversations.replies"]
        span = st.last_at["conversations.replies"] - st.first_at["conversations.replies"]
    achieved = (n - 1) / span
    assert n > 60
    assert achieved / (50 / period) >= 0.8, f"{achieved:.1f}/s of 50/s"
    assert st.rate_limited["conversations.replies"] <= 1


def test_state_is_not_committed_when_landing_fails(org, tmp_path, monkeypatch) -> None:
    with _emulator(org, period_s=0.05) as emu:
        ctx = make_ctx(tmp_path, "slack", {**FAST, "base_url": emu.url})
        emu.advance_to(START + dt.timedelta(days=5))

        def broken(*a: Any, **k: Any) -> None:
            raise OSError("disk full")
        monkeypatch.setattr(lake, "write_partition", broken)
        with pytest.raises(OSError):
            slack.extract(ctx, START, START + dt.timedelta(days=5), token=TOKEN)
    engine = sa.create_engine(ctx.settings.warehouse_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from esn_internal.etl_source_state")).scalar() == 0
    engine.dispose()


def test_wrong_token_is_fatal_and_names_the_variable(org, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MY_SLACK_TOKEN", "xoxb-wrong")
    with _emulator(org, period_s=0.05) as emu:
        ctx = make_ctx(tmp_path, "slack", {**FAST, "base_url": emu.url, "token_env": "MY_SLACK_TOKEN"})
        with pytest.raises(AuthError, match=r"\$MY_SLACK_TOKEN.*invalid_auth"):
            slack.extract(ctx, START, START)
        assert sum(emu.stats.requests.values()) == 1  # not retried


def test_private_channels_without_scope_name_the_scope(org, tmp_path) -> None:
    scopes = frozenset({"channels:read", "channels:history", "users:read", "channels:join"})
    with _emulator(org, period_s=0.05, scopes=scopes) as emu:
        ctx = make_ctx(tmp_path, "slack", {**FAST, "base_url": emu.url})
        with pytest.raises(MissingScopeError, match="groups:read"):
            slack.extract(ctx, START, START, token=TOKEN)


def test_strict_mode_uses_small_pages_and_one_request_per_minute() -> None:
    opts = slack.SlackOptions(strict=True)
    assert opts.history_limit == 15
    budget = slack.make_budget(opts)
    assert budget.allowed_per_s("conversations.history") == pytest.approx(1 / 60)
    assert budget.allowed_per_s("conversations.replies") == pytest.approx(1 / 60)
    assert budget.allowed_per_s("users.list") == pytest.approx(20 / 60)


def test_options_are_validated_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="page_size"):
        slack.SlackOptions(page_size=5000)
    with pytest.raises(ValueError, match="unknown_option|extra"):
        slack.SlackOptions.model_validate({"unknown_option": 1})
