"""End to end against the MangoApps emulator: a backfill and daily incremental runs under ~10% faults
(500/502s, timeouts, truncated bodies, 429s, transient ms_errors, ended sessions) give exactly the
fault-free activities and people; so do a rate-limited run and an OAuth run whose token is refreshed;
counts equal the emulator's ground truth; an API whose answers differ from the assumptions stops the run
naming the field; nothing written holds an id, an email, a name or a text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines import canonical, lake
from pipelines.connectors.errors import AuthError
from pipelines.connectors.state import open_state
from pipelines.emulators.mangoapps import Faults, MangoAppsEmulator
from pipelines.emulators.mangoapps_network import build_network
from pipelines.sources import mangoapps
from pipelines.sources.demo_org import build_org
from pipelines.sources.mangoapps_api import MangoAppsShapeError
from tests.vendors.yammer.helpers import activities, leaks, make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 21
INCREMENTAL_DAYS = 3
LAST = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
FAST = {"timeout_s": 0.15, "backoff_base_s": 0.01, "max_attempts": 10, "requests_per_s": 1000, "feeds_limit": 8,
        "groups_limit": 5, "users_limit": 10}
SESSION = {"api_key_env": "MA_TEST_KEY", "username_env": "MA_TEST_USER", "password_env": "MA_TEST_PASSWORD"}
OAUTH = {"auth": "oauth", "access_token_env": "MA_TEST_TOKEN", "refresh_token_env": "MA_TEST_REFRESH",
         "client_id_env": "MA_TEST_CLIENT"}


@pytest.fixture(scope="module", autouse=True)
def credentials():
    mp = pytest.MonkeyPatch()
    mp.setenv("MA_TEST_KEY", "emulator-api-key")
    mp.setenv("MA_TEST_USER", "admin@demo-corp.example")
    mp.setenv("MA_TEST_PASSWORD", "emulator-password")
    mp.setenv("MA_TEST_CLIENT", "emulator-client")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


@pytest.fixture(scope="module")
def network(org):
    return build_network(org)


def _windows() -> list[tuple[dt.date, dt.date]]:
    end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
    return [(START, end)] + [(end + dt.timedelta(days=i + 1),) * 2 for i in range(INCREMENTAL_DAYS)]


def _run(org, network, root: Path, auth: dict[str, Any] = SESSION, **server: Any) -> dict[str, Any]:
    server.setdefault("faults", Faults(timeout_delay_s=0.3))
    with MangoAppsEmulator(org, network=network, **server) as emu:
        if auth is OAUTH:
            token, refresh = emu.issue_bearer()
            mp = pytest.MonkeyPatch()
            mp.setenv("MA_TEST_TOKEN", token)
            mp.setenv("MA_TEST_REFRESH", refresh)
        ctx = make_ctx(root, "mangoapps", {**FAST, **auth, "base_url": emu.url})
        reports: list[Any] = []
        try:
            for start, end in _windows():
                emu.advance_to(end)
                if auth is OAUTH and reports:  # the refresh token rotates: the next run starts from the latest
                    mp.setenv("MA_TEST_REFRESH", next(iter(emu._refresh_tokens)))
                reports.append(mangoapps.extract(ctx, start, end))
        finally:
            if auth is OAUTH:
                mp.undo()
        stats = emu.stats
    people = mangoapps.canonicalise(ctx, LAST)["people"].sort_values("person_key").reset_index(drop=True)
    return {"ctx": ctx, "reports": reports, "stats": stats, "root": root, "people": people,
            "activities": activities(mangoapps.canonicalise, ctx, START, LAST)}


@pytest.fixture(scope="module")
def runs(org, network, tmp_path_factory):
    return {
        "clean": _run(org, network, tmp_path_factory.mktemp("clean"), session_requests=10_000),
        "faulty": _run(org, network, tmp_path_factory.mktemp("faulty"), session_requests=12,
                       faults=Faults(rate=0.1, seed=5, timeout_delay_s=0.3)),
        "limited": _run(org, network, tmp_path_factory.mktemp("limited"), rate_limit=8, rate_period_s=0.3),
        "oauth": _run(org, network, tmp_path_factory.mktemp("oauth"), OAUTH, session_requests=7,
                      timestamp_style="epoch_string"),
    }


def test_faulty_runs_give_exactly_the_fault_free_activities_and_people(runs) -> None:
    faulty = runs["faulty"]
    faults = faulty["stats"].faults
    assert sum(faults.values()) >= 8, faults
    assert {"500", "502", "timeout", "truncated", "429", "ms_errors", "expired"} <= set(faults), faults
    retries = sum(sum(r.details["retries"].values()) for r in faulty["reports"])
    assert retries >= sum(faults.values()) - 3
    assert sum(r.details["logins"] for r in faulty["reports"]) > len(faulty["reports"])  # ended sessions
    pd.testing.assert_frame_equal(faulty["activities"], runs["clean"]["activities"])
    pd.testing.assert_frame_equal(faulty["people"], runs["clean"]["people"])


def test_a_rate_limited_run_waits_it_out(runs) -> None:
    limited = runs["limited"]
    assert limited["stats"].limited >= 2
    assert sum(r.details["retry_after_waits"] for r in limited["reports"]) >= limited["stats"].limited
    pd.testing.assert_frame_equal(limited["activities"], runs["clean"]["activities"])


def test_an_oauth_run_refreshes_its_token_and_reads_the_same(runs) -> None:
    oauth = runs["oauth"]
    assert oauth["stats"].refreshes >= 2 and oauth["stats"].logins == 0
    assert sum(r.details["token_refreshes"] for r in oauth["reports"]) == oauth["stats"].refreshes
    # timestamps served as strings of digits (A3 allows both) change nothing
    pd.testing.assert_frame_equal(oauth["activities"], runs["clean"]["activities"])
    pd.testing.assert_frame_equal(oauth["people"], runs["clean"]["people"])


def test_counts_match_the_ground_truth(runs, network) -> None:
    acts = runs["clean"]["activities"]
    now = dt.datetime(LAST.year, LAST.month, LAST.day, tzinfo=dt.UTC).timestamp() + 86399
    truth = network.counts(now)
    assert truth["post"] > 60 and truth["reply"] > 60 and truth["reaction"] > 40
    assert acts["verb"].value_counts().to_dict() == truth
    assert acts["event_id"].is_unique
    live = [i for i in network.items if i.created <= now]
    backfill_end = now - INCREMENTAL_DAYS * 86400
    assert runs["clean"]["reports"][0].details["system_items_skipped"] == \
        sum(i.system for i in live if i.created <= backfill_end) > 0
    author = {f"feed:{i.id}": i.author for i in live} | {f"comment:{c.id}": c.author for i in live for c in i.comments}
    key = {uid: runs["clean"]["ctx"].pseudonymiser.email(network._users[uid]["email"]) for uid in network._users}
    replies = acts[acts["verb"] == "reply"].set_index("event_id")
    want = {f"comment:{c.id}": (f"comment:{c.parent_id}" if c.parent_id else f"feed:{i.id}")
            for i in live for c in i.comments if c.created <= now}
    assert replies["parent_id"].to_dict() == want
    assert sum(v.startswith("comment:") for v in want.values()) > 5  # nested replies exist
    assert (replies["target_key"] == replies["parent_id"].map(lambda p: key[author[p]])).all()
    likes = acts[acts["verb"] == "reaction"]
    assert (likes["target_key"].to_numpy() == likes["parent_id"].map(lambda p: key[author[p]]).to_numpy()).all()
    assert likes["parent_id"].str.startswith("comment:").any() and likes["parent_id"].str.startswith("feed:").any()
    created = {f"feed:{i.id}": i.created for i in live} | {f"comment:{c.id}": c.created for i in live for c in i.comments}
    assert (likes["occurred_at"].map(lambda t: t.timestamp()) == likes["parent_id"].map(created)).all()  # A10
    posts = acts[acts["verb"] == "post"]
    assert (posts["thread_id"] == posts["event_id"]).all() and posts["is_question"].any()
    assert (posts["container_id"] == "feed:network").any() and (posts["container_id"] != "feed:network").any()
    people = runs["clean"]["people"]
    assert len(people) == len(network.users) and not people["in_directory"].any()
    assert all(r.details["identity_matched_share"] in (1.0, None) for r in runs["clean"]["reports"])


def test_incremental_runs_read_only_what_changed_since_the_watermark(runs) -> None:
    backfill, *daily = runs["clean"]["reports"]
    assert all(r.rows["feed_items_read"] < backfill.rows["feed_items_read"] / 2 for r in daily)
    assert all(r.details["feed_pages"] < backfill.details["feed_pages"] for r in daily)
    marks = [r.details["watermark_from"] for r in runs["clean"]["reports"]]
    assert marks == sorted(marks) and len(set(marks)) == len(marks)
    assert all(r.details["watermark_to"] is not None for r in runs["clean"]["reports"])


def test_a_run_again_over_the_same_days_changes_nothing(runs, org, network) -> None:
    clean = runs["clean"]
    with MangoAppsEmulator(org, network=network) as emu:
        ctx = make_ctx(clean["root"], "mangoapps", {**FAST, **SESSION, "base_url": emu.url})
        emu.advance_to(LAST)
        report = mangoapps.extract(ctx, LAST, LAST)
    assert report.days == [] and report.rows["posts"] > 0  # the overlap was read and deduplicated
    pd.testing.assert_frame_equal(activities(mangoapps.canonicalise, ctx, START, LAST), clean["activities"])
    assert lake.partition_days(lake.raw_dir(ctx.lake_dir, "mangoapps", "users"))[-1] == LAST


@pytest.mark.parametrize(("style", "pattern"), [
    ("iso", r"feeds answer: field 'feeds\[\]\.created_at' \(at feeds\[0\]\.created_at\) is an ISO string, expected "
            r"epoch seconds \(unverified assumption A3"),
    ("ms", r"feeds answer: field 'feeds\[\]\.created_at' .* looks like epoch milliseconds, expected epoch seconds"),
])
def test_an_api_unlike_the_assumptions_fails_loudly_and_lands_nothing(org, network, tmp_path, style, pattern) -> None:
    with MangoAppsEmulator(org, network=network, timestamp_style=style) as emu:
        ctx = make_ctx(tmp_path, "mangoapps", {**FAST, **SESSION, "base_url": emu.url})
        with pytest.raises(MangoAppsShapeError, match=pattern) as info:
            mangoapps.extract(ctx, START, START + dt.timedelta(days=2))
    assert info.value.method == "feeds" and info.value.assumption == "A3"
    assert not any((ctx.lake_dir).rglob("*.parquet"))  # nothing landed, no watermark committed
    with open_state(ctx.settings.warehouse_url, "mangoapps") as store:
        assert store.load("feeds") == {}


def test_nothing_written_contains_ids_emails_names_or_text(runs, network) -> None:
    needles = {u["email"] for u in network.users} | {u["name"] for u in network.users}
    needles |= {u["employee_id"] for u in network.users} | {g["name"] for g in network.groups}
    needles |= {i.body for i in network.items if len(i.body) >= 12}
    needles |= {c.body for c in network.comments() if len(c.body) >= 12}
    user_ids = {str(u["id"]) for u in network.users}
    for name in ("faulty", "oauth"):
        root = runs[name]["root"]
        assert leaks(root, needles) == [], name
        cells = {str(v) for p in root.rglob("*.parquet") for col in pq.read_table(p).columns for v in col.to_pylist()}
        assert cells and cells & user_ids == set(), name  # no raw user id in any cell


def test_wrong_password_is_fatal_and_names_the_variables(org, network, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MA_TEST_PASSWORD", "wrong")
    with MangoAppsEmulator(org, network=network) as emu:
        ctx = make_ctx(tmp_path, "mangoapps", {**FAST, **SESSION, "base_url": emu.url})
        with pytest.raises(AuthError, match=r"refused the sign-in .*AUTHENTICATION_ERROR.*\$MA_TEST_PASSWORD") as info:
            mangoapps.extract(ctx, START, START)
    assert "wrong" not in str(info.value)


def test_connection_credentials_map_both_schemes() -> None:
    assert mangoapps.connection_credentials("ada", "pw", {"api_key": "k"}) == \
        {"username": "ada", "password": "pw", "api_key": "k"}
    assert mangoapps.connection_credentials("cid", "secret", {"access_token": "t", "refresh_token": "r"}) == \
        {"access_token": "t", "refresh_token": "r", "client_id": "cid", "client_secret": "secret"}


def test_canonical_frames_conform_and_every_container_is_listed(runs) -> None:
    ctx = runs["clean"]["ctx"]
    acts = runs["clean"]["activities"]
    split = canonical.split_malformed_activities(acts)
    assert split.reasons == {} and len(split.good) == len(acts)
    assert canonical.activities_table(acts).num_rows == len(acts)
    last = mangoapps.canonicalise(ctx, LAST)
    containers = canonical.containers_table(last["containers"])
    assert set(acts["container_id"]) <= set(containers.column("container_id").to_pylist())
    assert set(containers.column("kind").to_pylist()) == {"group", "feed"}
    people = canonical.people_table(last["people"])
    assert set(acts["actor_key"]) | set(acts["target_key"].dropna()) <= set(people.column("person_key").to_pylist())
