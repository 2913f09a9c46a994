"""The generic file import source (kind "file"): any platform without a connector, and the published
network datasets, landed like every other source.

Options (docs/imports.md has the full reference): `format` (csv | jsonl | parquet | canonical, or a
dataset preset: snap_edges | konect | benson_temporal | workfrance | enron_tsv | chatterjee_xml), `path`,
an optional HR `directory` CSV (history by `effective_date`), and per-preset side files (`departments`,
`recipients`, `core`).

extract(ctx, start, end) parses every input completely first (`file_import_formats`,
`file_import_presets`): a malformed file raises `ImportRejected` listing file, line and reason, and nothing
at all is written. Only then are identifiers pseudonymised (`ctx.pseudonymiser.person(namespace, id,
email)`; a native id that the directory maps to an email is keyed by the email, so the person matches
across platforms) and the raw streams landed: `activities` per UTC day of [start, end], `people` and
`containers` as of `end`. canonicalise(ctx, day) only reads that landing.

Topics (`topic_ids`, `pipelines.topics` with `settings.topics`): the tabular formats carry no text, but a
post's, reply's or idea's optional `tags` column (a list, or text separated by commas) gives topic ids,
the tags dropped; the `chatterjee_xml` preset computes them from the message text. Other presets have none.

A drop can never silently lose or shrink data:
  - numeric timestamps have one unit per file, detected from their magnitude or declared (`epoch_unit`),
    and must give plausible dates (`epoch_range`), else the import is rejected;
  - events outside [start, end] are counted in `details["outside_interval"]` (before / after, first and
    last time, a few file:line examples) and logged; events dated after the file was written are counted
    in `details["future_dated"]`;
  - before any write, the new per-day counts are compared with the raw lake: emptying a day that had
    events, or losing more than `max_shrink` of a day's events, raises `ShrinkRefused` (a subclass of
    `ImportRejected`) unless `replace_days: true`; a file without any event is rejected unless
    `allow_empty: true`;
  - a file larger than `max_file_bytes` and a record larger than `max_record_bytes` are rejected, and
    text is read in bounded blocks.

This module must never write, log or return a clear identifier or a message text: the parsed frames
hold them in memory only, and everything handed to `lake.write_partition` is keyed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines import lake
from pipelines.canonical import raw_activities_to_canonical
from pipelines.config import QuestionRules
from pipelines.model import ACTIVITIES, CONTAINER_KINDS, VISIBILITIES
from pipelines.privacy import Pseudonymiser
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.file_import_formats import (
    DEFAULT_EPOCH_RANGE,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_MAX_RECORD_BYTES,
    MAX_REPORTED,
    PEOPLE_COLUMNS,
    ImportRejected,
    Problem,
    ReadOptions,
    activity_frame,
    directory_as_of,
    read_activity_file,
    read_directory,
    read_identity_map,
)
from pipelines.sources.file_import_presets import PRESETS, Parsed, PresetInput
from pipelines.topics import TopicRules

log = logging.getLogger(__name__)

TABULAR = ("csv", "jsonl", "parquet")
FORMATS = (*TABULAR, "canonical", *PRESETS)
#: presets whose records are person-to-person messages: the default container is a direct "mail" one
_DIRECT = {"snap_edges", "konect", "benson_temporal", "enron_tsv", "workfrance"}
_SIDE_FILES = {"departments": {"snap_edges", "konect", "benson_temporal", "workfrance", "enron_tsv"},
               "recipients": {"enron_tsv"}, "core": {"benson_temporal"}}
#: outside-interval and future-dated events quoted as file:line examples in the report
EXAMPLES = 5
#: an event this long after the file was last modified cannot be real (clock and time zone slack)
FUTURE_SLACK = pd.Timedelta(days=1)


class FileImportOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: Literal["csv", "jsonl", "parquet", "canonical", "snap_edges", "konect", "benson_temporal",
                    "workfrance", "enron_tsv", "chatterjee_xml"]
    path: Path = Field(..., description="the activities / edge / message file")
    directory: Path | None = Field(None, description="HR directory CSV (employee_id or email, department, ...)")
    departments: Path | None = Field(None, description="preset node labels: SNAP labels, workfrance "
                                     "vertices, Enron employees.tsv")
    recipients: Path | None = Field(None, description="enron_tsv: recipients.tsv")
    core: Path | None = Field(None, description="benson_temporal: ids of the organisation's members")
    synthetic_date: dt.date = Field(dt.date(2024, 1, 1), description="date given to events of files "
                                    "without timestamps")
    edge_verb: Literal["mention", "reply", "share"] = "mention"
    identity_map: Path | None = Field(None, description="CSV native_id,email: native ids of this source "
                                      "keyed by the email, so they match the same person elsewhere")
    id_namespace: str | None = Field(None, description="namespace of native ids in the pseudonymiser; "
                                     "defaults to the source name. Two sources sharing native ids share it.")
    container_id: str | None = Field(None, description="presets: the container of every event")
    container_kind: str | None = None
    container_visibility: str | None = None
    epoch_unit: Literal["auto", "s", "ms", "us", "ns"] = Field(
        "auto", description="unit of numeric occurred_at values (Unix epochs); auto detects it from their "
        "magnitude within epoch_range")
    epoch_range: tuple[dt.date, dt.date] = Field(
        DEFAULT_EPOCH_RANGE, description="[from, until): the dates numeric timestamps may give")
    replace_days: bool = Field(False, description="this import replaces the days it covers: it may empty "
                               "or shrink days already landed for this source")
    max_shrink: float = Field(0.1, ge=0.0, le=1.0, description="the share of a landed day's events an "
                              "import may lose without replace_days (0.1 = 10%); emptying a day always "
                              "needs replace_days")
    allow_empty: bool = Field(False, description="accept a file without any event (0 bytes, header only)")
    max_record_bytes: int = Field(DEFAULT_MAX_RECORD_BYTES, gt=0, description="the largest line / record")
    max_file_bytes: int = Field(DEFAULT_MAX_FILE_BYTES, gt=0, description="the largest input file")

    @model_validator(mode="after")
    def _check(self) -> FileImportOptions:
        for name, allowed in _SIDE_FILES.items():
            if getattr(self, name) is not None and self.format not in allowed:
                raise ValueError(f"option {name} is not used by format {self.format} (only {sorted(allowed)})")
        for name in ("epoch_unit", "epoch_range"):
            if name in self.model_fields_set and self.format in PRESETS:
                raise ValueError(f"option {name} is not used by format {self.format} (only csv, jsonl, parquet "
                                 "and canonical; a preset's timestamps have the unit its dataset documents)")
        lo, hi = self.epoch_range
        if not dt.date(1678, 1, 1) <= lo < hi <= dt.date(2262, 1, 1):
            raise ValueError("epoch_range must be [from, until) with from < until, within 1678-01-01..2262-01-01")
        if self.format == "enron_tsv" and self.recipients is None:
            raise ValueError("format enron_tsv needs the option recipients (recipients.tsv)")
        if self.container_kind is not None and self.container_kind not in CONTAINER_KINDS:
            raise ValueError(f"container_kind must be one of {CONTAINER_KINDS}")
        if self.container_visibility is not None and self.container_visibility not in VISIBILITIES:
            raise ValueError(f"container_visibility must be one of {VISIBILITIES}")
        return self

    def tabular_format(self) -> str:
        if self.format != "canonical":
            return self.format
        suffix = self.path.suffix.lower().lstrip(".")
        fmt = {"csv": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "parquet": "parquet", "pq": "parquet"}.get(suffix)
        if fmt is None:
            raise ImportRejected([Problem(str(self.path), None, "format canonical needs a .csv, .jsonl or "
                                          ".parquet file name (or set format explicitly)")])
        return fmt

    def read_options(self) -> ReadOptions:
        return ReadOptions(epoch_unit=self.epoch_unit, epoch_range=self.epoch_range,
                           max_record_bytes=self.max_record_bytes)


def options(ctx: SourceContext) -> FileImportOptions:
    return FileImportOptions.model_validate(ctx.source.options)


# ------------------------------------------------------------------------------------------- parse
def parse(opts: FileImportOptions, questions: QuestionRules | None = None,
          topics: TopicRules | None = None) -> tuple[Parsed, pd.DataFrame | None]:
    """Read and check every input; (parsed activities with preset people, HR directory). Raises
    ImportRejected on any malformed input, before anything is written. Pure apart from reading files.
    `questions` / `topics`: the question and topic rules of the presets with message text
    (`settings.questions`, `settings.topics`); no topics when `topics` is None."""
    too_big = []
    for label, p in (("path", opts.path), ("directory", opts.directory), ("identity_map", opts.identity_map),
                     ("departments", opts.departments),
                     ("recipients", opts.recipients), ("core", opts.core)):
        if p is not None and not p.is_file():
            raise ImportRejected([Problem(str(p), None, f"option {label}: file does not exist")])
        if p is not None and (size := p.stat().st_size) > opts.max_file_bytes:
            too_big.append(Problem(str(p), None, f"option {label}: the file is {size:,} bytes, larger than "
                                   f"max_file_bytes ({opts.max_file_bytes:,}); nothing was read (raise "
                                   "max_file_bytes if the file is right)"))
    if too_big:
        raise ImportRejected(too_big)
    fmt = opts.tabular_format() if opts.format not in PRESETS else opts.format
    if opts.path.stat().st_size == 0:
        parsed = Parsed(activity_frame([]), lines=np.empty(0, dtype="int64"))  # `allow_empty` decides
    elif opts.format in PRESETS:
        kind_default = "mail" if opts.format in _DIRECT else None
        parsed = PRESETS[opts.format](PresetInput(
            path=opts.path, departments=opts.departments, recipients=opts.recipients, core=opts.core,
            synthetic_date=opts.synthetic_date, edge_verb=opts.edge_verb,
            container_id=opts.container_id or kind_default, max_record_bytes=opts.max_record_bytes,
            questions=questions, topics=topics))
    else:
        frame, lines = read_activity_file(opts.path, fmt, dataclasses.replace(opts.read_options(), topics=topics))
        parsed = Parsed(frame, lines=lines, unit="row" if fmt == "parquet" else "line")
    directory = read_directory(opts.directory, opts.max_record_bytes) if opts.directory is not None else None
    if opts.identity_map is not None:
        # the mapping file is applied like directory rows that pair an id with an email; it wins on conflict
        pairs = pd.DataFrame([{"employee_id": k, "email": v}
                              for k, v in read_identity_map(opts.identity_map, opts.max_record_bytes).items()])
        mapping = pairs.reindex(columns=list(PEOPLE_COLUMNS)).assign(is_leader=False, _map=True)
        directory = pd.concat([directory.assign(_map=False), mapping], ignore_index=True) \
            if directory is not None else mapping
    return parsed, directory


# ------------------------------------------------------------------------------------------ identity
class Identity:
    """Native id / email -> person key. A native id that the HR directory pairs with an email is keyed by
    that email. Holds clear identifiers in memory only."""

    def __init__(self, ps: Pseudonymiser, namespace: str, directory: pd.DataFrame | None):
        self.ps = ps
        self.namespace = namespace
        self.id_email: dict[str, str] = {}
        self.email_keys: set[str] = set()  # keys made from an email: they match across platforms
        if directory is not None and not directory.empty:
            both = directory.dropna(subset=["employee_id", "email"])
            self.id_email = dict(zip(both["employee_id"].astype(str), both["email"].astype(str), strict=True))

    def keys(self, ids: pd.Series, emails: pd.Series) -> pd.Series:
        ids = ids.astype("string")
        emails = emails.astype("string")
        if self.id_email:
            emails = emails.fillna(ids.map(self.id_email).astype("string"))
        pairs = pd.DataFrame({"i": ids, "e": emails})
        uniq = pairs.drop_duplicates()
        mapping = {(i if pd.notna(i) else None, e if pd.notna(e) else None):
                   self.ps.person(self.namespace, i if pd.notna(i) else None, e if pd.notna(e) else None)
                   for i, e in zip(uniq["i"], uniq["e"], strict=True)}
        self.email_keys.update(k for (_, e), k in mapping.items() if e is not None and k is not None)
        out = [mapping[(i if pd.notna(i) else None, e if pd.notna(e) else None)]
               for i, e in zip(pairs["i"], pairs["e"], strict=True)]
        return pd.Series(out, index=ids.index, dtype="string")


def pseudonymise_activities(acts: pd.DataFrame, ident: Identity, source: str) -> pd.DataFrame:
    """Canonical activity columns with keys in place of identifiers (clear columns dropped)."""
    out = acts.assign(source=source, actor_key=ident.keys(acts["actor_id"], acts["actor_email"]),
                      target_key=ident.keys(acts["target_id"], acts["target_email"]))
    return raw_activities_to_canonical(out.drop(columns=["actor_id", "actor_email", "target_id", "target_email"]),
                                       source)


def people_snapshot(parsed: Parsed, directory: pd.DataFrame | None, ident: Identity, day: dt.date,
                    activity_keys: set[str]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The directory as of `day` plus preset labels, plus a bare row for every participant not in it, so
    that every actor of the file is a known person."""
    frames = []
    if directory is not None:
        if "_map" in directory.columns:
            # identity-map rows only pair ids with emails: they are not people of the directory
            directory = directory[~directory["_map"].astype(bool)].drop(columns="_map")
        frames.append(directory_as_of(directory, day))
    if parsed.people is not None:
        frames.append(parsed.people)
    people = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["employee_id", "email", "department", "location", "level", "manager_id", "manager_email",
                 "is_leader", "hire_date", "termination_date"])
    keyed = pd.DataFrame({
        "person_key": ident.keys(people["employee_id"], people["email"]),
        "department": people["department"], "location": people["location"], "level": people["level"],
        "manager_key": ident.keys(people["manager_id"], people["manager_email"]),
        "is_leader": people["is_leader"].fillna(False).astype(bool),
        "hire_date": people["hire_date"], "termination_date": people["termination_date"],
    })
    # the HR directory comes first: where a preset label and the directory disagree, HR wins
    keyed = keyed.drop_duplicates("person_key", keep="first").assign(in_directory=True, account_type="member",
                                                                     is_deactivated=False)
    in_directory = set(keyed["person_key"])
    missing = sorted(activity_keys - in_directory)
    # participants the directory does not list: people of unknown department, outside the directory
    bare = pd.DataFrame({"person_key": pd.Series(missing, dtype="string"), "is_leader": False,
                         "in_directory": False, "account_type": "member", "is_deactivated": False})
    stats = {"directory_people": len(keyed), "participants": len(activity_keys),
             "participants_in_directory": len(activity_keys & in_directory),
             "participants_without_directory_row": len(missing)}
    return pd.concat([keyed, bare], ignore_index=True), stats


