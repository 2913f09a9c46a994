"""Run locks: one writer at a time per source of a lake, one publisher at a time per lake.

Locks are `flock`s on files under `lake_dir/_state/locks/`:
  source=<name>.lock   extract, stage, validate and land of that source (its raw landing, staging,
                       GX context and canonical partitions)
  publish.lock         the warehouse publication of the lake
  run.lock             a whole `esn run` / `esn demo` (the CLI refuses a second one at once)
The kernel releases a flock when its process dies, however it dies, so a killed run never leaves a lock
behind on a local file system. The lock file holds who took it (pid, host, command, interval, since) so
that the refusal can say who holds it. On PostgreSQL the publication also takes a transaction-level
advisory lock (`pipelines.warehouse.lock_publication`), which holds across machines sharing a warehouse.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: how long a step waits for a lock another step holds before it gives up (seconds); the CLI's whole-run
#: lock does not wait unless asked
DEFAULT_WAIT_S = float(os.environ.get("ESN_LOCK_WAIT_S", "1800"))


class RunLocked(RuntimeError):
    """Another process holds the lock; the message names it and says how to clear a stale lock."""


def lock_dir(lake_dir: Path) -> Path:
    return Path(lake_dir) / "_state" / "locks"


def _describe(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "an unknown process"
    parts = [f"pid {info.get('pid')} on {info.get('host')}"]
    if info.get("command"):
        parts.append(f"running `{info['command']}`")
    if info.get("interval"):
        parts.append(f"for {info['interval']}")
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return ", ".join(parts)


@contextlib.contextmanager
def hold(lake_dir: Path, scope: str, *, interval: str | None = None, wait_s: float | None = None,
         poll_s: float = 0.2) -> Iterator[None]:
    """Hold the lock `scope` of the lake for the block. Waits up to `wait_s` seconds (default
    `DEFAULT_WAIT_S`, $ESN_LOCK_WAIT_S) for another holder, then raises `RunLocked`."""
    wait = DEFAULT_WAIT_S if wait_s is None else wait_s
    path = lock_dir(lake_dir) / f"{scope}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise RunLocked(
                        f"the {scope} lock of the lake {lake_dir} is held by {_describe(path)}"
                        + (f" (waited {wait:.0f} s)" if wait else "")
                        + ". Wait for that run to finish and retry. A lock is released when its process "
                        f"exits, even after kill -9; if the holder is gone and the lock stays (a file system "
                        f"without working locks, such as some NFS mounts), delete {path}.") from None
                time.sleep(poll_s)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(_argv()),
                  "interval": interval, "scope": scope,
                  "since": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _argv() -> list[str]:
    argv: list[Any] = list(sys.argv)
    if argv and argv[0].endswith(("/esn", "esn")):
        argv[0] = "esn"
    return [str(a) for a in argv][:12]
