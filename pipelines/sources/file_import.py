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

This module must never write, log or return a clear identifier or a message text: the parsed frames
hold them in memory only, and everything handed to `lake.write_partition` is keyed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipelines import lake
from pipelines.canonical import raw_activities_to_canonical
from pipelines.model import ACTIVITIES, CONTAINER_KINDS, VISIBILITIES
from pipelines.privacy import Pseudonymiser
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.file_import_formats import (
    PEOPLE_COLUMNS,
    ImportRejected,
    Problem,
    directory_as_of,
    read_activities,
    read_directory,
    read_identity_map,
)
from pipelines.sources.file_import_presets import PRESETS, Parsed, PresetInput

TABULAR = ("csv", "jsonl", "parquet")
FORMATS = (*TABULAR, "canonical", *PRESETS)
#: presets whose records are person-to-person messages: the default container is a direct "mail" one
_DIRECT = {"snap_edges", "konect", "benson_temporal", "enron_tsv", "workfrance"}
_SIDE_FILES = {"departments": {"snap_edges", "konect", "benson_temporal", "workfrance", "enron_tsv"},
               "recipients": {"enron_tsv"}, "core": {"benson_temporal"}}


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

    @model_validator(mode="after")
    def _check(self) -> FileImportOptions:
        for name, allowed in _SIDE_FILES.items():
            if getattr(self, name) is not None and self.format not in allowed:
                raise ValueError(f"option {name} is not used by format {self.format} (only {sorted(allowed)})")
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


def options(ctx: SourceContext) -> FileImportOptions:
    return FileImportOptions.model_validate(ctx.source.options)


# ------------------------------------------------------------------------------------------- parse
def parse(opts: FileImportOptions) -> tuple[Parsed, pd.DataFrame | None]:
    """Read and check every input; (parsed activities with preset people, HR directory). Raises
    ImportRejected on any malformed input, before anything is written. Pure apart from reading files."""
    for label, p in (("path", opts.path), ("directory", opts.directory), ("identity_map", opts.identity_map),
                     ("departments", opts.departments),
                     ("recipients", opts.recipients), ("core", opts.core)):
        if p is not None and not p.is_file():
            raise ImportRejected([Problem(str(p), None, f"option {label}: file does not exist")])
    if opts.format in PRESETS:
        kind_default = "mail" if opts.format in _DIRECT else None
        parsed = PRESETS[opts.format](PresetInput(
            path=opts.path, departments=opts.departments, recipients=opts.recipients, core=opts.core,
            synthetic_date=opts.synthetic_date, edge_verb=opts.edge_verb,
            container_id=opts.container_id or kind_default))
    else:
        parsed = Parsed(read_activities(opts.path, opts.tabular_format()))
    directory = read_directory(opts.directory) if opts.directory is not None else None
    if opts.identity_map is not None:
        # the mapping file is applied like directory rows that pair an id with an email; it wins on conflict
        pairs = pd.DataFrame([{"employee_id": k, "email": v} for k, v in read_identity_map(opts.identity_map).items()])
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
    keyed = keyed.drop_duplicates("person_key", keep="first")
    in_directory = set(keyed["person_key"])
    missing = sorted(activity_keys - in_directory)
    bare = pd.DataFrame({"person_key": pd.Series(missing, dtype="string"), "is_leader": False})
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


# ------------------------------------------------------------------------------------------ extract
def extract(ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport:
    opts = options(ctx)
    name = ctx.source.name
    parsed, directory = parse(opts)  # raises before any write
    ident = Identity(ctx.pseudonymiser, opts.id_namespace or name, directory)
    acts = pseudonymise_activities(parsed.activities, ident, name)
    day = acts["occurred_at"].dt.date
    in_range = (day >= start) & (day <= end)
    keys = set(acts["actor_key"].dropna()) | set(acts["target_key"].dropna())
    people, id_stats = people_snapshot(parsed, directory, ident, end, keys)
    containers = containers_frame(acts, opts, name)

    base = lake.raw_dir(ctx.lake_dir, name, "activities")
    existing = set(lake.partition_days(base))
    schema = pa.Table.from_pandas(acts.iloc[:0], preserve_index=False).schema
    report = ExtractReport(source=name, days=[])
    landed = 0
    for d, part in acts[in_range].groupby(day[in_range], sort=True):
        lake.write_partition(base, d, pa.Table.from_pandas(part, schema=schema, preserve_index=False))
        report.days.append(d)
        landed += len(part)
    # a day of the interval that no longer has events must not keep what an earlier import landed
    for d in sorted(x for x in existing if start <= x <= end and x not in set(report.days)):
        lake.write_partition(base, d, pa.Table.from_pandas(acts.iloc[:0], schema=schema, preserve_index=False))
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "people"), end,
                         pa.Table.from_pandas(people, preserve_index=False))
    lake.write_partition(lake.raw_dir(ctx.lake_dir, name, "containers"), end,
                         pa.Table.from_pandas(containers, preserve_index=False))
    report.rows = {"activities": landed, "people": len(people), "containers": len(containers)}
    occurred = acts["occurred_at"]
    report.details = {
        "format": opts.format, "events_in_file": len(acts), "events_in_interval": landed,
        "events_outside_interval": int((~in_range).sum()),
        "first_event": occurred.min().isoformat() if len(acts) else None,
        "last_event": occurred.max().isoformat() if len(acts) else None,
        "verbs": {str(k): int(v) for k, v in acts["verb"].value_counts().items()},
        **id_stats, **parsed.details,
        # the share of participants keyed by an email, i.e. matchable with other platforms (issue 4.6)
        "participants_keyed_by_email": len(keys & ident.email_keys),
        "identity_matched_share": round(len(keys & ident.email_keys) / len(keys), 4) if keys else None,
    }
    return report


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