def containers_frame(acts: pd.DataFrame, opts: FileImportOptions, source: str) -> pd.DataFrame:
    ids = sorted(set(acts["container_id"].dropna()))
    direct = opts.format in _DIRECT
    kind = opts.container_kind or ("chat" if direct else "channel")
    visibility = opts.container_visibility or ("direct" if direct else "public")
    return pd.DataFrame({"source": source, "container_id": pd.Series(ids, dtype="string"), "kind": kind,
                         "visibility": visibility})


def lands_directory(cfg: Any) -> bool:
    """A file source is an HR directory when it has a `directory` CSV or dataset node labels
    (`departments`, `core`); its other participants are landed as people outside the directory."""
    try:
        opts = FileImportOptions.model_validate(cfg.options)
    except ValueError:
        return False
    return any(getattr(opts, name) is not None for name in ("directory", "departments", "core"))


# ------------------------------------------------------------------------------------------ guards
class ShrinkRefused(ImportRejected):
    """The import would empty days already landed for the source, or lose more than `max_shrink` of
    their events: nothing is written. `days` lists (day, events landed, events in this file)."""

    def __init__(self, file: str, source: str, days: list[tuple[dt.date, int, int]], max_shrink: float,
                 empty_file: bool):
        self._args = (file, source, days, max_shrink, empty_file)
        self.days = days
        self.problems = [Problem(file, None, _shrink_reason(d, old, new, max_shrink)) for d, old, new in days]
        shown = "\n  ".join(_shrink_reason(d, old, new, max_shrink) for d, old, new in days[:MAX_DAYS_SHOWN])
        more = f"\n  ... and {len(days) - MAX_DAYS_SHOWN} more day(s)" if len(days) > MAX_DAYS_SHOWN else ""
        allow = "replace_days: true" + (" and allow_empty: true" if empty_file else "")
        ValueError.__init__(self, (
            f"import refused, nothing was loaded: {file} has fewer events than the raw lake already holds for "
            f"source {source!r} on {len(days)} day(s) (events landed -> events in this file):\n  {shown}{more}\n"
            f"A day may lose at most max_shrink ({max_shrink * 100:g}%) of its events and never all of them. "
            f"If this file is meant to replace those days (events deleted at the source, a corrected export), "
            f"set {allow} for this run; a header-only or cut-off upload should be fixed and dropped again."))

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (a task runner may carry it across processes)
        return (ShrinkRefused, self._args)


