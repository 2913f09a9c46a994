"""`esn run` publishes and then computes the network tables; `esn network` recomputes them; no command
ends with DuckDB's `nanobind: leaked` report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from tests.cli.conftest import esn

SMALL = "{people: 60, days: 14, start: 2026-05-01, seed: 11}"


def test_run_publishes_then_computes_the_network_and_network_recomputes_it(workdir: Path) -> None:
    cfg = workdir / "esn.yaml"
    cfg.write_text(f"sources:\n  - {{name: demo, kind: demo, options: {SMALL}}}\n")
    result = esn("run", "-c", str(cfg), "--date", "2026-05-03", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "nanobind" not in result.stderr, result.stderr  # a DuckDB + GX + dbt process, quiet at exit
    summary = " ".join(result.stdout.split())
    assert "network tables" in summary and "last 2026-05-03" in summary, result.stdout
    assert "warehouse: duckdb:///data/warehouse.duckdb" in summary
    with duckdb.connect(str(workdir / "data" / "warehouse.duckdb"), read_only=True) as con:
        ends = con.execute("select distinct window_end from esn_marts.mart_network_org").fetchall()
    assert [str(d) for (d,) in ends] == ["2026-05-03"]

    result = esn("network", "-c", str(cfg), "--date", "2026-05-02", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "nanobind" not in result.stderr, result.stderr
    assert result.stdout.startswith("2026-05-02: ") and "mart_network_org (" in result.stdout, result.stdout
    with duckdb.connect(str(workdir / "data" / "warehouse.duckdb"), read_only=True) as con:
        ends = con.execute("select distinct window_end from esn_marts.mart_network_org order by 1").fetchall()
    assert [str(d) for (d,) in ends] == ["2026-05-02", "2026-05-03"]


def test_the_teardown_report_is_what_the_quieting_removes() -> None:
    # the cause (pipelines.duckdb_access.quiet_interpreter_teardown): duckdb-engine's SQLAlchemy hooks with
    # GX's imports keep DuckDB's types alive past teardown, with no connection ever opened. If this stops
    # printing the report (a DuckDB or duckdb-engine release), the quieting can go.
    code = "import great_expectations, duckdb_engine"
    loud = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert loud.returncode == 0 and "nanobind: leaked" in loud.stderr, loud.stderr
    quiet = subprocess.run([sys.executable, "-c", "from pipelines.duckdb_access import quiet_interpreter_teardown\n"
                            f"quiet_interpreter_teardown()\n{code}\nimport sys\nprint('last words', file=sys.stderr)"],
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == "last words\n", quiet.stderr
