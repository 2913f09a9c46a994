"""Parsers of the documented generic import formats: canonical activities (CSV / JSONL / Parquet) and the
HR directory (CSV), with line-exact rejection.

A parser reads a whole file, checks every record and either returns a frame of *clear* identifiers (held
only in memory; `pipelines.sources.file_import` pseudonymises them before anything is written) or raises
`ImportRejected` naming the file, the line (or Parquet row) and the reason of each bad record. It must never
return part of a file, never write anything, and never put a message text or an identifier in clear into an
error message beyond the offending field's *name* and line (values are quoted only when they are not
identifiers: timestamps, verbs, numbers).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipelines.model import VERBS

MAX_REPORTED = 20  # problems listed in the message; the total count is always given

#: columns of a parsed activity frame (clear identifiers; never written as such)
ACTIVITY_COLUMNS = ("event_id", "occurred_at", "actor_id", "actor_email", "verb", "container_id", "thread_id",
                    "parent_id", "target_id", "target_email", "content_length", "is_question", "is_edited",
                    "is_deleted")
#: columns of a parsed directory frame
PEOPLE_COLUMNS = ("employee_id", "email", "department", "location", "level", "manager_id", "manager_email",
                  "is_leader", "hire_date", "termination_date", "effective_date")

_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n", ""}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


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


def parse_timestamp(value: Any) -> pd.Timestamp | None:
    """ISO-8601 (a naive value is UTC) or Unix seconds; None when it does not parse."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
    elif isinstance(value, int | float):
        ts = pd.Timestamp(float(value), unit="s")
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            ts = pd.Timestamp(float(text), unit="s") if _NUMBER.match(text) else pd.Timestamp(text)
        except (ValueError, OverflowError):
            return None
    if ts is pd.NaT:
        return None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


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


def _records(path: Path, fmt: str) -> tuple[Iterator[tuple[int, dict[str, Any]]], Problems]:
    """(line, record) pairs of a CSV / JSONL / Parquet file with normalised column names."""
    unit = "row" if fmt == "parquet" else "line"
    problems = Problems(str(path), unit)
    if fmt == "csv":
        return _csv_records(path, problems), problems
    if fmt == "jsonl":
        return _jsonl_records(path, problems), problems
    if fmt == "parquet":
        return _parquet_records(path, problems), problems
    raise ValueError(f"unknown tabular format {fmt!r}")


def _open_text(path: Path, problems: Problems) -> str | None:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # the line of the bad byte: count newlines before it
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        problems.add(line, f"not UTF-8 (byte 0x{path.read_bytes()[exc.start]:02x})")
        return None


def _csv_records(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    text = _open_text(path, problems)
    if text is None:
        return
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
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
        problems.add(reader.line_num, f"CSV syntax error: {exc}")


def _jsonl_records(path: Path, problems: Problems) -> Iterator[tuple[int, dict[str, Any]]]:
    text = _open_text(path, problems)
    if text is None:
        return
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            problems.add(i, f"not valid JSON ({exc.args[0].split(':')[0]})")
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


def read_activities(path: Path, fmt: str) -> pd.DataFrame:
    """Parse a canonical activities file; raise ImportRejected listing every bad record."""
    records, problems = _records(path, fmt)
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
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
        row, reason = _activity_row(rec)
        if reason:
            problems.add(line, reason)
            continue
        assert row is not None
        first = seen.setdefault(row["event_id"], line)
        if first != line:
            problems.add(line, f"duplicate event_id (first on {problems.unit} {first})")
            continue
        rows.append(row)
    problems.raise_if_any()
    return activity_frame(rows)


def _activity_row(rec: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    event_id = text_or_none(rec.get("event_id"))
    if event_id is None:
        return None, "event_id is empty"
    ts = parse_timestamp(rec.get("occurred_at"))
    if ts is None:
        raw = rec.get("occurred_at")
        return None, f"occurred_at {str(raw)[:40]!r} is not an ISO-8601 timestamp or Unix seconds" \
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
    for flag in ("is_question", "is_edited", "is_deleted"):
        value = parse_bool(rec.get(flag))
        if value is None:
            return None, f"{flag} {str(rec.get(flag))[:20]!r} is not a boolean (true/false/1/0/yes/no)"
        flags[flag] = value
    return {
        "event_id": event_id, "occurred_at": ts, "actor_id": actor_id, "actor_email": actor_email, "verb": verb,
        "container_id": text_or_none(rec.get("container_id")), "thread_id": text_or_none(rec.get("thread_id")),
        "parent_id": text_or_none(rec.get("parent_id")), "target_id": text_or_none(rec.get("target_id")),
        "target_email": target_email, "content_length": length, **flags,
    }, None


def activity_frame(rows: list[dict[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A parsed-activities frame with every column of ACTIVITY_COLUMNS and stable dtypes."""
    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    for col in ACTIVITY_COLUMNS:
        if col not in df.columns:
            df[col] = False if col.startswith("is_") else None
    df = df[list(ACTIVITY_COLUMNS)]
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True)
    df["content_length"] = pd.to_numeric(df["content_length"]).astype("Int32")
    for col in ("is_question", "is_edited", "is_deleted"):
        df[col] = df[col].fillna(False).astype(bool)
    for col in ("event_id", "actor_id", "actor_email", "verb", "container_id", "thread_id", "parent_id",
                "target_id", "target_email"):
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


def read_directory(path: Path) -> pd.DataFrame:
    """Parse an HR directory CSV (one row per person, or per person and `effective_date` for history)."""
    records, problems = _records(path, "csv")
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
def read_identity_map(path: Path) -> dict[str, str]:
    """CSV `native_id,email` (aliases: id, employee_id, user_id; mail): a platform's native ids keyed by
    the person's email. The same id mapped to two different emails is rejected."""
    records, problems = _records(path, "csv")
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
