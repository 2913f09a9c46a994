"""Parsers of the documented generic import formats: canonical activities (CSV / JSONL / Parquet) and the
HR directory (CSV), with line-exact rejection.

A parser reads a whole file, checks every record and either returns a frame of *clear* identifiers (held
only in memory; `pipelines.sources.file_import` pseudonymises them before anything is written) or raises
`ImportRejected` naming the file, the line (or Parquet row) and the reason of each bad record. It must never
return part of a file, never write anything, and never put a message text or an identifier in clear into an
error message beyond the offending field's *name* and line (values are quoted only when they are not
identifiers: timestamps, verbs, numbers).

Text files are read in bounded blocks, line by line (`text_lines`): a line longer than `max_record_bytes`
is reported with its number and size and never held in memory. Numeric timestamps (Unix epochs) are
collected as numbers and converted once per file (`resolve_epochs`): their unit (s, ms, us, ns) is
detected from their magnitude, or declared, and must give dates within a plausible range.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipelines.model import IDEA_STATUSES, VERBS
from pipelines.topics import TopicRules, as_column

MAX_REPORTED = 20  # problems listed in the message; the total count is always given
#: the largest line / record read (option max_record_bytes): an activity is a few hundred bytes
DEFAULT_MAX_RECORD_BYTES = 1 << 20
#: the largest input file (option max_file_bytes)
DEFAULT_MAX_FILE_BYTES = 5 << 30
#: units of numeric (Unix epoch) timestamps, and how many of each make a second
EPOCH_UNITS = ("s", "ms", "us", "ns")
_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
_NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
#: numeric timestamps must fall in [start, end) (option epoch_range); the units' ranges do not overlap
DEFAULT_EPOCH_RANGE = (dt.date(1990, 1, 1), dt.date(2100, 1, 1))
_READ_BLOCK = 1 << 22  # bytes read at a time from a text file

#: columns of a parsed activity frame (clear identifiers; never written as such)
ACTIVITY_COLUMNS = ("event_id", "occurred_at", "actor_id", "actor_email", "verb", "container_id", "thread_id",
                    "parent_id", "target_id", "target_email", "content_length", "is_question", "is_edited",
                    "is_deleted", "is_idea", "idea_status", "topic_ids")
_FLAGS = ("is_question", "is_edited", "is_deleted", "is_idea")
#: columns of a parsed directory frame
PEOPLE_COLUMNS = ("employee_id", "email", "department", "location", "level", "manager_id", "manager_email",
                  "is_leader", "hire_date", "termination_date", "effective_date")

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n", ""}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class ReadOptions:
    """How records are read: the numeric-timestamp unit (`auto` detects it) and range, the record limit."""

    epoch_unit: str = "auto"
    epoch_range: tuple[dt.date, dt.date] = DEFAULT_EPOCH_RANGE
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: the configured topic rules (`settings.topics`) for an optional `tags` column; None: no topics
    topics: TopicRules | None = None


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None  # 1-based line of the file; for Parquet the 1-based row
    reason: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.file}:{self.unit} {self.line}: {self.reason}" if self.line is not None else \
            f"{self.file}: {self.reason}"


class ImportRejected(ValueError):
    """A file is malformed: nothing of the import is loaded. `problems` lists every bad record found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        shown = "\n  ".join(str(p) for p in problems[:MAX_REPORTED])
        more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
        super().__init__(f"import rejected, nothing was loaded: {len(problems)} problem(s)\n  {shown}{more}")


@dataclass
class Problems:
    """Collects problems of one file; `raise_if_any` rejects the whole import."""

    file: str
    unit: str = "line"
    items: list[Problem] = field(default_factory=list)

    def add(self, line: int | None, reason: str) -> None:
        self.items.append(Problem(self.file, line, reason, self.unit))

    def raise_if_any(self) -> None:
        if self.items:
            raise ImportRejected(self.items)


# ------------------------------------------------------------------------------------------ values
def normalise_header(name: str) -> str:
    """`Employee ID` -> `employee_id`; a UTF-8 BOM or surrounding spaces never make a column unknown."""
    return re.sub(r"[^a-z0-9]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")


