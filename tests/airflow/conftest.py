"""Fixtures for the Airflow tests: an isolated AIRFLOW_HOME with a SQLite metadata DB migrated once.

Airflow itself only ever runs in child processes (`dag_probe.py`), whose environment is built here from
scratch for Airflow's part: the developer's own AIRFLOW_* / ESN_* variables never leak in, and nothing
is written outside pytest's temporary folders. The metadata DB is migrated once per session into a
template home; each test that runs a DAG gets its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.airflow.test_esn_daily_e2e import Published

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
PROBE = Path(__file__).with_name("dag_probe.py")
MARKER = "ESN_PROBE_RESULT "
_STRIPPED_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "ESN_", "_AIRFLOW")


def base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STRIPPED_PREFIXES)}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
        "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    })
    return env


@dataclass
class ProbeResult:
    data: dict[str, Any]
    output: str  # the child's stdout and stderr, for assertions on log messages


def probe(env: Mapping[str, str], *args: str, timeout: float = 120) -> ProbeResult:
    """Run dag_probe.py with `args` in a fresh interpreter; its JSON result and its output."""
    proc = subprocess.run([sys.executable, str(PROBE), *args], env=dict(env), cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARKER)]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"dag_probe {' '.join(args)} exited {proc.returncode}; last output:\n"
                             + "\n".join(output.splitlines()[-60:]))
    return ProbeResult(json.loads(lines[-1][len(MARKER):]), output)


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An AIRFLOW_HOME whose SQLite metadata DB has been migrated (once per session)."""
    home = tmp_path_factory.mktemp("airflow_template")
    proc = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=base_env(home),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return home


def fresh_env(template: Path, where: Path) -> dict[str, str]:
    """Environment for one child Airflow with its own copy of the migrated DB; ESN_CONFIG unset."""
    home = where / "airflow_home"
    home.mkdir(parents=True)
    shutil.copy2(template / "airflow.db", home / "airflow.db")
    return base_env(home)


@pytest.fixture
def airflow_env(airflow_template: Path, tmp_path: Path) -> dict[str, str]:
    return fresh_env(airflow_template, tmp_path)


@pytest.fixture(scope="session")
def published(airflow_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """esn_daily run once per session on the demo organisation, shared by the e2e modules (a module
    fixture imported into another module ran the 1-2 minute publication once per module)."""
    from tests.airflow.test_esn_daily_e2e import publish_demo_day

    return publish_demo_day(airflow_template, tmp_path_factory)
