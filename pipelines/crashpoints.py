"""Named crash points: where the crash harness kills a run, to prove that no kill loses or corrupts data.

Production code calls `reached("publish.after_load")` at every step boundary and inside every step.
Nothing happens unless the environment asks for it:

  ESN_CRASH_AT=name       the process SIGKILLs itself the first time it reaches `name`
  ESN_CRASH_AT=name:N     ... the N-th time (e.g. the 3rd partition written)
  ESN_CRASH_TRACE=FILE    every point reached is appended to FILE (one name a line), so a test can
                          check that each named point really is on the path it kills

SIGKILL, not an exception: no `finally`, no rollback handler, no atexit runs, exactly like `kill -9`
or the OOM killer. `POINTS` lists every name with where it is; tests/crash runs the kill matrix over it.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "ESN_CRASH_AT"
TRACE_ENV = "ESN_CRASH_TRACE"

#: every crash point, in the order a run reaches them
POINTS: dict[str, str] = {
    "extract.start": "before the source is called",
    "lake.raw.before_replace": "a raw partition file is written and fsynced, not yet renamed into place",
    "lake.raw.after_replace": "a raw partition was renamed into place",
    "state.after_commit": "the connector's incremental state is committed",
    "extract.end": "the source returned",
    "stage.start": "before canonicalisation",
    "stage.written": "the staged batch is written to its temporary folder, not yet renamed",
    "stage.end": "the staged batch is in place",
    "validate.start": "before Great Expectations runs",
    "validate.suite": "after the first suite ran (inside GX validation)",
    "validate.end": "evidence written, the batch passed",
    "land.start": "before the first canonical partition",
    "lake.canonical.before_replace": "a canonical partition file is written, not yet renamed",
    "lake.canonical.after_replace": "a canonical partition was renamed into place",
    "land.partitions": "every canonical partition of the batch is written",
    "land.journaled": "the landed days are recorded as waiting for publication",
    "land.end": "the staged batch is removed",
    "publish.start": "before the warehouse is touched",
    "publish.loaded": "the lake tables loaded (committed), dbt not started",
    "publish.model": "dbt: after a node (model or test) of the build",
    "publish.before_commit": "inside the publication transaction: every mart refreshed, not committed",
    "publish.committed": "the publication transaction committed, the published days not yet consumed",
    "publish.end": "the published days are consumed",
}

_counts: dict[str, int] = {}


def reached(name: str) -> None:
    """Mark a crash point; kills the process if the environment names it (see the module doc)."""
    trace = os.environ.get(TRACE_ENV)
    if trace:
        with open(trace, "a") as fh:
            fh.write(name + "\n")
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    target, _, nth = spec.partition(":")
    if target != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