def timestamp_or_epoch(value: Any) -> pd.Timestamp | int | float | None:
    """An ISO-8601 timestamp in UTC (a naive value is UTC), or a number (a Unix epoch, JSON / Parquet
    number or numeric text) left for `resolve_epochs`, whose unit is decided once per file; None when
    empty or unparseable (a boolean is not a time)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        if _INTEGER.match(text):
            return int(text)
        if _NUMBER.match(text):
            return float(text)
        try:
            ts = pd.Timestamp(text)
        except (ValueError, OverflowError):
            return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _epoch_seconds(day: dt.date) -> float:
    return (dt.datetime.combine(day, dt.time()) - dt.datetime(1970, 1, 1)).total_seconds()


def approx_date(value: float, unit: str) -> str:
    """What an epoch value means in `unit`, for messages: a date, or `year ~55970` beyond year 9999."""
    secs = value / _PER_SECOND[unit]
    if not math.isfinite(secs):
        return "not a finite number"
    if -62135596800 <= secs < 253402300800:
        return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=secs)).strftime("%Y-%m-%d")
    return f"year ~{1970 + secs / 31556952:.0f}"


def _floats(values: Sequence[int | float]) -> np.ndarray:
    try:
        return np.asarray(values, dtype="float64")
    except OverflowError:  # an integer beyond float range: implausible in any unit anyway
        return np.asarray([float(x) if abs(x) < 1e300 else math.inf for x in values], dtype="float64")


def resolve_epochs(values: Sequence[int | float], lines: Sequence[int], problems: Problems,
                   read: ReadOptions, column: str = "occurred_at") -> pd.DatetimeIndex | None:
    """Numeric timestamps of one file column -> UTC times, or None after adding problems.

    Every value must give a date in `read.epoch_range` in one unit: the declared `epoch_unit`, or with
    `auto` the only unit that does so for every value (the default range spans less than a factor 1000,
    so no value fits two units). A value that fits no unit, values of mixed units, or a declared unit
    that gives implausible dates are reported with the line, the value and what to set. Exact for
    integers (ns included); fractional values are rounded like pandas does."""
    v = _floats(values)
    lo, hi = (_epoch_seconds(d) for d in read.epoch_range)
    where = f"{read.epoch_range[0]}..{read.epoch_range[1]}"
    fits = {u: (v >= lo * _PER_SECOND[u]) & (v < hi * _PER_SECOND[u]) for u in EPOCH_UNITS}
    before = len(problems.items)
    unit: str | None = read.epoch_unit
    if read.epoch_unit != "auto":
        declared = read.epoch_unit

        def declared_reason(i: int) -> str:
            alt = next((u for u in EPOCH_UNITS if fits[u][i]), None)
            hint = f"; as {alt} it would be {approx_date(float(v[i]), alt)}: check epoch_unit" if alt else \
                "; check epoch_unit and epoch_range"
            return (f"{column} {str(values[i])[:30]} read with epoch_unit {declared} is "
                    f"{approx_date(float(v[i]), declared)}, outside epoch_range {where}{hint}")

        _report(problems, lines, np.flatnonzero(~fits[declared]), declared_reason)
    else:
        any_fit = np.logical_or.reduce([fits[u] for u in EPOCH_UNITS])
        _report(problems, lines, np.flatnonzero(~any_fit), lambda i: (
            f"{column} {str(values[i])[:30]} is not a plausible Unix time in any unit: as s, ms, us or ns "
            f"it falls outside epoch_range {where} (as seconds: {approx_date(float(v[i]), 's')}); write ISO-8601, "
            "or set epoch_unit (and epoch_range) if the value is right"))
        counts = {u: int(fits[u].sum()) for u in EPOCH_UNITS}
        complete = [u for u in EPOCH_UNITS if counts[u] == len(v)]
        unit = complete[0] if len(complete) == 1 else None
        if len(complete) > 1:
            problems.add(lines[0], f"{column} {str(values[0])[:30]}: the numeric timestamps give plausible dates "
                         f"in several units ({', '.join(f'{u}: {approx_date(float(v[0]), u)}' for u in complete)}); "
                         "set epoch_unit")
        elif not complete and any_fit.any():
            # mixed units: the unit of most values, and every value that reads in another one
            major = max(EPOCH_UNITS, key=lambda u: counts[u])
            example = lines[int(np.flatnonzero(fits[major])[0])]

            def mixed_reason(i: int) -> str:
                other = next(u for u in EPOCH_UNITS if fits[u][i])
                return (f"{column} {str(values[i])[:30]} reads as Unix {other} ({approx_date(float(v[i]), other)}) but "
                        f"{counts[major]} of the file's {len(v)} numeric timestamps read as {major} (e.g. "
                        f"{problems.unit} {example}): one file must use one unit (option epoch_unit)")

            _report(problems, lines, np.flatnonzero(any_fit & ~fits[major]), mixed_reason)
    if unit is None or len(problems.items) > before:
        return None
    return _epochs_to_times(values, v, unit)


def _report(problems: Problems, lines: Sequence[int], bad: np.ndarray, reason: Any) -> None:
    """One problem per bad value, up to _EPOCHS_REPORTED, then one that counts the others (a file of a
    million values in the wrong unit gives a short message, not a million problems)."""
    for i in bad[:_EPOCHS_REPORTED]:
        problems.add(lines[int(i)], reason(int(i)))
    if len(bad) > _EPOCHS_REPORTED:
        problems.add(lines[int(bad[_EPOCHS_REPORTED])], f"and {len(bad) - _EPOCHS_REPORTED} more value(s) with "
                     "the same problem from this line on")


_EPOCHS_REPORTED = 10


def _epochs_to_times(values: Sequence[int | float], v: np.ndarray, unit: str) -> pd.DatetimeIndex:
    """Integers exactly (the time resolution of Unix-seconds imports, us, is kept; ns only for ns),
    fractional values through pandas (its rounding and resolution)."""
    is_int = np.fromiter((type(x) is int for x in values), dtype=bool, count=len(values))
    out = np.empty(len(values), dtype="datetime64[ns]")
    units = []
    if is_int.any():
        ints = np.asarray([x for x, k in zip(values, is_int, strict=True) if k], dtype="int64")
        out[is_int] = (ints * _NS_PER[unit]).view("datetime64[ns]")
        units.append("ns" if unit == "ns" else "us")
    if not is_int.all():
        floats = pd.to_datetime(v[~is_int], unit=unit)
        out[~is_int] = floats.as_unit("ns").to_numpy()
        units.append(floats.unit)
    return pd.DatetimeIndex(out).tz_localize("UTC").as_unit(finest_unit(units))


def finest_unit(units: Sequence[str]) -> str:
    return max(units, key=EPOCH_UNITS.index)


def parse_bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return bool(value) if value is not None else False
    if isinstance(value, float) and math.isnan(value):
        return False
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def parse_date(value: Any) -> dt.date | None | str:
    """A date, None when empty, or the string "bad" when it does not parse."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return "bad"


