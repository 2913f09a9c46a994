"""Fixtures for the warehouse-sharing tests: a DuckDB 1.x client, installed once, run in child processes.

BI tools embed DuckDB 1.x; the published file must open there. The client is the `duckdb` wheel of
`DUCKDB_1X` installed (from the package registry, with uv) into a cache folder keyed by its version,
`build/duckdb-clients/duckdb-<version>` in the repository, and used by a child `python` whose PYTHONPATH
puts it before the project's DuckDB 2.0.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DUCKDB_1X = "1.5.6"
CLIENTS = REPO / "build" / "duckdb-clients"


@dataclass(frozen=True)
class DuckDBClient:
    """A Python with a given DuckDB version: `run(script)` runs it in a child and returns its JSON result."""

    version: str
    pythonpath: str | None  # None: the project's own duckdb (2.0)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        return env

    def popen(self, script: str, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", script, *args], env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def run(self, script: str, *args: str, timeout: float = 60) -> Any:
        proc = subprocess.run([sys.executable, "-c", script, *args], env=self.env(), text=True,
                              capture_output=True, timeout=timeout)
        assert proc.returncode == 0, f"duckdb {self.version} child failed:\n{proc.stderr[-3000:]}"
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _install(version: str) -> Path:
    target = CLIENTS / f"duckdb-{version}"
    if (target / ".installed").exists():
        return target
    CLIENTS.mkdir(parents=True, exist_ok=True)
    with open(CLIENTS / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest sessions install it once
        if (target / ".installed").exists():
            return target
        staging = CLIENTS / f".duckdb-{version}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        uv = shutil.which("uv")
        cmd: Sequence[str] = ([uv, "pip", "install", "--python", sys.executable] if uv
                              else [sys.executable, "-m", "uv", "pip", "install"])
        proc = subprocess.run([*cmd, "--target", str(staging), f"duckdb=={version}"],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            message = f"could not install duckdb=={version}: {proc.stderr[-2000:]}"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message + " (set CI=1 to make this fail)")
        (staging / ".installed").write_text(version)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


@pytest.fixture(scope="session")
def duckdb_1x() -> DuckDBClient:
    """A DuckDB 1.x client (the one BI tools embed), checked to really be that version."""
    client = DuckDBClient(DUCKDB_1X, str(_install(DUCKDB_1X)))
    assert client.run("import duckdb, json; print(json.dumps(duckdb.__version__))") == DUCKDB_1X
    return client


@pytest.fixture(scope="session")
def duckdb_2x() -> DuckDBClient:
    return DuckDBClient("project", None)


@pytest.fixture(params=["2.x", "1.x"])
def reader_client(request: pytest.FixtureRequest) -> DuckDBClient:
    """Both DuckDB generations, one test each."""
    return request.getfixturevalue("duckdb_2x" if request.param == "2.x" else "duckdb_1x")