MAX_DAYS_SHOWN = MAX_REPORTED


def _shrink_reason(day: dt.date, old: int, new: int, max_shrink: float) -> str:
    why = "the day would be emptied" if new == 0 else \
        f"-{(old - new) / old:.1%}, more than max_shrink {max_shrink * 100:g}%"
    return f"{day}: {old} -> {new} event(s) ({why})"


def landed_counts(base: Path, start: dt.date, end: dt.date) -> dict[dt.date, int]:
    """Events already landed per day of [start, end], from the Parquet footers (no data read)."""
    out = {}
    for d in lake.partition_days(base):
        if start <= d <= end:
            for f in lake.partition_files(base, [d]):
                out[d] = pq.read_metadata(f).num_rows
    return out


def shrinking_days(old: dict[dt.date, int], new: dict[dt.date, int], max_shrink: float
                   ) -> list[tuple[dt.date, int, int]]:
    """(day, old, new) for every landed day the import would empty or shrink by more than max_shrink."""
    out = []
    for d, n_old in sorted(old.items()):
        n_new = new.get(d, 0)
        if n_old > 0 and (n_new == 0 or n_old - n_new > max_shrink * n_old + 1e-9):
            out.append((d, n_old, n_new))
    return out


def _locations(parsed: Parsed, path: Path, positions: np.ndarray) -> list[str]:
    """file:line of activity rows, for reports (never an identifier)."""
    lines = parsed.lines
    if lines is None or len(lines) != len(parsed.activities):
        return [f"{path}: event {int(i) + 1}" for i in positions]
    return [f"{path}:{parsed.unit} {int(lines[i])}" for i in positions]


