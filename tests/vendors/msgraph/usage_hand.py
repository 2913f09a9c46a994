"""The hand tenant of the Microsoft 365 usage reports (fixture CSVs of tests/data/msgraph/usage_hand): the
reports API that serves them, and the settings of a source reading it. Shared by the hand test
(tests/metrics/test_usage_reports_hand.py), the batch validation test and the privacy test."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import httpx

from pipelines import jobs
from pipelines.config import Settings, SourceConfig, load_settings

DATA = Path(__file__).resolve().parents[2] / "data" / "msgraph" / "usage_hand"
D1, D2 = dt.date(2026, 3, 2), dt.date(2026, 3, 3)
INTERVAL = jobs.Interval(D1, D2)
NAMES = ("ana", "ben", "cho", "dev", "eli", "fay")


def handler(request: httpx.Request) -> httpx.Response:
    """The reports API: 302 to a pre-authenticated download of the fixture CSV, 400 for a date without one;
    and /users (mail = UPN here)."""
    if request.url.host == "download.reports.test":
        return httpx.Response(200, headers={"Content-Type": "application/octet-stream"},
                              content=(DATA / request.url.path.lstrip("/")).read_bytes())
    if request.url.path.endswith("/users"):
        return httpx.Response(200, json={"value": [
            {"id": f"1b0e4f5a-0000-4000-8000-00000000000{i}", "userPrincipalName": f"{n}@contoso.example",
             "mail": f"{n}@contoso.example"} for i, n in enumerate(NAMES, 1)]})
    m = re.search(r"/reports/(get\w+)\(date=(\d{4}-\d{2}-\d{2})\)", request.url.path)
    assert m, request.url
    name = f"{m.group(1)}_{m.group(2)}.csv"
    if not (DATA / name).exists():
        return httpx.Response(400, json={"error": {"code": "BadRequest", "message": "no report"}})
    return httpx.Response(302, headers={"Location": f"https://download.reports.test/{name}"})


def transport() -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def hand_settings(tmp: Path, url: str | None = None, *, min_group_size: int = 3) -> Settings:
    """A lake and warehouse under `tmp` with one m365_usage source `m365` reading the hand reports."""
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=url or f"duckdb:///{tmp / 'w.duckdb'}",
                         privacy={"min_group_size": min_group_size},
                         sources=[SourceConfig(name="m365", kind="m365_usage", options={
                             "reports": ["teams_user", "engage_user"], "rate_period_s": 0.001})])
