"""A dataset import goes through the job's source steps like any source: extract, stage, validate (GX), land.

Publishing is the warehouse's concern and is tested there; this test stops at the canonical lake so that
it checks only what the import is responsible for."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipelines import jobs, lake
from pipelines.config import SourceConfig, load_settings
from tests.imports.conftest import DATA


@pytest.mark.slow
def test_perry_wolfe_sample_is_extracted_validated_and_landed(tmp_path: Path) -> None:
    d = DATA / "perry-wolfe-enron"
    # a 2,000-message sample of 2000 has irregular daily volumes: volume drift is reported, not blocking here
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             quality={"volume_drift": "warning"},
                             sources=[SourceConfig(name="enron", kind="file", options={
                                 "format": "enron_tsv", "path": str(d / "messages-head2000.tsv"),
                                 "recipients": str(d / "recipients-messages1-2000.tsv"),
                                 "departments": str(d / "employees.tsv")})])
    interval = jobs.Interval(dt.date(2000, 1, 1), dt.date(2000, 3, 31))
    extracted = jobs.extract(settings, "enron", interval, key="test-key-not-a-secret")
    staged = jobs.stage(settings, "enron", interval, key="test-key-not-a-secret")
    assert staged["quarantined"] == {}
    validated = jobs.validate(settings, "enron", interval)
    assert validated["blocking_failures"] == 0
    landed = jobs.land(settings, "enron", interval)
    assert landed["activities"] == extracted["rows"]["activities"] > 0
    days = lake.partition_days(lake.canonical_dir(settings.lake_dir, "activities") / "source=enron")
    assert days and interval.start <= days[0] and days[-1] <= interval.end
