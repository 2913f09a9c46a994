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

from pipelines.model import ACCOUNT_PRECEDENCE, ACTIVITIES, CONTAINERS, IDEA_STATUSES, PEOPLE, VERBS, conform

REQUIRED_ACTIVITY_FIELDS = ("event_id", "occurred_at", "actor_key", "verb")
#: topic_ids: ids (pipelines/topics.py) separated by one blank; never text
TOPIC_IDS = r"(?:tx|tag):[a-z0-9_.-]{1,63}(?: (?:tx|tag):[a-z0-9_.-]{1,63})*"
#: the activity flags: not null, False when a source does not set them
ACTIVITY_FLAGS = ("is_question", "is_edited", "is_deleted", "is_idea")


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
    for flag in ACTIVITY_FLAGS:
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
    if "idea_status" in df.columns:
        status = df["idea_status"]
        change = df["verb"].eq("status_change").fillna(False).astype(bool)
        reason = reason.mask(reason.isna() & change & status.isna(), "status_change without idea_status")
        reason = reason.mask(reason.isna() & ~change & status.notna(), "idea_status on a verb other than status_change")
        reason = reason.mask(reason.isna() & status.notna() & ~status.isin(IDEA_STATUSES), "unknown idea_status")
    elif "verb" in df.columns:
        reason = reason.mask(reason.isna() & df["verb"].eq("status_change").fillna(False).astype(bool),
                             "status_change without idea_status")
    if "topic_ids" in df.columns:
        topics = df["topic_ids"]
        malformed = topics.notna() & ~topics.astype("string").str.fullmatch(TOPIC_IDS).fillna(False).astype(bool)
        reason = reason.mask(reason.isna() & malformed, "malformed topic_ids")
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
    for col in ACTIVITY_FLAGS:
        # a source that builds its frame from records without the flag (older modules: no is_idea) gets False
        df[col] = df[col].fillna(False).astype(bool) if col in df.columns else False
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


def _sources_per_person(rows: pd.DataFrame) -> pd.Series:
    """person_key -> the sources naming them, sorted, comma-separated: one vectorised pass per source (a
    handful) instead of a Python call per person, as `publish` merges the snapshot of every landed day."""
    codes, keys = pd.factorize(rows["person_key"].astype(object))
    source = rows["_source"].astype(object).to_numpy()
    out = np.full(len(keys), "", dtype=object)
    for src in sorted(set(source)):
        has = np.zeros(len(keys), dtype=bool)
        has[codes[source == src]] = True
        out[has] = np.where(out[has] == "", src, out[has] + "," + src)
    return pd.Series(out, index=pd.Index(keys, dtype=object))


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
    sources = _sources_per_person(rows)
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


def changed_people(old: pd.DataFrame, new: pd.DataFrame) -> set[str]:
    """The person keys whose rows differ between two people snapshots of one source (added, removed or
    any column changed): the only people a new snapshot can change in `merge_people`'s result."""
    cols = sorted(set(old.columns) | set(new.columns))

    def hashes(df: pd.DataFrame) -> pd.Series:
        # a column typed differently in the two snapshots hashes differently: its people are merged
        # again for nothing, never missed
        df = df.reindex(columns=cols)
        return pd.Series(pd.util.hash_pandas_object(df, index=False).to_numpy(),
                         index=pd.Index(df["person_key"].astype(object).to_numpy(), dtype=object))

    a, b = hashes(old), hashes(new)
    if not (a.index.is_unique and b.index.is_unique):  # a key twice: compare (key, hash) pairs
        pairs = pd.DataFrame({"k": a.index, "h": a.to_numpy()}).merge(
            pd.DataFrame({"k": b.index, "h": b.to_numpy()}), on=["k", "h"], how="outer", indicator=True)
        return set(pairs.loc[pairs["_merge"] != "both", "k"].dropna())
    if a.index.equals(b.index):  # the usual case: the same people in the same order
        return set(a.index[a.to_numpy() != b.to_numpy()]) - {None}
    aligned = b.reindex(a.index)
    differ = set(a.index[(aligned.to_numpy() != a.to_numpy()) | aligned.isna().to_numpy()])
    return (differ | set(b.index.difference(a.index))) - {None}


def remerge_people(merged: pd.DataFrame, frames: dict[str, pd.DataFrame], keys: set[str]) -> pd.DataFrame:
    """`merge_people(frames)` when only the people of `keys` changed since `merged` was made: the rule is
    per person, so their rows are merged again and everyone else's kept (a day's snapshot of a large
    directory with a few changes costs a few rows, not a whole merge)."""
    if not keys:
        return merged
    part = merge_people({src: f[f["person_key"].astype(object).isin(keys)] for src, f in frames.items()})
    kept = merged[~merged["person_key"].astype(object).isin(keys)]
    if part.empty:
        return kept.reset_index(drop=True)
    return pd.concat([kept, part], ignore_index=True).sort_values("person_key", kind="stable").reset_index(drop=True)


#: the directory attributes that segment people (int_segment_membership), kept over time by `people_history`
HISTORY_ATTRIBUTES = ("department", "location", "level", "is_leader")
#: the open ends of a validity range: every day before the lake's first people snapshot, and every day to come
BEGINNING_OF_TIME = dt.date(1900, 1, 1)
END_OF_TIME = dt.date(9999, 12, 31)
HISTORY_COLUMNS = ["person_key", *HISTORY_ATTRIBUTES, "listed", "valid_from", "valid_to"]


