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
counts, the report's refresh date and period, and a pseudonymous key: the person's mail (from `/users`,
option `resolve_mail`; the UPN when the mail is unknown or /users is forbidden) hashed like an email, so
the same person matches Slack and Teams (msgraph keys people by mail too; a UPN is often not the mail). This raw landing *is* the aggregate table of this source.
Concealed names: unless an admin turns off "Display concealed user, group, and site names in all reports",
UPNs, display names and group names are 32-hex hashes and the User Id the zero GUID. Those rows cannot be
joined to people: they are landed with `person_key` null and `concealed` true, counted as unresolved in
the extract report, and produce no activity.

Canonical mapping: the `usage` table (`pipelines.model.USAGE`), one row per resolved person, product and
report date, with the counts as counts: Teams channel messages (posts + replies, or the report's team
chat message count when it has no split), posts, replies, private chat messages, urgent messages,
meetings, calls; Engage messages posted, likes, reads. Never activities: counts are not events, and the
synthetic `post`/`reply` rows earlier versions made of them (event ids `agg:...`) were counted by every
post, response, container and network metric as real posts, twice where the platform's messages are
loaded too (`msgraph`). What the usage table feeds (docs/metrics.md says it per table, from the models'
dependencies): `mart_usage_daily` (per-segment usage counts, suppressed like the other marts), and the
usage segments and adoption curve (`fct_person_usage_daily`, `mart_adoption_daily`) for the products no
per-event source of the configuration loads (`usage_report_products`): a tenant that loads its Teams
messages through `msgraph` gets Teams adoption from the messages and Engage adoption from the report,
never both for one product. The user reports are also the platform's user listing (people rows with
`in_directory` false, deactivated when the report says deleted). The communities report stays in the
raw landing. What cannot be computed from aggregates, and must be read from a message source (`msgraph`,
`slack`, ...): posts and replies as events, threads and thread depth, replies-to-whom and every
interaction edge (reply, reaction and mention targets), hence all network metrics (degree, centrality,
communities, brokerage, reciprocity, cross-department ties), response times and answered questions,
mentions, content length and questions, time of day. Lakes landed by earlier versions are migrated by
`migrate_lake` (their days re-staged from the raw landing).

This module must never write, log or return UPNs, display names, group names, user ids, tokens or secrets.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pandas as pd
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines import lake
from pipelines.canonical import platform_people
from pipelines.connectors.errors import ApiError, AuthError
from pipelines.model import USAGE
from pipelines.privacy import Pseudonymiser
from pipelines.sources import ExtractReport, SourceContext
from pipelines.sources.msgraph import GraphOptions, make_budget, make_client, resolve_credentials
from pipelines.sources.msgraph_http import GRAPH_BASE_URL
from pipelines.sources.msgraph_messages import PLATFORM

log = logging.getLogger(__name__)

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
#: an aggregate-only source: it lands counts (the `usage` table), never activities (pipelines.catalogue
#: says per table whether it is computed from the per-event sources, from these, or from both)
AGGREGATE_ONLY = True

#: how the synthetic activities of earlier versions were told apart (event ids `agg:<family>:<day>:...`)
LEGACY_EVENT_PREFIX = "agg:"


class UsageOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str = GRAPH_BASE_URL
    token_url: str | None = None
    tenant_id_env: str = "MSGRAPH_TENANT_ID"
    client_id_env: str = "MSGRAPH_CLIENT_ID"
    client_secret_env: str = "MSGRAPH_CLIENT_SECRET"
    reports: list[str] = Field(default_factory=lambda: list(REPORTS))
    resolve_mail: bool = Field(True, description="read /users (User.Read.All) to key people by their mail, as "
                               "msgraph does: a UPN that is not the mail would otherwise be another person")
    synthesise_views: bool = Field(False, description="Viva Engage reads count as actions in the usage "
                                   "segments (reads are always kept in the usage table; large counts)")
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
        return GraphOptions.model_validate(self.model_dump(exclude={"reports", "synthesise_views", "resolve_mail"}))


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


