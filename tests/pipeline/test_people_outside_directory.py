"""People outside the HR directory (issue 11, part 5): guests, contractors, leavers and joiners before the
HR refresh are people of unknown department, counted and flagged; they no longer reject the batch of
everyone else. A batch is rejected only when so many actors are unknown that the directory cannot be the
organisation's (`directory.max_unknown_actor_share`), and a Slack export publishes on its own.

The organisation is the demo generator's, served by the local Slack emulator (as in the kill matrix); the
HR directory is a CSV file (a `file` source with a `directory`) that lacks some of the people active on
Slack.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import jobs, lake, warehouse
from pipelines.config import SourceConfig, load_settings
from pipelines.emulators.slack import SlackEmulator
from pipelines.network_stage import run_network
from pipelines.privacy import Pseudonymiser
from pipelines.sources.demo_org import build_org, simulate
from tests.connectors.conftest import EXPORTS

START = dt.date(2026, 3, 2)
END = START + dt.timedelta(days=13)
PEOPLE, SEED = 60, 3
KEY = "people-outside-directory-key"
TOKEN_ENV, TOKEN = "ESN_PEOPLE_SLACK_TOKEN", "xoxb-people-outside"
MISSING = 6  # active Slack users the HR file lacks (joiners before the HR refresh, contractors)


@pytest.fixture(scope="module")
def org():
    return build_org(PEOPLE, 20, START, SEED, 1.0)


@pytest.fixture(scope="module")
def missing(org) -> list[str]:
    """The emails of the busiest posters: surely active on Slack, and left out of the HR file."""
    events = pd.concat([ev for day, ev in simulate(org, until=END) if day >= START], ignore_index=True)
    posts = events[events["verb"] == "post"]["actor_email"].value_counts()
    return sorted(posts.index[:MISSING])


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", KEY)


def _hr_source(tmp: Path, org, leave_out: list[str]) -> SourceConfig:
    """An HR directory CSV without the people of `leave_out`, as a `file` source (no activity of its own)."""
    tmp.mkdir(parents=True, exist_ok=True)
    p = org.people[~org.people["email"].isin(leave_out)]
    hr = pd.DataFrame({"email": p["email"], "department": p["department"], "location": p["location"],
                       "level": p["level"], "manager_email": p["manager_email"], "is_leader": p["is_leader"],
                       "hire_date": p["hire_date"], "termination_date": p["termination_date"]})
    (tmp / "hr.csv").write_text(hr.to_csv(index=False))
    (tmp / "none.csv").write_text("event_id,occurred_at,actor_email,verb\n")
    return SourceConfig(name="hr", kind="file", options={
        "format": "csv", "path": str(tmp / "none.csv"), "allow_empty": True, "directory": str(tmp / "hr.csv")})


def _settings(tmp: Path, emu_url: str, org, leave_out: list[str], **overrides):
    slack = SourceConfig(name="slack", kind="slack", options={
        "base_url": emu_url, "token_env": TOKEN_ENV, "rate_period_s": 0.01, "backoff_base_s": 0.01,
        "auto_join": True})
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=f"duckdb:///{tmp / 'w.duckdb'}",
                         sources=[_hr_source(tmp, org, leave_out), slack], **overrides)


def _frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


def _slack_actors(settings) -> pd.DataFrame:
    base = lake.canonical_dir(settings.lake_dir, "activities") / "source=slack"
    return pd.concat([pq.read_table(f).to_pandas() for f in lake.partition_files(base, lake.days_between(START, END))],
                     ignore_index=True)


@pytest.fixture(scope="module")
def emulator(org):
    with SlackEmulator(org, token=TOKEN, period_s=0.01) as emu:
        emu.advance_to(END)
        yield emu


def test_an_hr_file_lacking_active_users_publishes_them_counted_and_flagged(tmp_path, env, org, missing,
                                                                            emulator) -> None:
    settings = _settings(tmp_path, emulator.url, org, missing)
    engine = warehouse.make_engine(settings.warehouse_url)
    report = jobs.run(settings, jobs.Interval(START, END), engine=engine)
    ps = Pseudonymiser(KEY.encode())
    unknown = {ps.email(e) for e in missing}

    # published: nothing blocked, and the missing people's activity is there
    slack = report["sources"]["slack"]
    assert slack["validate"]["blocking_failures"] == 0 and slack["land"]["activities"] > 0
    acts = _slack_actors(settings)
    active_unknown = set(acts["actor_key"]) & unknown
    assert active_unknown == unknown, "the busiest posters are all active on Slack"
    coverage = slack["validate"]["people_coverage"]
    assert coverage["unknown_actors"] == MISSING
    assert coverage["actors"] == acts["actor_key"].nunique()
    assert coverage["unknown_actor_activities"] == int(acts["actor_key"].isin(unknown).sum())

    # flagged: one row per person, outside the directory, NULL department (not a made-up group)
    people = _frame(engine, "select * from stg_people").set_index("person_key")
    assert people.index.is_unique
    assert len(people) == PEOPLE  # the HR people and the missing ones; the emulator's bot is excluded
    out = people.loc[sorted(unknown)]
    assert not out["in_directory"].any()
    assert out["department"].isna().all() and out["location"].isna().all() and out["level"].isna().all()
    assert (out["account_type"] == "member").all() and (out["sources"] == "slack").all()
    inside = people[people["in_directory"]]
    assert len(inside) == PEOPLE - MISSING and inside["department"].notna().all()
    assert (inside["sources"] == "hr,slack").all()  # the same email, the same key: the HR row wins
    assert "Unknown" not in set(people["department"].dropna())

    # counted in the visible segment cell 'unknown', and the cells still add up to the organisation
    cells = _frame(engine, "select person_key from int_segment_membership where segment_type = 'department' "
                           "and segment_value = 'unknown'")
    assert set(cells["person_key"]) == unknown
    heads = _frame(engine, "select segment_type, segment_value, headcount from int_segment_headcount_daily "
                           "where as_of_date = :d", d=END)
    org_count = int(heads.loc[heads.segment_type == "org", "headcount"].iloc[0])
    for kind in ("department", "location", "level", "leader", "tenure_band"):
        assert int(heads.loc[heads.segment_type == kind, "headcount"].sum()) == org_count, kind
    assert int(heads.loc[(heads.segment_type == "department") & (heads.segment_value == "unknown"),
                         "headcount"].iloc[0]) == MISSING
    mart = _frame(engine, "select mau, suppressed from mart_engagement_daily where activity_date = :d and "
                          "segment_type = 'department' and segment_value = 'unknown'", d=END)
    assert len(mart) == 1 and not mart["suppressed"].iloc[0] and int(mart["mau"].iloc[0]) == MISSING

    # counted: a warning expectation and the quality tables
    dq = _frame(engine, "select * from dq_validation_results where batch like 'slack/%'")
    warn = dq[(dq.suite == "people_coverage") & (dq.column_name == "unknown_actors")]
    assert len(warn) == 1 and not warn["success"].iloc[0] and warn["severity"].iloc[0] == "warning"
    figures = json.loads(warn["unexpected_sample"].iloc[0])[0]
    assert figures["unknown_actors"] == MISSING and figures["directory_sources"] == ["hr"]
    rows = dq[(dq.suite == "activities") & (dq.column_name == "actor_key")
              & (dq.expectation == "expect_column_values_to_be_in_set")]
    assert rows["severity"].iloc[0] == "warning" and int(rows["unexpected_count"].iloc[0]) == len(
        acts[acts["actor_key"].isin(unknown)])
    share = dq[(dq.suite == "people_coverage") & (dq.column_name == "unknown_actor_share")]
    assert share["success"].iloc[0] and share["severity"].iloc[0] == "blocking"
    daily = _frame(engine, "select * from dq_people_coverage where source = 'slack'")
    assert int(daily["unknown_actor_activities"].sum()) == int(acts["actor_key"].isin(unknown).sum())
    assert (daily["unknown_actors"] <= MISSING).all() and daily["unknown_actors"].max() > 0
    assert ((daily["unknown_actor_share"] > 0) & (daily["unknown_actor_share"] < 1)).any()
    # the emulator's bot account is excluded by default (directory.bots), with a count
    assert slack["stage"]["excluded_accounts"]["bot"]["people"] == 1
    assert len(dq[(dq.suite == "stage") & (dq.expectation == "account_type_excluded")]) == 1

    # the network: 'unknown' is not a department; ties to people without one are left out of the
    # department measures (crosses_department NULL), and the people outside the directory are flagged
    run_network(settings, END, engine=engine)
    depts = _frame(engine, "select department from mart_network_department where window_name = 'rolling_28d'")
    assert depts["department"].notna().all() and "unknown" not in set(depts["department"])
    assert set(depts["department"]) <= set(org.people["department"])
    ties = _frame(engine, "select source_key, target_key, crosses_department from fct_network_ties "
                          "where window_name = 'rolling_28d'")
    touching = ties["source_key"].isin(unknown) | ties["target_key"].isin(unknown)
    assert touching.any() and ties.loc[touching, "crosses_department"].isna().all()
    assert ties.loc[~touching, "crosses_department"].notna().all()
    net = _frame(engine, "select person_key, in_directory, department from fct_person_network "
                         "where window_name = 'rolling_28d'").set_index("person_key")
    assert not net.loc[net.index.isin(unknown), "in_directory"].any()
    assert net.loc[net.index.isin(unknown), "department"].isna().all()
    assert net.loc[~net.index.isin(unknown), "in_directory"].all()

    # the scorecard's connectedness is the org's share over interactions between people of known
    # departments, like mart_interactions_period's, not over every interaction
    period = _frame(engine, "select cross_department_interactions as x, known_department_interactions as k, "
                            "interactions as n from mart_interactions_period where as_of_date = :d and "
                            "period_type = 'rolling_28d' and segment_type = 'org'", d=END).iloc[0]
    assert period["k"] < period["n"]  # the people outside the directory interact
    card = _frame(engine, "select value, n from mart_esn_scorecard where metric = 'cross_department_share'")
    assert len(card) == 1 and card["n"].iloc[0] == period["k"]
    assert card["value"].iloc[0] == pytest.approx(period["x"] / period["k"], rel=1e-12)
    engine.dispose()


def test_too_many_unknown_actors_reject_the_batch_with_a_clear_message(tmp_path, env, org, missing,
                                                                       emulator) -> None:
    # 6 of the 29 actors unknown (21%) against a limit of 5%: the directory cannot be the organisation's
    settings = _settings(tmp_path, emulator.url, org, missing, directory={"max_unknown_actor_share": 0.05})
    with pytest.raises(jobs.BatchRejected) as err:
        jobs.run(settings, jobs.Interval(START, END), engine=warehouse.make_engine(settings.warehouse_url))
    message = str(err.value)
    assert "batch slack/" in message and "unknown_actor_share" in message
    assert f"{MISSING} of the batch's" in message and "in no HR directory (directory sources: hr)" in message
    assert "directory.max_unknown_actor_share (0.05)" in message
    rejected = list((settings.quarantine_dir / "batches" / "source=slack").glob("batch=*/*/REJECTED.txt"))
    assert len(rejected) == 1 and "max_unknown_actor_share" in rejected[0].read_text()
    assert (rejected[0].parent / "activities.parquet").exists()  # kept, nothing lost
    assert not (lake.canonical_dir(settings.lake_dir, "activities") / "source=slack").exists()


def test_guests_and_externals_are_included_by_default_and_dropped_with_a_count_when_excluded(
        tmp_path, env, org, missing, emulator) -> None:
    ps = Pseudonymiser(KEY.encode())
    users = {u["profile"].get("email"): u for u in emulator.ws.users}
    guest, stranger = missing[0], missing[1]  # neither is in the HR file
    users[guest]["is_restricted"] = True
    users[stranger]["is_stranger"] = True
    try:
        included = _settings(tmp_path / "in", emulator.url, org, missing)
        engine = warehouse.make_engine(included.warehouse_url)
        report = jobs.run(included, jobs.Interval(START, END), engine=engine)
        assert "excluded_accounts" not in report["sources"]["slack"]["stage"] or set(
            report["sources"]["slack"]["stage"]["excluded_accounts"]) == {"bot"}
        kinds = _frame(engine, "select person_key, account_type, in_directory from stg_people").set_index("person_key")
        assert kinds.loc[ps.email(guest), "account_type"] == "guest"
        assert kinds.loc[ps.email(stranger), "account_type"] == "external"
        counted = _frame(engine, "select sum(guest_actors) as g, sum(external_actors) as x from dq_people_coverage")
        assert int(counted["g"].iloc[0]) > 0 and int(counted["x"].iloc[0]) > 0
        engine.dispose()
        acts_in = _slack_actors(included)

        excluded = _settings(tmp_path / "out", emulator.url, org, missing,
                             directory={"guests": "exclude", "externals": "exclude"})
        engine = warehouse.make_engine(excluded.warehouse_url)
        report = jobs.run(excluded, jobs.Interval(START, END), engine=engine)
        stage = report["sources"]["slack"]["stage"]
        counts = stage["excluded_accounts"]
        expected = {kind: int((acts_in["actor_key"] == ps.email(e)).sum()) for kind, e in
                    (("guest", guest), ("external", stranger))}
        assert counts["guest"]["activities"] == expected["guest"] > 0
        assert counts["external"]["activities"] == expected["external"] > 0
        assert counts["guest"]["people"] == counts["external"]["people"] == 1
        acts_out = _slack_actors(excluded)
        assert not acts_out["actor_key"].isin({ps.email(guest), ps.email(stranger)}).any()
        assert not acts_out["target_key"].isin({ps.email(guest), ps.email(stranger)}).any()
        assert len(acts_out) == len(acts_in) - expected["guest"] - expected["external"]
        people = _frame(engine, "select person_key from stg_people")
        assert not people["person_key"].isin({ps.email(guest), ps.email(stranger)}).any()
        dq = _frame(engine, "select * from dq_validation_results where suite = 'stage' "
                            "and expectation = 'account_type_excluded'")
        by_kind = {json.loads(s)["account_type"]: int(n) for s, n in zip(dq["unexpected_sample"],
                                                                         dq["unexpected_count"], strict=True)}
        assert by_kind == {"bot": 0, "guest": expected["guest"], "external": expected["external"]}
        engine.dispose()
    finally:
        users[guest].pop("is_restricted")
        users[stranger].pop("is_stranger")


def test_a_slack_export_without_any_hr_file_publishes_its_people_as_unknown(tmp_path, env) -> None:
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             sources=[SourceConfig(name="export", kind="slack_export", options={
                                 "path": str(EXPORTS / "export_slackdump_obfuscated")})])
    engine = warehouse.make_engine(settings.warehouse_url)
    report = jobs.run(settings, jobs.Interval(dt.date(2025, 1, 10), dt.date(2025, 1, 24)), engine=engine)
    steps = report["sources"]["export"]
    assert steps["validate"]["blocking_failures"] == 0 and steps["land"]["activities"] > 0
    # users.json lists 10 users, 6 of them bots (excluded by default, counted)
    assert steps["stage"]["rows"]["people"] == 4
    assert steps["stage"]["excluded_accounts"]["bot"]["people"] == 6
    coverage = steps["validate"]["people_coverage"]
    assert coverage["unknown_actor_share"] == 1.0  # no directory at all: the check is off, not failed
    assert report["publish"]["people"] == {"people": 4, "in_directory": 0, "outside_directory": 4}

    people = _frame(engine, "select * from stg_people")
    actors = _frame(engine, "select distinct actor_key from lake_activities")
    assert set(actors["actor_key"]) <= set(people["person_key"])
    assert not people["in_directory"].any() and people["department"].isna().all()
    cells = _frame(engine, "select segment_value, count(*) as n from int_segment_membership "
                           "where segment_type = 'department' group by segment_value")
    assert cells.to_dict("records") == [{"segment_value": "unknown", "n": len(people)}]
    daily = _frame(engine, "select * from dq_people_coverage")
    assert len(daily) and (daily["unknown_actor_share"] == 1.0).all()
    published = _frame(engine, "select count(*) as n from mart_engagement_daily where segment_type = 'org'")
    assert int(published["n"].iloc[0]) == 15  # every day of the interval, suppressed below 5 people
    engine.dispose()


def test_actors_no_source_lists_are_people_of_unknown_account_and_an_empty_listing_is_recorded(tmp_path,
                                                                                               env) -> None:
    export = tmp_path / "export"
    (export / "general").mkdir(parents=True)
    (export / "users.json").write_text("[]")  # an export whose users.json lists nobody
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    (export / "general" / "2026-01-05.json").write_text(json.dumps([
        {"type": "message", "user": "U1", "ts": "1767610800.000100", "text": "hello <@U2>"},
        {"type": "message", "user": "U2", "ts": "1767610900.000100", "text": "hi"}]))
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             sources=[SourceConfig(name="export", kind="slack_export", options={"path": str(export)})])
    engine = warehouse.make_engine(settings.warehouse_url)
    day = dt.date(2026, 1, 5)
    report = jobs.run(settings, jobs.Interval(day, day), engine=engine)
    assert report["sources"]["export"]["stage"]["people_listing_empty"] is True
    dq = _frame(engine, "select * from dq_validation_results where suite = 'stage'")
    assert dq["expectation"].tolist() == ["people_listed"] and not dq["success"].iloc[0]
    people = _frame(engine, "select * from stg_people order by person_key")
    ps = Pseudonymiser(KEY.encode())
    assert set(people["person_key"]) == {ps.person("slack", "U1", None), ps.person("slack", "U2", None)}
    assert (people["account_type"] == "unknown").all() and not people["in_directory"].any()
    assert (people["sources"] == "export").all()
    coverage = _frame(engine, "select actors, unlisted_actors from dq_people_coverage")
    assert coverage.to_dict("records") == [{"actors": 2, "unlisted_actors": 2}]
    engine.dispose()


def test_a_larger_slack_export_without_hr_publishes_past_the_alert_window(tmp_path, env) -> None:
    """Eight people posting every day for 45 days, no HR file: the segments are 'unknown', the org row is
    published, and the department measures (concentration, its alert) have no department to name."""
    export = tmp_path / "export"
    (export / "general").mkdir(parents=True)
    (export / "users.json").write_text(json.dumps([{"id": f"U{i}", "profile": {"email": f"p{i}@corp.example"}}
                                                   for i in range(8)]))
    (export / "channels.json").write_text(json.dumps([{"id": "C1", "name": "general"}]))
    first = dt.date(2026, 1, 5)
    epoch = int(dt.datetime(2026, 1, 5, tzinfo=dt.UTC).timestamp())
    for d in range(45):
        msgs = [{"type": "message", "user": f"U{i}", "ts": f"{epoch + d * 86400 + i * 60}.000100", "text": "hi"}
                for i in range(8)]
        (export / "general" / f"{first + dt.timedelta(days=d)}.json").write_text(json.dumps(msgs))
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             sources=[SourceConfig(name="export", kind="slack_export", options={"path": str(export)})])
    engine = warehouse.make_engine(settings.warehouse_url)
    last = first + dt.timedelta(days=44)
    report = jobs.run(settings, jobs.Interval(first, last), engine=engine)
    assert report["publish"]["people"] == {"people": 8, "in_directory": 0, "outside_directory": 8}
    org_row = _frame(engine, "select mau, headcount from mart_engagement_daily where activity_date = :d "
                             "and segment_type = 'org'", d=last)
    assert org_row.to_dict("records") == [{"mau": 8, "headcount": 8}]
    cell = _frame(engine, "select mau from mart_engagement_daily where activity_date = :d "
                          "and segment_type = 'department' and segment_value = 'unknown'", d=last)
    assert int(cell["mau"].iloc[0]) == 8
    conc = _frame(engine, "select largest_department from mart_department_concentration where as_of_date = :d "
                          "and segment_type = 'org'", d=last)
    assert conc["largest_department"].isna().all()
    alerts = _frame(engine, "select * from mart_alerts where alert_type = 'single_department_adoption'")
    assert alerts.empty
    engine.dispose()
