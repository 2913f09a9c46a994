"""Short-lived, lock-tolerant connections to the DuckDB warehouse file.

A DuckDB file is locked by the process that opens it (one writer process, or any number of read-only
processes, never both): a second process gets `IOException: Could not set lock on file ... Conflicting
lock is held in <program> (PID <n>)`. The warehouse therefore holds the file only while it uses it:
`make_engine` gives DuckDB files a `NullPool` (a released connection closes the file) and opens every
connection through `connect_retrying`, which waits for the holder to let go, with exponential back-off, up
to `$ESN_DUCKDB_LOCK_WAIT_S` seconds (default 600), logging who holds the file when DuckDB says.

BI tools never open the warehouse file: they open the published snapshot (`pipelines.snapshot`), which
the publish replaces atomically, so a reader never blocks a writer.

`quiet_interpreter_teardown` keeps DuckDB's `nanobind: leaked ...` report out of a command's output (its
doc says why that report is harmless and why it cannot be fixed by closing connections).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

LOCK_WAIT_ENV = "ESN_DUCKDB_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 600.0
FIRST_DELAY_S = 0.05
MAX_DELAY_S = 2.0
_LOCK_MESSAGE = "Could not set lock on file"
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class DuckDBLockTimeout(RuntimeError):
    """The DuckDB file stayed locked by another process for longer than the configured wait."""


def lock_wait_seconds() -> float:
    """How long to wait for a locked DuckDB file: `$ESN_DUCKDB_LOCK_WAIT_S` (default 600 s; 0 = fail at once)."""
    value = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not value:
        return DEFAULT_LOCK_WAIT_S
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{LOCK_WAIT_ENV} must be a number of seconds, got {value!r}") from None
    if seconds < 0:
        raise ValueError(f"{LOCK_WAIT_ENV} must not be negative, got {value!r}")
    return seconds


def is_lock_error(exc: BaseException) -> bool:
    """Whether `exc` (or the DBAPI error it wraps) is DuckDB refusing a file another process holds."""
    seen: BaseException | None = exc
    while seen is not None:
        if _LOCK_MESSAGE in str(seen):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def lock_holder(exc: BaseException) -> str | None:
    """'PID <n> (<program>)' of the process holding the file, when DuckDB's message names it."""
    m = _HOLDER.search(str(exc))
    return f"PID {m['pid']} ({m['program']})" if m else None


def retry_locked(open_: Callable[[], T], *, what: str, wait_s: float | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> T:
    """`open_()`, retried with exponential back-off while it fails on a DuckDB file lock, for at most
    `wait_s` seconds (default `lock_wait_seconds()`); then `DuckDBLockTimeout` naming the holder. Any
    other error is raised at once."""
    wait = lock_wait_seconds() if wait_s is None else wait_s
    deadline = clock() + wait
    delay = FIRST_DELAY_S
    attempts = 0
    last_log = float("-inf")
    while True:
        try:
            result = open_()
        except Exception as exc:
            if not is_lock_error(exc):
                raise
            attempts += 1
            now = clock()
            holder = lock_holder(exc) or "another process"
            if now >= deadline:
                raise DuckDBLockTimeout(
                    f"{what} stayed locked by {holder} for {wait:.0f} s ({attempts} attempts; raise "
                    f"{LOCK_WAIT_ENV} to wait longer): {exc}") from exc
            if now - last_log >= 30:
                log.info("%s is locked by %s: waiting up to %.0f s more", what, holder, deadline - now)
                last_log = now
            sleep(min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        if attempts:
            log.info("%s: opened after %d locked attempt(s)", what, attempts)
        return result


def connect(path: str | os.PathLike[str], *, read_only: bool = False, config: dict[str, Any] | None = None,
            wait_s: float | None = None) -> Any:
    """A `duckdb` connection to `path`, waiting for another process's lock (see `retry_locked`)."""
    import duckdb

    return retry_locked(lambda: duckdb.connect(str(path), read_only=read_only, config=dict(config or {})),
                        what=f"DuckDB file {path}", wait_s=wait_s)


@contextmanager
def short_connection(path: str | os.PathLike[str], *, read_only: bool = False,
                     wait_s: float | None = None) -> Iterator[Any]:
    """A connection for one block of work, closed after it (the file is released with it)."""
    con = connect(path, read_only=read_only, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


def install(engine: Any, path: str) -> None:
    """Make every new DBAPI connection of a DuckDB `engine` (duckdb-engine dialect) wait for a lock held
    by another process instead of failing at once. With a `NullPool` that covers every checkout."""
    import sqlalchemy as sa

    @sa.event.listens_for(engine, "do_connect")
    def _retrying_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # duckdb-engine's connect pops keys from its parameters: each attempt gets its own copy
        return retry_locked(lambda: dialect.connect(*cargs, **copy.deepcopy(cparams)),
                            what=f"DuckDB warehouse {path}")


#: set to 1 to see what the interpreter prints while it tears down (the nanobind report among it)
SHOW_TEARDOWN_ENV = "ESN_SHOW_TEARDOWN"
_teardown_quieted = False


def quiet_interpreter_teardown() -> None:
    """Discard what the interpreter writes to stderr after the last `atexit` handler of a process that
    imported DuckDB: DuckDB 2.0's nanobind bindings print 40-odd lines of `nanobind: leaked 27 instances
    ... 6 types ... 84 functions` there.

    Why it is printed: nanobind checks, at the very end of `Py_Finalize`, that every object of its types
    was freed. CPython does not free everything at exit, and here it does not free the `duckdb.sqltypes`
    constants (DuckDBPyType BIGINT, VARCHAR, ...) and with them the DuckDBPyConnection type: duckdb-engine
    registers SQLAlchemy compiler hooks at import (`duckdb_engine.datatypes`, `@compiles`) whose functions'
    globals hold the `duckdb` module, and SQLAlchemy's type classes, which hold those hooks, outlive module
    teardown once `sqlalchemy.orm` is loaded with certain other modules (`import great_expectations;
    import duckdb_engine` is enough, with no connection ever opened; `import duckdb_engine` alone is not).
    No connection, relation or Arrow object is involved: closing every connection and disposing every
    engine leaves the report unchanged. The report comes after our last line of output, frees nothing and
    signals no leak during the run (the process is ending); nanobind can be told not to print it only from
    C++ (`nb::set_leak_warnings`), which DuckDB does not expose.

    So the `esn` process points file descriptor 2 at /dev/null once every `atexit` handler has run (this
    one is registered first, so it runs last) and Python's own streams are flushed; what the teardown
    writes afterwards (this report, or an `Exception ignored in ...` of a finaliser) is dropped.
    `$ESN_SHOW_TEARDOWN=1` keeps it. Only processes that load DuckDB are affected; once per process."""
    global _teardown_quieted
    if _teardown_quieted:
        return
    _teardown_quieted = True
    atexit.register(_discard_stderr_after_exit)


def _discard_stderr_after_exit() -> None:
    if "_duckdb" not in sys.modules or os.environ.get(SHOW_TEARDOWN_ENV, "").strip() in ("1", "true", "yes"):
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # a closed or replaced stream
            stream.flush()
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:  # no /dev/null (a sandbox): the report is printed, nothing else changes
        pass
