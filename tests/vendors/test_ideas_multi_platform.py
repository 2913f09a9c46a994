"""The issue's acceptance test for the new platforms: one demo organisation served on Slack, Bitrix24 and
UserVoice at once (`pipelines.emulators.demo_served`, what `esn demo --via slack,bitrix24,uservoice` runs)
goes through the whole job with its HR directory from the generator. It gives one person per email across
the three platforms, and an idea mart whose figures equal a count made here by hand from the UserVoice
account's own records (ideas, comments, supporters, status updates) and the directory's departments,
independently of the SQL."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict

import pandas as pd
import pytest

from pipelines import jobs, warehouse
from pipelines.emulators import demo_served
from pipelines.emulators.uservoice_account import build_account, user_id
from pipelines.privacy import Pseudonymiser, resolve_key
from pipelines.sources.demo_org import build_org
from tests.conftest import demo_settings

START = dt.date(2026, 3, 2)  # a Monday
DAYS = 28
END = START + dt.timedelta(days=DAYS - 1)
PEOPLE, SEED = 120, 5
KEY = "ideas-multi-platform-test-key"
#: the emulated account's status ids -> the canonical statuses (the source's default status map)
STATUS = {1: "open", 2: "planned", 3: "in_progress", 4: "completed", 5: "declined"}


@pytest.fixture(scope="module")
def org():
    return build_org(PEOPLE, DAYS, START, SEED, 1.0)


@pytest.fixture(scope="module")
def published(org, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ideas")
    settings = demo_settings(tmp)
    mp = pytest.MonkeyPatch()
    mp.setenv(settings.privacy.pseudonym_key_env, KEY)
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED}
    try:
        with demo_served.serve(org, ("slack", "bitrix24", "uservoice"), END, directory) as (sources, _urls):
            settings.sources = sources
            report = jobs.run(settings, jobs.Interval(START, END))
        engine = warehouse.engine_for(settings)
        yield {"settings": settings, "report": report, "engine": engine}
        engine.dispose()
    finally:
        mp.undo()


def _frame(engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return warehouse.read_frame(conn, sql, {})


def test_one_person_per_email_across_slack_bitrix24_and_uservoice(org, published) -> None:
    report, engine = published["report"], published["engine"]
    assert set(report["sources"]) == {"hr", "slack", "bitrix24", "uservoice"}
    for name, steps in report["sources"].items():
        assert steps["validate"]["blocking_failures"] == 0, name
        if name != "hr":
            assert steps["land"]["activities"] > 0, name
    ps = Pseudonymiser(resolve_key(None, env_var=published["settings"].privacy.pseudonym_key_env))
    directory = {ps.email(e) for e in org.people["email"]}
    people = _frame(engine, "select person_key, in_directory, sources from stg_people")
    assert people["person_key"].is_unique
    # the directory's people, and Bitrix24's two extranet users (in no directory), nobody twice
    assert set(people.loc[people["in_directory"], "person_key"]) == directory
    assert len(people) == PEOPLE + 2
    acts = _frame(engine, "select source, actor_key from stg_activities where not is_deleted")
    actors = {s: set(g["actor_key"]) for s, g in acts.groupby("source")}
    assert set(actors) == {"slack", "bitrix24", "uservoice"}
    for name, keys in actors.items():
        assert keys <= directory, name
    # the same person carries the same key on all three platforms
    assert len(actors["slack"] & actors["bitrix24"] & actors["uservoice"]) >= 10


def _hand_counts(org) -> pd.DataFrame:
    """The idea mart's org rows, computed from the account's records: each idea (not spam by END) in the
    period it was submitted in, its build-ons by others by END, their departments, its statuses."""
    account = build_account(org)
    cutoff = pd.Timestamp(END + dt.timedelta(days=1), tz="UTC").timestamp()
    dept = {user_id(i): d for i, d in enumerate(org.people["department"])}
    rows = []
    for idea in account.ideas:
        if idea.created >= cutoff or (idea.spam_at is not None and idea.spam_at < cutoff):
            continue
        builds = [(c.created, c.author) for c in idea.comments if c.created < cutoff and c.author != idea.author]
        builds += [(s.created, s.user) for s in idea.supporters if s.created < cutoff and s.user != idea.author]
        updates = [u for u in idea.updates if u.created < cutoff]
        other = {dept[who] for _, who in builds if dept[who] != dept[idea.author]}
        day = dt.datetime.fromtimestamp(idea.created, tz=dt.UTC).date()
        rows.append({
            "day": day, "author": idea.author, "built_on": bool(builds),
            "across": any(dept[who] != dept[idea.author] for _, who in builds),
            "departments_reached": len(other),
            "hours_to_first": (min(t for t, _ in builds) - idea.created) / 3600 if builds else None,
            "status": STATUS[updates[-1].new] if updates else "open",
            "completed": any(u.new == 4 for u in updates),
        })
    ideas = pd.DataFrame(rows)
    out = []
    for period_type, start_of in (("week", lambda d: d - dt.timedelta(days=d.weekday())),
                                  ("month", lambda d: d.replace(day=1))):
        groups: dict[dt.date, list[dict]] = defaultdict(list)
        for r in ideas.to_dict("records"):
            groups[start_of(r["day"])].append(r)
        for start, group in groups.items():
            hours = [r["hours_to_first"] for r in group if pd.notna(r["hours_to_first"])]
            out.append({"period_type": period_type, "period_start": start, "idea_authors": len({r["author"] for r in group}),
                        "ideas": len(group), "ideas_built_on": sum(r["built_on"] for r in group),
                        "ideas_built_on_across_departments": sum(r["across"] for r in group),
                        "mean_departments_reached": statistics.fmean(r["departments_reached"] for r in group),
                        "median_hours_to_first_build_on": statistics.median(hours) if hours else None,
                        "ideas_planned": sum(r["status"] == "planned" for r in group),
                        "ideas_in_progress": sum(r["status"] == "in_progress" for r in group),
                        "ideas_completed": sum(r["completed"] for r in group),
                        "ideas_declined": sum(r["status"] == "declined" for r in group)})
    return pd.DataFrame(out).sort_values(["period_type", "period_start"]).reset_index(drop=True)


def test_the_idea_mart_equals_a_count_by_hand_of_the_uservoice_records(org, published) -> None:
    expected = _hand_counts(org)
    assert expected["ideas"].sum() > 20 and expected["ideas_completed"].sum() > 0
    assert expected["ideas_built_on_across_departments"].sum() > 0
    got = _frame(published["engine"], "select * from mart_ideas where segment_type = 'org'")
    got["period_start"] = pd.to_datetime(got["period_start"]).dt.date
    got = got.sort_values(["period_type", "period_start"]).reset_index(drop=True)
    assert list(got["period_start"]) == list(expected["period_start"])
    assert (got["measured_through"].astype(str) == str(END)).all()
    small = expected["idea_authors"] < 5
    assert list(got["suppressed"]) == list(small)
    shown = got.loc[~small].reset_index(drop=True)
    want = expected.loc[~small].reset_index(drop=True)
    assert len(shown) >= 4
    for col in ("idea_authors", "ideas", "ideas_built_on", "ideas_built_on_across_departments", "ideas_planned",
                "ideas_in_progress", "ideas_completed", "ideas_declined"):
        assert list(shown[col].astype(int)) == list(want[col]), col
    for col in ("mean_departments_reached", "median_hours_to_first_build_on"):
        assert shown[col].astype(float).tolist() == pytest.approx(want[col].astype(float).tolist(), rel=1e-9), col
    assert shown["implementation_rate"].astype(float).tolist() == pytest.approx(
        (want["ideas_completed"] / want["ideas"]).tolist(), rel=1e-12)
    assert got.loc[small, ["ideas", "ideas_built_on", "ideas_completed"]].isna().all().all()
