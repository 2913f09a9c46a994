"""Erasure and key rotation cover the usage reports' tables: the raw landing, the canonical `usage` partitions,
lake_usage_daily and every model built on it. A tenant that loads only the reports (no activity at all) is
the hard case: its whole history is in the usage tables, so `esn erase` must republish from them.

The tenant: the hand fixture of tests/metrics/test_usage_reports_hand.py (Teams on 2026-03-02 and -03,
Viva Engage on -02), loaded through jobs.extract / stage / validate / land / publish. Checked with the
independent oracle of test_erasure (every value of every lake file and warehouse table).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines import erasure, jobs, lake, rotation, warehouse
from pipelines.config import Settings
from pipelines.privacy import Pseudonymiser
from tests.privacy.test_erasure import oracle
from tests.vendors.msgraph.usage_hand import D1, D2, INTERVAL, NAMES, hand_settings, transport

KEY = b"usage-reports-privacy-test-key"
NEW_KEY = b"usage-reports-privacy-rotated-key"


def _published(tmp: Path) -> tuple[Settings, sa.Engine]:
    settings = hand_settings(tmp, min_group_size=2)
    creds: dict[str, Any] = {"access_token": "hand-token", "transport": transport()}
    jobs.extract(settings, "m365", INTERVAL, key=KEY.decode(), credentials=creds)
    jobs.stage(settings, "m365", INTERVAL, key=KEY.decode())
    jobs.validate(settings, "m365", INTERVAL)
    jobs.land(settings, "m365", INTERVAL)
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.publish(settings, INTERVAL, engine=engine, key=KEY.decode())
    return settings, engine


def _org(engine: sa.Engine, day: dt.date) -> dict[str, Any]:
    return warehouse.read_frame(engine, "select * from mart_usage_daily where as_of_date = :d and segment_type = 'org'",
                                {"d": day}).iloc[0].to_dict()


def test_erasure_removes_a_person_from_every_usage_table_and_republishes(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", KEY.decode())
    settings, engine = _published(tmp_path)
    ana = Pseudonymiser(KEY).email("ana@contoso.example")
    before = oracle(settings, engine, {ana})
    assert any("canonical/usage" in p for p in before) and "warehouse esn_staging.lake_usage_daily" in before
    assert _org(engine, D1)["report_active_users"] == 4
    report = erasure.erase(settings, ["ana@contoso.example"], KEY, engine=engine)
    assert report["remaining"] == []
    assert oracle(settings, engine, {ana, "ana@contoso.example"}) == []
    # republished without her (the reports are this tenant's whole history): on D1 ben and dev were active
    # on Teams, eli on Viva Engage; ana's 2 posts and 3 replies are gone
    org = _org(engine, D1)
    assert (org["headcount"], org["report_active_users"], org["teams_active_users"], org["engage_active_users"],
            org["teams_posts"], org["teams_replies"]) == (4, 3, 2, 1, 0, 0)
    engine.dispose()


def test_key_rotation_moves_the_usage_tables_to_the_new_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", KEY.decode())
    settings, engine = _published(tmp_path)
    old, new = Pseudonymiser(KEY), Pseudonymiser(NEW_KEY)
    rotation.rotate(settings, KEY, NEW_KEY, engine=engine)
    old_keys = {old.email(f"{n}@contoso.example") for n in NAMES}
    new_keys = {new.email(f"{n}@contoso.example") for n in NAMES}
    assert oracle(settings, engine, old_keys) == []
    keys = set(warehouse.read_frame(engine, "select distinct person_key from lake_usage_daily")["person_key"])
    assert keys == new_keys
    base = lake.canonical_dir(settings.lake_dir, "usage") / "source=m365"
    landed = {k for d in (D1, D2) for k in lake.read_partition(base, d).column("person_key").to_pylist()}
    assert landed == new_keys
    engine.dispose()
