"""A dataset import goes through the whole job like any source: stage, validate (GX), land, publish."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipelines import jobs
from pipelines.config import SourceConfig, load_settings
from tests.imports.conftest import DATA


@pytest.mark.slow
def test_perry_wolfe_sample_runs_end_to_end_into_the_warehouse(tmp_path: Path) -> None:
    d = DATA / "perry-wolfe-enron"
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             sources=[SourceConfig(name="enron", kind="file", options={
                                 "format": "enron_tsv", "path": str(d / "messages-head2000.tsv"),
                                 "recipients": str(d / "recipients-messages1-2000.tsv"),
                                 "departments": str(d / "employees.tsv")})])
    interval = jobs.Interval(dt.date(2000, 1, 1), dt.date(2000, 3, 31))
    report = jobs.run(settings, interval, key="test-key")
    steps = report["sources"]["enron"]
    assert steps["validate"]["blocking_failures"] == 0
    landed = steps["land"]["activities"]
    assert landed == steps["extract"]["rows"]["activities"] > 0
    engine = sa.create_engine(settings.warehouse_url)
    with engine.connect() as conn:
        n = conn.execute(sa.text("select count(*) from int_interactions")).scalar_one()
    mentions = steps["extract"]["details"]["verbs"].get("mention", 0)
    assert 0 < n <= mentions  # every mention is an edge unless it is a self-mention
