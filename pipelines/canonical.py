"""Canonicalisation: from what a source landed to the canonical tables, and record-level quarantine.

Pure functions over DataFrames. A malformed record (a required field missing, a timestamp that does
not parse, an unknown verb) is never dropped silently: it goes to the quarantine with the reason, and
the counts are reported. Batch-level rules (uniqueness, referential integrity, drift) are the job of the
Great Expectations suites in `pipelines.quality`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.model import ACTIVITIES, CONTAINERS, PEOPLE, VERBS, conform

REQUIRED_ACTIVITY_FIELDS = ("event_id", "occurred_at", "actor_key", "verb")


@dataclass
class Split:
    good: pd.DataFrame
    bad: pd.DataFrame  # the offending records with a `quarantine_reason` column
    reasons: dict[str, int] = field(default_factory=dict)


def raw_activities_to_canonical(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Canonical activity columns from a frame that already uses canonical names (file drops, demo).

    Missing optional columns are added as nulls, flags default to False; `source` fills gaps."""
    out = df.copy()
    if "source" not in out.columns:
        out["source"] = source
    out["source"] = out["source"].fillna(source)
    for flag in ("is_question", "is_edited", "is_deleted"):
        if flag not in out.columns:
            out[flag] = False
        out[flag] = out[flag].fillna(False).astype(bool)
    for col in ACTIVITIES.names:
        if col not in out.columns:
            out[col] = None
    return out[ACTIVITIES.names]


def split_malformed_activities(df: pd.DataFrame) -> Split:
    """Separate well-formed activities from malformed ones, with a reason per record."""
    reason = pd.Series(pd.NA, index=df.index, dtype="string")
    for col in REQUIRED_ACTIVITY_FIELDS:
        missing = df[col].isna()
        if not pd.api.types.is_datetime64_any_dtype(df[col]):  # formatting timestamps would cost seconds
            missing |= df[col].eq("").fillna(False).astype(bool)
        reason = reason.mask(reason.isna() & missing, f"missing {col}")
    ts = pd.to_datetime(df["occurred_at"], errors="coerce", utc=True)
    reason = reason.mask(reason.isna() & ts.isna() & df["occurred_at"].notna(), "unparseable occurred_at")
    unknown_verb = ~df["verb"].isin(VERBS) & df["verb"].notna()
    reason = reason.mask(reason.isna() & unknown_verb, "unknown verb")
    length = pd.to_numeric(df["content_length"], errors="coerce")
    reason = reason.mask(reason.isna() & df["content_length"].notna() & length.isna(), "non-numeric content_length")
    bad_mask = reason.notna().to_numpy()
    good = df.loc[~bad_mask].copy()
    good["occurred_at"] = ts[~bad_mask]
    good["content_length"] = length[~bad_mask].astype("Int32")
    bad = df.loc[bad_mask].astype("string").assign(quarantine_reason=reason[bad_mask])
    reasons = bad["quarantine_reason"].value_counts().to_dict() if len(bad) else {}
    return Split(good=good, bad=bad, reasons={str(k): int(v) for k, v in reasons.items()})


def activities_table(df: pd.DataFrame) -> pa.Table:
    df = df.copy()
    df["content_length"] = df["content_length"].astype("Int32")
    for col in ("is_question", "is_edited", "is_deleted"):
        df[col] = df[col].astype(bool)
    return conform(pa.Table.from_pandas(df, preserve_index=False), ACTIVITIES)


def people_table(df: pd.DataFrame) -> pa.Table:
    df = df.copy()
    for col in ("hire_date", "termination_date"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], errors="coerce").dt.date
    df["is_leader"] = df.get("is_leader", pd.Series(False, index=df.index)).fillna(False).astype(bool)
    return conform(pa.Table.from_pandas(df, preserve_index=False), PEOPLE)


def containers_table(df: pd.DataFrame) -> pa.Table:
    df = df.copy()
    if "created_at" in df.columns:
        df["created_at"] = pd.to_datetime(df["created_at"], errors="coerce", utc=True)
    return conform(pa.Table.from_pandas(df, preserve_index=False), CONTAINERS)


def drop_opted_out(df: pd.DataFrame, keys: set[str], columns: tuple[str, ...]) -> tuple[pd.DataFrame, int]:
    """Remove every row that concerns an opted-out person in any of `columns`."""
    if not keys or df.empty:
        return df, 0
    mask = np.zeros(len(df), dtype=bool)
    for col in columns:
        if col in df.columns:
            mask |= df[col].isin(keys).to_numpy()
    return df.loc[~mask], int(mask.sum())
