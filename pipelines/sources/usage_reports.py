"""Microsoft 365 usage reports (kind "m365_usage"): aggregate-only activity for tenants whose messages cannot
be read (no protected-API consent) or for Viva Engage, whose content API is separate.

Reports read, one call per report and per day with the `(date=YYYY-MM-DD)` form (the API serves the last
30 days; an older date is reported as unavailable, not an error):
  teams_user     getTeamsUserActivityUserDetail   per user: posts, replies, team chat and private chat
                                                  messages, urgent messages, meetings, calls
  engage_user    getYammerActivityUserDetail      per user: posted, read, liked
  engage_groups  getYammerGroupsActivityDetail    per community: members, posted, read, liked
The report function answers 302 to a short-lived pre-authenticated CSV, which is downloaded without the
Authorization header (`pipelines.sources.msgraph_http`). CSVs are parsed by header *name*: real tenants'
column order differs from the documented one; an optional UTF-8 BOM, empty count cells (missing, not 0),
`True/False/Yes/No` booleans and ISO-8601 durations are handled; a missing required column is rejected
with a message naming it and the columns found.

Landing (raw/source=<name>/stream=<report>/date=D): one row per person (or community) and day with the
counts, the report's refresh date and period, and a pseudonymous key: the UPN is hashed like an email,
so the same person matches Slack and Teams. This raw landing *is* the aggregate table of this source.
Concealed names: unless an admin turns off "Display concealed user, group, and site names in all reports",
UPNs, display names and group names are 32-hex hashes and the User Id the zero GUID. Those rows cannot be
joined to people: they are landed with `person_key` null and `concealed` true, counted as unresolved in
the extract report, and produce no activity.

Canonical mapping: per-person-day synthetic activity rows, flagged as aggregate by an `event_id` starting
with `agg:` and a `container_id` starting with `aggregate:` (one pseudo-container per report family, also
returned in the containers table): Teams posts -> `post`, replies -> `reply`, private chat messages ->
`post` in `aggregate:teams-chat` (team chat messages stand for posts when a report has no post/reply
columns); Engage posted -> `post`, liked -> `reaction`, read -> `view` (option `synthesise_views`, off by
default: read counts are large). All rows are dated at 00:00 UTC of the report date, with no parent, no
target, no thread and no content features. What cannot be computed from aggregates, and must be read
from a message source (`msgraph`, `slack`, ...): threads and thread depth, replies-to-whom and every
interaction edge (reply, reaction and mention targets), hence all network metrics (degree, centrality,
communities, brokerage, reciprocity, cross-department ties), response times and answered questions,
mentions, content length and questions, time of day.

This module must never write, log or return UPNs, display names, group names, user ids, tokens or secrets.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines import lake
from pipelines.canonical import raw_activities_to_canonical
from pipelines.connectors.errors import ApiError
from pipelines.privacy import Pseudonymiser
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.msgraph import GraphOptions, make_budget, make_client, resolve_credentials
from pipelines.sources.msgraph_http import GRAPH_BASE_URL
from pipelines.sources.msgraph_messages import PLATFORM

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_CONCEALED = re.compile(r"^[0-9A-Fa-f]{32}$")


class ReportFormatError(ValueError):
    """A report CSV that cannot be read; the message names the report and the column or row at fault."""


@dataclass(frozen=True)
class ReportSpec:
    function: str
    stream: str
    entity: str  # user | group
    required: tuple[str, ...]
    counts: dict[str, str]  # CSV header -> landed column


REPORTS: dict[str, ReportSpec] = {
    "teams_user": ReportSpec(
        "getTeamsUserActivityUserDetail", "teams_user_activity", "user",
        ("Report Refresh Date", "User Principal Name", "Team Chat Message Count", "Private Chat Message Count"),
        {"Team Chat Message Count": "team_chat_messages", "Private Chat Message Count": "private_chat_messages",
         "Post Messages": "posts", "Reply Messages": "replies", "Urgent Messages": "urgent_messages",
         "Meeting Count": "meetings", "Call Count": "calls"}),
    "engage_user": ReportSpec(
        "getYammerActivityUserDetail", "engage_user_activity", "user",
        ("Report Refresh Date", "User Principal Name", "Posted Count", "Read Count", "Liked Count"),
        {"Posted Count": "posted", "Read Count": "read", "Liked Count": "liked"}),
    "engage_groups": ReportSpec(
        "getYammerGroupsActivityDetail", "engage_groups_activity", "group",
        ("Report Refresh Date", "Group Display Name", "Member Count", "Posted Count"),
        {"Member Count": "member_count", "Posted Count": "posted", "Read Count": "read", "Liked Count": "liked"}),
}
PSEUDO_CONTAINERS = {"aggregate:teams-channels": "feed", "aggregate:teams-chat": "chat", "aggregate:engage": "feed"}


class UsageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = GRAPH_BASE_URL
    token_url: str | None = None
    tenant_id_env: str = "MSGRAPH_TENANT_ID"
    client_id_env: str = "MSGRAPH_CLIENT_ID"
    client_secret_env: str = "MSGRAPH_CLIENT_SECRET"
    reports: list[str] = Field(default_factory=lambda: list(REPORTS))
    synthesise_views: bool = Field(False, description="one `view` row per Engage read (large)")
    rate_period_s: float = Field(1.0, gt=0)
    max_attempts: int = Field(6, ge=1)
    backoff_base_s: float = Field(1.0, ge=0)
    timeout_s: float = Field(60.0, gt=0)

    @field_validator("reports")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(REPORTS))
        if unknown:
            raise ValueError(f"unknown reports {unknown}; known: {sorted(REPORTS)}")
        return value

    def graph(self) -> GraphOptions:
        return GraphOptions.model_validate(self.model_dump(exclude={"reports", "synthesise_views"}))


def options(ctx: SourceContext) -> UsageOptions:
    return UsageOptions.model_validate(ctx.source.options)


# --- parsing -------------------------------------------------------------------------------------------
def _int(value: str | None, column: str, line: int) -> int | None:
    text = (value or "").strip()
    if not text:
        return None  # an empty cell is a missing count, not zero
    try:
        return int(float(text)) if "." in text else int(text)
    except ValueError:
        raise ReportFormatError(f"row {line}: {column!r} is not a count") from None


def _bool(value: str | None) -> bool | None:
    text = (value or "").strip().lower()
    return {"true": True, "yes": True, "false": False, "no": False}.get(text)


def _date(value: str | None, column: str, line: int) -> dt.date | None:
    text = (value or "").strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise ReportFormatError(f"row {line}: {column!r} is not a date") from None


def is_concealed(name: str | None) -> bool:
    return bool(name) and bool(_CONCEALED.match(str(name).strip())) and "@" not in str(name)


def parse_report(text: str, spec: ReportSpec, ps: Pseudonymiser) -> list[dict[str, Any]]:
    """Rows of one report CSV, by header name, pseudonymised. Raises ReportFormatError naming what is wrong."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise ReportFormatError(f"{spec.function}: empty file (no header row)") from None
    missing = [c for c in spec.required if c not in header]
    if missing:
        raise ReportFormatError(f"{spec.function}: missing column(s) {missing}; the header has {header}")
    out = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            raise ReportFormatError(f"{spec.function}: row {line} has {len(values)} cells, the header {len(header)}")
        cell: Mapping[str, str] = dict(zip(header, values, strict=True))
        row: dict[str, Any] = {
            "refresh_date": _date(cell.get("Report Refresh Date"), "Report Refresh Date", line),
            "report_period": _int(cell.get("Report Period"), "Report Period", line),
            "last_activity_date": _date(cell.get("Last Activity Date"), "Last Activity Date", line),
            "is_deleted": _bool(cell.get("Is Deleted")),
        }
        for column, name in spec.counts.items():
            row[name] = _int(cell.get(column), column, line) if column in cell else None
        if spec.entity == "user":
            upn = (cell.get("User Principal Name") or "").strip()
            uid = (cell.get("User Id") or "").strip()
            concealed = is_concealed(upn) or not upn
            row["concealed"] = concealed
            row["person_key"] = None if concealed else ps.person(PLATFORM, uid if uid and uid != ZERO_GUID else None,
                                                                 upn)
        else:
            group = (cell.get("Group Display Name") or "").strip()
            row["concealed"] = is_concealed(group)
            # group names are not personal but can be telling: only a keyed hash is kept
            row["group_key"] = ps.key_for("m365-group:" + group) if group else None
            row["group_type"] = (cell.get("Group Type") or "").strip().lower() or None
        out.append(row)
    return out


