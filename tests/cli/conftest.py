"""`esn` started as a process, the way a user runs it: exit code, stderr lines, what is left on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: the installed console script (what a user runs); `python -m pipelines.cli` goes through the same `app()`
ESN_SCRIPT = Path(sys.executable).parent / "esn"
TEST_KEY = "test-key-not-a-secret-cli-0123456789"


def esn(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300,
        **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`esn ARGS` in `cwd` with the test key, no $ESN_CONFIG, and `extra_env` on top."""
    base = {k: v for k, v in (env or os.environ).items() if k not in ("ESN_CONFIG", "ESN_SHOW_TEARDOWN")}
    base.setdefault("ESN_PSEUDONYM_KEY", TEST_KEY)
    base.update(extra_env)
    command = [str(ESN_SCRIPT)] if ESN_SCRIPT.exists() else [sys.executable, "-m", "pipelines.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env=base, capture_output=True, text=True, timeout=timeout)


def assert_short_error(result: subprocess.CompletedProcess[str], *expected: str, max_lines: int = 2) -> str:
    """The process failed with a message of at most `max_lines` lines (after any progress line) that holds
    every `expected` text, and printed no traceback; returns stderr."""
    err = result.stderr
    assert result.returncode != 0, (result.stdout, err)
    assert "Traceback" not in err and 'File "' not in err, err
    assert "nanobind" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and "━" not in line]
    assert 1 <= len(lines) <= max_lines, err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder to run `esn` in (its default lake and warehouse are relative to it)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder
