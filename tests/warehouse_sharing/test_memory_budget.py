"""DuckDB's memory budget (warehouse._duckdb_memory_limit) and its spill directory: bounded by default
whatever the machine, so that a publish at 100k people stays within a few GB and spills beyond."""

from __future__ import annotations

import types

import pytest
import sqlalchemy as sa

from pipelines import warehouse


def _machine(monkeypatch: pytest.MonkeyPatch, gib: float) -> None:
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(total=int(gib * 2**30)))


@pytest.mark.parametrize(("gib", "expected"), [(24, "4096MB"), (8, "2048MB"), (2, "1024MB"), (256, "4096MB")])
def test_default_is_a_quarter_of_the_machine_capped_at_4gb(monkeypatch: pytest.MonkeyPatch, gib: float,
                                                           expected: str) -> None:
    monkeypatch.delenv("ESN_DUCKDB_MEMORY_LIMIT", raising=False)
    _machine(monkeypatch, gib)
    assert warehouse._duckdb_memory_limit() == expected


def test_the_environment_overrides_the_default_and_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_DUCKDB_MEMORY_LIMIT", "10GB")
    assert warehouse._duckdb_memory_limit() == "10GB"
    monkeypatch.setenv("ESN_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="ESN_DUCKDB_MEMORY_LIMIT"):
        warehouse._duckdb_memory_limit()


def test_connections_get_the_budget_and_the_spill_directory(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ESN_DUCKDB_MEMORY_LIMIT", "1536MB")
    monkeypatch.setenv("ESN_DUCKDB_TEMP_DIRECTORY", str(tmp_path / "spill"))
    engine = warehouse.make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    try:
        with engine.connect() as conn:
            limit = conn.execute(sa.text("select current_setting('memory_limit')")).scalar_one()
            spill = conn.execute(sa.text("select current_setting('temp_directory')")).scalar_one()
    finally:
        engine.dispose()
    assert limit.replace(" ", "") in ("1.5GiB", "1536.0MiB", "1.4GiB", "1.5GB")
    assert spill == str(tmp_path / "spill")
