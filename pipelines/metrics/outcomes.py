"""Business outcomes the organisation provides (CSV or Parquet): validated row by row, pseudonymised at
ingestion, kept in the lake only pseudonymised.

Accepted columns: one identifier of the unit — person_key (already pseudonymised), email (pseudonymised
here with the same keyed hash as every source, then dropped) or department (a group-level outcome) —
plus period (a month: YYYY-MM or any date inside it), outcome (a name) and value (a finite number).
Errors name the file, the line (1 = header, as an editor shows it) and the column.

Where files live: the organisation drops them *outside* the lake (the impact configuration's
`outcome_files`); `ingest_outcomes` reads each drop, pseudonymises it and writes
`<lake>/outcomes/<name>.parquet` (person_key or department, period, outcome, value), leaving out opted-out
and erased people; the metrics read only those files. No clear copy is kept in the lake or the warehouse:
a file with emails found in `<lake>/outcomes/` (the layout of earlier versions) is pseudonymised the same
way and deleted, and a configured file inside the lake that holds emails is refused. This module never
keeps or returns an email in clear.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


@functools.lru_cache(maxsize=4096)
def _month(text: str) -> dt.date | None:
    """The first day of the month a period names (cached: a file repeats a few periods over every row,
    and strptime is the slowest part of reading it)."""
    text = text.strip()
    for fmt in ("%Y-%m", "%Y-%m-%d"):
        try:
            d = dt.datetime.strptime(text, fmt).date()
            return d.replace(day=1)
        except ValueError:
            continue
    return None


def load_outcome_file(path: str | Path, pseudonymiser: Pseudonymiser | None) -> pd.DataFrame:
    """One file as rows of OUTPUT_COLUMNS (level is 'person' or 'department'). Without a pseudonymiser
    only pseudonymised files (the lake's) are read: a file with emails is an error."""
    return _parse(Path(path), pseudonymiser)[1]


def _parse(path: Path, pseudonymiser: Pseudonymiser | None) -> tuple[str, pd.DataFrame]:
    """(unit column, rows of OUTPUT_COLUMNS) of one file."""
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
    if unit == "email" and pseudonymiser is None:
        raise OutcomeFileError(f"{path}: line 1: holds emails; only the lake's pseudonymised outcome files are "
                               "read without the pseudonymisation key")
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
            key = pseudonymiser.email(ident) if unit == "email" and pseudonymiser is not None else ident
            rows.append(("person", key, None, period, name, value))  # type: ignore[arg-type]
    out = pd.DataFrame(rows, columns=OUTPUT_COLUMNS)
    dup = out.duplicated(["level", "person_key", "department", "period", "outcome"], keep=False)
    if dup.any():
        first = int(dup.to_numpy().nonzero()[0][0]) + 2
        raise OutcomeFileError(f"{path}: line {first}: the same unit, period and outcome appear more than once")
    return unit, out


def load_outcomes(paths: list[Path], pseudonymiser: Pseudonymiser | None) -> pd.DataFrame:
    """All files concatenated; an empty frame with the output columns when there are none."""
    frames = [load_outcome_file(p, pseudonymiser) for p in paths]
    if not frames:
        return pd.DataFrame(columns=OUTPUT_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def outcome_files(directory: Path) -> list[Path]:
    if not directory.exists():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix.lower() in (".csv", ".parquet", ".pq"))


# ------------------------------------------------------------------------------------------- ingestion
LAKE_FOLDER = "outcomes"


def lake_outcomes_dir(lake_dir: Path) -> Path:
    return Path(lake_dir) / LAKE_FOLDER


def pseudonymised_table(rows: pd.DataFrame, unit: str) -> pa.Table:
    """The lake's form of outcome rows: one unit column (person_key, or department), period (YYYY-MM),
    outcome, value."""
    col = "department" if unit == "department" else "person_key"
    return pa.table({
        col: pa.array(rows[col].tolist(), pa.string()),
        "period": pa.array([p.strftime("%Y-%m") for p in rows["period"]], pa.string()),
        "outcome": pa.array(rows["outcome"].tolist(), pa.string()),
        "value": pa.array(rows["value"].astype(float).tolist(), pa.float64()),
    })


def write_pseudonymised(rows: pd.DataFrame, unit: str, target: Path, exclude: Iterable[str] = ()) -> Path:
    """Write outcome rows (OUTPUT_COLUMNS) to the lake, without the people of `exclude` (atomically)."""
    from pipelines.erasure import write_parquet

    excluded = set(exclude)
    if excluded and unit != "department":
        rows = rows[~rows["person_key"].isin(excluded)]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(target, pseudonymised_table(rows, unit))
    return target


def _holds_identifiers(path: Path) -> bool:
    """True when a file has an email column (the clear form an organisation drops)."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline()
        return "email" in [c.strip().strip('"').lower() for c in header.split(",")]
    try:
        return "email" in [c.lower() for c in pq.read_schema(path).names]
    except Exception:  # unreadable: the loader names the problem
        return True


def ingest_outcome_file(path: Path, pseudonymiser: Pseudonymiser, out_dir: Path,
                        exclude: Iterable[str] = ()) -> Path:
    """Pseudonymise one dropped file into `out_dir/<name>.parquet`; returns that path."""
    unit, rows = _parse(Path(path), pseudonymiser)
    return write_pseudonymised(rows, unit, out_dir / f"{Path(path).stem}.parquet", exclude)


def migrate_clear_files(out_dir: Path, pseudonymiser: Pseudonymiser, exclude: Iterable[str] = ()) -> list[Path]:
    """Files with emails left in the lake's outcome folder (earlier versions read drops from there):
    pseudonymised into Parquet beside them, then deleted. Returns the files written."""
    written = []
    for path in outcome_files(out_dir):
        if _holds_identifiers(path):
            target = ingest_outcome_file(path, pseudonymiser, out_dir, exclude)
            if target != path:
                path.unlink()
            written.append(target)
    return written


def lake_outcome_files(settings: Any, files: list[Path]) -> list[Path]:
    """The pseudonymised files of the lake that `ingest_outcomes` returned for the same configuration,
    without ingesting anything (no key needed: the network stage recomputes the impact tables from them):
    each configured drop's copy in `<lake>/outcomes/` (the file itself when it lies in the lake), else every
    file of `<lake>/outcomes/`. Files not ingested yet are not there."""
    out_dir = lake_outcomes_dir(settings.lake_dir)
    if not files:
        return [p for p in outcome_files(out_dir) if not _holds_identifiers(p)]
    lake_root = Path(settings.lake_dir).resolve()
    paths: dict[str, Path] = {}
    for f in map(Path, files):
        paths[f.stem] = f if f.resolve().is_relative_to(lake_root) else out_dir / f"{f.stem}.parquet"
    return [p for p in paths.values() if p.exists()]


def ingest_outcomes(settings: Any, files: list[Path], pseudonymiser: Pseudonymiser,
                    demo: Any = None) -> list[Path]:
    """The pseudonymised outcome files of the lake the metrics read: each configured drop (`files`,
    outside the lake) ingested, else every file of `<lake>/outcomes/` (the demo's generated ones when
    `demo` gives its options and there are none). Opted-out and erased people are left out."""
    from pipelines import jobs

    out_dir = lake_outcomes_dir(settings.lake_dir)
    exclude = jobs._opt_out_keys(settings, pseudonymiser)
    migrate_clear_files(out_dir, pseudonymiser, exclude)
    lake_root = Path(settings.lake_dir).resolve()
    if files:
        paths: dict[str, Path] = {}
        for f in map(Path, files):
            if f.resolve().is_relative_to(lake_root):
                if _holds_identifiers(f):
                    raise OutcomeFileError(f"{f}: an outcome file with emails inside the lake ({settings.lake_dir}): "
                                           "drop outcome files outside the lake; the pipeline writes their "
                                           f"pseudonymised copy to {out_dir}")
                paths[f.stem] = f
                continue
            if f.stem in paths:
                raise OutcomeFileError(f"{f}: another outcome file is named {f.stem!r}; give each a distinct name")
            paths[f.stem] = ingest_outcome_file(f, pseudonymiser, out_dir, exclude)
        return list(paths.values())
    found = outcome_files(out_dir)
    if not found and demo is not None:
        from pipelines.metrics.demo_outcomes import write_demo_outcomes

        found = write_demo_outcomes(out_dir, demo.people, demo.days, demo.start, demo.seed, pseudonymiser, exclude)
    return found
