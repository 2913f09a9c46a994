"""The warehouse as an Airflow connection (`warehouse.conn_id`), read outside Airflow from AIRFLOW_CONN_<ID>.

A real PostgreSQL (tests/conftest.py `pg_url`) is reached through the connection in Airflow's two
environment forms, URI and JSON; the engine is `engine_for`'s (time zone, search path, schemas). A missing
or malformed connection is an error naming the connection and the variable, and the settings never hold
the password.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import secrets, warehouse
from pipelines.config import ConfigError, load_settings, redact_url

CONN_ID = "esn_warehouse_test"
VAR = "AIRFLOW_CONN_ESN_WAREHOUSE_TEST"
#: a password with the characters a URI must quote (the server trusts loopback, so any password works)
PASSWORD = "p@ss/w:rd?#1"


def _settings(tmp_path: Path):
    # warehouse_url is left at its default on purpose: the connection must win over it
    return load_settings(None, lake_dir=tmp_path / "lake", warehouse={"conn_id": CONN_ID})


def _uri_of(pg_url: str) -> str:
    url = sa.engine.make_url(pg_url)
    return sa.engine.URL.create("postgres", username=url.username, password=PASSWORD, host=url.host,
                                port=url.port, database=url.database,
                                query={"sslmode": "disable", "cursor": "dictcursor"}
                                ).render_as_string(hide_password=False)


def _check_engine(settings, pg_url: str) -> None:
    expected = sa.engine.make_url(pg_url)
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            database, timezone, path = conn.execute(sa.text(
                "select current_database(), current_setting('TimeZone'), current_setting('search_path')")).one()
            schemas = {r[0] for r in conn.execute(sa.text("select schema_name from information_schema.schemata"))}
    finally:
        engine.dispose()
    assert database == expected.database
    assert timezone == "UTC"
    assert path.replace(" ", "").startswith("esn_internal,esn_marts,esn_staging")
    assert set(settings.schemas().all) <= schemas
    url = sa.engine.make_url(warehouse.warehouse_url_of(settings))
    assert url.drivername == "postgresql+psycopg"
    assert url.password == PASSWORD
    assert dict(url.query) == {"sslmode": "disable"}  # the provider's own extra (cursor) is left out
    assert PASSWORD not in redact_url(warehouse.warehouse_url_of(settings))


@pytest.mark.postgres
def test_warehouse_from_a_uri_connection(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, _uri_of(pg_url))
    _check_engine(_settings(tmp_path), pg_url)


@pytest.mark.postgres
def test_warehouse_from_a_json_connection(pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = sa.engine.make_url(pg_url)
    monkeypatch.setenv(VAR, json.dumps({
        "conn_type": "postgres", "host": url.host, "port": url.port, "login": url.username,
        "password": PASSWORD, "schema": url.database, "extra": {"sslmode": "disable", "driver": "psycopg"}}))
    _check_engine(_settings(tmp_path), pg_url)


def test_a_duckdb_connection_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wh" / "warehouse.duckdb"
    monkeypatch.setenv(VAR, json.dumps({"conn_type": "duckdb", "host": str(path)}))
    settings = _settings(tmp_path)
    assert warehouse.warehouse_url_of(settings) == f"duckdb:///{path}"
    engine = warehouse.engine_for(settings)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("select current_setting('TimeZone')")).scalar() == "UTC"
    finally:
        engine.dispose()
    assert path.is_file()
    # the URI form reads as SQLAlchemy's: duckdb:////absolute/file, duckdb:///relative/file
    monkeypatch.setenv(VAR, f"duckdb:///{path}")
    assert warehouse.warehouse_url_of(settings) == f"duckdb:///{path}"
    monkeypatch.setenv(VAR, "duckdb:///data/warehouse.duckdb")
    assert warehouse.warehouse_url_of(settings) == "duckdb:///data/warehouse.duckdb"


def test_without_conn_id_the_url_is_warehouse_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, "postgres://u:p@h:5432/d")  # not named by the settings: not read
    settings = load_settings(None, warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert warehouse.warehouse_url_of(settings) == f"duckdb:///{tmp_path / 'w.duckdb'}"


def test_a_missing_connection_names_it_and_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VAR, raising=False)
    with pytest.raises(ConfigError) as err:
        warehouse.engine_for(_settings(tmp_path))
    message = str(err.value)
    assert f"'{CONN_ID}'" in message and VAR in message and "warehouse.conn_id" in message
    assert "\n" not in message


@pytest.mark.parametrize(("value", "expected"), [
    ('{"conn_type": "postgres", "host": ', "not valid JSON"),
    ('{"conn_type": "postgres", "hostname": "db"}', "unknown field(s) ['hostname']"),
    ("postgres://u:p@db:port/esn", "port that is not a number"),
    ("db.example.org:5432/esn", "neither JSON nor a URI"),
    ('{"conn_type": "mysql", "host": "db"}', "conn_type 'mysql'"),
    ('{"conn_type": "postgres", "schema": "esn"}', "has no host"),
    ('{"conn_type": "duckdb"}', "has no file"),
])
def test_a_bad_connection_says_what_is_wrong(value: str, expected: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(VAR, value)
    with pytest.raises(ConfigError) as err:
        warehouse.warehouse_url_of(_settings(tmp_path))
    assert expected in str(err.value)
    assert CONN_ID in str(err.value) and VAR in str(err.value)
    assert "p@" not in str(err.value)


def test_uri_parsing_follows_airflow() -> None:
    conn = secrets.parse_connection("x", "postgresql://us%40er:pa%2Fss@Db.Example.org:6432/my%20db?sslmode=require")
    assert (conn.conn_type, conn.host, conn.port, conn.login, conn.password, conn.schema) == (
        "postgres", "db.example.org", 6432, "us@er", "pa/ss", "my db")
    assert conn.extra == {"sslmode": "require"}
    whole = secrets.parse_connection("x", "postgres://h/db?__extra__=" + '{"driver": "psycopg2"}'.replace(" ", ""))
    assert whole.extra == {"driver": "psycopg2"}
    assert "pa/ss" not in repr(conn)  # the password is left out of the dataclass's repr
    assert not secrets.in_airflow_task()