def text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON/Parquet numbers used as ids: 42.0 -> "42"
    text = str(value).strip()
    return text or None


# ----------------------------------------------------------------------------- canonical activities
ACTIVITY_ALIASES = {"timestamp": "occurred_at", "actor": "actor_id", "target": "target_id"}


def _records(path: Path, fmt: str, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
             ) -> tuple[Iterator[tuple[int, dict[str, Any]]], Problems]:
    """(line, record) pairs of a CSV / JSONL / Parquet file with normalised column names."""
    unit = "row" if fmt == "parquet" else "line"
    problems = Problems(str(path), unit)
    if fmt == "csv":
        return _csv_records(path, problems, max_record_bytes), problems
    if fmt == "jsonl":
        return _jsonl_records(path, problems, max_record_bytes), problems
    if fmt == "parquet":
        return _parquet_records(path, problems), problems
    raise ValueError(f"unknown tabular format {fmt!r}")


def _byte_lines(path: Path, problems: Problems, limit: int, stop_on_long: bool) -> Iterator[tuple[int, bytes]]:
    """(1-based number, bytes without the "\\n") of each line, read in blocks of _READ_BLOCK bytes. A line
    longer than `limit` is counted, reported and dropped as it streams by: memory stays bounded."""

    def too_long(number: int, size: int) -> None:
        problems.add(number, f"record of {size:,} bytes is larger than max_record_bytes ({limit:,}); it was not "
                     "read (raise max_record_bytes if such records are expected)")

    number = 0
    head: list[bytes] = []  # the start of a line that continues in the next block
    size = 0  # bytes of that line so far
    with path.open("rb") as f:
        while block := f.read(_READ_BLOCK):
            parts = block.split(b"\n")
            tail = parts.pop()
            for k, part in enumerate(parts):
                number += 1
                if k == 0 and size:
                    size += len(part)
                    if size > limit:
                        too_long(number, size)
                        if stop_on_long:
                            return
                    else:
                        yield number, b"".join(head) + part
                    head, size = [], 0
                elif len(part) > limit:
                    too_long(number, len(part))
                    if stop_on_long:
                        return
                else:
                    yield number, part
            size += len(tail)
            if size > limit:
                head = []  # counted, not kept
            elif tail:
                head.append(tail)
    if size:
        number += 1
        if size > limit:
            too_long(number, size)
        else:
            yield number, b"".join(head)


