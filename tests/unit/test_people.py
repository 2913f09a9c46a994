"""The people model: how the people rows of several sources become one row per person
(`canonical.merge_people`), one account per person in a platform's listing, excluded account types, and
people landed by older versions."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from pipelines import canonical, warehouse
from pipelines.config import ConfigError, load_settings
from pipelines.model import PEOPLE


def _hr(**rows) -> pd.DataFrame:
    return pd.DataFrame([{"person_key": k, "department": d, "location": "Paris", "level": "L2", "manager_key": None,
                          "is_leader": False, "hire_date": dt.date(2020, 1, 1), "termination_date": None,
                          "in_directory": True, "account_type": "member", "is_deactivated": False}
                         for k, d in rows.items()])


def _listing(rows: list[tuple[str, str, bool, str | None]]) -> pd.DataFrame:
    return canonical.platform_people(pd.DataFrame(rows, columns=["person_key", "account_type", "is_deactivated",
                                                                 "department"]))


def test_hr_wins_and_people_outside_it_take_what_the_platforms_give() -> None:
    frames = {
        "hr": _hr(ann="Sales", bob=None),
        "teams": _listing([("ann", "guest", False, "Marketing"), ("bob", "member", False, "Finance"),
                           ("cat", "guest", False, "Legal"), ("dan", "member", True, None)]),
        "slack": _listing([("cat", "member", False, None), ("dan", "bot", True, None), ("eve", "external", False, None)]),
    }
    merged = canonical.merge_people(frames)
    assert list(merged.columns) == [*PEOPLE.names, "sources"]
    assert list(merged["person_key"]) == ["ann", "bob", "cat", "dan", "eve"]
    p = merged.set_index("person_key")
    # in the directory: every directory attribute is HR's, even a missing department; a member
    assert p.loc["ann", "department"] == "Sales" and p.loc["ann", "account_type"] == "member"
    assert pd.isna(p.loc["bob", "department"]) and p.loc["bob", "location"] == "Paris"
    assert p.loc[["ann", "bob"], "in_directory"].all()
    # outside it: the platform's department, the most internal account type, deactivated only everywhere
    assert not p.loc[["cat", "dan", "eve"], "in_directory"].any()
    assert p.loc["cat", "department"] == "Legal" and p.loc["cat", "account_type"] == "member"
    assert p.loc["dan", "account_type"] == "member" and p.loc["dan", "is_deactivated"]
    assert p.loc["eve", "account_type"] == "external" and pd.isna(p.loc["eve", "location"])
    assert p["sources"].to_dict() == {"ann": "hr,teams", "bob": "hr,teams", "cat": "slack,teams",
                                      "dan": "slack,teams", "eve": "slack"}
    # deterministic: the same rows whatever the order the sources come in
    again = canonical.merge_people(dict(reversed(list(frames.items()))))
    pd.testing.assert_frame_equal(merged, again)


def test_two_directories_the_first_source_by_name_wins() -> None:
    merged = canonical.merge_people({"zz_hr": _hr(ann="Sales"), "aa_hr": _hr(ann="Finance")})
    assert merged.set_index("person_key").loc["ann", "department"] == "Finance"


def test_older_people_partitions_are_directory_rows() -> None:
    legacy = _hr(ann="Sales").drop(columns=["in_directory", "account_type", "is_deactivated"])
    table = canonical.people_table(legacy)
    assert table.schema == PEOPLE
    assert table.column("in_directory").to_pylist() == [True]
    assert table.column("account_type").to_pylist() == ["member"]
    assert canonical.merge_people({"hr": legacy}).loc[0, "in_directory"]


def test_one_account_per_person_in_a_listing_and_directory_duplicates_are_kept_for_the_suite() -> None:
    listing = _listing([("ann", "member", True, None), ("ann", "member", False, None), ("bob", "guest", False, None),
                        ("bob", "member", False, "Sales")])
    kept, merged = canonical.dedupe_people(listing)
    assert merged == 2
    assert kept.set_index("person_key")["is_deactivated"].to_dict() == {"ann": False, "bob": False}
    assert kept.set_index("person_key")["account_type"]["bob"] == "member"
    directory = pd.concat([_hr(ann="Sales"), _hr(ann="Finance")], ignore_index=True)
    same, merged = canonical.dedupe_people(directory)
    assert merged == 0 and len(same) == 2  # a key twice in HR is a contract breach: the people suite rejects it


def test_excluded_account_types_drop_activities_people_and_targets_with_counts() -> None:
    people = pd.concat([_hr(ann="Sales"), _listing([("g1", "guest", False, None), ("b1", "bot", False, None),
                                                    ("m1", "member", False, None)])], ignore_index=True)
    acts = pd.DataFrame({"actor_key": ["ann", "g1", "g1", "m1", "b1"], "target_key": ["g1", "ann", None, "b1", None]})
    kept, left, counts = canonical.drop_excluded_accounts(acts, people, {"guest", "bot"})
    assert list(kept["actor_key"]) == ["ann", "m1"] and kept["target_key"].isna().all()
    assert set(left["person_key"]) == {"ann", "m1"}
    assert counts == {"bot": {"people": 1, "activities": 1, "targets_cleared": 1},
                      "guest": {"people": 1, "activities": 2, "targets_cleared": 1}}
    same, _, none = canonical.drop_excluded_accounts(acts, people, set())
    assert none == {} and len(same) == len(acts)


def test_directory_settings_are_validated() -> None:
    s = load_settings(None)
    assert s.directory.max_unknown_actor_share == 0.5 and s.directory.excluded_account_types() == {"bot"}
    s = load_settings(None, directory={"guests": "exclude", "bots": "include"})
    assert s.directory.excluded_account_types() == {"guest"}
    with pytest.raises(ConfigError, match="directory.max_unknown_actor_share"):
        load_settings(None, directory={"max_unknown_actor_share": 1.5})
    with pytest.raises(ConfigError, match="directory.externals"):
        load_settings(None, directory={"externals": "maybe"})


def test_a_warehouse_of_an_older_version_gets_the_new_people_columns(tmp_path) -> None:
    # an older version: one schema (main), lake_people without the later columns
    raw = duckdb.connect(str(tmp_path / "w.duckdb"))
    raw.execute("create table lake_people (person_key varchar not null, department varchar, "
                "location varchar, level varchar, manager_key varchar, is_leader boolean not null, "
                "hire_date date, termination_date date, snapshot_date date not null)")
    raw.execute("insert into lake_people values ('ann', 'Sales', null, null, null, false, null, null, "
                "date '2026-01-01')")
    raw.close()
    engine = warehouse.make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with engine.begin() as conn:
        warehouse.ensure_lake_tables(conn)
        warehouse.ensure_lake_tables(conn)  # idempotent
        merged = canonical.merge_people({"hr": _hr(bob="Sales")}).assign(snapshot_date=dt.date(2026, 1, 2))
        warehouse.insert_arrow(conn, "lake_people", pa.Table.from_pandas(merged, preserve_index=False))
    rows = warehouse.read_frame(engine, "select person_key, in_directory, coalesce(sources, '-') as sources "
                                        "from esn_staging.lake_people order by 1")  # moved to its schema
    assert rows.to_dict("records") == [{"person_key": "ann", "in_directory": None, "sources": "-"},
                                       {"person_key": "bob", "in_directory": True, "sources": "hr"}]
    engine.dispose()
