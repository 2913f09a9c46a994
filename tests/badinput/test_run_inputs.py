"""Bad inputs at the level of a run: a publish that fails after landing, a sudden volume drop, a lake
left half-written by an older version, validation evidence that must not grow with the directory.
Each case asserts its outcome: accepted correctly, refused with a clear message, or recorded."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import jobs, lake, warehouse
from tests.conftest import SMALL_DEMO, demo_settings

START = SMALL_DEMO["start"]
BASE = jobs.Interval(START, START + dt.timedelta(days=27))
DAY = BASE.end + dt.timedelta(days=1)


@pytest.fixture
def baseline(tmp_path):
    settings = demo_settings(tmp_path)
    jobs.run(settings, BASE)
    return settings


def _count(settings, sql: str, **params):
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        return warehouse.read_frame(engine, sql, params).iloc[0, 0]
    finally:
        engine.dispose()


def test_a_failed_publish_is_covered_by_the_next_run(baseline, monkeypatch):
    settings = baseline
    from pipelines import metrics

    def broken(*args, **kwargs):
        raise ValueError("outcome file sales.csv, line 3: not a number")

    monkeypatch.setattr(metrics, "compute_python_metrics", broken)
    with pytest.raises(ValueError, match="line 3"):
        jobs.run(settings, jobs.Interval(DAY, DAY))
    # nothing of DAY is published (the lake tables, dbt's working tables, may hold it: the next publish
    # recomputes them), and DAY stays pending
    published_day = "select count(*) from esn_marts.mart_engagement_daily where activity_date = :d"
    assert _count(settings, published_day, d=DAY) == 0
    assert lake.pending(settings.lake_dir, "demo", "canonical").days() == [DAY]
    monkeypatch.undo()
    nxt = DAY + dt.timedelta(days=1)
    report = jobs.run(settings, jobs.Interval(nxt, nxt))  # the next day's run, not a rerun of DAY
    assert report["publish"]["interval"] == f"{DAY}_{nxt}"
    landed = lake.read_partition(lake.canonical_dir(settings.lake_dir, "activities") / "source=demo", DAY)
    assert _count(settings, "select count(*) from lake_activities where activity_date = :d", d=DAY) == landed.num_rows > 0
    assert _count(settings, published_day, d=DAY) > 0
    assert lake.pending(settings.lake_dir, "demo", "canonical").days() == []


def _shrink_raw(settings, day, keep: float) -> int:
    f = lake.raw_dir(settings.lake_dir, "demo", "activities") / f"date={day}" / lake.PART
    t = pq.read_table(f)
    pq.write_table(t.slice(0, int(t.num_rows * keep)), f)
    return t.num_rows


def test_a_sudden_volume_drop_blocks_the_batch_by_default(baseline):
    settings = baseline
    interval = jobs.Interval(DAY, DAY)
    jobs.extract(settings, "demo", interval)
    _shrink_raw(settings, DAY, 0.1)
    jobs.stage(settings, "demo", interval)
    with pytest.raises(jobs.BatchRejected) as err:
        jobs.validate(settings, "demo", interval)
    assert "activity_volume" in str(err.value) and "drift_ratio" in str(err.value)
    assert _count(settings, "select count(*) from lake_activities where activity_date = :d", d=DAY) == 0


def test_a_volume_drop_is_only_recorded_when_configured_as_warning(baseline):
    settings = baseline.model_copy(update={"quality": baseline.quality.model_copy(update={"volume_drift": "warning"})})
    interval = jobs.Interval(DAY, DAY)
    jobs.extract(settings, "demo", interval)
    full = _shrink_raw(settings, DAY, 0.1)
    jobs.stage(settings, "demo", interval)
    summary = jobs.validate(settings, "demo", interval)
    assert summary["blocking_failures"] == 0 and summary["warnings"] >= 1
    records = json.loads(Path(summary["evidence"]).read_text())
    drift = [r for r in records if r["suite"] == "activity_volume"]
    assert drift and not drift[0]["success"] and drift[0]["severity"] == "warning"
    jobs.land(settings, "demo", interval)
    jobs.publish(settings, interval)
    assert _count(settings, "select count(*) from lake_activities where activity_date = :d", d=DAY) == int(full * 0.1)


def test_a_partition_left_between_the_two_renames_of_the_old_protocol_is_restored(baseline):
    settings = baseline
    base = lake.canonical_dir(settings.lake_dir, "activities") / "source=demo"
    day = BASE.end - dt.timedelta(days=3)
    before = lake.read_partition(base, day)
    target = lake.partition_dir(base, day)
    target.rename(base / f".old-{target.name}-0123abcd")  # what a kill between the renames left
    (base / f".tmp-{target.name}-4567ef").mkdir()
    report = jobs.run(settings, jobs.Interval(DAY, DAY))
    assert report["sources"]["demo"]["extract"]["recovered"] == {"restored_partitions": 1, "stale_folders": 1}
    assert lake.read_partition(base, day).equals(before)
    assert _count(settings, "select count(*) from lake_activities where activity_date = :d", d=day) == before.num_rows


def test_validation_evidence_does_not_embed_the_directory(tmp_path):
    small, large = demo_settings(tmp_path / "small", people=150), demo_settings(tmp_path / "large", people=600)
    sizes, keys = {}, {}
    for name, settings in (("small", small), ("large", large)):
        jobs.run(settings, jobs.Interval(START, START + dt.timedelta(days=6)))
        files = [f for f in settings.evidence_dir.rglob("*") if f.is_file()]
        sizes[name] = sum(f.stat().st_size for f in files if f.suffix == ".json")
        found: set[str] = set()
        for f in files:
            if f.suffix in (".json", ".html"):
                found |= set(re.findall(r"\b[0-9a-f]{24}\b", f.read_text(errors="replace")))
        keys[name] = found
    assert len(keys["large"]) <= 30, f"{len(keys['large'])} person keys in the validation evidence"
    assert sizes["large"] < 1.5 * sizes["small"], sizes  # 4x the people, not 4x the evidence


def test_what_an_extraction_set_aside_reaches_the_quality_records(tmp_path):
    """A bad message in a Slack export is quarantined at extraction; the run's quality records count it."""
    from pipelines.config import SourceConfig
    from tests.badinput.test_exports import DAY as EXPORT_DAY
    from tests.badinput.test_exports import _export, _msg

    root = _export(tmp_path / "export", {"2020-01-01.json": [_msg(0), {**_msg(2), "ts": "not-a-ts"}]})
    settings = demo_settings(tmp_path).model_copy(update={"sources": [
        SourceConfig(name="export", kind="slack_export", options={"path": str(root)})]})
    interval = jobs.Interval(EXPORT_DAY, EXPORT_DAY)
    summary = jobs.extract(settings, "export", interval)
    assert summary["details"]["quarantined"] == {"ts is not a Slack timestamp": 1}
    records = jobs._extract_records(settings, "export", interval, "run1", "export/x")
    assert [(r["expectation"], r["unexpected_count"], r["success"]) for r in records] == [
        ("records_parse", 1, False)]
    assert summary["details"]["quarantine_file"] in records[0]["unexpected_sample"]
