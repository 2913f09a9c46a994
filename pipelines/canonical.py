"""Canonicalisation: from what a source landed to the canonical tables, and record-level quarantine.

Pure functions over DataFrames. A malformed record (a required field missing, a timestamp that does
not parse, an unknown verb) is never dropped silently: it goes to the quarantine with the reason, and
the counts are reported. Batch-level rules (uniqueness, referential integrity, drift) are the job of the
Great Expectations suites in `pipelines.quality`.

People. Every source lands the people it knows: an HR directory its directory rows (`in_directory`
true), a platform its user listing (`in_directory` false, with the account type and whether the account
is deactivated, and a department where the platform gives one). `merge_people` makes one row per person
of all of them (the rule is in its docstring); `drop_excluded_accounts` removes the accounts of the
types the configuration excludes (`directory.guests`, `externals`, `bots`), counted like opt-outs.
The lake keeps each source's people snapshot of every landed day; `people_over_time` turns the merged
snapshots into effective-dated ranges of the segmenting attributes (department, location, level, leader
flag), so that a day's segment membership is what the directory said by that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.model import ACCOUNT_PRECEDENCE, ACTIVITIES, CONTAINERS, PEOPLE, VERBS, conform

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


#: columns of a people frame that say what kind of row it is, with the value a frame without them gets
PEOPLE_DEFAULTS = {"in_directory": True, "account_type": "member", "is_deactivated": False, "is_leader": False}


def people_defaults(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with the person-kind columns filled. A frame without `in_directory` is a directory: before
    platforms landed their user listings, only HR directories (and dataset labels) landed people rows,
    so the people partitions of older lakes are directory rows."""
    df = df.copy()
    for col, default in PEOPLE_DEFAULTS.items():
        if col not in df.columns:
            df[col] = default
        else:
            df[col] = df[col].astype(object).where(df[col].notna(), default)
        if isinstance(default, bool):
            df[col] = df[col].astype(bool)
    return df


def people_table(df: pd.DataFrame) -> pa.Table:
    df = people_defaults(df)
    for col in ("hire_date", "termination_date"):
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], errors="coerce").dt.date
    return conform(pa.Table.from_pandas(df, preserve_index=False), PEOPLE)


def platform_people(df: pd.DataFrame) -> pd.DataFrame:
    """Canonical people rows of a platform's user listing: `person_key`, `account_type`,
    `is_deactivated` and optionally `department` in; in_directory false, no other directory attribute."""
    out = pd.DataFrame({"person_key": df["person_key"].astype("string"),
                        "department": df["department"] if "department" in df.columns else None,
                        "is_leader": False, "in_directory": False,
                        "account_type": df["account_type"].astype("string"),
                        "is_deactivated": df["is_deactivated"].fillna(False).astype(bool)}, index=df.index)
    if "department" in out.columns:
        dept = out["department"].astype("string").str.strip()
        out["department"] = dept.where(dept.notna() & dept.ne(""), None)
    return out.dropna(subset=["person_key"]).reset_index(drop=True)


def _account_rank(types: pd.Series) -> pd.Series:
    order = {t: i for i, t in enumerate(ACCOUNT_PRECEDENCE)}
    return types.map(order).fillna(len(order)).astype(int)