def parse_report(text: str, spec: ReportSpec, ps: Pseudonymiser, mail: Mapping[str, str] | None = None
                 ) -> list[dict[str, Any]]:
    """Rows of one report CSV, by header name, pseudonymised. `mail`: the tenant's user id and lower-case
    UPN -> mail (`user_mail`): a person is keyed by their mail like every other source, the UPN only when
    the mail is unknown. Raises ReportFormatError naming what is wrong."""
    mail = mail or {}
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
            uid = uid if uid and uid != ZERO_GUID else ""
            email = mail.get(uid) or mail.get(upn.lower()) or upn
            row["person_key"] = None if concealed else ps.person(PLATFORM, uid or None, email)
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
def user_mail(api: Any) -> dict[str, str]:
    """{user id: mail, lower-case UPN: mail} of the tenant's users (`/users`, User.Read.All), so that a
    report row is keyed by the mail as msgraph keys the same person (a UPN such as
    alias@tenant.onmicrosoft.com is often not the mail). Only the mapping is kept, in memory."""
    out: dict[str, str] = {}
    url = api.url("users", {"$select": "id,userPrincipalName,mail", "$top": 999})
    for u in api.items(url, endpoint="users", buckets=("directory",)):
        email = u.get("mail") or u.get("userPrincipalName")
        if not isinstance(email, str) or not email:
            continue
        if isinstance(u.get("id"), str) and u["id"]:
            out[u["id"]] = email
        if isinstance(u.get("userPrincipalName"), str) and u["userPrincipalName"]:
            out[u["userPrincipalName"].strip().lower()] = email
    return out


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
    mail: dict[str, str] = {}
    users_forbidden = False
    try:
        if opts.resolve_mail:
            try:
                mail = user_mail(api)
            except AuthError as exc:
                if exc.status != 403:
                    raise
                users_forbidden = True  # User.Read.All not granted: keyed by UPN (reported)
                log.warning("%s: /users is forbidden (User.Read.All not granted): people are keyed by their UPN, "
                            "which may not match their mail in other sources", ctx.source.name)
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
                rows = parse_report(body["csv"], spec, ctx.pseudonymiser, mail)
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
                      "users_forbidden": users_forbidden,
                      "http": api.http.stats.as_dict()}
    return report


# --- canonicalisation ----------------------------------------------------------------------------------
#: the people listing of the reports: every licensed user of the tenant, active or not
_LISTING = ("teams_user", "engage_user")


