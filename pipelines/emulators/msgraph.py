"""A local Microsoft Graph emulator: a real HTTP server on 127.0.0.1 serving a demo organisation's tenant.

Endpoints, in the shapes of the Graph docs and of the fixtures of `API_FORMATS.md` section 2:
  POST /<tenant>/oauth2/v2.0/token                       client credentials -> bearer token
  GET  /v1.0/users, /v1.0/teams, /v1.0/teams/{id}/channels, /v1.0/users/{id}/chats
  GET  /v1.0/teams/{t}/channels/{c}/messages[?$expand=replies]   newest root first, replies inlined up to
       `expand_limit` then `replies@odata.nextLink`
  GET  .../messages/{id}/replies, .../messages/delta (`$filter=lastModifiedDateTime gt`, `$skiptoken`,
       `$deltatoken`; `@odata.nextLink` on every page but the last, `@odata.deltaLink` on the last)
  GET  /v1.0/chats/{id}/messages (`$orderby=lastModifiedDateTime desc`, `$filter=lastModifiedDateTime gt`)
  GET  /v1.0/reports/get<Report>(date=YYYY-MM-DD)        302 to /download/<token> (pre-authenticated: a
       request that carries an Authorization header there is refused), CSV in the real tenants' column order
Skip tokens are URL-encoded JSON, like Graph's; every link served is remembered and a request whose token
is not byte-identical to one served is counted (`stats.foreign_links`), so a client that rebuilds links
instead of following them is caught. System events are `unknownFutureValue` unless the request sends
`Prefer: include-unknown-enum-members` (message requests without it are counted). Errors use Graph's
`{"error":{"code","message","innerError"}}` envelope; 401 carries `www-authenticate`. A fault rate injects
429s (with Retry-After; the body's code is `TooManyRequests` or `accessDenied`/`throttledRequest`), 500,
503, 504, timeouts and truncated bodies, before any state change. Tokens can be made to expire after N
requests (`token_ttl_requests`) and chats can be forbidden (403). The data clock (`advance_to`) decides
which messages, replies, reactions, edits and deletions exist; `add_reply` posts a reply to a root at a
given time (a late reply: as in Graph, it does not move the root's lastModifiedDateTime, so the delta does
not return the root). `replies@odata.count` counts the root's replies that exist; `withhold_replies` (a
share, 0 by default) leaves that share of them out of `$expand=replies` and `.../replies`, chosen by id (the
same ones on every call), while the count still includes them. Never bind to anything but 127.0.0.1.

Use: `with GraphEmulator(org, client_id=..., client_secret=...) as emu: ... emu.url, emu.token_url`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pipelines.emulators.base import (
    FaultPlan,
    LoopbackServer,
    QuietHandler,
    draw_fault,
    pop_faults,
    utc_midnight,
)
from pipelines.emulators.msgraph_tenant import TENANT, Message, Tenant, build_tenant, iso
from pipelines.sources.demo_org import DemoOrg

FAULT_KINDS = ("429", "429_access_denied", "500", "503", "504", "timeout", "truncated")
MAX_TOP = 50


@dataclass
class Faults(FaultPlan):
    kinds: tuple[str, ...] = FAULT_KINDS


@dataclass
class ServerStats:
    requests: Counter = field(default_factory=Counter)  # endpoint -> requests received
    faults: Counter = field(default_factory=Counter)
    missing_prefer: int = 0
    foreign_links: int = 0
    downloads_with_auth: int = 0
    tokens_issued: int = 0


class _GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(code)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _day_end(day: dt.date) -> float:
    return utc_midnight(day) + 86400


def _parse_gt(expr: str | None) -> float | None:
    """`lastModifiedDateTime gt 2026-01-05T00:00:00Z` -> epoch seconds (only `gt` is supported, as in Graph)."""
    if not expr:
        return None
    m = re.fullmatch(r"\s*lastModifiedDateTime\s+gt\s+(\S+)\s*", expr)
    if not m:
        raise _GraphError(400, "BadRequest", "Only 'lastModifiedDateTime gt' is supported in $filter.")
    text = m.group(1).replace("Z", "+00:00")
    try:
        return dt.datetime.fromisoformat(text).timestamp()
    except ValueError as exc:
        raise _GraphError(400, "BadRequest", "Invalid filter clause.") from exc


class GraphEmulator(LoopbackServer):
    url_path = "/v1.0"
    thread_name = "graph-emulator"

    def __init__(self, org: DemoOrg, *, client_id: str = "emu-client", client_secret: str = "emu-secret",
                 tenant: Tenant | None = None, faults: Faults | None = None, expand_limit: int = 1000,
                 token_ttl_requests: int | None = None, chats_permitted: bool = True, concealed: bool = False,
                 port: int = 0, withhold_replies: float = 0.0):
        if not 0.0 <= withhold_replies <= 1.0:
            raise ValueError(f"withhold_replies is a share (got {withhold_replies})")
        self.withhold_replies = withhold_replies
        self.tenant = tenant or build_tenant(org)
        self.client_id, self.client_secret = client_id, client_secret
        self.faults = faults or Faults()
        self.expand_limit = expand_limit
        self.token_ttl_requests = token_ttl_requests
        self.chats_permitted = chats_permitted
        self.concealed = concealed
        self.stats = ServerStats()
        self._tokens: dict[str, int] = {}  # token -> requests left (-1: unlimited)
        self._links: set[str] = set()
        self._downloads: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self.now = _day_end(self.tenant.end)
        self._listen(_handler(self), port)
        self._channel_team = {c.id: c.team for c in self.tenant.channels.values()}

    # --- lifecycle (root, url, start, stop: LoopbackServer) ---------------------------------------
    @property
    def token_url(self) -> str:
        return f"{self.root}/{TENANT}/oauth2/v2.0/token"

    def advance_to(self, day: dt.date) -> None:
        """Everything that happened up to the end of `day` (UTC) exists; nothing later does."""
        with self._lock:
            self.now = _day_end(day)

    def add_reply(self, channel: str, root_id: str, at: float, user: str) -> str:
        """Post a reply by `user` to the root `root_id` at epoch `at`; returns its id."""
        with self._lock:
            root = next(r for r in self.tenant.channels[channel].roots if r.id == root_id)
            mid = str(int(at * 1000))
            root.replies.append(Message(channel, mid, at, user, "a late answer", reply_to=root.id))
            root.replies.sort(key=lambda m: (m.created, int(m.id)))
            return mid

    def withheld(self, m: Message) -> bool:
        """Whether the reply lists leave this reply out (`withhold_replies`)."""
        return bool(self.withhold_replies) and zlib.crc32(f"{m.container}:{m.id}".encode()) % 10_000 \
            < self.withhold_replies * 10_000

    # --- admission --------------------------------------------------------------------------------
    def fault(self, endpoint: str) -> str | None:
        with self._lock:
            self.stats.requests[endpoint] += 1
            return draw_fault(self._rng, self.faults, self.stats.faults)

    def issue_token(self, form: dict[str, str]) -> dict[str, Any]:
        if form.get("grant_type") != "client_credentials":
            raise _GraphError(400, "unsupported_grant_type", "AADSTS70003: grant type not supported")
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            raise _GraphError(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        with self._lock:
            self.stats.tokens_issued += 1
            token = hashlib.sha256(f"{self.stats.tokens_issued}:{self.client_id}".encode()).hexdigest()
            self._tokens[token] = self.token_ttl_requests if self.token_ttl_requests else -1
        return {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def authorise(self, header: str | None) -> None:
        token = (header or "").removeprefix("Bearer ").strip()
        with self._lock:
            left = self._tokens.get(token)
            if left is None or left == 0:
                raise _GraphError(401, "InvalidAuthenticationToken",
                                  "Access token has expired or is not yet valid." if left == 0
                                  else "Access token validation failure.",
                                  {"www-authenticate": 'Bearer realm="", authorization_uri='
                                   '"https://login.microsoftonline.com/common/oauth2/authorize"'})
            if left > 0:
                self._tokens[token] = left - 1

    def link(self, path: str, token: dict[str, Any], param: str = "$skiptoken") -> str:
        value = quote(json.dumps(token, separators=(",", ":")), safe="")
        url = f"{self.url}/{path}?{param}={value}"
        with self._lock:
            self._links.add(value)
        return url

    def check_link(self, raw_query: str, param: str) -> dict[str, Any] | None:
        for part in raw_query.split("&"):
            name, _, value = part.partition("=")
            if unquote(name) == param:
                with self._lock:
                    if value not in self._links:
                        self.stats.foreign_links += 1
                try:
                    return json.loads(unquote(value))
                except ValueError as exc:
                    raise _GraphError(400, "BadRequest", "Invalid skip or delta token.") from exc
        return None

    # --- ground truth for tests -------------------------------------------------------------------
    def visible_messages(self, until: dt.date) -> list[dict[str, Any]]:
        """Every message that exists now and was created before the end of `until`, rendered, with
        `_container` and `_kind` (root | reply | chat): what a perfect extraction would see."""
        limit = _day_end(until)
        out = []
        for ch in self.tenant.channels.values():
            for r in ch.roots:
                if r.exists(self.now) and r.created < limit:
                    out.append({**self.tenant.render(r, self.now, prefer=True, team=ch.team),
                                "_container": ch.id, "_kind": "root"})
                for rep in r.replies:
                    if rep.exists(self.now) and rep.created < limit:
                        out.append({**self.tenant.render(rep, self.now, prefer=True, team=ch.team),
                                    "_container": ch.id, "_kind": "reply"})
        for chat in self.tenant.chats.values():
            for m in chat.messages:
                if m.exists(self.now) and m.created < limit:
                    out.append({**self.tenant.render(m, self.now, prefer=True, chat=chat.id),
                                "_container": chat.id, "_kind": "chat"})
        return out


def _page(items: list[Any], query: dict[str, Any] | None, params: dict[str, str],
          max_top: int = MAX_TOP) -> tuple[list[Any], int | None]:
    offset = int((query or {}).get("o", 0))
    try:
        top = int((query or {}).get("t") or params.get("$top") or 20)
    except ValueError as exc:
        raise _GraphError(400, "BadRequest", "Invalid $top.") from exc
    top = max(1, min(top, max_top))
    chunk = items[offset:offset + top]
    return chunk, (offset + top if offset + top < len(items) else None)


def _route(emu: GraphEmulator, path: str, params: dict[str, str], raw_query: str,
           prefer: bool) -> tuple[str, Callable[[], Any]]:
    """(endpoint name, handler) for a /v1.0 path."""
    parts = [unquote(p) for p in path.strip("/").split("/")[1:]]
    t = emu.tenant
    now = emu.now

    def channel(tid: str, cid: str) -> Any:
        ch = t.channels.get(cid)
        if ch is None or ch.team != tid:
            raise _GraphError(404, "NotFound", "Channel not found.")
        return ch

    if parts == ["users"]:
        def users() -> Any:
            today = dt.datetime.fromtimestamp(now, tz=dt.UTC).date().isoformat()
            rows = [{"id": u.id, "userPrincipalName": u.upn, "mail": u.mail, "displayName": u.name,
                     "accountEnabled": not (u.terminated and u.terminated <= today), "userType": "Member",
                     "department": u.department}
                    for u in t.users]
            q = emu.check_link(raw_query, "$skiptoken")
            chunk, nxt = _page(rows, q, params, 999)
            out: dict[str, Any] = {"@odata.context": f"{emu.url}/$metadata#users", "value": chunk}
            if nxt is not None:
                out["@odata.nextLink"] = emu.link("users", {"o": nxt, "t": (q or {}).get("t") or params.get("$top")})
            return out
        return "users", users
    if parts == ["teams"]:
        return "teams", lambda: {"@odata.count": len(t.teams), "value": t.teams}
    if len(parts) == 3 and parts[0] == "teams" and parts[2] == "channels":
        def channels() -> Any:
            chans = [{"id": c.id, "createdDateTime": iso(c.created), "displayName": c.name, "description": None,
                      "membershipType": "private" if c.private else "standard", "tenantId": TENANT,
                      "webUrl": None} for c in t.channels.values() if c.team == parts[1]]
            if not chans:
                raise _GraphError(404, "NotFound", "Team not found.")
            return {"@odata.count": len(chans), "value": chans}
        return "channels", channels
    if len(parts) == 3 and parts[0] == "users" and parts[2] == "chats":
        def user_chats() -> Any:
            if not emu.chats_permitted:
                raise _GraphError(403, "Forbidden", "Missing role permissions on the request.")
            mine = [{"id": c.id, "topic": None, "createdDateTime": iso(c.created), "lastUpdatedDateTime": iso(c.created),
                     "chatType": "group", "webUrl": None, "tenantId": TENANT}
                    for c in t.chats.values() if parts[1] in c.members]
            q = emu.check_link(raw_query, "$skiptoken")
            chunk, nxt = _page(mine, q, params)
            out: dict[str, Any] = {"value": chunk}
            if nxt is not None:
                out["@odata.nextLink"] = emu.link(f"users/{parts[1]}/chats", {"o": nxt, "t": params.get("$top")})
            return out
        return "user-chats", user_chats
    if len(parts) >= 5 and parts[0] == "teams" and parts[2] == "channels" and parts[4] == "messages":
        tid, cid = parts[1], parts[3]
        base = f"teams/{tid}/channels/{cid}/messages"
        if not prefer:
            emu.stats.missing_prefer += 1
        if len(parts) == 5:
            def messages() -> Any:
                ch = channel(tid, cid)
                q = emu.check_link(raw_query, "$skiptoken")
                expand = (q or {}).get("x", params.get("$expand") == "replies")
                roots = [r for r in reversed(ch.roots) if r.exists(now)]
                chunk, nxt = _page(roots, q, params)
                value = []
                for r in chunk:
                    item = t.render(r, now, prefer=prefer, team=tid)
                    if expand:
                        reps = [x for x in reversed(r.replies) if x.exists(now)]
                        item["replies@odata.count"] = len(reps)
                        reps = [x for x in reps if not emu.withheld(x)]
                        item["replies"] = [t.render(x, now, prefer=prefer, team=tid) for x in reps[:emu.expand_limit]]
                        if len(reps) > emu.expand_limit:
                            item["replies@odata.nextLink"] = emu.link(f"{base}/{r.id}/replies",
                                                                      {"o": emu.expand_limit, "t": MAX_TOP})
                    value.append(item)
                out: dict[str, Any] = {"@odata.context": f"{emu.url}/$metadata#{base}", "@odata.count": len(roots),
                                       "value": value}
                if nxt is not None:
                    out["@odata.nextLink"] = emu.link(base, {"o": nxt, "t": (q or {}).get("t") or params.get("$top"),
                                                             "x": expand})
                return out
            return "channel-messages", messages
        if len(parts) == 6 and parts[5] == "delta":
            def delta() -> Any:
                ch = channel(tid, cid)
                q = emu.check_link(raw_query, "$skiptoken")
                d = emu.check_link(raw_query, "$deltatoken")
                if q is not None:
                    since, asof = float(q["s"]), float(q["a"])
                else:
                    since = float(d["a"]) if d is not None else (_parse_gt(params.get("$filter")) or 0.0)
                    asof = now
                changed = sorted((r for r in ch.roots if r.exists(asof) and since < r.last_modified(asof)),
                                 key=lambda r: (r.last_modified(asof), int(r.id)))
                chunk, nxt = _page(changed, q, params)
                out: dict[str, Any] = {"@odata.context": f"{emu.url}/$metadata#Collection(chatMessage)",
                                       "value": [{"@odata.type": "#microsoft.graph.chatMessage",
                                                  **t.render(r, asof, prefer=prefer, team=tid)} for r in chunk]}
                top = (q or {}).get("t") or params.get("$top")
                if nxt is not None:
                    out["@odata.nextLink"] = emu.link(f"{base}/delta", {"o": nxt, "t": top, "s": since, "a": asof})
                else:
                    out["@odata.deltaLink"] = emu.link(f"{base}/delta", {"a": asof}, "$deltatoken")
                return out
            return "channel-delta", delta
        if len(parts) == 7 and parts[6] == "replies":
            def replies() -> Any:
                ch = channel(tid, cid)
                root = next((r for r in ch.roots if r.id == parts[5] and r.exists(now)), None)
                if root is None:
                    raise _GraphError(404, "NotFound", "Message not found.")
                q = emu.check_link(raw_query, "$skiptoken")
                reps = [x for x in reversed(root.replies) if x.exists(now)]
                count = len(reps)
                reps = [x for x in reps if not emu.withheld(x)]
                chunk, nxt = _page(reps, q, params)
                out: dict[str, Any] = {"@odata.count": count,
                                       "value": [t.render(x, now, prefer=prefer, team=tid) for x in chunk]}
                if nxt is not None:
                    out["@odata.nextLink"] = emu.link(f"{base}/{root.id}/replies", {"o": nxt, "t": MAX_TOP})
                return out
            return "channel-replies", replies
    if len(parts) == 3 and parts[0] == "chats" and parts[2] == "messages":
        if not prefer:
            emu.stats.missing_prefer += 1

        def chat_messages() -> Any:
            chat = t.chats.get(parts[1])
            if chat is None:
                raise _GraphError(404, "NotFound", "Chat not found.")
            q = emu.check_link(raw_query, "$skiptoken")
            since, asof = (float(q["s"]), float(q["a"])) if q else (_parse_gt(params.get("$filter")) or 0.0, now)
            msgs = sorted((m for m in chat.messages if m.exists(asof) and since < m.last_modified(asof)),
                          key=lambda m: (-m.last_modified(asof), -int(m.id)))
            chunk, nxt = _page(msgs, q, params)
            out: dict[str, Any] = {"value": [t.render(m, asof, prefer=prefer, chat=chat.id) for m in chunk]}
            if nxt is not None:
                out["@odata.nextLink"] = emu.link(f"chats/{chat.id}/messages",
                                                  {"o": nxt, "t": (q or {}).get("t") or params.get("$top"),
                                                   "s": since, "a": asof})
            return out
        return "chat-messages", chat_messages
    if len(parts) == 2 and parts[0] == "reports":
        return "reports", lambda: _report(emu, parts[1])
    raise _GraphError(404, "NotFound", "Resource not found for the segment.")


# --- usage reports ---------------------------------------------------------------------------------
TEAMS_COLUMNS = ["Report Refresh Date", "User Id", "User Principal Name", "Last Activity Date", "Is Deleted", "Deleted Date", "Assigned Products", "Team Chat Message Count", "Private Chat Message Count", "Call Count", "Meeting Count", "Meetings Organized Count", "Meetings Attended Count", "Ad Hoc Meetings Organized Count", "Ad Hoc Meetings Attended Count", "Scheduled One-time Meetings Organized Count", "Scheduled One-time Meetings Attended Count", "Scheduled Recurring Meetings Organized Count", "Scheduled Recurring Meetings Attended Count", "Audio Duration", "Video Duration", "Screen Share Duration", "Audio Duration In Seconds", "Video Duration In Seconds", "Screen Share Duration In Seconds", "Has Other Action", "Urgent Messages", "Post Messages", "Tenant Display Name", "Shared Channel Tenant Display Names", "Reply Messages", "Is Licensed", "Report Period"]
YAMMER_USER_COLUMNS = ["Report Refresh Date", "User Principal Name", "Display Name", "User State", "State Change Date", "Last Activity Date", "Posted Count", "Read Count", "Liked Count", "Assigned Products", "Report Period"]
YAMMER_GROUP_COLUMNS = ["Report Refresh Date", "Group Display Name", "Is Deleted", "Owner Principal Name", "Last Activity Date", "Group Type", "Office 365 Connected", "Member Count", "Posted Count", "Read Count", "Liked Count", "Report Period"]


def _conceal(value: str) -> str:
    return hashlib.md5(value.upper().encode()).hexdigest().upper()  # noqa: S324 - the reports' own style


def _report(emu: GraphEmulator, call: str) -> Any:
    m = re.fullmatch(r"(get\w+)\(date=(\d{4}-\d{2}-\d{2})\)", call)
    if not m:
        raise _GraphError(400, "BadRequest", "Only the (date=YYYY-MM-DD) form is emulated.")
    name, day = m.group(1), dt.date.fromisoformat(m.group(2))
    today = dt.datetime.fromtimestamp(emu.now - 1, tz=dt.UTC).date()
    if not (today - dt.timedelta(days=30) <= day <= today):
        raise _GraphError(400, "BadRequest", "The date must be within the last 30 days.")
    text = report_csv(emu, name, day, today)
    token = hashlib.sha256(f"{name}:{day}:{time.monotonic_ns()}".encode()).hexdigest()[:28]
    with emu._lock:
        emu._downloads[token] = (name, text)
    raise _GraphError(302, "Found", "", {"Location": f"{emu.root}/download/{token}"})


def report_csv(emu: GraphEmulator, name: str, day: dt.date, refreshed: dt.date) -> str:
    """The report for one date from the tenant's messages (counts as the API would aggregate them)."""
    t = emu.tenant
    lo, hi = _day_end(day) - 86400, _day_end(day)
    posts: Counter = Counter()
    replies: Counter = Counter()
    chats: Counter = Counter()
    likes: Counter = Counter()
    for ch in t.channels.values():
        for r in ch.roots:
            if r.user and lo <= r.created < hi:
                posts[r.user] += 1
            likes.update(u for at, _, u in r.reactions if lo <= at < hi)
            for rep in r.replies:
                if rep.user and lo <= rep.created < hi:
                    replies[rep.user] += 1
    for chat in t.chats.values():
        for msg in chat.messages:
            if msg.user and lo <= msg.created < hi:
                chats[msg.user] += 1
    lines = []

    def who(u: Any) -> tuple[str, str, str]:
        if emu.concealed:
            return "00000000-0000-0000-0000-000000000000", _conceal(u.upn), _conceal(u.name)
        return u.id, u.upn, u.name

    if name == "getTeamsUserActivityUserDetail":
        lines.append(",".join(TEAMS_COLUMNS))
        for u in t.users:
            uid, upn, _ = who(u)
            n_team = posts[u.id] + replies[u.id]
            last = day.isoformat() if n_team or chats[u.id] else ""
            values = {"Report Refresh Date": refreshed.isoformat(), "User Id": uid, "User Principal Name": upn,
                      "Last Activity Date": last, "Is Deleted": "False", "Deleted Date": "",
                      "Assigned Products": "MICROSOFT 365 E5+MICROSOFT POWER AUTOMATE FREE",
                      "Team Chat Message Count": n_team, "Private Chat Message Count": chats[u.id],
                      "Audio Duration": "PT0S", "Video Duration": "PT0S", "Screen Share Duration": "PT0S",
                      "Has Other Action": "No", "Urgent Messages": 0, "Post Messages": posts[u.id],
                      "Tenant Display Name": "DEMO-CORP", "Shared Channel Tenant Display Names": "",
                      "Reply Messages": replies[u.id], "Is Licensed": "Yes", "Report Period": 1}
            lines.append(",".join(str(values.get(c, 0)) for c in TEAMS_COLUMNS))
    elif name == "getYammerActivityUserDetail":
        lines.append(",".join(YAMMER_USER_COLUMNS))
        for u in t.users:
            _, upn, display = who(u)
            posted = posts[u.id] + replies[u.id]
            values = {"Report Refresh Date": refreshed.isoformat(), "User Principal Name": upn,
                      "Display Name": display, "User State": "" if emu.concealed else "active",
                      "State Change Date": "", "Last Activity Date": day.isoformat() if posted else "",
                      "Posted Count": posted, "Read Count": 3 * posted, "Liked Count": likes[u.id],
                      "Assigned Products": "MICROSOFT 365 E5", "Report Period": 1}
            lines.append(",".join(str(values[c]) for c in YAMMER_USER_COLUMNS))
    elif name == "getYammerGroupsActivityDetail":
        lines.append(",".join(YAMMER_GROUP_COLUMNS))
        for team in t.teams:
            chans = [c for c in t.channels.values() if c.team == team["id"]]
            posted = sum(1 for c in chans for r in c.roots if r.user and lo <= r.created < hi)
            group = _conceal(team["displayName"]) if emu.concealed else team["displayName"]
            members = len({u.id for u in t.users if u.department == team["displayName"]}) or len(t.users)
            values = {"Report Refresh Date": refreshed.isoformat(), "Group Display Name": group, "Is Deleted": "False",
                      "Owner Principal Name": "", "Last Activity Date": day.isoformat() if posted else "",
                      "Group Type": team["visibility"], "Office 365 Connected": "Yes", "Member Count": members,
                      # empty cells, not 0, when nothing happened (as in the real output)
                      "Posted Count": posted or "", "Read Count": 3 * posted or "", "Liked Count": "",
                      "Report Period": 1}
            lines.append(",".join(str(values[c]) for c in YAMMER_GROUP_COLUMNS))
    else:
        raise _GraphError(400, "BadRequest", f"Unknown report {name}.")
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def _handler(emu: GraphEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _error(self, err: _GraphError) -> None:
            body: dict[str, Any] = {"error": {"code": err.code, "message": err.message, "innerError": {
                "date": dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": "00000000-0000-0000-0000-000000000001",
                "client-request-id": "00000000-0000-0000-0000-000000000001"}}}
            if err.code in ("invalid_client", "unsupported_grant_type"):
                body = {"error": err.code, "error_description": err.message}  # AAD's own shape
            self._send(err.status, json.dumps(body).encode() if err.status != 302 else b"", err.headers,
                       content_type="application/json" if err.status != 302 else "text/plain")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode() if length else ""))
            try:
                if not urlsplit(self.path).path.endswith("/oauth2/v2.0/token"):
                    raise _GraphError(405, "MethodNotAllowed", "Only the token endpoint accepts POST.")
                if self._faulted("token"):
                    return
                self._send(200, json.dumps(emu.issue_token(form)).encode())
            except _GraphError as err:
                self._error(err)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            split = urlsplit(self.path)
            try:
                if split.path.startswith("/download/"):
                    self._download(split.path.rsplit("/", 1)[-1])
                    return
                if not split.path.startswith("/v1.0/"):
                    raise _GraphError(404, "NotFound", "Unknown version.")
                params = dict(parse_qsl(split.query))
                prefer = "include-unknown-enum-members" in (self.headers.get("Prefer") or "")
                endpoint, handler = _route(emu, split.path, params, split.query, prefer)
                if self._faulted(endpoint):
                    return
                emu.authorise(self.headers.get("Authorization"))
                self._send(200, json.dumps(handler()).encode())
            except _GraphError as err:
                self._error(err)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _download(self, token: str) -> None:
            if self.headers.get("Authorization"):
                emu.stats.downloads_with_auth += 1
                raise _GraphError(400, "BadRequest", "Pre-authenticated URL: do not send a token.")
            with emu._lock:
                found = emu._downloads.get(token)
            if found is None:
                raise _GraphError(404, "NotFound", "Download expired.")
            body = found[1].encode("utf-8")
            kind = emu.fault("download")
            if kind == "truncated":  # a CSV cut inside a row, as a dropped transfer would leave it
                self._send(200, body[: len(body) * 3 // 5], content_type="application/octet-stream")
            elif kind is not None:
                self._send(503, b"Service Unavailable", content_type="text/plain")
            else:
                self._send(200, body, content_type="application/octet-stream")

        def _faulted(self, endpoint: str) -> bool:
            kind = emu.fault(endpoint)
            if kind is None:
                return False
            f = emu.faults
            if kind in ("429", "429_access_denied"):
                code = ("TooManyRequests", "Too many requests.") if kind == "429" else ("accessDenied",
                                                                                      "Too Many Requests")
                body = {"error": {"code": code[0], "message": code[1], "innerError": {"code": "throttledRequest"}}}
                headers = {"Retry-After": f"{f.retry_after_s:g}"} if self_random() else {}
                self._send(429, json.dumps(body).encode(), headers)
            elif kind in ("500", "503", "504"):
                self._send(int(kind), b'{"error":{"code":"serviceNotAvailable","message":"Service unavailable"}}')
            elif kind == "timeout":
                self._stall(f.timeout_delay_s)
            elif kind == "truncated":
                self._send(200, b'{"@odata.context":"x","value":[{"id":"16169')
            return True

    def self_random() -> bool:
        # most 429s carry Retry-After; some do not, as the docs warn
        with emu._lock:
            return emu._rng.random() < 0.8

    return Handler


def serve(org: DemoOrg, port: int = 0, **options: Any) -> tuple[GraphEmulator, Callable[[], None]]:
    """Start an emulator in a background thread; returns (emulator, stop)."""
    faults = pop_faults(options, Faults)
    emu = GraphEmulator(org, port=port, faults=faults, **options).start()
    return emu, emu.stop
