"""End to end against the UserVoice emulator: a backfill and daily incremental runs under ~10% faults
(5xx, timeouts, truncated bodies, 429s in both Retry-After forms, token expiries) give exactly the
fault-free activities and people; so do runs throttled by the account's rate limit in either Retry-After
form; counts equal the emulator's ground truth; nothing written holds an id, an email, a name or a text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import canonical, lake
from pipelines.connectors.errors import AuthError
from pipelines.emulators.uservoice import Faults, UserVoiceEmulator
from pipelines.emulators.uservoice_account import build_account
from pipelines.sources import uservoice
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 30
INCREMENTAL_DAYS = 3
LAST = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
FAST = {"client_id_env": "UV_TEST_CLIENT_ID", "client_secret_env": "UV_TEST_CLIENT_SECRET", "timeout_s": 0.15,
        "backoff_base_s": 0.01, "max_attempts": 10, "requests_per_s": 1000, "per_page": 10}


@pytest.fixture(scope="module", autouse=True)
def credentials():
    mp = pytest.MonkeyPatch()
    mp.setenv("UV_TEST_CLIENT_ID", "emulator-key")
    mp.setenv("UV_TEST_CLIENT_SECRET", "emulator-secret")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


@pytest.fixture(scope="module")
def account(org):
    return build_account(org)


def _windows() -> list[tuple[dt.date, dt.date]]:
    end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
    return [(START, end)] + [(end + dt.timedelta(days=i + 1),) * 2 for i in range(INCREMENTAL_DAYS)]


def _run(org, account, root: Path, **server: Any) -> dict[str, Any]:
    server.setdefault("faults", Faults(timeout_delay_s=0.3))
    with UserVoiceEmulator(org, account=account, **server) as emu:
        ctx = make_ctx(root, "uservoice", {**FAST, "base_url": emu.url})
        reports = []
        for start, end in _windows():
            emu.advance_to(end)
            reports.append(uservoice.extract(ctx, start, end))
        stats = emu.stats
    people = uservoice.canonicalise(ctx, LAST)["people"].sort_values("person_key").reset_index(drop=True)
    return {"ctx": ctx, "reports": reports, "stats": stats, "root": root, "people": people,
            "activities": activities(uservoice.canonicalise, ctx, START, LAST)}


@pytest.fixture(scope="module")
def runs(org, account, tmp_path_factory):
    return {
        "clean": _run(org, account, tmp_path_factory.mktemp("clean"), token_requests=10_000),
        "faulty": _run(org, account, tmp_path_factory.mktemp("faulty"), token_requests=15,
                       faults=Faults(rate=0.1, seed=5, timeout_delay_s=0.3)),
        "limited_epoch": _run(org, account, tmp_path_factory.mktemp("epoch"), rate_limit=12, rate_period_s=0.4,
                              retry_after_form="epoch"),
        "limited_seconds": _run(org, account, tmp_path_factory.mktemp("seconds"), rate_limit=12, rate_period_s=0.4,
                                retry_after_form="seconds"),
    }


def test_faulty_runs_give_exactly_the_fault_free_activities_and_people(runs) -> None:
    faulty = runs["faulty"]
    faults = faulty["stats"].faults
    assert sum(faults.values()) >= 8, faults
    assert {"429_epoch", "429_seconds", "expired", "timeout", "truncated"} <= set(faults), faults
    retries = sum(sum(r.details["retries"].values()) for r in faulty["reports"])
    assert retries >= sum(faults.values()) - 3
    assert sum(r.details["tokens_fetched"] for r in faulty["reports"]) > len(faulty["reports"])  # expiries
    pd.testing.assert_frame_equal(faulty["activities"], runs["clean"]["activities"])
    pd.testing.assert_frame_equal(faulty["people"], runs["clean"]["people"])


@pytest.mark.parametrize("name", ["limited_epoch", "limited_seconds"])
def test_rate_limited_runs_wait_out_either_retry_after_form(runs, name: str) -> None:
    limited = runs[name]
    assert limited["stats"].limited >= 2
    assert sum(r.details["retry_after_waits"] for r in limited["reports"]) >= limited["stats"].limited
    assert all(r.details["rate_limit"] == 12 for r in limited["reports"])
    pd.testing.assert_frame_equal(limited["activities"], runs["clean"]["activities"])


def test_counts_match_the_ground_truth(runs, account) -> None:
    acts = runs["clean"]["activities"]
    now = dt.datetime(LAST.year, LAST.month, LAST.day, tzinfo=dt.UTC).timestamp() + 86399
    truth = account.counts(now)
    assert truth["idea"] > 30 and truth["status_change"] > 10
    assert acts["verb"].value_counts().to_dict() == truth
    assert acts["event_id"].is_unique
    ideas = acts[acts["verb"] == "idea"]
    assert ideas["is_idea"].all() and (ideas["thread_id"] == ideas["event_id"]).all()
    assert not acts.loc[acts["verb"] != "idea", "is_idea"].any()
    spam = sum(i.spam_at is not None and i.spam_at <= now for i in account.ideas if i.created <= now)
    assert ideas["is_deleted"].sum() == spam > 0
    by_idea = ideas.set_index("event_id")["actor_key"]
    for verb in ("reply", "vote"):
        rows = acts[acts["verb"] == verb]
        assert (rows["target_key"].to_numpy() == by_idea.loc[rows["parent_id"]].to_numpy()).all()
    changes = acts[acts["verb"] == "status_change"]
    expected = {"Under Review": "open", "Planned": "planned", "Started": "in_progress", "Completed": "completed",
                "Declined": "declined"}
    names = {s["id"]: s["name"] for s in account.statuses}
    want = {f"status_update:{u.id}": expected[names[u.new]] for u in account.status_updates() if u.created <= now}
    assert changes.set_index("event_id")["idea_status"].to_dict() == want
    people = runs["clean"]["people"]
    assert len(people) == len(account.users) and not people["in_directory"].any()
    assert all(r.details["identity_matched_share"] in (1.0, None) for r in runs["clean"]["reports"])


def test_incremental_runs_read_only_the_overlap_and_what_changed(runs) -> None:
    backfill, *daily = runs["clean"]["reports"]
    assert all(r.rows["ideas"] < backfill.rows["ideas"] / 2 for r in daily)  # ideas touched since the watermark
    for r in daily:
        assert all(r.details["watermark_from"][c] > backfill.details["watermark_from"][c]
                   for c in r.details["watermark_from"])
    # late comments, votes and status changes on ideas outside the window fetch their ideas by id
    assert sum(r.details["suggestions_fetched_by_id"] for r in daily) > 0
    assert all(r.details["skipped_without_suggestion"] == 0 for r in runs["clean"]["reports"])


def test_a_run_again_over_the_same_days_changes_nothing(runs, org, account, tmp_path) -> None:
    clean = runs["clean"]
    with UserVoiceEmulator(org, account=account) as emu:
        ctx = make_ctx(clean["root"], "uservoice", {**FAST, "base_url": emu.url})
        report = uservoice.extract(ctx, LAST, LAST)
    assert report.days == [] and report.rows["ideas"] > 0  # the overlap was read and deduplicated
    pd.testing.assert_frame_equal(activities(uservoice.canonicalise, ctx, START, LAST), clean["activities"])
    assert lake.partition_days(lake.raw_dir(ctx.lake_dir, "uservoice", "users"))[-1] == LAST


def test_nothing_written_contains_ids_emails_names_or_text(runs, account) -> None:
    needles = {u["email_address"] for u in account.users} | {u["name"] for u in account.users}
    needles |= {u["guid"] for u in account.users}
    needles |= {i.title for i in account.ideas if len(i.title) >= 12} | {i.body for i in account.ideas if len(i.body) >= 12}
    needles |= {c.body for c in account.comments() if len(c.body) >= 12}
    needles |= {f"Ideas {f['name']}" for f in account.forums}
    for name in ("faulty", "limited_epoch"):
        assert leaks(runs[name]["root"], needles) == [], name


def test_wrong_client_secret_is_fatal_and_names_the_variables(org, account, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("UV_TEST_CLIENT_SECRET", "wrong")
    with UserVoiceEmulator(org, account=account) as emu:
        ctx = make_ctx(tmp_path, "uservoice", {**FAST, "base_url": emu.url})
        with pytest.raises(AuthError, match=r"invalid_client.*\$UV_TEST_CLIENT_SECRET"):
            uservoice.extract(ctx, START, START)


def test_canonical_frames_conform_and_every_container_is_listed(runs) -> None:
    ctx = runs["clean"]["ctx"]
    acts = runs["clean"]["activities"]
    split = canonical.split_malformed_activities(acts)
    assert split.reasons == {} and len(split.good) == len(acts)
    assert canonical.activities_table(acts).num_rows == len(acts)
    last = uservoice.canonicalise(ctx, LAST)
    containers = canonical.containers_table(last["containers"])
    assert set(acts["container_id"]) <= set(containers.column("container_id").to_pylist())
    assert set(containers.column("kind").to_pylist()) == {"community"}
    people = canonical.people_table(last["people"])
    assert set(acts["actor_key"]) | set(acts["target_key"].dropna()) <= set(people.column("person_key").to_pylist())
