"""The dbt project of sql/ as `pipelines.dbt_project` reads it (no dbt run): the same models, layers,
materialisations, keys, partition columns and suppression declarations as the old runner's headers
(stored in tests/dbt/expected/models.json by `python -m tests.dbt.regenerate_expected` from git history;
what the models compute is test_equivalence's), the generated column descriptions current, and the vars
refused when mistyped."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import dbt_project, jobs, transform, warehouse
from pipelines.catalogue import CATALOGUE_FILE
from tests.dbt.conftest import MODELS_AFTER_OLD_RUNNER, run_dbt, write_profile
from tests.dbt.regenerate_expected import EXPECTED, META_KEYS

#: the old header keys the dbt meta names otherwise (dbt 1.12 reads a meta.partition_by as a config)
NEW_META_NAME = {"partition_by": "partition_column"}


def _old() -> dict[str, dict[str, Any]]:
    """The old runner's models (their headers) by name."""
    return {m["name"]: m for m in json.loads((EXPECTED / "models.json").read_text())}


#: the old runner's tables that became incremental on purpose (issue 15: a day's run rewrites the rows its day
#: changes, not the history's), with their partition column; their description says how
MADE_INCREMENTAL = {"fct_posts": "activity_date", "fct_answerers": "month_start",
                    "fct_knowledge_brokers": "month_start"}


def test_the_models_are_the_old_runners() -> None:
    old, new = _old(), dbt_project.discover_models()
    assert [m.name for m in new] and {m.name for m in new} == set(old) | MODELS_AFTER_OLD_RUNNER
    for m in new:
        if m.name in MODELS_AFTER_OLD_RUNNER:  # no old header: in its layer's folder, with a key
            assert m.name not in old and m.key and m.path.parent == warehouse.SQL_DIR / "models" / m.layer, m.name
            continue
        o = old[m.name]
        if m.name in MADE_INCREMENTAL:
            assert (o["materialized"], o["partition_by"]) == ("table", None), m.name
            o = {**o, "materialized": "incremental", "partition_by": MADE_INCREMENTAL[m.name],
                 "meta": {**o["meta"], "partition_by": MADE_INCREMENTAL[m.name]},
                 "description": o["description"].split(". ")[0]}
        assert (m.layer, m.materialized, m.partition_by, m.path.suffix) == (o["layer"], o["materialized"],
                                                                           o["partition_by"], ".sql"), m.name
        assert m.path.parent == warehouse.SQL_DIR / "models" / m.layer
        if m.name != "stg_people":  # its old header lost every key after a two-line grain (see the report)
            assert m.key == o["key"], m.name
            for k in META_KEYS:
                assert m.meta.get(NEW_META_NAME.get(k, k)) == o["meta"].get(k), (m.name, k)
            assert m.meta.get("description", "").startswith(o["description"]), m.name
        # the declared dependencies are all there (and the lake tables it reads)
        assert set(o["depends_on"]) <= set(m.depends_on), m.name
    people = next(m for m in new if m.name == "stg_people")
    assert people.key == ["person_key"] and people.meta["not_null"] == "in_directory, account_type, is_deactivated"
    assert people.depends_on == ["lake_people", "lake_activities"]


def test_models_come_after_what_they_read() -> None:
    seen: set[str] = set()
    for m in dbt_project.discover_models():
        assert {d for d in m.depends_on if not d.startswith("lake_")} <= seen, m.name
        seen.add(m.name)


def test_the_properties_yaml_is_current() -> None:
    """Regenerating the catalogue tables' columns (python -m pipelines.catalogue) changes nothing."""
    synced = dbt_project.synced_properties()
    assert set(synced) == {dbt_project.properties_file(layer) for layer in warehouse.LAYERS}
    for path, text in synced.items():
        assert path.read_text() == text, f"{path} is not current: run python -m pipelines.catalogue"


def test_catalogue_definitions_describe_the_columns() -> None:
    catalogue = yaml.safe_load(CATALOGUE_FILE.read_text())
    descriptions = dbt_project.model_descriptions()
    marts = [m.name for m in dbt_project.discover_models() if m.layer == "marts"]
    for name in marts:
        description, cols = descriptions[name]
        assert description, name
        assert cols, name
    for table, spec in catalogue["tables"].items():
        if table not in descriptions:
            continue  # computed in Python
        _, cols = descriptions[table]
        for col, meta in (spec.get("columns") or {}).items():
            assert cols.get(col) == meta["definition"], (table, col)
    # a shared column takes the common definition
    assert descriptions["mart_engagement_daily"][1]["segment_type"] == catalogue["common_columns"]["segment_type"][
        "definition"]


def test_sync_keeps_order_tests_and_other_descriptions() -> None:
    entry = {"name": "t", "description": "d", "config": {"materialized": "table"},
             "columns": [{"name": "k", "data_tests": ["not_null"]}, {"name": "extra", "description": "hand"},
                         {"name": "as_of_date", "description": "old"}]}
    out = dbt_project.sync_columns(entry, {"k": "the key", "new": "added"}, {"as_of_date": "day"})
    assert out["config"] == entry["config"] and out["description"] == "d"
    assert out["columns"] == [{"name": "k", "description": "the key", "data_tests": ["not_null"]},
                              {"name": "extra", "description": "hand"}, {"name": "as_of_date", "description": "day"},
                              {"name": "new", "description": "added"}]


@pytest.mark.parametrize(("override", "message"), [
    ({"min_group_size": "5 or 1=1"}, "var min_group_size must be a number"),
    ({"start_date": "2026-05-01' or '1"}, "var start_date must be a date"),
    ({"usage_report_engage": "true"}, "var usage_report_engage must be true or false"),
    ({"w_reply": True}, "var w_reply must be a number"),
    ({"unanswered_min_z": None}, "var unanswered_min_z is not set"),
])
def test_a_mistyped_var_is_a_compiler_error_naming_it(tmp_path: Path, demo, override, message) -> None:
    """dbt compile in-process (transform.build: the parsed manifest is reused, the vars reach the models);
    an override None leaves the var out."""
    params = {**jobs.model_params(demo, jobs.Interval(dt.date(2026, 5, 1), dt.date(2026, 5, 2))), **override}
    params = {k: v for k, v in params.items() if v is not None}
    with pytest.raises(transform.TransformError, match=re.escape(message)):
        transform.build(f"duckdb:///{tmp_path / 'w.duckdb'}", params, command="compile")


@pytest.mark.postgres
def test_dbt_refuses_a_session_not_in_utc(tmp_path: Path, demo, pg_warehouse: str) -> None:
    """activity_date and every cast of a timestamp to a date depend on the session time zone."""
    profiles = write_profile(tmp_path / "profiles", pg_warehouse)
    interval = __import__("pipelines.jobs", fromlist=["Interval"]).Interval(dt.date(2026, 5, 1), dt.date(2026, 5, 2))
    with pytest.raises(AssertionError, match="the session time zone is Europe/Paris, not UTC"):
        run_dbt(demo, interval, profiles, tmp_path / "target", command="run", extra_env={"PGTZ": "Europe/Paris"},
                args=("--select", "stg_activities"))