def text_lines(path: Path, problems: Problems, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, *,
               stop_on_long: bool = False, latin1_fallback: bool = False) -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its "\\n") of a UTF-8 text file; a leading BOM is dropped.
    Lines longer than `max_record_bytes` are reported and skipped (`stop_on_long`: reading stops there,
    for formats whose records span lines). A line that is not UTF-8 is reported and ends the file,
    unless `latin1_fallback` decodes it as Latin-1."""
    for number, raw in _byte_lines(path, problems, max_record_bytes, stop_on_long):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if not latin1_fallback:
                problems.add(number, f"not UTF-8 (byte 0x{raw[exc.start]:02x})")
                return
            text = raw.decode("latin-1")
        yield number, text


def csv_feed(lines: Iterator[tuple[int, str]]) -> Iterator[str]:
    """Lines for `csv.reader`, with their end of line; a lone CR also ends a line (as `newline=""` does)."""
    for _, text in lines:
        if "\r" not in text[:-1]:
            yield text + "\n"
            continue
        crlf = text.endswith("\r")
        pieces = (text[:-1] if crlf else text).split("\r")
        for piece in pieces[:-1]:
            yield piece + "\r"
        yield pieces[-1] + ("\r\n" if crlf else "\n")


@contextlib.contextmanager
def csv_field_limit(limit: int) -> Iterator[None]:
    """csv's own field limit (128 KiB by default) set to max_record_bytes while a file is read, so that an
    unclosed quote stops there instead of swallowing the file."""
    old = csv.field_size_limit()
    csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(old)


def _csv_records(path: Path, problems: Problems, limit: int) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(csv_feed(text_lines(path, problems, limit, stop_on_long=True)), strict=True)
    with csv_field_limit(limit):
        try:
            header = next(reader, None)
            if header is None:
                if not problems.items:
                    problems.add(1, "empty file: a header line is required")
                return
            names = [normalise_header(h) for h in header]
            start = reader.line_num + 1
            for row in reader:
                if not any(cell.strip() for cell in row):
                    start = reader.line_num + 1
                    continue  # blank lines are not records
                if len(row) != len(names):
                    problems.add(start, f"{len(row)} fields where the header has {len(names)}")
                else:
                    yield start, dict(zip(names, row, strict=True))
                start = reader.line_num + 1
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                problems.add(start, f"a field of this record spans more than max_record_bytes ({limit:,} bytes); "
                             "it was not read (an unclosed quote?)")
            else:
                problems.add(reader.line_num, f"CSV syntax error: {exc}")


def _jsonl_records(path: Path, problems: Problems, limit: int) -> Iterator[tuple[int, dict[str, Any]]]:
    for i, line in text_lines(path, problems, limit):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.add(i, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:
            problems.add(i, f"not valid JSON ({type(exc).__name__})")
            continue
        if not isinstance(obj, dict):
            problems.add(i, f"a JSON object is required, got {type(obj).__name__}")
            continue
        yield i, {normalise_header(k): v for k, v in obj.items()}


def _parquet_records(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        problems.add(None, f"not a readable Parquet file ({type(exc).__name__}: {str(exc)[:200]})")
        return
    names = [normalise_header(n) for n in table.column_names]
    for i, rec in enumerate(table.to_pylist(), start=1):
        yield i, dict(zip(names, rec.values(), strict=True))


def read_activities(path: Path, fmt: str, read: ReadOptions | None = None) -> pd.DataFrame:
    """Parse a canonical activities file; raise ImportRejected listing every bad record."""
    return read_activity_file(path, fmt, read)[0]


def read_activity_file(path: Path, fmt: str, read: ReadOptions | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """`read_activities` and the 1-based line (Parquet: row) of each event, for reports."""
    read = read or ReadOptions()
    records, problems = _records(path, fmt, read.max_record_bytes)
    rows: list[dict[str, Any]] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    epochs: list[int | float] = []  # numeric timestamps, converted once their unit is known
    epoch_rows: list[int] = []
    checked_columns = False
    for line, rec in records:
        rec = {ACTIVITY_ALIASES.get(k, k): v for k, v in rec.items()}
        if not checked_columns:
            checked_columns = True
            missing = [c for c in ("event_id", "occurred_at", "verb") if c not in rec]
            if "actor_id" not in rec and "actor_email" not in rec:
                missing.append("actor_id or actor_email")
            if missing:
                problems.add(line, f"missing column(s): {', '.join(missing)}")
                break
        row, reason = _activity_row(rec, read.topics)
        if reason:
            problems.add(line, reason)
            continue
        assert row is not None
        first = seen.setdefault(row["event_id"], line)
        if first != line:
            problems.add(line, f"duplicate event_id (first on {problems.unit} {first})")
            continue
        if not isinstance(row["occurred_at"], pd.Timestamp):
            epoch_rows.append(len(rows))
            epochs.append(row["occurred_at"])
            row["occurred_at"] = None
        rows.append(row)
        lines.append(line)
    times = resolve_epochs(epochs, [lines[i] for i in epoch_rows], problems, read) if epochs else None
    problems.raise_if_any()
    frame = activity_frame(rows)
    if times is not None:
        column = frame["occurred_at"]
        unit = finest_unit([column.dt.unit, times.unit] if len(epochs) < len(rows) else [times.unit])
        column = column.dt.as_unit(unit)
        column.iloc[epoch_rows] = times.as_unit(unit)
        frame["occurred_at"] = column
    return frame, np.asarray(lines, dtype="int64")


#: the verbs that may carry `tags` (what a person wrote: the verbs with topics)
TAGGED_VERBS = ("post", "reply", "idea")


def parse_tags(value: Any) -> tuple[list[str], str | None]:
    """The platform tags of a `tags` value: a list of texts (JSONL, Parquet) or one text of tags separated
    by commas (CSV); ([], reason) when it is neither."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return [], None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        return [], f"tags is a {type(value).__name__}, not text or a list of texts"
    if not all(isinstance(t, str) for t in items):
        return [], "tags must be texts"
    return [t.strip() for t in items if t.strip()], None