def _iso(ts: pd.Series) -> tuple[str | None, str | None]:
    return (ts.min().isoformat(), ts.max().isoformat()) if len(ts) else (None, None)


def outside_interval(occurred: pd.Series, before: np.ndarray, after: np.ndarray, parsed: Parsed,
                     path: Path) -> dict[str, Any]:
    """{"before", "after", "first", "last", "examples"}: events not landed because their UTC day is before
    the interval's start or after its end, their earliest and latest time, and a few file:line examples
    (the first ones before, then the first ones after, in file order)."""
    first, last = _iso(occurred[before | after])
    examples = _locations(parsed, path, np.concatenate([np.flatnonzero(before)[:3], np.flatnonzero(after)[:3]]))
    return {"before": int(before.sum()), "after": int(after.sum()), "first": first, "last": last,
            "examples": examples}


def future_dated(occurred: pd.Series, parsed: Parsed, path: Path) -> dict[str, Any]:
    """Events dated more than a day after the file was last modified: a file cannot hold events from after
    it was written (a wrong clock, time zone or epoch unit at the export)."""
    modified = pd.Timestamp(path.stat().st_mtime, unit="s", tz="UTC").floor("s")
    mask = (occurred > modified + FUTURE_SLACK).to_numpy()
    first, last = _iso(occurred[mask])
    return {"count": int(mask.sum()), "first": first, "last": last, "file_modified": modified.isoformat(),
            "examples": _locations(parsed, path, np.flatnonzero(mask)[:EXAMPLES])}


