"""A local Salesforce REST emulator (Chatter through SOQL): a real HTTP server on 127.0.0.1 serving a
demo org (`salesforce_org.build_chatter`).

Endpoints: `POST /services/oauth2/token` (client credentials; a wrong client answers 400
`{"error":"invalid_client",...}`), `GET /services/data/vXX.X/query` and `/queryAll` with `q=<SOQL>`,
and the `nextRecordsUrl` pages `/services/data/vXX.X/query/<locator>-<offset>`. The SOQL understood is
what the connector sends: `FROM User`, `FROM CollaborationGroup`, and `FROM FeedItem` with child
sub-queries `FeedComments` / `FeedLikes`, an optional `WHERE SystemModstamp >= X AND SystemModstamp < Y`
and `ORDER BY SystemModstamp, Id`; the field list is not interpreted (every documented field is
returned). `query` hides deleted items, `queryAll` shows them with `IsDeleted`. Pages hold
`batch_size` records. Responses carry `Sforce-Limit-Info: api-usage=N/M`; once the org's allocation
`daily_limit` is used up every request answers 403 `REQUEST_LIMIT_EXCEEDED` until `reset_usage()`
(a new 24-hour window). Bad token: 401 `INVALID_SESSION_ID`. A fault rate injects 500/503s, timeouts
and truncated bodies. The data clock (`advance_to`) decides what exists. `withhold_comments` (a share, 0
by default) leaves that share of the comments out of the `FeedComments` sub-query, chosen by id (the same
ones on every call), while `CommentCount` still counts them (as a child sub-query cut short would). Never
bind to anything but 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import threading
import uuid
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pipelines.emulators.base import LoopbackServer, QuietHandler, draw_fault, utc_midnight
from pipelines.emulators.salesforce_org import ChatterOrg, build_chatter
from pipelines.sources.demo_org import DemoOrg
from pipelines.sources.salesforce_api import parse_datetime

FAULT_KINDS = ("500", "503", "timeout", "truncated")
_FROM = re.compile(r"\bFROM\s+(\w+)", re.I)
_SUBQUERY = re.compile(r"\([^()]*\)")
_LOWER = re.compile(r"SystemModstamp\s*>=\s*(\S+)", re.I)
_UPPER = re.compile(r"SystemModstamp\s*<\s*(\S+)", re.I)
_QUERY_PATH = re.compile(r"^/services/data/v(\d+\.\d+)/(query|queryAll)(?:/([\w]+)-(\d+))?$")


@dataclass
class Faults:  # no retry_after_s: the REST API throttles with a daily allocation (403), not 429s
    rate: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    timeout_delay_s: float = 0.6
    seed: int = 0


@dataclass
class ServerStats:
    requests: int = 0
    limited: int = 0
    faults: Counter = field(default_factory=Counter)


class _SoqlError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class SalesforceEmulator(LoopbackServer):
    thread_name = "sf-emulator"

    def __init__(self, org: DemoOrg, *, client_id: str = "emulator-client", client_secret: str = "emulator-secret",
                 token: str = "00DEMULATOR!token", daily_limit: int = 15000, batch_size: int = 2000,
                 faults: Faults | None = None, chatter: ChatterOrg | None = None, port: int = 0,
                 withhold_comments: float = 0.0):
        if not 0.0 <= withhold_comments <= 1.0:
            raise ValueError(f"withhold_comments is a share (got {withhold_comments})")
        self.withhold_comments = withhold_comments
        self.data = chatter or build_chatter(org)
        self.client_id, self.client_secret, self.token = client_id, client_secret, token
        self.daily_limit = daily_limit
        self.usage = 0
        self.batch_size = batch_size
        self.faults = faults or Faults()
        self.stats = ServerStats()
        self._cursors: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self.now = _day_end(self.data.end)
        self._listen(_handler(self), port)

    def advance_to(self, day: dt.date) -> None:
        with self._lock:
            self.now = _day_end(day)

    def reset_usage(self) -> None:
        """A new 24-hour window: the allocation is available again."""
        with self._lock:
            self.usage = 0

    def limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.usage}/{self.daily_limit}"}

    def admission(self) -> str | None:
        """None to serve, else the refusal: `limit` or a fault kind. Faults are decided before the
        request counts, as a failed request at the edge never reached the org."""
        with self._lock:
            self.stats.requests += 1
            kind = draw_fault(self._rng, self.faults, self.stats.faults)
            if kind is not None:
                return kind
            if self.usage >= self.daily_limit:
                self.stats.limited += 1
                return "limit"
            self.usage += 1
        return None

    # --- SOQL ---------------------------------------------------------------------------------------
    def run_query(self, soql: str, version: str, include_deleted: bool) -> list[dict[str, Any]]:
        outer = _SUBQUERY.sub("", soql)
        m = _FROM.search(outer)
        if m is None:
            raise _SoqlError("MALFORMED_QUERY", "no FROM clause")
        obj = m.group(1)
        now = self.now
        if obj == "User":
            return [{"attributes": {"type": "User", "url": f"/services/data/v{version}/sobjects/User/{u['Id']}"},
                     **u} for u in self.data.users]
        if obj == "CollaborationGroup":
            return [{"attributes": {"type": "CollaborationGroup",
                                    "url": f"/services/data/v{version}/sobjects/CollaborationGroup/{g['Id']}"}, **g}
                    for g in self.data.groups]
        if obj != "FeedItem":
            raise _SoqlError("INVALID_TYPE", f"sObject type '{obj}' is not supported by the emulator")
        lower = _bound(_LOWER.search(outer), float("-inf"))
        upper = _bound(_UPPER.search(outer), float("inf"))
        rows = []
        for item in self.data.items:
            if item.created > now or (item.deleted(now) and not include_deleted):
                continue
            stamp = item.stamp(now)
            if lower <= stamp < upper:
                rows.append((stamp, item.id, self.withhold(item.render(now, version))))
        rows.sort(key=lambda r: (r[0], r[1]))
        return [r[2] for r in rows]

    def withheld(self, comment_id: str) -> bool:
        """Whether the `FeedComments` sub-query leaves this comment out (`withhold_comments`)."""
        return bool(self.withhold_comments) and zlib.crc32(comment_id.encode()) % 10_000 < self.withhold_comments * 10_000

    def withhold(self, record: dict[str, Any]) -> dict[str, Any]:
        child = record.get("FeedComments")
        if not self.withhold_comments or not child:
            return record
        kept = [c for c in child["records"] if not self.withheld(c["Id"])]
        return {**record, "FeedComments": {"totalSize": len(kept), "done": True, "records": kept} if kept else None}

    def page(self, records: list[dict[str, Any]], version: str, offset: int, locator: str | None) -> dict[str, Any]:
        if locator is None and len(records) > self.batch_size:
            locator = "01g" + uuid.uuid4().hex[:15]
            self._cursors[locator] = records
        chunk = records[offset:offset + self.batch_size]
        end = offset + self.batch_size
        out: dict[str, Any] = {"totalSize": len(records), "done": end >= len(records), "records": chunk}
        if end < len(records):
            out["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        return out


def _bound(match: re.Match[str] | None, default: float) -> float:
    if match is None:
        return default
    t = parse_datetime(match.group(1))
    if t is None:
        raise _SoqlError("MALFORMED_QUERY", "unparseable datetime literal")
    return t.timestamp()


def _day_end(day: dt.date) -> float:
    return utc_midnight(day) + 86400 - 1e-3


def _handler(emu: SalesforceEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _reply(self, status: int, body: Any, *, raw: bytes | None = None,
                   content_type: str = "application/json;charset=UTF-8", headers: dict[str, str] | None = None) -> None:
            self._send(status, raw if raw is not None else json.dumps(body).encode(), headers, content_type)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(parse_qsl(self.rfile.read(length).decode())) if length else {}
            if urlsplit(self.path).path != "/services/oauth2/token":
                self._reply(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}])
                return
            if (form.get("grant_type") != "client_credentials" or form.get("client_id") != emu.client_id
                    or form.get("client_secret") != emu.client_secret):
                self._reply(400, {"error": "invalid_client", "error_description": "invalid client credentials"})
                return
            self._reply(200, {"access_token": emu.token, "instance_url": emu.url, "token_type": "Bearer",
                              "id": f"{emu.url}/id/00DEMULATOR/005EMULATOR", "issued_at": "0",
                              "signature": "emulated"})

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            try:
                self._get()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _get(self) -> None:
            parts = urlsplit(self.path)
            verdict = emu.admission()
            if verdict in ("500", "503"):
                self._reply(int(verdict), None, raw=b"<html>Service Unavailable</html>", content_type="text/html")
                return
            if verdict == "timeout":
                self._stall(emu.faults.timeout_delay_s)
                return
            if verdict == "truncated":
                self._reply(200, None, raw=b'{"totalSize":3,"done":false,"records":[{"attributes":{"ty',
                            headers=emu.limit_header())
                return
            if verdict == "limit":
                self._reply(403, [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                            headers=emu.limit_header())
                return
            if self.headers.get("Authorization") != f"Bearer {emu.token}":
                self._reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
                            headers={"WWW-Authenticate": "Token", **emu.limit_header()})
                return
            m = _QUERY_PATH.match(parts.path)
            if m is None:
                self._reply(404, [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}],
                            headers=emu.limit_header())
                return
            version, endpoint, locator, offset = m.group(1), m.group(2), m.group(3), m.group(4)
            with emu._lock:
                try:
                    if locator is not None:
                        records = emu._cursors.get(locator)
                        if records is None:
                            raise _SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
                        body = emu.page(records, version, int(offset), locator)
                    else:
                        soql = dict(parse_qsl(parts.query)).get("q", "")
                        records = emu.run_query(soql, version, include_deleted=endpoint == "queryAll")
                        body = emu.page(records, version, 0, None)
                except _SoqlError as err:
                    self._reply(400, [{"message": str(err), "errorCode": err.code}], headers=emu.limit_header())
                    return
                headers = emu.limit_header()
            self._reply(200, body, headers=headers)

    return Handler