def _activity_row(rec: dict[str, Any], topics: TopicRules | None = None) -> tuple[dict[str, Any] | None, str | None]:
    event_id = text_or_none(rec.get("event_id"))
    if event_id is None:
        return None, "event_id is empty"
    ts = timestamp_or_epoch(rec.get("occurred_at"))
    if ts is None:
        raw = rec.get("occurred_at")
        return None, f"occurred_at {str(raw)[:40]!r} is not an ISO-8601 timestamp or a Unix time (number)" \
            if text_or_none(raw) else "occurred_at is empty"
    verb = (text_or_none(rec.get("verb")) or "").lower()
    if verb not in VERBS:
        return None, f"verb {verb[:30]!r} is not one of {', '.join(VERBS)}"
    actor_id, actor_email = text_or_none(rec.get("actor_id")), text_or_none(rec.get("actor_email"))
    if actor_id is None and actor_email is None:
        return None, "actor_id and actor_email are both empty"
    if actor_email is not None and "@" not in actor_email:
        return None, "actor_email is not an email address (no @)"
    target_email = text_or_none(rec.get("target_email"))
    if target_email is not None and "@" not in target_email:
        return None, "target_email is not an email address (no @)"
    length: int | None = None
    raw_len = text_or_none(rec.get("content_length"))
    if raw_len is not None:
        if not _NUMBER.match(raw_len) or float(raw_len) < 0 or not float(raw_len).is_integer():
            return None, f"content_length {raw_len[:20]!r} is not a non-negative integer"
        length = int(float(raw_len))
    flags: dict[str, bool] = {}
    for flag in _FLAGS:
        value = parse_bool(rec.get(flag))
        if value is None:
            return None, f"{flag} {str(rec.get(flag))[:20]!r} is not a boolean (true/false/1/0/yes/no)"
        flags[flag] = value
    status = (text_or_none(rec.get("idea_status")) or "").lower().replace(" ", "_") or None
    if status is not None and status not in IDEA_STATUSES:
        return None, f"idea_status {status[:30]!r} is not one of {', '.join(IDEA_STATUSES)}"
    if (status is None) == (verb == "status_change"):
        return None, ("a status_change needs an idea_status" if status is None
                      else f"idea_status is set on a {verb} (only a status_change has one)")
    flags["idea_status"] = status  # type: ignore[assignment]
    tags, reason = parse_tags(rec.get("tags"))
    if reason:
        return None, reason
    if tags and verb not in TAGGED_VERBS:
        return None, f"tags are set on a {verb} (only a {', '.join(TAGGED_VERBS)} has topics)"
    return {
        "event_id": event_id, "occurred_at": ts, "actor_id": actor_id, "actor_email": actor_email, "verb": verb,
        "container_id": text_or_none(rec.get("container_id")), "thread_id": text_or_none(rec.get("thread_id")),
        "parent_id": text_or_none(rec.get("parent_id")), "target_id": text_or_none(rec.get("target_id")),
        "target_email": target_email, "content_length": length, **flags,
        # the tags themselves are dropped here: only their topic ids are kept
        "topic_ids": as_column(topics.topics(None, tags)) if topics is not None and tags else None,
    }, None


