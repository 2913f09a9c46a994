"""End to end against the Graph emulator: backfill + daily incremental runs under ~10% faults, edits,
deletions and late replies, token expiry, permissions, usage reports, privacy of everything written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import lake
from pipelines.connectors.errors import AuthError
from pipelines.emulators.msgraph import Faults, GraphEmulator
from pipelines.emulators.msgraph_tenant import build_tenant
from pipelines.sources import msgraph, usage_reports
from pipelines.sources.demo_org import build_org
from tests.connectors.conftest import make_ctx

START = dt.date(2026, 1, 5)
BACKFILL_DAYS = 35
INCREMENTAL_DAYS = 3
CREDS = {"tenant_id": "tenant", "client_id": "emu-client", "client_secret": "emu-secret"}
FAST = {"rate_period_s": 0.002, "timeout_s": 0.15, "backoff_base_s": 0.01, "max_attempts": 12,
        "late_reply_horizon_days": 7, "include_chats": True}


@pytest.fixture(scope="module")
def org():
    return build_org(60, BACKFILL_DAYS + INCREMENTAL_DAYS + 2, START, 7, 1.0)


def _emulator(org, **kw: Any) -> GraphEmulator:
    return GraphEmulator(org, tenant=build_tenant(org), expand_limit=3, **kw)


def _ctx(root: Path, emu: GraphEmulator, **opts: Any):
    return make_ctx(root, "msgraph", {**FAST, "base_url": emu.url, "token_url": emu.token_url, **opts})


def _canonical(ctx, days: list[dt.date]) -> pd.DataFrame:
    frames = [msgraph.canonicalise(ctx, d).get("activities") for d in days]
    df = pd.concat([f for f in frames if f is not None], ignore_index=True)
    return df.sort_values("event_id").reset_index(drop=True)


def _run(org, root: Path, faults: Faults | None, *, incremental: bool) -> dict[str, Any]:
    last = START + dt.timedelta(days=BACKFILL_DAYS + INCREMENTAL_DAYS - 1)
    with _emulator(org, faults=faults or Faults(timeout_delay_s=0.3)) as emu:
        ctx = _ctx(root, emu)
        reports = []
        if incremental:
            end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
            emu.advance_to(end)
            reports.append(msgraph.extract(ctx, START, end, **CREDS))
            for i in range(INCREMENTAL_DAYS):
                day = end + dt.timedelta(days=i + 1)
                emu.advance_to(day)
                reports.append(msgraph.extract(ctx, day, day, **CREDS))
        else:
            emu.advance_to(last)
            reports.append(msgraph.extract(ctx, START, last, **CREDS))
        truth = emu.visible_messages(last)
        tenant = emu.tenant
        stats = emu.stats
    return {"ctx": ctx, "reports": reports, "truth": truth, "tenant": tenant, "stats": stats, "root": root,
            "activities": _canonical(ctx, lake.days_between(START, last))}


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
    faults = sum(faulty["stats"].faults.values())
    assert faults > 30  # the faults really happened ...
    retries = sum(sum(r.details["http"]["retries"].values()) for r in faulty["reports"])
    assert retries >= faults - 5  # ... and were retried (a few timeouts can outlive a run)
    assert {"429", "429_access_denied", "timeout", "truncated"} <= set(faulty["stats"].faults)
    pd.testing.assert_frame_equal(faulty["activities"], clean["activities"])


def test_incremental_runs_equal_a_fresh_backfill_at_the_same_clock(runs) -> None:
    pd.testing.assert_frame_equal(runs["clean"]["activities"], runs["fresh"]["activities"])


def test_links_are_followed_exactly_and_the_prefer_header_is_always_sent(runs) -> None:
    for run in runs.values():
        assert run["stats"].foreign_links == 0
        assert run["stats"].missing_prefer == 0
    daily = runs["clean"]["reports"][1:]
    # incremental runs resume from the stored deltaLink instead of a new filtered round
    assert all(r.details["delta_restarts"] == 0 for r in daily)
    assert all(r.details["delta_roots"] < runs["clean"]["reports"][0].details["delta_roots"] / 5 for r in daily)


def test_edits_deletions_and_late_replies_are_picked_up(runs) -> None:
    clean = runs["clean"]
    backfill_end = START + dt.timedelta(days=BACKFILL_DAYS - 1)
    acts = clean["activities"]
    daily = clean["reports"][1:]
    assert all(r.details["days_rewritten_before_start"] for r in daily)
    # replies written after the backfill to threads started before its end
    replies = acts[acts["verb"] == "reply"]
    parent_day = replies["parent_id"].map(dict(zip(acts["event_id"], acts["occurred_at"].dt.date, strict=True)))
    late = replies[(replies["occurred_at"].dt.date > backfill_end) & (parent_day <= backfill_end)]
    assert len(late) > 0
    truth = clean["truth"]
    people = [m for m in truth if m["from"] and m["from"].get("user") and not m["deletedDateTime"]]
    assert len(acts[acts["verb"].isin(["post", "reply"])]) == len(people)
    deleted = [m for m in truth if m["deletedDateTime"]]
    assert deleted, "the scenario should contain deleted messages"
    keys = {f"{m['_container']}:{m['id']}" for m in deleted if m["_kind"] != "chat"}
    assert keys and not keys & set(acts["event_id"])  # deleted messages are nobody's activity any more
    assert acts["is_edited"].sum() == sum(1 for m in people if m["lastEditedDateTime"])
    reactions = sum(len({(r["reactionType"], r["user"]["user"]["id"]) for r in m["reactions"]})
                    for m in truth if not m["deletedDateTime"] and m["from"])
    assert (acts["verb"] == "reaction").sum() == reactions
    mentions = sum(len({x["mentioned"]["user"]["id"] for x in m["mentions"]} - {m["from"]["user"]["id"]})
                   for m in people)  # self-mentions are no interaction
    assert (acts["verb"] == "mention").sum() == mentions
    # chat replies come from messageReference attachments and have a target
    chat_replies = replies[replies["container_id"].str.startswith("chat:")]
    assert len(chat_replies) > 0 and chat_replies["target_key"].notna().all()
    kinds = clean["reports"][0].details["by_kind"]
    assert kinds["system"] > 0 and kinds["bot"] > 0  # classified, landed, not counted


def test_same_person_gets_the_same_key_as_in_slack(runs) -> None:
    ps = runs["clean"]["ctx"].pseudonymiser
    tenant = runs["clean"]["tenant"]
    acts = runs["clean"]["activities"]
    # people whose UPN differs from their mail still get the key of their mail (the address Slack knows)
    odd = [u for u in tenant.users if u.upn != u.mail]
    assert odd
    assert {ps.email(u.mail) for u in odd} & set(acts["actor_key"])
    assert not set(acts["actor_key"]) & {ps.email(u.upn) for u in odd}


def test_nothing_written_contains_ids_emails_names_or_text(runs) -> None:
    for name in ("faulty", "fresh"):
        run = runs[name]
        tenant = run["tenant"]
        needles = {u.id for u in tenant.users} | {u.mail.lower() for u in tenant.users} | \
                  {u.upn.lower() for u in tenant.users} | {f"{u.name}," for u in tenant.users} | set(tenant.chats)
        needles |= {(m["body"]["content"] or "") for m in run["truth"] if len(m["body"]["content"] or "") >= 12
                    and m["body"]["content"] != "<systemEventMessage/>"}
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
        blob = "\n".join(cells).lower()
        leaks = [n for n in needles if n.lower() in blob]
        assert leaks == [], f"{name}: found {leaks[:5]}"


def test_expired_tokens_are_refreshed_and_a_wrong_secret_is_fatal(org, tmp_path, monkeypatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with _emulator(org, token_ttl_requests=40) as emu:
        emu.advance_to(START + dt.timedelta(days=3))
        ctx = _ctx(tmp_path / "a", emu, include_chats=False)
        report = msgraph.extract(ctx, START, START + dt.timedelta(days=3), **CREDS)
        assert report.details["token_refreshes"] == 1 and emu.stats.tokens_issued == 2
        monkeypatch.setenv("MY_SECRET", "wrong")
        monkeypatch.setenv("MSGRAPH_TENANT_ID", "tenant")
        monkeypatch.setenv("MSGRAPH_CLIENT_ID", "emu-client")
        ctx = _ctx(tmp_path / "b", emu, client_secret_env="MY_SECRET")
        with pytest.raises(AuthError, match=r"\$MY_SECRET") as exc:
            msgraph.extract(ctx, START, START)
        assert "wrong" not in str(exc.value)


def test_chats_without_permission_are_skipped_and_reported(org, tmp_path) -> None:
    with _emulator(org, chats_permitted=False) as emu:
        emu.advance_to(START + dt.timedelta(days=2))
        report = msgraph.extract(_ctx(tmp_path, emu), START, START + dt.timedelta(days=2), **CREDS)
    assert report.details["chats_forbidden"] and report.details["chats"] == 0
    assert report.details["channels"] > 0


def test_usage_reports_land_aggregates_and_count_concealed_people_as_unresolved(org, tmp_path) -> None:
    day = START + dt.timedelta(days=10)
    out = {}
    for concealed in (False, True):
        with _emulator(org, concealed=concealed, faults=Faults(rate=0.1, seed=2, timeout_delay_s=0.3)) as emu:
            emu.advance_to(day + dt.timedelta(days=2))
            ctx = make_ctx(tmp_path / str(concealed), "m365_usage", {
                "base_url": emu.url, "token_url": emu.token_url, "rate_period_s": 0.002, "timeout_s": 0.15,
                "backoff_base_s": 0.01, "max_attempts": 12})
            report = usage_reports.extract(ctx, day - dt.timedelta(days=40), day, **CREDS)
            assert emu.stats.downloads_with_auth == 0
            truth = [m for m in emu.visible_messages(day) if m["from"] and m["from"].get("user")
                     and m["createdDateTime"].startswith(day.isoformat()) and m["_kind"] != "chat"]
            mails = {ctx.pseudonymiser.email(u.mail) for u in emu.tenant.users}
        out[concealed] = (report, usage_reports.canonicalise(ctx, day), truth)
    report, tables, truth = out[False]
    available = 29  # [day - 28, day]: the service keeps the 30 days before its clock (day + 2)
    assert len(report.details["unavailable"]) == 3 * (41 - available)
    # counts land in the usage table, never as (synthetic) activities or pseudo-containers (issue 12)
    assert set(tables) == {"usage", "people"}
    usage = tables["usage"]
    teams = usage[usage["product"] == "teams"]
    assert int(teams["channel_messages"].sum()) == len(truth) == int((teams["posts"] + teams["replies"]).sum())
    # keyed by mail (from /users), like msgraph: every person of the tenant, also the seventh ones whose UPN
    # is not their mail, is one key of the listing
    assert set(usage["person_key"]) == set(tables["people"]["person_key"]) == mails
    assert not tables["people"]["in_directory"].any()
    concealed_report, concealed_tables, _ = out[True]
    assert concealed_report.details["unresolved_concealed"]["rows"] == 2 * len(org.people) * available
    assert concealed_tables["usage"].empty
