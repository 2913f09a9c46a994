"""`esn --help` answers without importing the pipeline: the commands import what they use."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.conftest import esn

HEAVY = ("pandas", "sqlalchemy", "great_expectations", "duckdb", "duckdb_engine", "dbt", "pyarrow", "numpy",
         "pipelines.jobs", "pipelines.config", "rich.progress")


def _loaded_after(code: str) -> list[str]:
    probe = (f"import json, sys\n{code}\n"
             f"print(json.dumps(sorted(m for m in {list(HEAVY)!r} if m in sys.modules)))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_none_of_the_heavy_modules() -> None:
    assert _loaded_after("import pipelines.cli") == []


def test_help_of_the_app_and_of_a_command_loads_none_of_them() -> None:
    for args in (["--help"], ["run", "--help"], ["network", "--help"], ["report", "--help"]):
        code = ("from pipelines.cli import app\n"
                f"try:\n    app({args!r})\nexcept SystemExit as exc:\n    assert exc.code == 0, exc.code")
        assert _loaded_after(code) == [], args


def test_help_lists_every_command_and_the_debug_option(workdir) -> None:
    result = esn("--help", cwd=workdir)
    assert result.returncode == 0, result.stderr
    for command in ("demo", "run", "network", "report", "check-config", "erase", "rotate-key", "--debug"):
        assert command in result.stdout, command
    result = esn("run", "--help", cwd=workdir)
    assert result.returncode == 0 and "--no-network" in result.stdout, result.stdout
