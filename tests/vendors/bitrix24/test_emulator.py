"""End to end against the Bitrix24 emulator: a backfill and daily incremental runs under ~10% faults give
exactly the fault-free activities and people; counts, containers, mentions, readers and departments equal
the emulator's ground truth; a lying `total` and posts moving between pages lose and duplicate nothing;
a client within the limits never breaches them, a client that does is slowed by 503 / 429 and completes
with the same data; OAuth refreshes (and rotates) its tokens; nothing written holds an id, an email, a
name, a text or a secret."""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.connectors.errors import AuthError, FatalError
from pipelines.emulators.bitrix24 import Bitrix24Emulator, Faults, Limits
from pipelines.emulators.bitrix24_portal import Portal, build_portal
from pipelines.privacy import Pseudonymiser
from pipelines.sources import bitrix24
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import KEY, activities, leaks, make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 28
INCREMENTAL_DAYS = 3
LAST = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
CODE_ENV = "B24_TEST_WEBHOOK_CODE"
CODE = "emulatorwebhookcode7"
FAST = {"requests_per_s": 400, "burst": 20, "timeout_s": 0.2, "backoff_base_s": 0.01, "max_attempts": 10,
        "query_limit_wait_s": 0.05, "operating_basket_s": 0.3}
ROOMY = Limits(drain_per_s=1000, burst=100)  # limits the fast test client never reaches


@pytest.fixture(scope="module", autouse=True)
def credentials():
    mp = pytest.MonkeyPatch()
    mp.setenv(CODE_ENV, CODE)
    mp.setenv("B24_TEST_CLIENT_ID", "local.emulator.app")
    mp.setenv("B24_TEST_CLIENT_SECRET", "emulator-client-secret")
    mp.setenv("B24_TEST_REFRESH_TOKEN", "emulator-first-refresh-token")
    yield
    mp.undo()


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


@pytest.fixture(scope="module")
def portal(org) -> Portal:
    return build_portal(org)


def _windows() -> list[tuple[dt.date, dt.date]]:
    end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
    return [(START, end)] + [(end + dt.timedelta(days=i + 1),) * 2 for i in range(INCREMENTAL_DAYS)]


def _options(emu: Bitrix24Emulator, **extra: Any) -> dict[str, Any]:
    if extra.get("auth") == "oauth":
        base = {"client_id_env": "B24_TEST_CLIENT_ID", "client_secret_env": "B24_TEST_CLIENT_SECRET",
                "refresh_token_env": "B24_TEST_REFRESH_TOKEN", "oauth_url": f"{emu.url}/oauth/token/"}
    else:
        base = {"portal_url": emu.url, "webhook_user_id": emu.webhook_user, "webhook_code_env": CODE_ENV}
    return {**base, **FAST, **extra}


def _run(org, portal: Portal, root: Path, *, emulator: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
         between: Callable[[Bitrix24Emulator], None] | None = None) -> dict[str, Any]:
    kw = {"limits": ROOMY, "faults": Faults(timeout_delay_s=0.3), **(emulator or {})}
    with Bitrix24Emulator(org, portal=portal, **kw) as emu:
        ctx = make_ctx(root, "bitrix24", _options(emu, **(options or {})))
        reports = []
        for start, end in _windows():
            emu.advance_to(end)
            if between is not None:
                between(emu)
            reports.append(bitrix24.extract(ctx, start, end))
        out = {"ctx": ctx, "reports": reports, "root": root, "stats": emu.stats, "emu": emu,
               "refresh_tokens": set(emu.refresh_tokens),
               "activities": activities(bitrix24.canonicalise, ctx, START, LAST),
               "people": bitrix24.canonicalise(ctx, LAST)["people"].sort_values("person_key").reset_index(drop=True),
               "containers": bitrix24.canonicalise(ctx, LAST)["containers"]}
    return out


