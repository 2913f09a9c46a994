"""Incremental extraction state in the warehouse table `etl_source_state`.

One row per (source, stream, state_key) with a JSON value: a pagination cursor, a watermark, or a
thread's `reply_count`/`latest_reply`. The connector reads the state at the start of a run, collects the
updates while it lands data, and calls `commit` only once the landed partitions are durable (written,
renamed and fsynced): a run that dies half-way leaves the previous state, so the next run re-extracts
rather than skips. Portable SQL through SQLAlchemy Core (DuckDB via duckdb-engine, PostgreSQL): the
upsert is a delete + insert in one transaction. Values must never hold a person identifier in clear.

`open_state` holds no warehouse connection during the extraction (a DuckDB file is locked by whoever holds
it, and an extraction can last hours): it reads the source's whole state with one short connection at the
start (`StateStore.preload`), the connector reads it from memory, and `commit` writes with another short
connection at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from pipelines import crashpoints

TABLE = "etl_source_state"

_metadata = sa.MetaData()
state_table = sa.Table(
    TABLE,
    _metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("stream", sa.String(200), primary_key=True),
    sa.Column("state_key", sa.String(500), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),  # run stamp given by the caller, not now()
)

#: key of a pending change; a value of None deletes the row
StateKey = tuple[str, str]  # (stream, state_key)


class StateStore:
    def __init__(self, engine: sa.Engine, source: str):
        self.engine = engine
        self.source = source
        #: the source's state read by `preload` (and kept up to date by `commit`); None: read the table
        self._cache: dict[StateKey, Any] | None = None

    def ensure_table(self) -> None:
        _metadata.create_all(self.engine, tables=[state_table], checkfirst=True)

    def preload(self) -> int:
        """Create the table if needed and read every key of the source, in one short connection; `load`
        and `get` then answer from memory (the store is the only writer of its source's rows during a
        run: the source's extraction lock). Returns the number of keys read."""
        t = state_table
        from pipelines.warehouse import ensure_schemas

        with self.engine.begin() as conn:
            ensure_schemas(conn)  # a warehouse of the one-schema layout keeps its state (moved, not lost)
            _metadata.create_all(conn, tables=[state_table], checkfirst=True)
            rows = conn.execute(sa.select(t.c.stream, t.c.state_key, t.c.value)
                                .where(t.c.source == self.source)).all()
        self._cache = {(s, k): json.loads(v) for s, k, v in rows}
        return len(self._cache)

    def load(self, stream: str) -> dict[str, Any]:
        """Every key of `stream` with its decoded value."""
        if self._cache is not None:
            return {k: v for (s, k), v in self._cache.items() if s == stream}
        t = state_table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.c.state_key, t.c.value)
                                .where(t.c.source == self.source, t.c.stream == stream)).all()
        return {k: json.loads(v) for k, v in rows}

    def get(self, stream: str, key: str, default: Any = None) -> Any:
        if self._cache is not None:
            return self._cache.get((stream, key), default)
        t = state_table
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.c.value).where(
                t.c.source == self.source, t.c.stream == stream, t.c.state_key == key)).scalar_one_or_none()
        return default if value is None else json.loads(value)

    def commit(self, changes: Mapping[StateKey, Any], *, stamp: str) -> int:
        """Apply all `changes` in one transaction (None deletes); returns the number of keys touched."""
        if not changes:
            return 0
        t = state_table
        by_stream: dict[str, list[str]] = {}
        for stream, key in changes:
            by_stream.setdefault(stream, []).append(key)
        rows = [{"source": self.source, "stream": s, "state_key": k,
                 "value": json.dumps(v, sort_keys=True), "updated_at": stamp}
                for (s, k), v in changes.items() if v is not None]
        with self.engine.begin() as conn:
            for stream, keys in by_stream.items():
                for chunk in _chunks(keys, 500):
                    conn.execute(sa.delete(t).where(t.c.source == self.source, t.c.stream == stream,
                                                    t.c.state_key.in_(chunk)))
            if rows:
                conn.execute(sa.insert(t), rows)
        if self._cache is not None:
            for (s, k), v in changes.items():
                if v is None:
                    self._cache.pop((s, k), None)
                else:  # as read back: a JSON round trip (tuples become lists)
                    self._cache[(s, k)] = json.loads(json.dumps(v, sort_keys=True))
        crashpoints.reached("state.after_commit")
        return len(changes)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


@contextmanager
def open_state(warehouse_url: str, source: str, engine: sa.Engine | None = None) -> Iterator[StateStore]:
    """The source's state store, its table created if needed and its state read at once (`preload`):
    no connection is held during the block, the final `commit` opens its own. Without an engine one is
    made for the block (UTC session, like every warehouse engine) and disposed after it."""
    from pipelines.warehouse import make_engine

    own = engine is None
    engine = engine or make_engine(warehouse_url)
    try:
        store = StateStore(engine, source)
        store.preload()
        if own:  # nothing pooled stays open on the warehouse during the extraction
            engine.dispose()
        yield store
    finally:
        if own:
            engine.dispose()