def activity_frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A parsed-activities frame with every column of ACTIVITY_COLUMNS and stable dtypes."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in ACTIVITY_COLUMNS:
        if col not in df.columns:
            df[col] = False if col in _FLAGS else None
    df = df[list(ACTIVITY_COLUMNS)]
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True)
    df["content_length"] = pd.to_numeric(df["content_length"]).astype("Int32")
    for col in _FLAGS:
        df[col] = df[col].fillna(False).astype(bool)
    for col in ("event_id", "actor_id", "actor_email", "verb", "container_id", "thread_id", "parent_id",
                "target_id", "target_email", "idea_status", "topic_ids"):
        df[col] = df[col].astype("string")
    return df.reset_index(drop=True)


# ------------------------------------------------------------------------------------- HR directory
DIRECTORY_ALIASES = {
    "employee": "employee_id", "employee_number": "employee_id", "id": "employee_id",
    "mail": "email", "email_address": "email", "work_email": "email",
    "dept": "department", "level": "level", "grade": "level", "manager": "manager",
    "hired": "hire_date", "start_date": "hire_date", "terminated": "termination_date",
    "leaving_date": "termination_date", "end_date": "termination_date", "effective": "effective_date",
    "as_of": "effective_date", "valid_from": "effective_date", "leader": "is_leader",
}


