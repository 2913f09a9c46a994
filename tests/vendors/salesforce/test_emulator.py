"""End to end against the Salesforce emulator: backfill + daily incremental runs under ~10% faults
give exactly the fault-free activities; the org's daily API limit stops a run cleanly and the next
run resumes from the watermark without loss or duplicates; counts match the ground truth; nothing
written holds an id, an email or a text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.connectors.errors import AuthError
from pipelines.emulators.salesforce import Faults, SalesforceEmulator
from pipelines.emulators.salesforce_org import build_chatter
from pipelines.sources import salesforce
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 30
INCREMENTAL_DAYS = 3
LAST = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
FAST = {"client_id_env": "SF_TEST_CLIENT_ID", "client_secret_env": "SF_TEST_CLIENT_SECRET", "timeout_s": 0.15,
        "backoff_base_s": 0.01, "max_attempts": 10, "requests_per_s": 1000}


@pytest.fixture(scope="module", autouse=True)
def credentials():
    mp = pytest.MonkeyPatch()
    mp.setenv("SF_TEST_CLIENT_ID", "emulator-client")
    mp.setenv("SF_TEST_CLIENT_SECRET", "emulator-secret")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


@pytest.fixture(scope="module")
def chatter(org):
    return build_chatter(org)


def _windows() -> list[tuple[dt.date, dt.date]]:
    end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
    return [(START, end)] + [(end + dt.timedelta(days=i + 1),) * 2 for i in range(INCREMENTAL_DAYS)]


def _run(org, chatter, root: Path, *, faults: Faults | None = None, daily_limit: int = 15000) -> dict[str, Any]:
    with SalesforceEmulator(org, chatter=chatter, batch_size=25, daily_limit=daily_limit,
                            faults=faults or Faults(timeout_delay_s=0.3)) as emu:
        ctx = make_ctx(root, "salesforce", {**FAST, "login_url": emu.url})
        reports = []
        for start, end in _windows():
            emu.advance_to(end)
            for _ in range(40):  # each pass is a new 24-hour window of the org's allocation
                reports.append(salesforce.extract(ctx, start, end))
                if not reports[-1].details["stopped_by_daily_limit"]:
                    break
                emu.reset_usage()
            else:
                pytest.fail("the daily-limit runs never finished")
        faults_seen = sum(emu.stats.faults.values())
    return {"ctx": ctx, "reports": reports, "faults": faults_seen, "root": root,
            "activities": activities(salesforce.canonicalise, ctx, START, LAST)}


@pytest.fixture(scope="module")
def runs(org, chatter, tmp_path_factory):
    return {
        "clean": _run(org, chatter, tmp_path_factory.mktemp("clean")),
        "faulty": _run(org, chatter, tmp_path_factory.mktemp("faulty"),
                       faults=Faults(rate=0.1, seed=5, timeout_delay_s=0.3)),
        "limited": _run(org, chatter, tmp_path_factory.mktemp("limited"), daily_limit=8),
    }


def test_faulty_runs_give_exactly_the_fault_free_activities(runs) -> None:
    faulty = runs["faulty"]
    assert faulty["faults"] >= 3
    retries = sum(sum(r.details["retries"].values()) for r in faulty["reports"])
    assert retries >= faulty["faults"] - 2
    pd.testing.assert_frame_equal(faulty["activities"], runs["clean"]["activities"])


def test_daily_limit_stops_cleanly_and_resumes_without_loss_or_duplicates(runs) -> None:
    limited = runs["limited"]
    stops = [r for r in limited["reports"] if r.details["stopped_by_daily_limit"]]
    assert len(stops) >= 3  # the backfill alone needs several 24-hour windows
    assert all("REQUEST_LIMIT_EXCEEDED" in r.details["stop_reason"] for r in stops)
    assert all(r.details["api_usage"] == "8/8" for r in stops)  # the usage header is reported
    assert any(r.rows["feed_items"] > 0 for r in stops)  # what was received before the stop was kept
    acts = limited["activities"]
    assert acts["event_id"].is_unique
    pd.testing.assert_frame_equal(acts, runs["clean"]["activities"])


def test_counts_match_the_ground_truth(runs, chatter) -> None:
    acts = runs["clean"]["activities"]
    now = dt.datetime(LAST.year, LAST.month, LAST.day, tzinfo=dt.UTC).timestamp() + 86399
    items = [i for i in chatter.items if i.type != "TrackedChange" and i.created <= now]
    counts = acts["verb"].value_counts().to_dict()
    assert counts["post"] == len(items)
    assert acts.loc[acts["verb"] == "post", "is_deleted"].sum() == sum(i.deleted(now) for i in items) > 0
    assert counts["reply"] == sum(sum(c.created <= now for c in i.comments) for i in items)
    assert counts["reaction"] == sum(sum(x.created <= now for x in i.likes) for i in items)
    best = [i for i in items if i.best is not None and i.best[0] <= now]
    assert best and counts["answer_accepted"] == len(best)
    posts = acts[acts["verb"] == "post"].set_index("event_id")
    accepted = acts[acts["verb"] == "answer_accepted"]
    asker = posts.loc[accepted["thread_id"], "actor_key"].to_numpy()
    assert (accepted["actor_key"].to_numpy() == asker).all()  # actor = the asker
    assert acts.loc[acts["verb"] == "post", "is_question"].sum() == sum(i.type == "QuestionPost" for i in items)
    assert all(r.details["identity_matched_share"] in (1.0, None) for r in runs["clean"]["reports"])


def test_incremental_runs_only_read_what_changed(runs) -> None:
    backfill, *daily = [r for r in runs["clean"]["reports"]]
    assert all(r.rows["feed_items"] < backfill.rows["feed_items"] / 5 for r in daily)
    assert all(r.details["watermark_from"] > backfill.details["watermark_from"] for r in daily)


def test_nothing_written_contains_ids_emails_or_text(runs, chatter) -> None:
    needles = {u["Id"] for u in chatter.users} | {u["Id"][:15] for u in chatter.users}
    needles |= {u["Email"] for u in chatter.users}
    needles |= {i.body for i in chatter.items if len(i.body) >= 12}
    needles |= {c.body for i in chatter.items for c in i.comments if len(c.body) >= 12}
    for name in ("faulty", "limited"):
        assert leaks(runs[name]["root"], needles) == [], name


def test_wrong_client_secret_is_fatal_and_names_the_variables(org, chatter, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SF_TEST_CLIENT_SECRET", "wrong")
    with SalesforceEmulator(org, chatter=chatter) as emu:
        ctx = make_ctx(tmp_path, "salesforce", {**FAST, "login_url": emu.url})
        with pytest.raises(AuthError, match=r"invalid_client.*\$SF_TEST_CLIENT_SECRET"):
            salesforce.extract(ctx, START, START)


def test_options_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="token_env needs instance_url"):
        salesforce.SalesforceOptions.model_validate({"token_env": "SF_TOKEN"})
    with pytest.raises(ValueError, match="both client_id_env and client_secret_env"):
        salesforce.SalesforceOptions.model_validate({"client_id_env": "X"})