def _history_state(people: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """The attributes of `people` that `people_over_time` follows, comparable (person keys as plain
    Python strings, NULL as None, the leader flag as a plain bool), `listed` true, from `day`."""
    out = pd.DataFrame({"person_key": people["person_key"].astype(object).to_numpy()})
    for col in HISTORY_ATTRIBUTES[:-1]:
        values = people[col].astype(object).to_numpy() if col in people.columns else np.full(len(people), None)
        out[col] = pd.Series(values, dtype=object).where(pd.notna(values), None)
    leader = people["is_leader"].to_numpy() if "is_leader" in people.columns else np.zeros(len(people), bool)
    out["is_leader"] = pd.Series(leader).fillna(False).astype(bool).to_numpy()
    out["listed"] = True
    out["valid_from"] = day
    return out


def _unlisted(keys: Iterable[str], day: dt.date) -> pd.DataFrame:
    keys = sorted(keys)
    return pd.DataFrame({"person_key": pd.Series(keys, dtype=object),
                         **{c: pd.Series([None] * len(keys), dtype=object) for c in HISTORY_ATTRIBUTES[:-1]},
                         "is_leader": False, "listed": False, "valid_from": day})


def people_over_time(snapshots: Iterable[tuple[dt.date, pd.DataFrame, set[str] | None]]
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The people of the organisation over time, from the merged people snapshots: `(day, frame,
    changed)` in day order, `frame` the `merge_people` of each source's latest people on the day and
    `changed` the keys whose rows may differ from the previous snapshot (None: anyone). Returns
    `(people, history)`:

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
    Only the changed people of each snapshot are logged, and the ranges come out of one sorted pass over
    the log, so a year of daily snapshots of a large directory stays cheap. Both frames are sorted
    (person_key, then valid_from), so that a rerun writes the same bytes."""
    log: list[pd.DataFrame] = []
    seen: set[str] = set()  # everyone any snapshot listed
    listed: set[str] = set()  # the people the previous snapshot listed
    previous: pd.DataFrame | None = None
    departed: list[pd.DataFrame] = []  # the last listed rows of the people a snapshot dropped
    for day, snap, changed in snapshots:
        snap = snap[snap["person_key"].notna()].drop_duplicates("person_key")
        if previous is None:
            log.append(_history_state(snap, BEGINNING_OF_TIME))
            listed = set(snap["person_key"].astype(object))
            seen = set(listed)
            previous = snap
            continue
        if changed is None:  # compare everyone: the whole snapshot is logged, equal runs merge below
            rows = snap
            present = set(snap["person_key"].astype(object))
            dropped = listed - present
        else:  # the others are listed as before, with the same values
            rows = snap[snap["person_key"].astype(object).isin(changed).to_numpy()]
            present = set(rows["person_key"].astype(object))
            dropped = (set(changed) & listed) - present
        fresh = present - seen
        if fresh:
            log.append(_unlisted(fresh, BEGINNING_OF_TIME))
        log.append(_history_state(rows, day))
        if dropped:
            log.append(_unlisted(dropped, day))
            departed.append(previous[previous["person_key"].astype(object).isin(dropped).to_numpy()])
        seen |= fresh
        listed = (listed - dropped) | present
        previous = snap
    if previous is None:
        return pd.DataFrame(columns=[*PEOPLE.names, "sources", "delisted_on"]), pd.DataFrame(columns=HISTORY_COLUMNS)
    entries = pd.concat(log, ignore_index=True)
    entries = entries.sort_values(["person_key", "valid_from"], kind="stable").reset_index(drop=True)
    # one range per run of equal values: an entry starts a range when the person or a value changes
    person = entries["person_key"].to_numpy()
    starts = np.ones(len(entries), dtype=bool)
    same_person = person[1:] == person[:-1]
    same = same_person.copy()
    for col in [*HISTORY_ATTRIBUTES, "listed"]:
        v = entries[col].to_numpy()
        nulls = pd.isna(v)
        same &= ((v[1:] == v[:-1]) & ~nulls[1:] & ~nulls[:-1]) | (nulls[1:] & nulls[:-1])
    starts[1:] = ~same
    history = entries[starts].reset_index(drop=True)
    following = history["valid_from"].shift(-1)
    last_of_person = history["person_key"].ne(history["person_key"].shift(-1)).to_numpy()
    history["valid_to"] = [END_OF_TIME if last else nxt - dt.timedelta(days=1)
                           for last, nxt in zip(last_of_person, following, strict=True)]
    for col in HISTORY_ATTRIBUTES[:-1]:
        history[col] = history[col].astype(object).where(history[col].notna(), None)
    history["is_leader"] = history["is_leader"].astype(bool)
    history["listed"] = history["listed"].astype(bool)
    ends = history[last_of_person & ~history["listed"].to_numpy()]
    delisted = dict(zip(ends["person_key"], ends["valid_from"], strict=True))
    gone = [d[~d["person_key"].astype(object).isin(listed).to_numpy()] for d in departed]
    rows = pd.concat([previous, *gone], ignore_index=True) if gone else previous
    rows = rows.drop_duplicates("person_key", keep="last")  # dropped twice: the latest listed row
    people = rows.assign(delisted_on=rows["person_key"].astype(object).map(delisted))
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
