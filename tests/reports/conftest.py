"""Fixtures of the report tests: a small warehouse with every mart the reports read, a loopback SMTP server.

The warehouse holds an organisation of 100 people in three departments, one of them ("Tiny Team") with
3 people whose mart rows are deliberately NOT suppressed (as if built with a lower threshold): its
figures use distinctive values so the privacy test can look for them anywhere in the output.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from aiosmtpd.controller import Controller

from pipelines import warehouse
from pipelines.config import Settings, load_settings
from pipelines.reports_config import ReportsConfig

AS_OF = dt.date(2026, 10, 25)  # a Sunday: weekly audiences are due
FIRST = dt.date(2026, 7, 1)
DEPARTMENTS = {"Sales": 40, "Engineering": 57, "Tiny Team": 3}
TINY = "Tiny Team"
# distinctive values of the 3-person department; none may appear in any output
TINY_PARTICIPATION = 0.6667
TINY_MAU = 2
TINY_TEXT = ("66.7%", "66.67")


def _engagement() -> pd.DataFrame:
    rows = []
    days = (AS_OF - FIRST).days + 1
    for i in range(days):
        day = FIRST + dt.timedelta(days=i)
        growth = i / days
        for st, sv, head in [("org", "all", 100)] + [("department", d, n) for d, n in DEPARTMENTS.items()]:
            if sv == TINY:
                mau, wau, dau = TINY_MAU, 2, 1
            else:
                mau = round(head * (0.45 + 0.3 * growth)) if sv != "Sales" else round(head * 0.3)
                wau, dau = round(mau * 0.7), round(mau * 0.3 + (i % 7 == 0))
            rows.append({"activity_date": day, "segment_type": st, "segment_value": sv, "suppressed": False,
                         "headcount": head, "dau": dau, "wau": wau, "mau": mau,
                         "posting_users_1d": dau, "posting_users_7d": wau, "posting_users_28d": mau,
                         "participation_rate": TINY_PARTICIPATION if sv == TINY else mau / head,
                         "contributor_rate": 0.5 * mau / head, "stickiness": dau / mau if mau else None,
                         "activity_per_active_user": 3.0})
    return pd.DataFrame(rows)


def _alerts() -> pd.DataFrame:
    return pd.DataFrame([
        {"alert_date": AS_OF - dt.timedelta(days=2), "alert_type": "decline_after_enthusiasm", "severity": "high",
         "segment_type": "org", "segment_value": "all", "metric": "weekly_active_users", "observed": 0.52,
         "threshold": 0.6, "evidence": "Weekly active users fell from 61% to 52% of headcount after the launch peak."},
        {"alert_date": AS_OF - dt.timedelta(days=1), "alert_type": "absent_leaders", "severity": "warning",
         "segment_type": "department", "segment_value": "Sales", "metric": "participation_rate", "observed": 0.3,
         "threshold": 0.5, "evidence": "Sales leaders posted nothing in 28 days; participation is 30%."},
        {"alert_date": AS_OF - dt.timedelta(days=1), "alert_type": "single_department_adoption", "severity": "high",
         "segment_type": "department", "segment_value": TINY, "metric": "participation_rate", "observed": 0.6667,
         "threshold": 0.5, "evidence": "Tiny Team alone drives adoption: 2 of 3 people active."},
        {"alert_date": AS_OF - dt.timedelta(days=3), "alert_type": "rising_unanswered_questions",
         "severity": "warning", "segment_type": "container", "segment_value": "c-small", "metric": "unanswered_backlog",
         "observed": 7, "threshold": 3, "evidence": "c-small has 7 open questions, up from 1."},
        {"alert_date": AS_OF - dt.timedelta(days=40), "alert_type": "absent_leaders", "severity": "low",
         "segment_type": "org", "segment_value": "all", "metric": "participation_rate", "observed": 0.2,
         "threshold": 0.5, "evidence": "An old alert outside the period."},
    ])


def _questions() -> pd.DataFrame:
    rows = []
    for i in range((AS_OF - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=i)
        for st, sv, asked, answered in (("org", "all", 10, 6 + (i // 30)), ("department", "Sales", 4, 2),
                                        ("department", TINY, 3, 2)):
            rows.append({"activity_date": day, "segment_type": st, "segment_value": sv, "questions": asked,
                         "answered_questions": answered, "answered_rate": answered / asked, "suppressed": False})
    return pd.DataFrame(rows)


def _backlog() -> pd.DataFrame:
    rows = []
    for cid, bands in (("c-big", {"0-1d": 3, "1-7d": 5, "7-30d": 2, ">30d": 1}),
                       ("c-sales", {"0-1d": 1, "1-7d": 2, "7-30d": 0, ">30d": 4}),
                       ("c-small", {"0-1d": 4, "1-7d": 3, "7-30d": 0, ">30d": 0})):
        for band, n in bands.items():
            rows.append({"snapshot_date": AS_OF, "container_id": cid, "age_band": band, "unanswered_questions": n})
    return pd.DataFrame(rows)


def _containers() -> pd.DataFrame:
    return pd.DataFrame([
        {"source": "demo", "container_id": "c-big", "kind": "community", "visibility": "public", "member_count": 80,
         "owner_department": "Engineering"},
        {"source": "demo", "container_id": "c-sales", "kind": "channel", "visibility": "public", "member_count": 30,
         "owner_department": "Sales"},
        {"source": "demo", "container_id": "c-small", "kind": "group", "visibility": "private", "member_count": 3,
         "owner_department": TINY},
    ])


def _network() -> dict[str, pd.DataFrame]:
    ends = [AS_OF - dt.timedelta(days=7 * k) for k in range(12, -1, -1)]
    org = pd.DataFrame({"window_end": ends, "cross_department_share": [0.2 + 0.01 * k for k in range(13)],
                        "ei_index": [-0.5] * 13})
    dept = pd.DataFrame([
        {"department": "Sales", "people": 40, "cross_department_share": 0.35, "suppressed": False},
        {"department": "Engineering", "people": 57, "cross_department_share": 0.25, "suppressed": False},
        {"department": TINY, "people": 3, "cross_department_share": 0.6667, "suppressed": False},
    ])
    tiers = []
    for name, size, counts in ((None, 100, (20, 55, 25)), ("Sales", 40, (6, 20, 14)),
                               ("Engineering", 57, (13, 33, 11)), (TINY, 3, (1, 2, 0))):
        for tier, n in zip(("Top Influencer", "Active Influencer", "Observer"), counts, strict=True):
            tiers.append({"department": name, "influence_tier": tier, "group_size": size, "people": n,
                          "suppressed": False})
    person = pd.DataFrame([
        {"person_key": f"p{i:03d}", "department": "Sales" if i % 2 else "Engineering", "influence_rank": i,
         "influence_tier": "Top Influencer" if i <= 20 else "Active Influencer"} for i in range(1, 31)])
    return {"mart_network_org": org, "mart_network_department": dept, "mart_network_influence_tiers":
            pd.DataFrame(tiers), "fct_person_network": person}


ALL_TABLES = ("mart_engagement_daily", "mart_alerts", "mart_knowledge_sharing_daily", "mart_unanswered_backlog",
              "stg_containers", "mart_network_org", "mart_network_department", "mart_network_influence_tiers",
              "fct_person_network")


def fixture_tables() -> dict[str, pd.DataFrame]:
    return {"mart_engagement_daily": _engagement(), "mart_alerts": _alerts(),
            "mart_knowledge_sharing_daily": _questions(), "mart_unanswered_backlog": _backlog(),
            "stg_containers": _containers(), **_network()}


def make_warehouse(path: Path, tables: tuple[str, ...] = ALL_TABLES) -> str:
    frames = fixture_tables()
    con = duckdb.connect(str(path))
    schemas = warehouse.DEFAULT_SCHEMAS
    try:
        for schema in schemas.all:
            con.execute(f"create schema if not exists {schema}")
        for name in tables:
            con.register("frame", frames[name])
            con.execute(f"create table {schemas.qualified(name)} as select * from frame")
            con.unregister("frame")
    finally:
        con.close()
    return f"duckdb:///{path}"


@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_warehouse(tmp_path_factory.mktemp("reports_wh") / "warehouse.duckdb")


@pytest.fixture(scope="session")
def engine(warehouse_url: str) -> Iterator[sa.Engine]:
    eng = warehouse.make_engine(warehouse_url)  # the search path of the warehouse's schemas
    yield eng
    eng.dispose()


@pytest.fixture
def settings(warehouse_url: str, tmp_path: Path) -> Settings:
    return load_settings(None, warehouse_url=warehouse_url, lake_dir=tmp_path / "lake",
                         privacy={"min_group_size": 5})


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("catalogue") / "metrics.yaml"
    # the repository's catalogue layout (catalogue/metrics.yaml), cut down to the tables the fixtures have
    path.write_text(yaml.safe_dump({"version": 1, "tables": {
        "mart_engagement_daily": {"section": "1", "grain": "day x segment", "columns": {
            "participation_rate": {"definition": "28-day active people / headcount"},
            "wau": {"definition": "people active in the 7 days ending on the day"}}},
        "mart_knowledge_sharing_daily": {"section": "2", "grain": "day x segment", "columns": {
            "answered_rate": {"definition": "answered questions / questions"}}},
        "mart_network_org": {"section": "3", "grain": "window", "columns": {
            "cross_department_share": {"definition": "cross-department interactions / interactions"}}},
    }}))
    return path


def report_of(url: str, settings: Settings, config: ReportsConfig, audience: str, as_of: dt.date = AS_OF) -> Any:
    """`build_report` of one audience on the warehouse at `url` (its own engine, disposed after)."""
    from pipelines.reports.content import build_report

    engine = warehouse.make_engine(url)
    try:
        with engine.connect() as conn:
            return build_report(conn, settings, config, config.audience(audience), as_of)
    finally:
        engine.dispose()


def reports_config(catalogue: Path, **overrides: Any) -> ReportsConfig:
    data: dict[str, Any] = {
        "organisation_name": "Fixture Co",
        "docs_base_url": "https://esn.example/docs/metrics.html",
        "catalogue_path": str(catalogue),
        "audiences": [
            {"name": "leadership", "recipients": ["ceo@fixture.example", "cfo@fixture.example"],
             "frequency": "weekly"},
            {"name": "sales-head", "recipients": ["sales.head@fixture.example"], "frequency": "weekly",
             "scope": {"segment_type": "department", "segment_value": "Sales"}},
            {"name": "tiny-head", "recipients": ["tiny.head@fixture.example"], "frequency": "weekly",
             "scope": {"segment_type": "department", "segment_value": TINY}},
        ],
        "delivery": {"sender": "esn@fixture.example", "transport": "smtp", "backoff_seconds": 0.01,
                     "max_attempts": 3, "smtp": {"host": "127.0.0.1", "port": 1, "timeout_seconds": 5}},
    }
    data.update(overrides)
    return ReportsConfig.model_validate(data)


# ------------------------------------------------------------------------------------------ smtp server
@dataclass
class RecordingHandler:
    """aiosmtpd handler: refuses `reject` with 550, answers 451 to the first RCPT of each `transient`."""

    reject: set[str] = field(default_factory=set)
    transient: set[str] = field(default_factory=set)
    rcpt_calls: Counter[str] = field(default_factory=Counter)
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpt_calls[address] += 1
        if address in self.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address in self.transient and self.rcpt_calls[address] == 1:
            return "451 4.3.0 temporary failure, try again"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(0)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, RecordingHandler]]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()
