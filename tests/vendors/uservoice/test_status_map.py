"""Account-defined statuses map to the canonical idea statuses through `options.status_map`; an unmapped
status stops the run with an error naming the status and the suggestion (the default), or counts as open
when `unmapped_status: open`. Served by the emulator from a small demo account."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pydantic
import pytest

from pipelines.connectors.state import open_state
from pipelines.emulators.uservoice import UserVoiceEmulator
from pipelines.emulators.uservoice_account import StatusUpdate, build_account
from pipelines.sources import uservoice
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import activities, make_ctx

START = dt.date(2026, 3, 2)
DAYS = 12
END = START + dt.timedelta(days=DAYS - 1)
CREDS = {"client_id_env": "UV_MAP_ID", "client_secret_env": "UV_MAP_SECRET", "backoff_base_s": 0.01,
         "requests_per_s": 1000}
CLASSIC = {"Under Review": "open", "Planned": "planned", "Started": "in_progress", "Completed": "completed",
           "Declined": "declined"}


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UV_MAP_ID", "emulator-key")
    monkeypatch.setenv("UV_MAP_SECRET", "emulator-secret")


@pytest.fixture(scope="module")
def org():
    return build_org(60, DAYS, START, 11, 1.0)


@pytest.fixture
def account(org):
    """The demo account plus an account-defined status 'Needs Info' that one idea is moved to."""
    acc = build_account(org, status_rate=0.6)
    acc.statuses.append({"id": 6, "name": "Needs Info", "is_open": True, "hex_color": "#aaaaaa", "position": 6,
                         "allow_comments": True})
    idea = next(i for i in acc.ideas if i.created < dt.datetime(END.year, END.month, END.day, tzinfo=dt.UTC).timestamp()
                - 86400)
    idea.updates.append(StatusUpdate(990_001, idea.id, idea.created + 3600, acc.users[0]["id"], None, 6))
    return acc


def _extract(org, account, tmp_path: Path, **opts: Any) -> tuple[Any, Any]:
    with UserVoiceEmulator(org, account=account) as emu:
        ctx = make_ctx(tmp_path, "uservoice", {**CREDS, "base_url": emu.url, **opts})
        return ctx, uservoice.extract(ctx, START, END)


def _changes(ctx) -> dict[str, str]:
    acts = activities(uservoice.canonicalise, ctx, START, END)
    return acts[acts["verb"] == "status_change"].set_index("event_id")["idea_status"].to_dict()


def test_unmapped_status_is_an_error_naming_the_status_and_the_suggestion(org, account, tmp_path) -> None:
    idea = next(i for i in account.ideas if any(u.id == 990_001 for u in i.updates))
    with pytest.raises(uservoice.UnmappedStatusError,
                       match=rf"status 'Needs Info' \(status update 990001 of suggestion {idea.id}\) is not in "
                             r"options.status_map .*unmapped_status: open"):
        _extract(org, account, tmp_path)
    ctx = make_ctx(tmp_path, "uservoice", {**CREDS, "base_url": "http://127.0.0.1:9"})
    from pipelines.warehouse import warehouse_url_of
    with open_state(warehouse_url_of(ctx.settings), "uservoice") as store:
        assert store.get(uservoice.STATE, "watermark:status_updates") is None  # nothing committed: rerun after fixing


def test_a_custom_map_covers_the_account_statuses(org, account, tmp_path) -> None:
    ctx, report = _extract(org, account, tmp_path, status_map={**CLASSIC, "needs   INFO": "open"})
    changes = _changes(ctx)
    assert changes["status_update:990001"] == "open"
    names = {s["id"]: s["name"] for s in account.statuses}
    mapping = {**CLASSIC, "Needs Info": "open"}
    now = dt.datetime(END.year, END.month, END.day, tzinfo=dt.UTC).timestamp() + 86399
    assert changes == {f"status_update:{u.id}": mapping[names[u.new]] for u in account.status_updates()
                       if u.created <= now}
    assert len(set(changes.values())) >= 3 and "planned" in changes.values()
    assert report.details["unmapped_statuses"] == {}


def test_unmapped_status_open_counts_it_as_open_and_reports_it(org, account, tmp_path) -> None:
    ctx, report = _extract(org, account, tmp_path, unmapped_status="open")
    assert _changes(ctx)["status_update:990001"] == "open"
    assert report.details["unmapped_statuses"] == {"Needs Info": 1}


def test_the_default_map_is_the_classic_names_case_and_spaces_ignored() -> None:
    opts = uservoice.UserVoiceOptions.model_validate({"subdomain": "acme"})
    assert opts.status_map == {"under review": "open", "planned": "planned", "started": "in_progress",
                               "completed": "completed", "declined": "declined"}
    assert uservoice.status_key("  Under\tREVIEW ") == "under review"
    assert opts.url == "https://acme.uservoice.com"


@pytest.mark.parametrize(("options", "message"), [
    ({"subdomain": "acme", "status_map": {"Shipped": "done"}}, "open.*planned.*in_progress.*completed.*declined"),
    ({"subdomain": "acme", "status_map": {"Shipped": "completed", "shipped ": "declined"}}, "maps 'shipped' twice"),
    ({"subdomain": "acme", "unmapped_status": "guess"}, "'error' or 'open'"),
    ({}, "set subdomain"),
    ({"subdomain": "acme", "client_id_env": "X"}, "both client_id_env and client_secret_env"),
])
def test_options_name_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        uservoice.UserVoiceOptions.model_validate(options)