def read_directory(path: Path, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> pd.DataFrame:
    """Parse an HR directory CSV (one row per person, or per person and `effective_date` for history)."""
    records, problems = _records(path, "csv", max_record_bytes)
    rows: list[dict[str, Any]] = []
    seen: dict[tuple[str, dt.date | None], int] = {}
    checked = False
    for line, rec in records:
        rec = {DIRECTORY_ALIASES.get(k, k): v for k, v in rec.items()}
        if not checked:
            checked = True
            if "employee_id" not in rec and "email" not in rec:
                problems.add(line, "missing column: employee_id or email")
                break
        row, reason = _directory_row(rec)
        if reason:
            problems.add(line, reason)
            continue
        assert row is not None
        ident = row["email"].lower() if row["email"] else f"id:{row['employee_id']}"
        first = seen.setdefault((ident, row["effective_date"]), line)
        if first != line:
            problems.add(line, f"same person and effective_date as line {first}")
            continue
        rows.append(row)
    problems.raise_if_any()
    return pd.DataFrame(rows, columns=list(PEOPLE_COLUMNS))


def _directory_row(rec: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    employee_id, email = text_or_none(rec.get("employee_id")), text_or_none(rec.get("email"))
    if employee_id is None and email is None:
        return None, "employee_id and email are both empty"
    if email is not None and "@" not in email:
        return None, "email is not an email address (no @)"
    manager = text_or_none(rec.get("manager"))
    manager_id = text_or_none(rec.get("manager_id"))
    manager_email = text_or_none(rec.get("manager_email"))
    if manager is not None:
        # one `manager` column may hold either kind of identifier
        if "@" in manager:
            manager_email = manager_email or manager
        else:
            manager_id = manager_id or manager
    dates: dict[str, dt.date | None] = {}
    for col in ("hire_date", "termination_date", "effective_date"):
        value = parse_date(rec.get(col))
        if value == "bad":
            return None, f"{col} {str(rec.get(col))[:20]!r} is not a date (YYYY-MM-DD)"
        dates[col] = value  # type: ignore[assignment]
    leader = parse_bool(rec.get("is_leader"))
    if leader is None:
        return None, f"is_leader {str(rec.get('is_leader'))[:20]!r} is not a boolean"
    return {
        "employee_id": employee_id, "email": email,
        "department": text_or_none(rec.get("department")), "location": text_or_none(rec.get("location")),
        "level": text_or_none(rec.get("level")), "manager_id": manager_id, "manager_email": manager_email,
        "is_leader": leader, **dates,
    }, None


def directory_as_of(people: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The directory snapshot on `day`: per person the latest row with effective_date <= day (rows
    without an effective_date are always in force); people whose first row starts later are absent."""
    if people.empty:
        return people
    eff = people["effective_date"]
    df = people[eff.isna() | (eff.map(lambda d: d is not None and d <= day, na_action="ignore")
                              .fillna(False).astype(bool))].copy()
    df["_who"] = df["email"].str.lower().where(df["email"].notna(), "id:" + df["employee_id"].astype(str))
    df["_eff"] = df["effective_date"].fillna(dt.date.min)
    df = df.sort_values(["_who", "_eff"], kind="stable").drop_duplicates("_who", keep="last")
    return df.drop(columns=["_who", "_eff"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------- identity map
def read_identity_map(path: Path, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> dict[str, str]:
    """CSV `native_id,email` (aliases: id, employee_id, user_id; mail): a platform's native ids keyed by
    the person's email. The same id mapped to two different emails is rejected."""
    records, problems = _records(path, "csv", max_record_bytes)
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    aliases = {"id": "native_id", "employee_id": "native_id", "user_id": "native_id", "mail": "email"}
    checked = False
    for line, rec in records:
        rec = {aliases.get(k, k): v for k, v in rec.items()}
        if not checked:
            checked = True
            if not {"native_id", "email"} <= set(rec):
                problems.add(line, "missing column(s): native_id and email are required")
                break
        native, email = text_or_none(rec.get("native_id")), text_or_none(rec.get("email"))
        if native is None or email is None or "@" not in email:
            problems.add(line, "native_id must be set and email must be an email address")
            continue
        if native in out and out[native].lower() != email.lower():
            problems.add(line, f"native_id mapped to a different email on line {first[native]}")
            continue
        out.setdefault(native, email)
        first.setdefault(native, line)
    problems.raise_if_any()
    return out
