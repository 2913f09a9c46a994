"""DAG integrity and policy: every file in dags/ imports cleanly and follows the house rules.

The rules (shared/STYLE.md): owner, retries with back-off, tags and doc_md on every DAG; dag_id equals the
file name; task ids start with a verb; nothing done at parse time (no configuration needed, no heavy
imports, under two seconds per file). Issue 14 adds: a timeout on every task and run, the failure
notifier on every task and run, the pools of the extractions and the warehouse writers, and doc_md
that says how to rerun a day and a range.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.airflow.conftest import DAGS, base_env, probe

pytestmark = pytest.mark.airflow

EXPECTED_DAGS = {"esn_daily", "esn_network", "esn_reports"}
VERBS = ("extract_", "stage_", "validate_", "land_", "publish_", "compute_", "send_", "list_", "transform_",
         "check_")
DAG_FILES = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
PUBLISHED_URI = "esn://warehouse/published"
NOTIFIER = "pipelines.alerting.FailureNotifier"


@pytest.fixture(scope="module")
def described(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DAG folder parsed with ESN_CONFIG naming a file that does not exist: parsing must not need it."""
    home = tmp_path_factory.mktemp("airflow_parse_home")
    env = base_env(home)
    env["ESN_CONFIG"] = str(home / "does-not-exist.yaml")
    return probe(env, "describe").data


def test_dag_folder_imports_without_errors_even_when_the_config_file_is_missing(described: dict[str, Any]) -> None:
    assert described["import_errors"] == {}
    assert set(described["dags"]) == EXPECTED_DAGS


def test_parsing_imports_no_heavy_module(described: dict[str, Any]) -> None:
    # pandas, GX, DuckDB and pipelines.jobs are imported inside tasks, never by the scheduler's parser
    assert described["heavy_modules_loaded"] == []


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_DAGS))
def test_dag_follows_the_house_policy(described: dict[str, Any], dag_id: str) -> None:
    dag = described["dags"][dag_id]
    assert Path(dag["fileloc"]).stem == dag_id, "dag_id must equal the file name"
    assert dag["doc_md"] and dag["doc_md"].strip().startswith(f"# {dag_id}"), "doc_md (module docstring) missing"
    assert dag["tags"], "tags missing"
    assert "esn-metrics" in dag["tags"]
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["tasks"], "a DAG without tasks"
    for task_id, task in dag["tasks"].items():
        assert task["owner"] == "esn-metrics", task_id
        assert task["retries"] >= 1, task_id
        assert task["retry_exponential_backoff"] > 0, f"{task_id}: retries without exponential back-off"
        assert task_id.split(".")[-1].startswith(VERBS), f"task id {task_id!r} does not start with a verb"
        assert task["execution_timeout_s"], f"{task_id}: no execution_timeout"
        assert task["on_failure_callback"] == [NOTIFIER], f"{task_id}: no failure notifier"
    assert dag["dagrun_timeout_s"], "no dagrun_timeout"
    assert dag["on_failure_callback"] == [NOTIFIER]
    assert "Rerun a day" in dag["doc_md"] and "range" in dag["doc_md"].lower()
    assert "docs/operations.md" in dag["doc_md"]


def test_timeouts_are_sized_per_task_and_fit_in_the_run(described: dict[str, Any]) -> None:
    hour = 3600.0
    daily = described["dags"]["esn_daily"]
    tasks = {t: v["execution_timeout_s"] for t, v in daily["tasks"].items()}
    # extraction and publishing are long; listing, staging, validating and landing are short
    assert tasks["extract_source"] >= 2 * hour and tasks["publish_warehouse"] >= 2 * hour
    assert max(tasks["list_sources"], tasks["stage_source"], tasks["validate_source"],
               tasks["land_source"]) <= 1 * hour
    for dag_id, dag in described["dags"].items():
        longest_chain = (sum(tasks[t] for t in ("list_sources", "extract_source", "stage_source", "validate_source",
                                                 "land_source", "publish_warehouse"))
                         if dag_id == "esn_daily" else max(t["execution_timeout_s"] for t in dag["tasks"].values()))
        assert dag["dagrun_timeout_s"] >= longest_chain * 0.9, f"{dag_id}: the run times out before its tasks could"