@pytest.fixture(scope="module")
def clean(org, portal, tmp_path_factory):
    return _run(org, portal, tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def faulty(org, portal, tmp_path_factory):
    return _run(org, portal, tmp_path_factory.mktemp("faulty"),
                emulator={"faults": Faults(rate=0.1, seed=5, timeout_delay_s=0.3)})


def _same(run: dict[str, Any], clean: dict[str, Any]) -> None:
    pd.testing.assert_frame_equal(run["activities"], clean["activities"])
    pd.testing.assert_frame_equal(run["people"], clean["people"])


# --- faults, ground truth, incremental ---------------------------------------------------------------
def test_faulty_runs_give_exactly_the_fault_free_activities_and_people(faulty, clean) -> None:
    faults = sum(faulty["stats"].faults.values())
    assert faults >= 5
    assert len(faulty["stats"].faults) >= 4  # of 500, 502, timeout, truncated, limit_200, batch_item
    retries = sum(sum(r.details["retries"].values()) for r in faulty["reports"])
    assert retries >= faults - 2
    _same(faulty, clean)


def test_counts_match_the_ground_truth(clean) -> None:
    emu, acts = clean["emu"], clean["activities"]
    ps = Pseudonymiser(KEY)
    email = {int(u["ID"]): u["EMAIL"] for u in emu.data.users}

    def key(uid: int) -> str:
        return ps.email(email[uid])

    posts = emu.visible_posts()
    comments = [c for p in posts for c in p.comments if c.created <= emu.now]
    counts = acts["verb"].value_counts().to_dict()
    assert counts["post"] == len(posts) > 200
    assert counts["reply"] == len(comments) > 200
    assert "reaction" not in counts and "share" not in counts  # no REST read of likes or shares
    by_id = acts.set_index("event_id")
    assert all(by_id.at[f"p{p.id}", "actor_key"] == key(p.author) for p in posts)
    # containers: a group read found the post (the lowest group id), else everyone / restricted
    for p in posts:
        groups = sorted(int(r[2:]) for r in p.rights if r.startswith("SG"))
        want = f"sg:{groups[0]}" if groups else "feed:all" if "UA" in p.rights else "feed:restricted"
        assert by_id.at[f"p{p.id}", "container_id"] == want, p.id
    assert sum(len([r for r in p.rights if r.startswith("SG")]) > 1 for p in posts) > 0
    assert set(acts["container_id"].dropna()) <= set(clean["containers"]["container_id"])
    # replies: parent, thread, target and container from the post
    for c in comments:
        row = by_id.loc[f"c{c.comment_id}"]
        post = next(p for p in posts if p.id == c.post_id)
        assert (row["actor_key"], row["parent_id"], row["target_key"]) == (key(c.author), f"p{c.post_id}", key(post.author))
        assert row["container_id"] == by_id.at[f"p{c.post_id}", "container_id"]
    # mentions: in posts, and in the administrator's own comments only (others' texts come back empty)
    want_mentions = {(f"p{p.id}", key(int(u))) for p in posts for u in bitrix24.mentioned_ids(p.text) if int(u) != p.author}
    want_mentions |= {(f"c{c.comment_id}", key(int(u))) for c in comments if c.author == emu.data.admin_id
                      for u in bitrix24.mentioned_ids(c.text) if int(u) != c.author}
    got = acts[acts["verb"] == "mention"]
    assert set(zip(got["parent_id"], got["target_key"], strict=True)) == want_mentions
    assert any(p.startswith("c") for p, _ in want_mentions) and any(p.startswith("p") for p, _ in want_mentions)
    assert sum(r.details["comments_without_text"] for r in clean["reports"]) == \
        sum(c.author != emu.data.admin_id for c in comments)
    # readers of important posts: one view each, at the post's time
    views = acts[acts["verb"] == "view"]
    want_views = {(f"p{p.id}", key(u)) for p in posts if p.important for t, u in p.readers if t <= emu.now}
    assert set(zip(views["thread_id"], views["actor_key"], strict=True)) == want_views and want_views
    assert (views["occurred_at"].to_numpy() == by_id.loc[views["thread_id"], "occurred_at"].to_numpy()).all()
    # questions: the default rule ('?') on the text
    assert by_id.loc[[f"p{p.id}" for p in posts], "is_question"].sum() == sum(p.text.endswith("?") for p in posts)


def test_people_come_with_their_top_level_department_and_account_type(clean, org) -> None:
    people = clean["people"].set_index("person_key")
    ps = Pseudonymiser(KEY)
    assert len(people) == len(org.people) + 2  # and the two extranet users
    for p in org.people.itertuples(index=False):
        row = people.loc[ps.email(p.email)]
        assert row["department"] == p.department  # the top-level unit, though most sit in a team below it
        assert row["account_type"] == "member" and not row["in_directory"]
        assert bool(row["is_deactivated"]) == (p.termination_date is not None)
    externals = people[people["account_type"] == "external"]
    assert len(externals) == 2 and externals["department"].isna().all()


def test_incremental_runs_read_only_what_changed(clean) -> None:
    backfill, *daily = clean["reports"]
    assert backfill.details["backfill"] and not any(r.details["backfill"] for r in daily)
    assert all(r.rows["posts"] < backfill.rows["posts"] / 4 for r in daily)
    assert all(r.rows["comments"] < backfill.rows["comments"] / 4 for r in daily)
    assert all(r.details["window_from"] > backfill.details["window_from"] for r in daily)
    assert all(r.details["requests"] <= backfill.details["requests"] for r in daily)


# --- paging ---------------------------------------------------------------------------------------------
def test_a_lying_total_and_posts_moving_between_pages_lose_and_duplicate_nothing(org, portal, clean, tmp_path) -> None:
    run = _run(org, portal, tmp_path, emulator={"lying_total": "page", "churn": 0.6})
    assert run["emu"].touched  # posts did move while the scans were running
    assert sum(r.details["posts_found_rereading_head"] for r in run["reports"]) > 0
    assert run["activities"]["event_id"].is_unique
    _same(run, clean)


def test_a_portal_without_the_date_filter_and_with_portal_dates_gives_the_same_activities(org, portal, clean,
                                                                                          tmp_path) -> None:
    run = _run(org, portal, tmp_path, emulator={"supports_log_date": False, "date_format": "portal"},
               options={"portal_timezone": "Europe/Moscow"})  # the emulated server writes +03:00 times
    assert all(r.details["log_date_filter"] == "ignored" for r in run["reports"][1:])
    assert all(r.details["posts_outside_window"] > 0 for r in run["reports"][1:])
    _same(run, clean)


def test_comments_keyed_by_log_id_land_with_an_unresolved_parent(org, portal, clean, tmp_path) -> None:
    run = _run(org, portal, tmp_path, emulator={"comment_parent_key": "log_id"})
    replies = run["activities"][run["activities"]["verb"] == "reply"]
    want = clean["activities"][clean["activities"]["verb"] == "reply"]
    assert list(replies["event_id"]) == list(want["event_id"])
    assert replies["parent_id"].isna().all() and replies["target_key"].isna().all()
    assert replies["container_id"].isna().all() and replies["thread_id"].str.startswith("l").all()
    assert sum(r.details["comments_parent_unresolved"] for r in run["reports"]) == len(replies)


# --- limits ---------------------------------------------------------------------------------------------
# the documented mechanisms, scaled down: a bucket of 10 drained at 60/s; 1 s of operating time per method
# in a window of 1 s (10 baskets of 0.1 s); every call costs 10 ms plus 2 ms a row
TIGHT = Limits(drain_per_s=60, burst=10, operating_limit_s=1.0, operating_window_s=1.0, cost_s=0.01,
               cost_per_row_s=0.002)


def test_a_client_within_the_limits_never_breaches_them(org, portal, clean, tmp_path) -> None:
    run = _run(org, portal, tmp_path, emulator={"limits": TIGHT},
               options={"requests_per_s": 50, "burst": 5, "batch_size": 5, "operating_limit_s": 1.0,
                        "operating_headroom": 0.5})
    assert run["stats"].query_limit_breaches == 0 and run["stats"].operating_breaches == 0
    assert sum(r.details["operating_waits"] for r in run["reports"]) > 0  # it slowed down before the limit
    _same(run, clean)


def test_a_run_that_hits_503_and_429_backs_off_and_completes(org, portal, clean, tmp_path) -> None:
    run = _run(org, portal, tmp_path, emulator={"limits": TIGHT},
               options={"requests_per_s": 1000, "burst": 1000, "batch_size": 5, "operating_limit_s": 1e6})
    assert run["stats"].query_limit_breaches > 0 and run["stats"].operating_breaches > 0
    assert sum(r.details["query_limit_hits"] for r in run["reports"]) > 0
    assert all(r.details["rate_per_s"] < 1000 for r in run["reports"] if r.details["query_limit_hits"])
    _same(run, clean)


# --- OAuth --------------------------------------------------------------------------------------------
def test_oauth_refreshes_on_expired_tokens_and_keeps_the_rotated_refresh_token(org, portal, clean, tmp_path) -> None:
    token_file = tmp_path / "secrets" / "b24-token.json"
    run = _run(org, portal, tmp_path / "lake-root", between=lambda emu: emu.expire_tokens(),
               emulator={"faults": Faults(rate=0.1, seed=9, timeout_delay_s=0.3)},
               options={"auth": "oauth", "token_file": str(token_file)})
    stats = run["stats"]
    assert stats.expired >= len(_windows()) - 1  # every later run met an expired token and refreshed
    assert sum(r.details["token_refreshes"] for r in run["reports"]) == stats.refreshes >= len(_windows())
    assert stats.faults["expired"] > 0  # and tokens that expired mid-run were refreshed too
    _same(run, clean)
    saved = __import__("json").loads(token_file.read_text())
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert "emulator-first-refresh-token" not in run["refresh_tokens"]  # rotated away at the first refresh
    assert saved["refresh_token"] in run["refresh_tokens"]  # the file holds the live one


def test_oauth_without_the_kept_token_file_names_what_to_do(org, portal, tmp_path) -> None:
    token_file = tmp_path / "b24-token.json"
    with Bitrix24Emulator(org, portal=portal, limits=ROOMY) as emu:
        ctx = make_ctx(tmp_path, "bitrix24", _options(emu, auth="oauth", token_file=str(token_file)))
        bitrix24.extract(ctx, LAST, LAST)  # the first refresh token is used, and rotated
        token_file.unlink()  # the rotated token is lost: the configured one is dead
        with pytest.raises(AuthError, match=r"invalid_grant.*re-authorise the application.*B24_TEST_REFRESH_TOKEN"):
            bitrix24.extract(ctx, LAST, LAST)


# --- credentials and rights ---------------------------------------------------------------------------
def test_a_wrong_webhook_code_is_fatal_and_names_the_variable(org, portal, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(CODE_ENV, "wrong-code")
    with Bitrix24Emulator(org, portal=portal, limits=ROOMY) as emu:
        ctx = make_ctx(tmp_path, "bitrix24", _options(emu))
        with pytest.raises(AuthError, match=rf"NO_AUTH_FOUND.*\${CODE_ENV}") as info:
            bitrix24.extract(ctx, LAST, LAST)
    assert "wrong-code" not in str(info.value)


def test_a_webhook_of_a_non_administrator_is_refused(org, portal, tmp_path) -> None:
    with Bitrix24Emulator(org, portal=portal, limits=ROOMY, admin=False) as emu:
        ctx = make_ctx(tmp_path, "bitrix24", _options(emu))
        with pytest.raises(FatalError, match="not a portal administrator"):
            bitrix24.extract(ctx, LAST, LAST)


def test_departments_can_be_the_leaf_units(org, portal, clean, tmp_path) -> None:
    with Bitrix24Emulator(org, portal=portal, limits=ROOMY) as emu:
        ctx = make_ctx(tmp_path, "bitrix24", _options(emu, department_level="leaf"))
        bitrix24.extract(ctx, LAST, LAST)
        people = bitrix24.canonicalise(ctx, LAST)["people"]
    names = {int(d["ID"]): d["NAME"] for d in portal.departments}
    ps = Pseudonymiser(KEY)
    want = {ps.email(u["EMAIL"]): names[u["UF_DEPARTMENT"][0]] if u["UF_DEPARTMENT"] else None for u in portal.users}
    got = people.set_index("person_key")["department"]
    assert {k: (None if pd.isna(v) else v) for k, v in got.items()} == want
    assert got.dropna().str.endswith((" Team A", " Team B")).sum() > 5  # the teams below the top-level units
    top = clean["people"].set_index("person_key")["department"]
    assert all(d == top[k] or d.startswith(f"{top[k]} Team ") for k, d in got.dropna().items())


# --- privacy --------------------------------------------------------------------------------------------
def test_nothing_written_contains_ids_emails_names_texts_or_secrets(faulty, portal, tmp_path_factory) -> None:
    needles = {u["ID"] for u in portal.users} | {u["EMAIL"] for u in portal.users}
    needles |= {u["NAME"] for u in portal.users} | {u["LAST_NAME"] for u in portal.users if u["LAST_NAME"] != "Guestq"}
    needles |= {p.text for p in portal.posts if len(p.text) >= 12}
    needles |= {c.text for c in portal.comments() if len(c.text) >= 12}
    needles |= {CODE, "emulator-client-secret", "emulator-first-refresh-token"}
    assert leaks(faulty["root"], needles) == []


def test_options_name_what_is_missing() -> None:
    with pytest.raises(ValueError, match="portal_url and webhook_user_id"):
        bitrix24.Bitrix24Options.model_validate({"webhook_code_env": "X"})
    with pytest.raises(ValueError, match="token_file"):
        bitrix24.Bitrix24Options.model_validate({"auth": "oauth", "client_id_env": "A"})
    with pytest.raises(ValueError, match="https"):
        bitrix24.Bitrix24Options.model_validate({"portal_url": "http://portal.example", "webhook_user_id": 1})
    with pytest.raises(ValueError, match="unknown time zone"):
        bitrix24.Bitrix24Options.model_validate({"portal_url": "https://p.example", "webhook_user_id": 1,
                                                 "portal_timezone": "Mars/Olympus"})
    with pytest.raises(ValueError, match="department_level"):
        bitrix24.Bitrix24Options.model_validate({"portal_url": "https://p.example", "webhook_user_id": 1,
                                                 "department_level": "middle"})


def test_connection_credentials_map_a_webhook_and_an_oauth_app() -> None:
    assert bitrix24.connection_credentials("7", "code", {}) == {"webhook_code": "code"}
    assert bitrix24.connection_credentials("app", "secret", {"refresh_token": "r"}) == \
        {"client_id": "app", "client_secret": "secret", "refresh_token": "r"}