def _count(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _usage_rows(rows: pd.DataFrame, day: dt.date, product: str, source: str, reads_are_actions: bool
                ) -> list[dict[str, Any]]:
    """One usage row per resolved person of a user report (concealed rows have no person: left out)."""
    out: list[dict[str, Any]] = []
    for r in rows.to_dict("records"):
        key = r.get("person_key")
        if not key or r.get("concealed"):
            continue
        row: dict[str, Any] = {"source": source, "usage_date": day, "person_key": key, "product": product,
                               "reads_are_actions": reads_are_actions and product == "engage",
                               "refresh_date": r.get("refresh_date")}
        if product == "teams":
            posts, replies = _count(r.get("posts")), _count(r.get("replies"))
            split = posts is not None or replies is not None
            row.update(posts=posts, replies=replies,
                       channel_messages=(posts or 0) + (replies or 0) if split else _count(r.get("team_chat_messages")),
                       chat_messages=_count(r.get("private_chat_messages")),
                       urgent_messages=_count(r.get("urgent_messages")), meetings=_count(r.get("meetings")),
                       calls=_count(r.get("calls")))
        else:
            row.update(channel_messages=_count(r.get("posted")), reactions=_count(r.get("liked")),
                       reads=_count(r.get("read")))
        out.append(row)
    return out


def _listing(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The platform's user listing (in_directory false): the resolved people of the user reports, an
    account deleted in every report that names it deactivated."""
    rows = pd.concat([f[["person_key", "concealed", "is_deleted"]] for f in frames], ignore_index=True)
    rows = rows[rows["person_key"].notna() & ~rows["concealed"].astype(bool)]
    deleted = rows.assign(is_deleted=rows["is_deleted"].astype("boolean").fillna(False).astype(bool)) \
        .groupby("person_key", sort=True)["is_deleted"].all()
    return platform_people(pd.DataFrame({"person_key": deleted.index.astype("string"), "account_type": "member",
                                         "is_deactivated": deleted.to_numpy()}))


def canonicalise(ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]:
    """The `usage` rows of `day` (one per resolved person and product) and the people the user reports
    list, from the raw landing only. Never activities: the counts of a report are not events, and turning
    them into synthetic posts (as this source did before) made every post, response and network metric
    count them, twice where the platform's messages are loaded too (`msgraph`). The communities report
    (`engage_groups`) stays in the raw landing: it has no person."""
    opts = options(ctx)
    name = ctx.source.name
    records: list[dict[str, Any]] = []
    listed: list[pd.DataFrame] = []
    for report, product in (("teams_user", "teams"), ("engage_user", "engage")):
        table = lake.read_partition(lake.raw_dir(ctx.lake_dir, name, REPORTS[report].stream), day)
        if table is None:
            continue
        df = table.to_pandas()
        records += _usage_rows(df, day, product, name, opts.synthesise_views)
        listed.append(df)
    if not listed:
        return {}
    usage = pa.Table.from_pylist(records, schema=USAGE).to_pandas() if records else \
        USAGE.empty_table().to_pandas()
    return {"usage": usage, "people": _listing(listed)}


# --- migration ------------------------------------------------------------------------------------------
def migrate_lake(settings: Any, source: str) -> dict[str, int]:
    """Lakes written before the `usage` table hold this source's counts as synthetic activities
    (`event_id` starting with `agg:`) and pseudo-containers (`aggregate:...`). Each canonical activity
    day that holds such rows is handed back to the stage: when its raw landing is still there (it is
    kept), the day is journaled as raw-pending, so the next stage re-canonicalises it into `usage` and
    land replaces the activity partition with an empty one; publish then covers the day again, which
    removes the synthetic rows from the warehouse and rebuilds the incremental models of that day.
    A day without its raw landing has the synthetic rows removed from its partition and is journaled
    for publication. The pseudo-containers snapshots are removed. Idempotent: a migrated lake has no
    synthetic rows, so the next call does nothing. Call it under the source's lock (`jobs.covered_interval`).
    Returns what it did."""
    import shutil

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    lake_dir = settings.lake_dir
    done = {"days_restaged": 0, "days_cleaned": 0, "containers_snapshots_removed": 0}
    base = lake.canonical_dir(lake_dir, "activities") / f"source={source}"
    restage: list[dt.date] = []
    cleaned: list[dt.date] = []
    for day in lake.partition_days(base):
        path = lake.partition_dir(base, day) / lake.PART
        ids = pq.read_table(path, columns=["event_id"]).column("event_id")
        legacy = pc.starts_with(ids, LEGACY_EVENT_PREFIX)
        if not pc.any(legacy).as_py():
            continue
        raw = [lake.partition_dir(lake.raw_dir(lake_dir, source, REPORTS[r].stream), day) / lake.PART
               for r in _LISTING]
        if any(f.exists() for f in raw):
            restage.append(day)
        else:
            table = pq.read_table(path)
            lake.write_partition(base, day, table.filter(pc.invert(pc.starts_with(table.column("event_id"),
                                                                                  LEGACY_EVENT_PREFIX))))
            cleaned.append(day)
    if restage:
        lake.pending(lake_dir, source, "raw").add(restage)
    if cleaned:
        lake.pending(lake_dir, source, "canonical").add(cleaned)
    containers = lake.canonical_dir(lake_dir, "containers") / f"source={source}"
    for day in lake.partition_days(containers):
        ids = pq.read_table(lake.partition_dir(containers, day) / lake.PART, columns=["container_id"])
        if pc.any(pc.starts_with(ids.column("container_id"), "aggregate")).as_py():
            shutil.rmtree(lake.partition_dir(containers, day))
            done["containers_snapshots_removed"] += 1
    done["days_restaged"], done["days_cleaned"] = len(restage), len(cleaned)
    if any(done.values()):
        log.warning("%s: this lake holds usage-report counts as synthetic activities (event ids 'agg:...') from "
                    "before the usage table; migrated: %s (the days are re-staged from the raw landing into "
                    "usage and republished, which removes the synthetic posts from every post, response and "
                    "network metric)", source, done)
    return done


# --- what the reports stand for ------------------------------------------------------------------------
#: per-event source kinds that load the messages a report product counts (their counts would double)
MESSAGE_KINDS = {"teams_channels": ("msgraph",), "engage": ("yammer", "yammer_export")}


def report_products(settings: Any) -> dict[str, bool]:
    """Which report counts stand for activity in the usage segments (`fct_person_usage_daily`): a
    product's counts do unless an enabled per-event source loads its messages (Teams channels: a
    `msgraph` source; Teams chats: a `msgraph` source with `include_chats`; Viva Engage: a `yammer` or
    `yammer_export` source), whose events count instead. The bound parameters of the SQL models."""
    enabled = [s for s in settings.sources if s.enabled]
    graph = [s for s in enabled if s.kind in MESSAGE_KINDS["teams_channels"]]
    return {"usage_report_teams_channels": not graph,
            "usage_report_teams_chat": not any(bool(s.options.get("include_chats")) for s in graph),
            "usage_report_engage": not any(s.kind in MESSAGE_KINDS["engage"] for s in enabled)}
