"""Loading business outcomes the organisation provides (CSV or Parquet), validated row by row.

Accepted columns: one identifier of the unit — person_key (already pseudonymised), email (pseudonymised
here with the same keyed hash as every source, then dropped) or department (a group-level outcome) —
plus period (a month: YYYY-MM or any date inside it), outcome (a name) and value (a finite number).
Errors name the file, the line (1 = header, as an editor shows it) and the column. This module never
keeps or returns an email in clear.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pandas as pd

from pipelines.privacy import Pseudonymiser

UNIT_COLUMNS = ("person_key", "email", "department")
OUTPUT_COLUMNS = ["level", "person_key", "department", "period", "outcome", "value"]


class OutcomeFileError(ValueError):
    """An outcome file that cannot be used; the message names the file, line and column."""


def _read(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path).astype(object).where(lambda d: d.notna(), "").astype(str)
    raise OutcomeFileError(f"{path}: unsupported file type {path.suffix!r} (use .csv or .parquet)")


def _month(text: str) -> dt.date | None:
    text = text.strip()
    for fmt in ("%Y-%m", "%Y-%m-%d"):
        try:
            d = dt.datetime.strptime(text, fmt).date()
            return d.replace(day=1)
        except ValueError:
            continue
    return None


def load_outcome_file(path: str | Path, pseudonymiser: Pseudonymiser) -> pd.DataFrame:
    """One file as rows of OUTPUT_COLUMNS (level is 'person' or 'department')."""
    path = Path(path)
    df = _read(path)
    df.columns = [c.strip().lower() for c in df.columns]
    units = [c for c in UNIT_COLUMNS if c in df.columns]
    if not units:
        raise OutcomeFileError(f"{path}: line 1: no unit column; need one of {', '.join(UNIT_COLUMNS)}")
    if len(units) > 1:
        raise OutcomeFileError(f"{path}: line 1: columns {units} both identify the unit; keep exactly one")
    for col in ("period", "outcome", "value"):
        if col not in df.columns:
            raise OutcomeFileError(f"{path}: line 1: required column {col!r} is missing (have {list(df.columns)})")
    unit = units[0]
    rows = []
    for i, rec in enumerate(df.to_dict("records")):
        line = i + 2
        ident = str(rec[unit]).strip()
        if not ident:
            raise OutcomeFileError(f"{path}: line {line}, column {unit!r}: empty")
        if unit == "email" and "@" not in ident:
            raise OutcomeFileError(f"{path}: line {line}, column 'email': not an email address")
        period = _month(str(rec["period"]))
        if period is None:
            raise OutcomeFileError(f"{path}: line {line}, column 'period': {rec['period']!r} is not a month "
                                   "(YYYY-MM or YYYY-MM-DD)")
        name = str(rec["outcome"]).strip()
        if not name:
            raise OutcomeFileError(f"{path}: line {line}, column 'outcome': empty")
        try:
            value = float(str(rec["value"]).strip())
        except ValueError:
            raise OutcomeFileError(f"{path}: line {line}, column 'value': {rec['value']!r} is not a number") from None
        if value != value:  # NaN
            raise OutcomeFileError(f"{path}: line {line}, column 'value': missing")
        if not math.isfinite(value):
            raise OutcomeFileError(f"{path}: line {line}, column 'value': {rec['value']!r} is not a finite number")
        if unit == "department":
            rows.append(("department", None, ident, period, name, value))
        else:
            key = pseudonymiser.email(ident) if unit == "email" else ident
            rows.append(("person", key, None, period, name, value))  # type: ignore[arg-type]
    out = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    dup = out.duplicated(["level", "person_key", "department", "period", "outcome"], keep=False)
    if dup.any():
        first = int(dup.to_numpy().nonzero()[0][0]) + 2
        raise OutcomeFileError(f"{path}: line {first}: the same unit, period and outcome appear more than once")
    return out


def load_outcomes(paths: list[Path], pseudonymiser: Pseudonymiser) -> pd.DataFrame:
    """All files concatenated; an empty frame with the output columns when there are none."""
    frames = [load_outcome_file(p, pseudonymiser) for p in paths]
    if not frames:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def outcome_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in (".csv", ".parquet", ".pq"))
