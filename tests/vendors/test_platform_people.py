"""Every API source and export lands the people its platform lists (issue 11, part 5): one people row per
user, keyed by the email where the platform gives one (so that the HR row of the same person matches),
outside the HR directory, with the account's type and state and the department the platform holds
(Graph, Salesforce, Viva Engage). Never a name, an id or an email."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pipelines import lake
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.emulators.msgraph_tenant import build_tenant
from pipelines.emulators.salesforce import SalesforceEmulator
from pipelines.emulators.salesforce_org import build_chatter
from pipelines.emulators.yammer import YammerEmulator
from pipelines.emulators.yammer_network import build_network
from pipelines.model import PEOPLE
from pipelines.sources import msgraph, salesforce, slack, slack_export, yammer, yammer_export
from pipelines.sources.demo_org import build_org
from tests.connectors.conftest import make_ctx
from tests.vendors.yammer.helpers import leaks

START = dt.date(2026, 1, 5)
END = START + dt.timedelta(days=6)
PLATFORM_COLUMNS = {"person_key", "department", "is_leader", "in_directory", "account_type", "is_deactivated"}


@pytest.fixture(scope="module")
def org():
    return build_org(60, 14, START, 7, 1.0)


def _expected_keys(ctx, org) -> dict[str, pd.Series]:
    ps = ctx.pseudonymiser
    people = org.people.assign(key=[ps.email(e) for e in org.people["email"]]).set_index("key")
    return {"department": people["department"], "terminated": people["termination_date"].notna()
            & (pd.to_datetime(people["termination_date"]) <= pd.Timestamp(END))}


def _check_platform_rows(people: pd.DataFrame) -> None:
    assert set(people.columns) <= set(PEOPLE.names) and set(people.columns) >= PLATFORM_COLUMNS
    assert people["person_key"].is_unique and people["person_key"].notna().all()
    assert not people["in_directory"].any() and not people["is_leader"].any()


def test_graph_users_are_people_with_their_department_and_state(org, tmp_path: Path) -> None:
    with GraphEmulator(org, tenant=build_tenant(org)) as emu:
        emu.advance_to(END)
        ctx = make_ctx(tmp_path, "msgraph", {"base_url": emu.url, "token_url": emu.token_url, "rate_period_s": 0.002,
                                             "backoff_base_s": 0.01})
        msgraph.extract(ctx, START, END, tenant_id="tenant", client_id="emu-client", client_secret="emu-secret")
    people = msgraph.canonicalise(ctx, END)["people"]
    _check_platform_rows(people)
    truth = _expected_keys(ctx, org)
    assert set(people["person_key"]) == set(truth["department"].index)  # keyed by mail, as HR is
    by_key = people.set_index("person_key")
    assert (by_key["department"] == truth["department"].reindex(by_key.index)).all()
    assert (by_key["account_type"] == "member").all()
    assert (by_key["is_deactivated"] == truth["terminated"].reindex(by_key.index)).all()
    assert leaks(tmp_path / "lake" / "raw", set(org.people["email"])) == []


def test_graph_guests_and_disabled_accounts() -> None:
    users = pa.table({"person_key": ["a", "b", "c"], "account_enabled": [True, False, True],
                      "is_guest": [False, False, True], "department": ["Sales", None, None]})
    people = msgraph.graph_people(users).set_index("person_key")
    assert people["account_type"].to_dict() == {"a": "member", "b": "member", "c": "guest"}
    assert people["is_deactivated"].to_dict() == {"a": False, "b": True, "c": False}
    # users snapshots landed before the department was selected read without one
    old = msgraph.graph_people(users.drop(["department"]))
    assert old["department"].isna().all()


def test_salesforce_users_are_landed_with_type_department_and_activity_state(org, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SF_TEST_CLIENT_ID", "emulator-client")
    monkeypatch.setenv("SF_TEST_CLIENT_SECRET", "emulator-secret")
    chatter = build_chatter(org)
    kinds = {0: "Guest", 1: "PowerPartner", 2: "AutomatedProcess", 3: "CsnOnly"}
    for i, kind in kinds.items():
        chatter.users[i]["UserType"] = kind
    with SalesforceEmulator(org, chatter=chatter, batch_size=25) as emu:
        emu.advance_to(END)
        ctx = make_ctx(tmp_path, "salesforce", {"client_id_env": "SF_TEST_CLIENT_ID", "requests_per_s": 1000,
                                                "client_secret_env": "SF_TEST_CLIENT_SECRET", "login_url": emu.url,
                                                "backoff_base_s": 0.01})
        report = salesforce.extract(ctx, START, END)
    assert not report.details["stopped_by_daily_limit"]
    people = salesforce.canonicalise(ctx, END)["people"]
    _check_platform_rows(people)
    ps = ctx.pseudonymiser
    by_key = people.set_index("person_key")
    assert len(by_key) == len(chatter.users)
    types = {i: by_key.loc[ps.email(chatter.users[i]["Email"]), "account_type"] for i in kinds}
    assert types == {0: "guest", 1: "external", 2: "bot", 3: "member"}
    assert (by_key["department"] == pd.Series({ps.email(u["Email"]): u["Department"] for u in chatter.users})).all()
    inactive = {ps.email(u["Email"]) for u in chatter.users if not u["IsActive"]}
    assert set(by_key.index[by_key["is_deactivated"]]) == inactive
    assert leaks(tmp_path / "lake" / "raw", {u["Email"] for u in chatter.users} | {u["Id"] for u in chatter.users}) == []


@pytest.mark.parametrize("module, kind", [(yammer, "yammer"), (yammer_export, "yammer_export")])
def test_viva_engage_users_are_people_with_their_department(org, tmp_path, module, kind) -> None:
    network = build_network(org)
    network.users[0]["state"] = "suspended"
    with YammerEmulator(org, token="t", period_s=0.02, network=network) as emu:
        emu.advance_to(END)
        ctx = make_ctx(tmp_path, kind, {"base_url": emu.url, "rate_period_s": 0.02, "backoff_base_s": 0.01})
        module.extract(ctx, START, END, token="t")
    people = module.canonicalise(ctx, END)["people"]
    _check_platform_rows(people)
    ps = ctx.pseudonymiser
    by_key = people.set_index("person_key")
    assert set(by_key.index) == {ps.email(u["email"]) for u in network.users}
    assert (by_key["department"] == pd.Series({ps.email(u["email"]): u["department"] for u in network.users})).all()
    assert list(by_key.index[by_key["is_deactivated"]]) == [ps.email(network.users[0]["email"])]
    assert leaks(tmp_path / "lake" / "raw", {u["email"] for u in network.users} | {str(u["id"]) for u in network.users}) == []


def test_slack_users_flags_give_the_account_type(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "general").mkdir(parents=True)
    users = [
        {"id": "U1", "profile": {"email": "ann@corp.example"}},
        {"id": "U2", "is_restricted": True, "profile": {"email": "guest@agency.example"}},
        {"id": "U3", "is_ultra_restricted": True, "is_restricted": True, "profile": {}},
        {"id": "U4", "is_stranger": True, "profile": {}},
        {"id": "U5", "is_bot": True, "profile": {}},
        {"id": "USLACKBOT", "profile": {}},
        {"id": "U6", "deleted": True, "profile": {"email": "left@corp.example"}},
    ]
    (export / "users.json").write_text(json.dumps(users))
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general", "members": ["U1", "U2"]}]))
    (export / "general" / "2026-01-05.json").write_text(json.dumps([
        {"type": "message", "user": "U1", "ts": "1767610800.000100", "text": "hello"},
        {"type": "message", "user": "U9", "ts": "1767610900.000100", "text": "from another workspace"}]))
    ctx = make_ctx(tmp_path, "slack_export", {"path": str(export)})
    slack_export.extract(ctx, START, START)
    people = slack_export.canonicalise(ctx, START)["people"]
    _check_platform_rows(people)
    ps = ctx.pseudonymiser
    kinds = people.set_index("person_key")["account_type"].to_dict()
    assert kinds[ps.email("ann@corp.example")] == "member"
    assert kinds[ps.email("guest@agency.example")] == "guest"
    assert kinds[ps.person("slack", "U3", None)] == "guest"
    assert kinds[ps.person("slack", "U4", None)] == "external"
    assert kinds[ps.person("slack", "U5", None)] == kinds[ps.person("slack", "USLACKBOT", None)] == "bot"
    deactivated = people.set_index("person_key")["is_deactivated"]
    assert deactivated[ps.email("left@corp.example")] and deactivated.sum() == 1
    assert ps.person("slack", "U9", None) not in kinds  # an actor users.json does not list: stg_people adds it
    # a users snapshot of an older version (no is_external) still reads
    old = lake.read_partition(lake.raw_dir(ctx.lake_dir, "slack_export", "users"), START).drop(["is_external"])
    assert (slack.slack_people(old)["account_type"] != "external").all()
