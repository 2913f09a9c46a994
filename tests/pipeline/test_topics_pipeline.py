"""Topics through the whole job: the demo organisation served by the Slack emulator, extracted with a
taxonomy configured, reaches stg_activities with topic ids (never text) on posts and replies; the same run
without a taxonomy gives the same activities in every other column, with no topics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipelines import jobs, warehouse
from pipelines.config import Settings
from pipelines.emulators import demo_served
from pipelines.sources.demo_org import build_org
from pipelines.topics import TopicRules
from tests.conftest import demo_settings

START = dt.date(2026, 3, 2)
DAYS = 14
END = START + dt.timedelta(days=DAYS - 1)
TAXONOMY = [{"id": "finance", "name": "Finance"},
            {"id": "budget", "name": "Budget", "terms": ["budget"], "broader": "finance"},
            {"id": "support", "name": "Support", "terms": ["customer ticket", "ticket"]}]


def _run(org, root: Path, topics: dict | None, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    settings: Settings = demo_settings(root)
    monkeypatch.setenv(settings.privacy.pseudonym_key_env, "topics-pipeline-test-key")
    if topics is not None:
        settings.topics = TopicRules.model_validate(topics)
    directory = {"people": 60, "days": DAYS, "start": START, "seed": 5}
    with demo_served.serve(org, ("slack",), END, directory) as (sources, _urls):
        settings.sources = sources
        jobs.run(settings, jobs.Interval(START, END))
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            return warehouse.read_frame(conn, "select * from stg_activities order by source, event_id", {})
    finally:
        engine.dispose()


@pytest.mark.slow
def test_topics_land_as_ids_and_change_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    org = build_org(60, DAYS, START, 5, 1.0)
    with_topics = _run(org, tmp_path / "with", {"taxonomy": TAXONOMY}, monkeypatch)
    without = _run(org, tmp_path / "without", None, monkeypatch)
    assert without["topic_ids"].isna().all()
    others = [c for c in with_topics.columns if c != "topic_ids"]
    pd.testing.assert_frame_equal(with_topics[others], without[others])
    tagged = with_topics.dropna(subset=["topic_ids"])
    ids = {t for v in tagged["topic_ids"] for t in v.split(" ")}
    assert {"tx:budget", "tx:finance", "tx:support"} <= ids <= {"tx:budget", "tx:finance", "tx:support"}
    assert set(tagged["verb"]) <= {"post", "reply"} and {"post", "reply"} <= set(tagged["verb"])
    # a broader topic comes with every narrower one
    assert all("tx:finance" in v.split(" ") for v in tagged["topic_ids"] if "tx:budget" in v)
