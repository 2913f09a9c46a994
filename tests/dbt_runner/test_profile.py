"""The dbt profile made from the warehouse URL, and the vars of an invocation (no dbt run)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import duckdb
import pytest

from pipelines.transform import PROFILE, TARGET, TransformError, dbt_vars, profile_for
from pipelines.warehouse import DEFAULT_SCHEMAS, Schemas, make_engine


def output(profile: dict) -> dict:
    assert list(profile) == [PROFILE] and profile[PROFILE]["target"] == TARGET
    return profile[PROFILE]["outputs"][TARGET]


def test_duckdb_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ESN_DUCKDB_MEMORY_LIMIT", "3GB")
    out = output(profile_for("duckdb:///data/w.duckdb", Schemas(internal="own_internal"), threads=3))
    assert out["type"] == "duckdb" and out["path"] == str(tmp_path / "data" / "w.duckdb")  # absolute
    assert out["schema"] == "own_internal" and out["threads"] == 3
    assert out["settings"]["memory_limit"] == "3GB" and out["settings"]["TimeZone"] == "UTC"
    assert out["settings"]["search_path"] == "own_internal,esn_marts,esn_staging"
    assert out["keep_open"] is True  # for the invocation; closed after it (test_build: another process opens it)


def test_duckdb_profile_config_equals_the_engines(tmp_path: Path) -> None:
    """DuckDB refuses a second database instance on a file with another config: the profile's
    config_options must be what duckdb-engine passes."""
    path = tmp_path / "w.duckdb"
    engine = make_engine(f"duckdb:///{path}")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
            with pytest.raises(duckdb.ConnectionException, match="different configuration"):
                duckdb.connect(str(path))
            con = duckdb.connect(str(path), config=output(profile_for(f"duckdb:///{path}"))["config_options"])
            assert con.execute("select 1").fetchall() == [(1,)]
            con.close()
    finally:
        engine.dispose()


def test_in_memory_duckdb_is_refused() -> None:
    with pytest.raises(TransformError, match="in-memory"):
        profile_for("duckdb:///:memory:")


@pytest.mark.parametrize("driver", ["postgresql", "postgresql+psycopg", "postgresql+psycopg2"])
def test_postgres_profile(driver: str) -> None:
    out = output(profile_for(f"{driver}://etl:s3cret@db.example:6543/metrics?sslmode=require", DEFAULT_SCHEMAS))
    assert out == {"type": "postgres", "host": "db.example", "port": 6543, "user": "etl", "password": "s3cret",
                   "dbname": "metrics", "schema": "esn_internal", "sslmode": "require", "threads": 1,
                   "search_path": "esn_internal,esn_marts,esn_staging,public"}


def test_postgres_profile_without_password_or_port() -> None:
    out = output(profile_for("postgresql+psycopg://postgres@127.0.0.1/esn"))
    assert (out["port"], out["password"], out["user"], out["dbname"]) == (5432, "", "postgres", "esn")


def test_postgres_unknown_url_parameter_is_refused() -> None:
    with pytest.raises(TransformError, match="options"):
        profile_for("postgresql://u@h/db?options=-csearch_path%3Dx")


@pytest.mark.parametrize("url", ["mysql+pymysql://u:pw@h/db", "snowflake://u:pw@acct/db", "sqlite:///x.db"])
def test_an_unsupported_url_names_its_scheme_the_adapters_and_the_way_out(url: str) -> None:
    with pytest.raises(TransformError) as err:
        profile_for(url)
    msg = str(err.value)
    assert repr(url.split("://")[0]) in msg
    assert "duckdb" in msg and "postgres" in msg  # the adapters installed
    assert "profiles.yml" in msg and "ESN_DBT_PROFILES_DIR" in msg
    assert ":pw@" not in msg


def test_vars() -> None:
    got = dbt_vars({"start_date": dt.date(2026, 5, 1), "min_group_size": 5, "w_reply": 0.5, "flag": True,
                    "label": "x"}, Schemas(build="b"))
    assert got == {"start_date": "2026-05-01", "min_group_size": 5, "w_reply": 0.5, "flag": True, "label": "x",
                   "schema_staging": "esn_staging", "schema_internal": "esn_internal", "schema_build": "b",
                   "schema_marts": "esn_marts"}


@pytest.mark.parametrize("value", [None, float("nan"), float("inf"), dt.datetime(2026, 5, 1, 12), [1, 2], {"a": 1}, decimal.Decimal("1.5"),
                                   Path("/x")])
def test_vars_other_types_are_refused(value: object) -> None:
    with pytest.raises(TransformError, match="start_date"):
        dbt_vars({"start_date": value}, DEFAULT_SCHEMAS)


def test_schema_vars_come_from_the_schemas_only() -> None:
    with pytest.raises(TransformError, match="schema_build"):
        dbt_vars({"schema_build": "elsewhere"}, DEFAULT_SCHEMAS)
