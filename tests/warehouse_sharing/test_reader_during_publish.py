"""A BI reader never blocks a publish: readers open the published file, which the publish replaces atomically.

A reader PROCESS (DuckDB 2.0, and DuckDB 1.x as BI tools embed it) holds the published file open in a
transaction, reading every mart again and again, while publishes run: each publish completes at once
(it never opens the file the reader holds); the reader keeps seeing the old marts, whole; a connection
opened after the publish sees the new ones; and a poller opening a new connection in a loop during the
publishes only ever sees one generation of marts at a time, never a mix.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from pipelines import snapshot
from pipelines.warehouse import DEFAULT_SCHEMAS
from tests.warehouse_sharing.conftest import DuckDBClient
from tests.warehouse_sharing.marts import META, fill, warehouse

# one observation: (rows, generations) of each mart and the _published stamp, read in one transaction
OBSERVE = """
def observe(con):
    e = con.execute("select count(*), string_agg(distinct generation, ',') from mart_engagement_daily").fetchone()
    n = con.execute("select count(*), string_agg(distinct generation, ',') from mart_network_summary").fetchone()
    p = con.execute("select published_at::varchar from _published").fetchone()
    return [e[0], e[1], n[0], n[1], p[0]]
"""

HOLDER = OBSERVE + r"""
import duckdb, json, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
con = duckdb.connect(path, read_only=True)
con.execute("begin transaction")
seen = [observe(con)]
print("READY", flush=True)
while not os.path.exists(stop):
    seen.append(observe(con))
    time.sleep(0.01)
seen.append(observe(con))  # after every publish, on the connection opened before them
con.execute("commit")
seen.append(observe(con))  # a new transaction on the same, still open, file: still the old inode
print(json.dumps({"seen": seen, "version": duckdb.__version__}))
"""

POLLER = OBSERVE + r"""
import duckdb, json, os, sys
path, stop = sys.argv[1], sys.argv[2]
seen = []
while not os.path.exists(stop):
    con = duckdb.connect(path, read_only=True)
    con.execute("begin transaction")
    seen.append(observe(con))
    con.execute("commit")
    con.close()
    if len(seen) == 1:
        print("READY", flush=True)  # one observation before the first publish
print(json.dumps({"seen": seen}))
"""

FRESH = OBSERVE + r"""
import duckdb, json, sys
con = duckdb.connect(sys.argv[1], read_only=True)
print(json.dumps(observe(con)))
"""


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "READY", f"reader did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"


def test_a_reader_holding_the_published_file_neither_blocks_nor_sees_a_publish_half_done(
        tmp_path: Path, reader_client: DuckDBClient, duckdb_1x: DuckDBClient) -> None:
    engine = warehouse(tmp_path / "warehouse.duckdb")
    target = tmp_path / "published" / "esn_marts.duckdb"
    fill(engine, "g0", 60)
    snapshot.write_published(engine, DEFAULT_SCHEMAS, target, meta=META)
    old = [60, "g0", 30, "g0", "2026-05-11 06:00:00+00"]

    stop = tmp_path / "stop"
    holder = reader_client.popen(HOLDER, str(target), str(stop))
    poller = reader_client.popen(POLLER, str(target), str(stop))
    try:
        _ready(holder)
        _ready(poller)
        seconds = []
        for g in range(1, 6):  # five publishes while the reader holds the first file
            fill(engine, f"g{g}", 60 + 10 * g)
            t0 = time.perf_counter()
            snapshot.write_published(engine, DEFAULT_SCHEMAS, target,
                                     meta={**META, "published_at": f"2026-05-1{g} 06:00:00+00"})
            seconds.append(time.perf_counter() - t0)
        # a connection opened now (another process, DuckDB 1.x) sees the last publish
        assert duckdb_1x.run(FRESH, str(target)) == [110, "g5", 55, "g5", "2026-05-15 06:00:00+00"]
        time.sleep(0.2)
    finally:
        stop.write_text("")
        out_holder, err_holder = holder.communicate(timeout=60)
        out_poller, err_poller = poller.communicate(timeout=60)
    engine.dispose()
    assert holder.returncode == 0, err_holder[-3000:]
    assert poller.returncode == 0, err_poller[-3000:]

    # no publish waited for the reader (each one is a copy of two small tables: well under the lock wait)
    assert max(seconds) < 10, seconds
    held = json.loads(out_holder.strip().splitlines()[-1])
    assert held["version"] == (duckdb_1x.version if reader_client.pythonpath else held["version"])
    assert len(held["seen"]) >= 3 and all(s == old for s in held["seen"]), held["seen"][:5]

    # every fresh connection saw exactly one publish, whole: never the rows of one beside another's
    polled = json.loads(out_poller.strip().splitlines()[-1])["seen"]
    generations = {
        f"g{g}": [60 + 10 * g, f"g{g}", (60 + 10 * g) // 2, f"g{g}",
                  "2026-05-11 06:00:00+00" if g == 0 else f"2026-05-1{g} 06:00:00+00"] for g in range(6)}
    assert polled, "the poller read nothing"
    for s in polled:
        assert s[1] in generations and s == generations[s[1]], s
    assert polled[0] == generations["g0"] and polled[-1] == generations["g5"]
    print(f"publish seconds {[round(x, 3) for x in seconds]}; poller: {len(polled)} reads, "
          f"generations {sorted({s[1] for s in polled})}")
