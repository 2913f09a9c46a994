"""Shared fixtures: small demo settings, a DuckDB warehouse per test, a scratch PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines.config import Settings, SourceConfig, load_settings

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("ESN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

SMALL_DEMO = {"people": 150, "days": 42, "start": dt.date(2026, 5, 1), "seed": 11}


def demo_settings(tmp: Path, warehouse_url: str | None = None, **options) -> Settings:
    opts = {**SMALL_DEMO, **options}
    return load_settings(
        None,
        lake_dir=tmp / "lake",
        warehouse_url=warehouse_url or f"duckdb:///{tmp / 'warehouse.duckdb'}",
        sources=[SourceConfig(name="demo", kind="demo", options=opts)],
    )


@pytest.fixture
def small_settings(tmp_path: Path) -> Settings:
    return demo_settings(tmp_path)


def _pg_reachable() -> str | None:
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("select 1")
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means "no server here"
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server() -> str:
    reason = _pg_reachable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_ADMIN_URL}: {reason}")
        pytest.skip(f"no PostgreSQL reachable at {PG_ADMIN_URL} ({reason}); set ESN_TEST_PG_URL or start one")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"esn_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()


def pytest_configure(config: pytest.Config) -> None:
    # the parsed dbt project is kept between processes (pipelines.transform): in a folder of this session,
    # shared by the child processes the tests start, not in the user's ~/.cache
    if "ESN_DBT_CACHE_DIR" not in os.environ:
        import tempfile

        os.environ["ESN_DBT_CACHE_DIR"] = tempfile.mkdtemp(prefix="esn-dbt-cache-")