def _schema(spec: ReportSpec) -> pa.Schema:
    fields = [pa.field("report_date", pa.date32(), nullable=False), pa.field("refresh_date", pa.date32()),
              pa.field("report_period", pa.int32()), pa.field("last_activity_date", pa.date32()),
              pa.field("is_deleted", pa.bool_()), pa.field("concealed", pa.bool_(), nullable=False)]
    if spec.entity == "user":
        fields.append(pa.field("person_key", pa.string()))
    else:
        fields += [pa.field("group_key", pa.string()), pa.field("group_type", pa.string())]
    fields += [pa.field(name, pa.int64()) for name in spec.counts.values()]
    return pa.schema(fields)


# --- extraction ----------------------------------------------------------------------------------------
def extract(ctx: SourceContext, start: dt.date, end: dt.date, *, tenant_id: str | None = None,
            client_id: str | None = None, client_secret: str | None = None, access_token: str | None = None,
            transport: httpx.BaseTransport | None = None) -> ExtractReport:
    """Land the selected reports for each day of [start, end] that the API still serves."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    opts = options(ctx)
    gopts = opts.graph()
    creds = resolve_credentials(gopts, tenant_id=tenant_id, client_id=client_id, client_secret=client_secret,
                                access_token=access_token)
    api = make_client(gopts, creds, make_budget(gopts), transport)
    report = ExtractReport(source=ctx.source.name, days=[])
    unavailable: list[str] = []
    unresolved = {"rows": 0, "activity": 0}
    refresh: dict[str, str] = {}
    try:
        for day in lake.days_between(start, end):
            landed = False
            for name in opts.reports:
                spec = REPORTS[name]
                url = api.url(f"reports/{spec.function}(date={day.isoformat()})")
                try:
                    body = api.call(url, endpoint=f"report-{name}", buckets=("reports",), expect="csv", download=True)
                except ApiError as exc:
                    if exc.code == "http_400":  # outside the 30 days the service keeps
                        unavailable.append(f"{name}:{day.isoformat()}")
                        continue
                    raise
                rows = parse_report(body["csv"], spec, ctx.pseudonymiser)
                for r in rows:
                    r["report_date"] = day
                    if r["concealed"] and spec.entity == "user":
                        unresolved["rows"] += 1
                        unresolved["activity"] += sum(r.get(c) or 0 for c in ("posts", "replies", "posted", "liked",
                                                                                "private_chat_messages"))
                    if r["refresh_date"]:
                        refresh[name] = max(refresh.get(name, ""), r["refresh_date"].isoformat())
                table = pa.Table.from_pylist(rows, schema=_schema(spec))
                lake.write_partition(lake.raw_dir(ctx.lake_dir, ctx.source.name, spec.stream), day, table)
                report.rows[spec.stream] = report.rows.get(spec.stream, 0) + len(rows)
                landed = True
            if landed:
                report.days.append(day)
    finally:
        api.close()
    report.details = {"unavailable": unavailable, "unresolved_concealed": unresolved, "refresh_dates": refresh,
                      "http": api.http.stats.as_dict()}
    return report


# --- canonicalisation ----------------------------------------------------------------------------------
def _synthetic(rows: pd.DataFrame, day: dt.date, family: str, plan: list[tuple[str, str, str]],
               source: str) -> list[dict[str, Any]]:
    """`plan`: (count column, verb, container). One row per unit of each count of each resolved person."""
    at = pd.Timestamp(day, tz="UTC")
    out: list[dict[str, Any]] = []
    for r in rows.to_dict("records"):
        key = r.get("person_key")
        if not key or r.get("concealed"):
            continue
        for column, verb, container in plan:
            n = r.get(column)
            if n is None or pd.isna(n):
                continue
            for i in range(int(n)):
                out.append({"source": source, "event_id": f"agg:{family}:{day.isoformat()}:{key}:{column}:{i}",
                            "occurred_at": at, "actor_key": key, "verb": verb, "container_id": container,
                            "thread_id": None, "parent_id": None, "target_key": None, "content_length": None,
                            "is_question": False, "is_edited": False, "is_deleted": False})
    return out


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    """Synthetic aggregate activities and (pseudo-)containers of `day`, from the raw landing only."""
    opts = options(ctx)
    name = ctx.source.name
    records: list[dict[str, Any]] = []
    containers: list[dict[str, Any]] = []
    found = False
    teams = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, REPORTS["teams_user"].stream), day)
    if teams is not None:
        found = True
        df = teams.to_pandas()
        has_split = df["posts"].notna() | df["replies"].notna()
        records += _synthetic(df[has_split], day, "teams", [("posts", "post", "aggregate:teams-channels"),
                                                            ("replies", "reply", "aggregate:teams-channels"),
                                                            ("private_chat_messages", "post", "aggregate:teams-chat")],
                              name)
        records += _synthetic(df[~has_split], day, "teams", [("team_chat_messages", "post", "aggregate:teams-channels"),
                                                             ("private_chat_messages", "post", "aggregate:teams-chat")],
                              name)
    engage = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, REPORTS["engage_user"].stream), day)
    if engage is not None:
        found = True
        plan = [("posted", "post", "aggregate:engage"), ("liked", "reaction", "aggregate:engage")]
        if opts.synthesise_views:
            plan.append(("read", "view", "aggregate:engage"))
        records += _synthetic(engage.to_pandas(), day, "engage", plan, name)
    groups = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, REPORTS["engage_groups"].stream), day)
    if groups is not None:
        found = True
        for g in groups.to_pylist():
            if g["group_key"]:
                containers.append({"source": name, "container_id": f"aggregate-group:{g['group_key']}",
                                   "kind": "community", "visibility": "private" if g["group_type"] == "private"
                                   else "public", "member_count": g["member_count"], "owner_department": None,
                                   "created_at": None})
    if not found:
        return {}
    containers += [{"source": name, "container_id": cid, "kind": kind, "visibility": "public", "member_count": None,
                    "owner_department": None, "created_at": None} for cid, kind in PSEUDO_CONTAINERS.items()]
    frame = pd.DataFrame.from_records(records, columns=["source", "event_id", "occurred_at", "actor_key", "verb",
                                                        "container_id", "thread_id", "parent_id", "target_key",
                                                        "content_length", "is_question", "is_edited", "is_deleted"])
    conts = pd.DataFrame(containers)
    conts["member_count"] = conts["member_count"].astype("Int32")
    return {"activities": raw_activities_to_canonical(frame, name), "containers": conts}
