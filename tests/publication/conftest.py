"""A PostgreSQL database per test module (esn_h_c_*), LOGIN roles with unique names, both dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines import warehouse


@pytest.fixture(scope="module")
def pg_db(pg_server: str) -> Iterator[str]:
    """The URL of a fresh database for the module, with the warehouse schemas."""
    name = f"esn_h_c_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'create database "{name}"')
    url = pg_server.rsplit("/", 1)[0] + f"/{name}"
    engine = warehouse.make_engine(url)
    with engine.begin() as conn:
        warehouse.ensure_schemas(conn)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'drop database if exists "{name}" with (force)')
        admin.dispose()


@pytest.fixture
def pg_engine(pg_db: str) -> Iterator[Engine]:
    engine = warehouse.make_engine(pg_db)
    yield engine
    engine.dispose()


@pytest.fixture
def make_role(pg_server: str, pg_db: str) -> Iterator[Callable[[], str]]:
    """Creates LOGIN roles with unique names; their privileges in the module's database and the roles
    themselves are dropped after the test."""
    made: list[str] = []
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")

    def make() -> str:
        role = f"esn_h_c_bi_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"create role {role} login")
        made.append(role)
        return role

    yield make
    db = sa.create_engine(pg_db, isolation_level="AUTOCOMMIT")
    with db.connect() as conn:
        for role in made:
            conn.exec_driver_sql(f"drop owned by {role}")
    db.dispose()
    with admin.connect() as conn:
        for role in made:
            conn.exec_driver_sql(f"drop role if exists {role}")
    admin.dispose()
