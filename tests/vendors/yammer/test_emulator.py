"""End to end against the Viva Engage emulator: REST backfill + daily incremental runs under ~10%
faults give exactly the fault-free activities; the Data Export endpoint path likewise; counts match
the emulator's ground truth; nothing written holds an id, an email or a text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.connectors.errors import AuthError
from pipelines.emulators.yammer import Faults, YammerEmulator
from pipelines.emulators.yammer_network import build_network
from pipelines.sources import yammer, yammer_export
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 30
INCREMENTAL_DAYS = 3
LAST = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
TOKEN = "yammer-emulator-token"
FAST = {"rate_period_s": 0.02, "timeout_s": 0.15, "backoff_base_s": 0.01, "max_attempts": 10}
FAULTS = Faults(rate=0.1, seed=5, timeout_delay_s=0.3)


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


@pytest.fixture(scope="module")
def network(org):
    return build_network(org)


def _run(org, network, root: Path, faults: Faults | None, module: Any, kind: str) -> dict[str, Any]:
    with YammerEmulator(org, token=TOKEN, period_s=0.02, network=network,
                        faults=faults or Faults(timeout_delay_s=0.3)) as emu:
        ctx = make_ctx(root, kind, {**FAST, "base_url": emu.url})
        end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
        emu.advance_to(end)
        reports = [module.extract(ctx, START, end, token=TOKEN)]
        for i in range(INCREMENTAL_DAYS):
            day = end + dt.timedelta(days=i + 1)
            emu.advance_to(day)
            reports.append(module.extract(ctx, day, day, token=TOKEN))
        truth = emu.visible_messages(LAST)
        faults_seen = sum(emu.stats.faults.values())
    return {"ctx": ctx, "reports": reports, "truth": truth, "faults": faults_seen, "root": root,
            "activities": activities(module.canonicalise, ctx, START, LAST)}


@pytest.fixture(scope="module")
def runs(org, network, tmp_path_factory):
    return {
        "faulty": _run(org, network, tmp_path_factory.mktemp("faulty"), FAULTS, yammer, "yammer"),
        "clean": _run(org, network, tmp_path_factory.mktemp("clean"), None, yammer, "yammer"),
        "export_faulty": _run(org, network, tmp_path_factory.mktemp("xf"), FAULTS, yammer_export, "yammer_export"),
        "export_clean": _run(org, network, tmp_path_factory.mktemp("xc"), None, yammer_export, "yammer_export"),
    }


def test_faulty_rest_runs_give_exactly_the_fault_free_activities(runs) -> None:
    faulty, clean = runs["faulty"], runs["clean"]
    assert faulty["faults"] >= 5
    retries = sum(sum(r.details["http"]["retries"].values()) for r in faulty["reports"])
    assert retries >= faulty["faults"] - 2
    pd.testing.assert_frame_equal(faulty["activities"], clean["activities"])


def test_faulty_export_downloads_give_exactly_the_fault_free_activities(runs) -> None:
    assert runs["export_faulty"]["faults"] >= 1
    pd.testing.assert_frame_equal(runs["export_faulty"]["activities"], runs["export_clean"]["activities"])


def test_rest_counts_match_the_ground_truth(runs) -> None:
    clean = runs["clean"]
    acts, truth = clean["activities"], clean["truth"]
    people = [m for m in truth if m.message_type != "system"]
    counts = acts["verb"].value_counts().to_dict()
    assert counts["post"] == sum(m.replied_to is None for m in people)
    assert counts["reply"] == sum(m.replied_to is not None for m in people)
    now = dt.datetime(LAST.year, LAST.month, LAST.day, tzinfo=dt.UTC).timestamp() + 86399
    assert counts["reaction"] == sum(len({u for at, u in m.likes if at <= now}) for m in people)
    best = [m for m in people if m.replied_to is None and m.best_reply_id(now) is not None]
    assert best and counts["answer_accepted"] == len(best)
    accepted = acts[acts["verb"] == "answer_accepted"].set_index("parent_id")
    posts = acts[acts["verb"] == "post"].set_index("event_id")
    replies = acts[acts["verb"] == "reply"].set_index("event_id")
    for m in best:  # actor = the asker, target = the answerer
        answer = str(m.best_reply_id(now))
        assert accepted.loc[answer, "actor_key"] == posts.loc[str(m.id), "actor_key"]
        assert accepted.loc[answer, "target_key"] == replies.loc[answer, "actor_key"]
    assert acts.loc[acts["verb"] == "post", "is_question"].sum() == sum(m.message_type == "question" for m in people)
    assert acts["event_id"].is_unique


def test_export_path_agrees_with_rest_on_messages(runs) -> None:
    rest, export = runs["clean"]["activities"], runs["export_clean"]["activities"]
    for verb in ("reply", "answer_accepted", "mention"):
        assert set(export.loc[export["verb"] == verb, "event_id"]) >= set(rest.loc[rest["verb"] == verb, "event_id"])
    live_posts = export[(export["verb"] == "post") & ~export["is_deleted"]]
    assert set(live_posts["event_id"]) == set(rest.loc[rest["verb"] == "post", "event_id"])
    assert export["is_deleted"].sum() > 0  # the export keeps deleted messages, flagged
    assert "reaction" not in set(export["verb"])  # the export has no likes


def test_incremental_runs_rewrite_the_horizon_and_see_late_likes(runs) -> None:
    daily = runs["clean"]["reports"][1:]
    assert all(r.details["sweep_start"] < r.days[-1].isoformat() for r in daily)
    assert all(r.details["identity_matched_share"] == 1.0 for r in runs["clean"]["reports"])


def test_nothing_written_contains_ids_emails_or_text(runs, network) -> None:
    needles = {str(u["id"]) for u in network.users} | {u["email"] for u in network.users}
    needles |= {m.text for m in network.messages if len(m.text) >= 12}
    for name in ("faulty", "export_faulty"):
        assert leaks(runs[name]["root"], needles) == [], name


def test_wrong_token_is_fatal_and_names_the_variable(org, network, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MY_YAMMER_TOKEN", "wrong")
    with YammerEmulator(org, token=TOKEN, period_s=0.02, network=network) as emu:
        ctx = make_ctx(tmp_path, "yammer", {**FAST, "base_url": emu.url, "token_env": "MY_YAMMER_TOKEN"})
        with pytest.raises(AuthError, match=r"\$MY_YAMMER_TOKEN"):
            yammer.extract(ctx, START, START)
        assert sum(emu.stats.requests.values()) == 1  # not retried
