"""Completeness against the Salesforce emulator (the demo organisation's Chatter): comments withheld from
the FeedComments sub-query give the exact score against CommentCount and a warning; a complete org 1.0."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from pipelines import completeness
from pipelines.emulators.salesforce import SalesforceEmulator
from pipelines.emulators.salesforce_org import build_chatter
from pipelines.sources import salesforce
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import make_ctx

START = dt.date(2026, 1, 5)
END = START + dt.timedelta(days=9)
FAST = {"client_id_env": "SF_COMPLETENESS_ID", "client_secret_env": "SF_COMPLETENESS_SECRET", "timeout_s": 0.5,
        "backoff_base_s": 0.01, "max_attempts": 10, "requests_per_s": 1000}


@pytest.fixture(scope="module")
def org():
    return build_org(60, 12, START, 7, 1.0)


def _extract(org, tmp_path, monkeypatch, **kw: Any) -> tuple[Any, tuple[int, int]]:
    monkeypatch.setenv("SF_COMPLETENESS_ID", "emulator-client")
    monkeypatch.setenv("SF_COMPLETENESS_SECRET", "emulator-secret")
    chatter = build_chatter(org)
    with SalesforceEmulator(org, chatter=chatter, batch_size=25, **kw) as emu:
        emu.advance_to(END)
        ctx = make_ctx(tmp_path, "salesforce", {**FAST, "login_url": emu.url})
        report = salesforce.extract(ctx, START, END)
        hi = dt.datetime(END.year, END.month, END.day, tzinfo=dt.UTC).timestamp() + 86400
        live = [i for i in chatter.items if i.created < hi and not i.deleted(emu.now)]
        comments = [c for i in live for c in i.comments if c.created <= emu.now]
        return report, (len(comments), sum(not emu.withheld(c.id) for c in comments))


def test_withheld_comments_give_the_exact_score_and_a_warning(org, tmp_path, monkeypatch) -> None:
    report, (announced, received) = _extract(org, tmp_path, monkeypatch, withhold_comments=0.3)
    c = report.details["completeness"]
    assert announced > 20 and 0 < received < announced
    assert (c["replies_announced"], c["replies_fetched"]) == (announced, received)
    assert c["score"] == pytest.approx(received / announced, abs=1e-6)
    assert c["announced_by"] == "salesforce CommentCount"
    assert completeness.warning(c, 0.98) is not None


def test_a_complete_org_scores_one(org, tmp_path, monkeypatch) -> None:
    report, (announced, received) = _extract(org, tmp_path, monkeypatch)
    c = report.details["completeness"]
    assert announced == received == c["replies_announced"] > 20
    assert c["score"] == 1.0 and completeness.warning(c, 0.98) is None