def dedupe_people(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per person among a source's listing rows: a person with two accounts on one platform (the
    same email) keeps the active one, then the most internal account type (ACCOUNT_PRECEDENCE), then
    the one with a department. Directory rows are never merged: a key twice in an HR directory is a
    contract breach that the `people` suite rejects. Returns the frame and how many rows were merged."""
    if df.empty or "in_directory" not in df.columns:
        return df, 0
    directory = df[df["in_directory"].astype(bool)]
    listed = df[~df["in_directory"].astype(bool) & ~df["person_key"].isin(set(directory["person_key"]))]
    ranked = listed.assign(_deact=listed["is_deactivated"].astype(bool).astype(int),
                           _type=_account_rank(listed["account_type"]),
                           _nodept=(listed["department"].isna() if "department" in listed.columns else True))
    ranked = ranked.sort_values(["_deact", "_type", "_nodept"], kind="stable")
    kept = ranked.drop_duplicates("person_key").drop(columns=["_deact", "_type", "_nodept"])
    merged = len(df) - len(directory) - len(kept)
    out = pd.concat([directory, kept.sort_index()], ignore_index=True) if len(directory) else kept.sort_index()
    return out.reset_index(drop=True), merged


def drop_excluded_accounts(acts: pd.DataFrame, people: pd.DataFrame | None, excluded: set[str]
                           ) -> tuple[pd.DataFrame, pd.DataFrame | None, dict[str, dict[str, int]]]:
    """Remove the accounts of the `excluded` account types (their own listing says so; a directory row
    is never excluded): their activities, their people rows, and the target of activities aimed at
    them (the activity stays, it is its actor's). Returns the counts per account type."""
    counts: dict[str, dict[str, int]] = {}
    if not excluded or people is None or people.empty or "account_type" not in people.columns:
        return acts, people, counts
    listing = people[~people["in_directory"].astype(bool)] if "in_directory" in people.columns else people
    by_type = listing[listing["account_type"].isin(excluded)]
    if by_type.empty:
        return acts, people, counts
    drop = np.zeros(len(acts), dtype=bool)
    cleared = np.zeros(len(acts), dtype=bool)
    for kind, keys in by_type.groupby("account_type", sort=True)["person_key"]:
        keyset = set(keys)
        mask = acts["actor_key"].isin(keyset).to_numpy()
        tmask = acts["target_key"].isin(keyset).to_numpy() & ~mask & ~drop
        counts[str(kind)] = {"people": len(keyset), "activities": int((mask & ~drop).sum()),
                             "targets_cleared": int(tmask.sum())}
        drop |= mask
        cleared |= tmask
    kept = acts.loc[~drop]
    kept = kept.assign(target_key=kept["target_key"].where(~cleared[~drop]))
    return kept, people[~people["person_key"].isin(set(by_type["person_key"]))], counts


def merge_people(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per person from the latest people snapshot of each source (`{source: frame}`).

    The rule, deterministic whatever the order the sources are given in:
      - `in_directory` is true when any HR directory (a row with in_directory true) lists the person;
      - the directory attributes (department, location, level, manager, leader flag, hire and termination
        dates) of a person in the directory are those of their directory row, all of them, even the
        empty ones (HR wins: a platform's department never fills a gap of HR); when two directories
        list the person, the source whose name sorts first wins;
      - a person outside the directory takes each attribute from the first source (by name) whose
        listing gives it, else NULL; their account type is the most internal one any platform gives
        (ACCOUNT_PRECEDENCE: member, guest, external, bot); a person in the directory is a member;
      - `is_deactivated` is true when every platform account of the person is deactivated (a person in
        the directory only with a deactivated account stays counted by their HR dates);
      - `sources` lists the sources that name the person, sorted, comma-separated.
    The rows are sorted by person_key."""
    columns = [*PEOPLE.names, "sources"]
    parts = []
    for i, src in enumerate(sorted(frames)):
        f = frames[src]
        if f is None or f.empty:
            continue
        f = people_defaults(f)
        f = f.assign(**{c: None for c in PEOPLE.names if c not in f.columns})
        parts.append(f.assign(_source=src, _order=i)[[*PEOPLE.names, "_source", "_order"]])
    if not parts:
        return pd.DataFrame(columns=columns)
    rows = pd.concat(parts, ignore_index=True).sort_values(["_order"], kind="stable")
    rows = rows[rows["person_key"].notna()]
    sources = rows.groupby("person_key")["_source"].agg(lambda s: ",".join(sorted(set(s))))
    directory = rows[rows["in_directory"]].drop_duplicates("person_key", keep="first")
    listed = rows[~rows["in_directory"]]
    all_deactivated = listed.groupby("person_key")["is_deactivated"].all()
    outside = listed[~listed["person_key"].isin(set(directory["person_key"]))]
    attrs = ["department", "location", "level", "manager_key", "hire_date", "termination_date"]
    if len(outside):
        grouped = outside.groupby("person_key", sort=False)
        platform = grouped[attrs].first()  # the first non-null value, in source order
        platform["is_leader"] = grouped["is_leader"].any()
        rank = outside.assign(_rank=_account_rank(outside["account_type"]))
        best = rank.sort_values(["_rank", "_order"], kind="stable").drop_duplicates("person_key")
        platform["account_type"] = best.set_index("person_key")["account_type"]
        platform = platform.reset_index()
        platform["in_directory"] = False
        platform["is_deactivated"] = False  # set below, for everyone
    else:
        platform = pd.DataFrame(columns=[*PEOPLE.names])
    directory = directory.assign(account_type="member")
    out = pd.concat([directory[PEOPLE.names], platform[PEOPLE.names]], ignore_index=True)
    out["is_deactivated"] = out["person_key"].map(all_deactivated).fillna(False).astype(bool)
    out["in_directory"] = out["in_directory"].astype(bool)
    out["is_leader"] = out["is_leader"].fillna(False).astype(bool)
    out["sources"] = out["person_key"].map(sources)
    return out.sort_values("person_key", kind="stable").reset_index(drop=True)[columns]


#: the directory attributes that segment people (int_segment_membership), kept over time by `people_history`
HISTORY_ATTRIBUTES = ("department", "location", "level", "is_leader")
#: the open ends of a validity range: every day before the lake's first people snapshot, and every day to come
BEGINNING_OF_TIME = dt.date(1900, 1, 1)
END_OF_TIME = dt.date(9999, 12, 31)
HISTORY_COLUMNS = ["person_key", *HISTORY_ATTRIBUTES, "listed", "valid_from", "valid_to"]


def _history_state(people: pd.DataFrame) -> pd.DataFrame:
    """The attributes of `people` that `people_history` follows, indexed by person_key, comparable
    (NULL as None, the leader flag as a plain bool)."""
    state = people.drop_duplicates("person_key").set_index("person_key")
    out = pd.DataFrame(index=state.index)
    for col in HISTORY_ATTRIBUTES[:-1]:
        values = state[col] if col in state.columns else pd.Series(None, index=state.index)
        out[col] = values.astype(object).where(values.notna(), None)
    leader = state["is_leader"] if "is_leader" in state.columns else pd.Series(False, index=state.index)
    out["is_leader"] = leader.astype(object).where(leader.notna(), False).astype(bool)
    out["listed"] = True
    return out


def people_over_time(snapshots: Iterable[tuple[dt.date, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The people of the organisation over time, from the merged people snapshots (`merge_people` of each
    day a source landed people, `(day, frame)` in day order). Returns `(people, history)`:

    `people`: one row per person any snapshot listed: the latest snapshot's rows, and for each person it
    no longer lists, their row of the last snapshot that did, with `delisted_on` the day of the first
    snapshot without them (NULL for the people the latest snapshot lists). Disappearing from every
    listing is leaving: `stg_people` ends their employment that day (unless HR ended it earlier), so the
    days they were listed keep counting them and the later ones do not.

    `history`: effective-dated ranges of the segmenting attributes (department, location, level, leader
    flag) per person, `valid_from`..`valid_to` inclusive, contiguous from 1900-01-01 to 9999-12-31, one
    row per person and range of constant values (`listed` false where no snapshot listed the person).
    The rules, chosen so that a day's membership depends only on the snapshots landed by that day (a
    day-by-day run then equals a full recompute):
      - a snapshot's values hold from its day until the day before a later snapshot changes them;
      - the days before the lake's first snapshot get the first snapshot's values (there is nothing
        older to go by, and the first run of a lake covers days before its snapshot);
      - a person first listed by a later snapshot (a joiner, an account created later) is not listed
        before it: NULL attributes (the segment cell 'unknown'), as the directory said then;
      - a person a snapshot no longer lists is not listed from that day on (NULL attributes; they are
        no longer counted anyway, see `people`), until a snapshot lists them again.
    Both frames are sorted (person_key, then valid_from), so that a rerun writes the same bytes."""
    open_: pd.DataFrame | None = None  # the range in force per person, with its valid_from
    closed: list[pd.DataFrame] = []
    last_rows: pd.DataFrame | None = None  # each person's row of the last snapshot listing them
    for day, snap in snapshots:
        snap = snap[snap["person_key"].notna()].drop_duplicates("person_key")
        now = _history_state(snap)
        last_rows = snap if last_rows is None else pd.concat(
            [last_rows[~last_rows["person_key"].isin(now.index)], snap], ignore_index=True)
        if open_ is None:
            open_ = now.assign(valid_from=BEGINNING_OF_TIME)
            continue
        gone = open_.index.difference(now.index)
        if len(gone):
            now = pd.concat([now, pd.DataFrame({**{c: None for c in HISTORY_ATTRIBUTES[:-1]}, "is_leader": False,
                                                "listed": False}, index=gone)])
        fresh = now.index.difference(open_.index)
        known = now.index.intersection(open_.index)
        before, after = open_.loc[known, [*HISTORY_ATTRIBUTES, "listed"]], now.loc[known]
        same = pd.Series(True, index=known)
        for col in [*HISTORY_ATTRIBUTES, "listed"]:
            a, b = before[col], after[col]
            same &= (a == b) | (a.isna() & b.isna())
        changed = known[~same.to_numpy()]
        if len(changed):
            closed.append(open_.loc[changed].assign(valid_to=day - dt.timedelta(days=1)))
            open_ = pd.concat([open_.drop(index=changed), now.loc[changed].assign(valid_from=day)])
        if len(fresh):
            closed.append(pd.DataFrame({**{c: None for c in HISTORY_ATTRIBUTES[:-1]}, "is_leader": False,
                                        "listed": False, "valid_from": BEGINNING_OF_TIME,
                                        "valid_to": day - dt.timedelta(days=1)}, index=fresh))
            open_ = pd.concat([open_, now.loc[fresh].assign(valid_from=day)])
    if open_ is None or last_rows is None:
        return pd.DataFrame(columns=[*PEOPLE.names, "sources", "delisted_on"]), pd.DataFrame(columns=HISTORY_COLUMNS)
    closed.append(open_.assign(valid_to=END_OF_TIME))
    history = pd.concat(closed).rename_axis("person_key").reset_index()
    history = history.sort_values(["person_key", "valid_from"], kind="stable").reset_index(drop=True)
    history["is_leader"] = history["is_leader"].astype(bool)
    history["listed"] = history["listed"].astype(bool)
    for col in ("valid_from", "valid_to"):
        history[col] = pd.to_datetime(history[col]).dt.date
    delisted = open_.loc[~open_["listed"].astype(bool), "valid_from"]
    people = last_rows.assign(delisted_on=last_rows["person_key"].map(delisted))
    people["delisted_on"] = people["delisted_on"].astype(object).where(people["delisted_on"].notna(), None)
    people = people.sort_values("person_key", kind="stable").reset_index(drop=True)
    return people, history[HISTORY_COLUMNS]


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