# ------------------------------------------------------------------------------------------ extract
def extract(ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport:
    opts = options(ctx)
    name = ctx.source.name
    parsed, directory = parse(opts, ctx.settings.questions, ctx.settings.topics)  # raises before any write
    ident = Identity(ctx.pseudonymiser, opts.id_namespace or name, directory)
    acts = pseudonymise_activities(parsed.activities, ident, name)
    occurred = acts["occurred_at"]
    before = (occurred < pd.Timestamp(start, tz="UTC")).to_numpy()
    after = (occurred >= pd.Timestamp(end + dt.timedelta(days=1), tz="UTC")).to_numpy()
    in_range = ~(before | after)
    day = occurred[in_range].dt.date
    new_counts = {d: int(n) for d, n in day.value_counts().items()}

    # guards, before anything is written
    base = lake.raw_dir(ctx.lake_dir, name, "activities")
    old_counts = landed_counts(base, start, end)
    shrinking = shrinking_days(old_counts, new_counts, opts.max_shrink)
    if shrinking and not opts.replace_days:
        raise ShrinkRefused(str(opts.path), name, shrinking, opts.max_shrink,
                            empty_file=acts.empty and not opts.allow_empty)
    if acts.empty and not opts.allow_empty:
        what = "is empty (0 bytes)" if opts.path.stat().st_size == 0 else "has no data records (a header at most)"
        raise ImportRejected([Problem(str(opts.path), None, f"the file {what}: no event to import. If an empty "
                                      "drop is expected, set allow_empty: true")])

    keys = set(acts["actor_key"].dropna()) | set(acts["target_key"].dropna())
    people, id_stats = people_snapshot(parsed, directory, ident, end, keys)
    containers = containers_frame(acts, opts, name)
    schema = pa.Table.from_pandas(acts.iloc[:0], preserve_index=False).schema
    report = ExtractReport(source=name, days=[])
    landed = 0
    for d, part in acts[in_range].groupby(day, sort=True):
        lake.write_partition(base, d, pa.Table.from_pandas(part, schema=schema, preserve_index=False))
        report.days.append(d)
        landed += len(part)
    # a day of the interval that no longer has events must not keep what an earlier import landed
    for d in sorted(x for x in old_counts if x not in set(report.days)):
        lake.write_partition(base, d, pa.Table.from_pandas(acts.iloc[:0], schema=schema, preserve_index=False))
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "people"), end,
                         pa.Table.from_pandas(people, preserve_index=False))
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "containers"), end,
                         pa.Table.from_pandas(containers, preserve_index=False))
    report.rows = {"activities": landed, "people": len(people), "containers": len(containers)}
    outside = outside_interval(occurred, before, after, parsed, opts.path)
    future = future_dated(occurred, parsed, opts.path)
    first, last = _iso(occurred)
    report.details = {
        "format": opts.format, "events_in_file": len(acts), "events_in_interval": landed,
        "events_outside_interval": int((~in_range).sum()),
        "outside_interval": outside, "future_dated": future,
        # landed days that this import made smaller (within max_shrink, or any with replace_days)
        "days_shrunk": [{"day": d.isoformat(), "before": old, "after": new_counts.get(d, 0)}
                        for d, old in sorted(old_counts.items()) if new_counts.get(d, 0) < old],
        "first_event": first, "last_event": last,
        "verbs": {str(k): int(v) for k, v in acts["verb"].value_counts().items()},
        **id_stats, **parsed.details,
        # the share of participants keyed by an email, i.e. matchable with other platforms (issue 4.6)
        "participants_keyed_by_email": len(keys & ident.email_keys),
        "identity_matched_share": round(len(keys & ident.email_keys) / len(keys), 4) if keys else None,
    }
    _warn(name, opts.path, start, end, len(acts), outside, future)
    return report


def _warn(name: str, path: Path, start: dt.date, end: dt.date, total: int, outside: dict[str, Any],
          future: dict[str, Any]) -> None:
    n_out = outside["before"] + outside["after"]
    if n_out:
        log.warning("file import %s: %d of %d event(s) of %s are outside the interval %s..%s and were not landed "
                    "(%d before, %d after; first %s, last %s; e.g. %s)", name, n_out, total, path, start, end,
                    outside["before"], outside["after"], outside["first"], outside["last"],
                    ", ".join(outside["examples"]))
    if future["count"]:
        log.warning("file import %s: %d event(s) of %s are dated after the file was last modified (%s), up to %s: "
                    "check the clock, time zone or epoch unit of the export (e.g. %s)", name, future["count"], path,
                    future["file_modified"], future["last"], ", ".join(future["examples"]))


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    name = ctx.source.name
    out: dict[str, pd.DataFrame] = {}
    raw = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, "activities"), day)
    if raw is not None:
        out["activities"] = raw_activities_to_canonical(raw.to_pandas(), name)[list(ACTIVITIES.names)]
    for stream in ("people", "containers"):
        t = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, stream), day)
        if t is not None:
            out[stream] = t.to_pandas()
    return out