def test_extractions_and_warehouse_writers_run_in_their_pools(described: dict[str, Any]) -> None:
    daily = described["dags"]["esn_daily"]["tasks"]
    assert daily["extract_source"]["pool"] == "esn_extract"
    assert daily["publish_warehouse"]["pool"] == "esn_warehouse"
    assert described["dags"]["esn_network"]["tasks"]["compute_network"]["pool"] == "esn_warehouse"
    assert {daily[t]["pool"] for t in ("stage_source", "validate_source", "land_source")} == {"default_pool"}
    for dag_id, dag in described["dags"].items():
        for pool in {t["pool"] for t in dag["tasks"].values()} - {"default_pool"}:
            assert f"`{pool}`" in dag["doc_md"] and f"airflow pools set {pool}" in dag["doc_md"], (dag_id, pool)


def test_esn_daily_takes_a_validated_date_and_end_date_param(described: dict[str, Any]) -> None:
    params = described["dags"]["esn_daily"]["params"]
    assert set(params) == {"date", "end_date"}
    for name in ("date", "end_date"):
        assert params[name]["type"] == ["null", "string"] and params[name]["format"] == "date"
        assert params[name]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"
    assert "end_date" in described["dags"]["esn_network"]["params"]
    assert "as_of" in described["dags"]["esn_reports"]["params"]


def test_esn_daily_wires_the_four_steps_per_source_then_publishes_the_asset(described: dict[str, Any]) -> None:
    tasks = described["dags"]["esn_daily"]["tasks"]
    assert set(tasks) == {"list_sources", "extract_source", "stage_source", "validate_source", "land_source",
                          "publish_warehouse"}
    assert "extract_source" in tasks["stage_source"]["upstream"]
    assert "stage_source" in tasks["validate_source"]["upstream"]
    assert "validate_source" in tasks["land_source"]["upstream"]
    assert "land_source" in tasks["publish_warehouse"]["upstream"]
    assert tasks["publish_warehouse"]["outlets"] == [PUBLISHED_URI]
    assert "CronDataIntervalTimetable" in described["dags"]["esn_daily"]["timetable"]


def test_esn_network_is_triggered_by_the_asset_esn_daily_publishes(described: dict[str, Any]) -> None:
    assert described["dags"]["esn_network"]["schedule_asset_uris"] == [PUBLISHED_URI]
    assert set(described["dags"]["esn_network"]["tasks"]) == {"compute_network"}


def test_esn_reports_runs_every_morning(described: dict[str, Any]) -> None:
    # daily: each audience is sent the morning after its own period (daily, weekly on its weekday, monthly) ends
    dag = described["dags"]["esn_reports"]
    assert "'0 7 * * *'" in dag["timetable"] and "UTC" in dag["timetable"]
    assert set(dag["tasks"]) == {"send_stakeholder_reports", "send_answer_suggestions"}
    assert not dag["tasks"]["send_answer_suggestions"]["upstream"]  # independent of the reports


def test_catchup_of_esn_daily_can_be_switched_on_by_environment(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    env["ESN_CATCHUP"] = "true"
    dags = probe(env, "describe").data["dags"]
    assert dags["esn_daily"]["catchup"] is True
    assert dags["esn_network"]["catchup"] is False


@pytest.mark.parametrize("path", DAG_FILES, ids=[p.stem for p in DAG_FILES])
def test_dag_file_parses_in_under_two_seconds(tmp_path: Path, path: Path) -> None:
    # measured in a fresh interpreter with Airflow already imported, as in the DAG processor
    result = probe(base_env(tmp_path), "parse-time", str(path)).data
    assert result["import_errors"] == {}
    assert result["dag_ids"] == [path.stem]
    assert result["seconds"] < 2.0, f"{path.name} took {result['seconds']:.2f} s to parse"
