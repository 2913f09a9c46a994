"""The real networks of tests/data/networks run through the whole pipeline (file import, publish, network
stage) into a DuckDB warehouse, for the tests of what the pipeline does to their numbers (issue 12).

Independent of the pipeline: the expected values of the tests are computed from the files with pandas."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.config import Settings, SourceConfig, load_settings
from pipelines.network_stage import run_network

DATA = Path(__file__).resolve().parents[1] / "data"
EU = DATA / "networks" / "snap-email-Eu-core"
ENRON = DATA / "networks" / "perry-wolfe-enron"
KEY = "test-key-not-a-secret"
EU_DAY = dt.date(2024, 1, 31)  # a month end: rolling windows and the month snapshot
EU_INTERVAL = jobs.Interval(EU_DAY, EU_DAY)  # the import dates every e-mail at synthetic_date
MAY_2001 = jobs.Interval(dt.date(2001, 5, 1), dt.date(2001, 5, 31))


def eu_core_half_labels(tmp: Path) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Eu-core's edges and every other department label (the others are people without a department),
    and the labels file written for the import."""
    edges = pd.read_csv(EU / "email-Eu-core.txt", sep=" ", header=None, names=["s", "t"])
    labels = pd.read_csv(EU / "email-Eu-core-department-labels.txt", sep=" ", header=None, names=["node", "dept"])
    half = labels.iloc[::2]
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "half-labels.txt"
    half.to_csv(path, sep=" ", header=False, index=False)
    return edges, half, path


def eu_core_settings(tmp: Path, labels: Path, **overrides: Any) -> Settings:
    opts = {"format": "snap_edges", "path": str(EU / "email-Eu-core.txt"), "departments": str(labels),
            "synthetic_date": EU_DAY.isoformat()}
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=f"duckdb:///{tmp / 'w.duckdb'}",
                         quality={"volume_drift": "warning"},
                         sources=[SourceConfig(name="eu", kind="file", options=opts)], **overrides)


def enron_files(tmp: Path) -> tuple[Path, Path, Path]:
    """messages.tsv of tests/data/networks has the 3 columns the paper uses (id, time, sender); the
    import reads the author's 5-column layout, so the two text columns are written back empty-ish."""
    tmp.mkdir(parents=True, exist_ok=True)
    messages = tmp / "messages.tsv"
    with messages.open("w") as out, (ENRON / "messages.tsv").open() as src:
        for line in src:
            mid, unix, sender = line.rstrip("\n").split("\t")
            out.write(f"{mid}\t-\t{unix}\t-\t{sender}\n")
    return messages, ENRON / "recipients.tsv", DATA / "imports" / "perry-wolfe-enron" / "employees.tsv"


def enron_settings(tmp: Path, **overrides: Any) -> Settings:
    messages, recipients, employees = enron_files(tmp)
    opts = {"format": "enron_tsv", "path": str(messages), "recipients": str(recipients),
            "departments": str(employees)}
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=f"duckdb:///{tmp / 'w.duckdb'}",
                         quality={"volume_drift": "warning"},
                         sources=[SourceConfig(name="enron", kind="file", options=opts)], **overrides)


def run(settings: Settings, interval: jobs.Interval, network_end: dt.date | None = None) -> sa.Engine:
    """The daily job for the interval, then the network stage for its last day."""
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, interval, key=KEY, engine=engine)
    run_network(settings, network_end or interval.end, engine=engine)
    return engine


def frame(engine: sa.Engine, sql: str, **params: Any) -> pd.DataFrame:
    return warehouse.read_frame(engine, sql, params)


CHATTERJEE = DATA / "imports" / "chatterjee-slack-disentangled" / "racket-2017-merged-racket-general-first400.xml"
SLACK_MAY_2017 = jobs.Interval(dt.date(2017, 5, 11), dt.date(2017, 5, 31))


def slack_settings(tmp: Path, **overrides: Any) -> Settings:
    """The first 400 messages of Chatterjee et al.'s disentangled Slack channel (racket/general)."""
    opts = {"format": "chatterjee_xml", "path": str(CHATTERJEE)}
    return load_settings(None, lake_dir=tmp / "lake", warehouse_url=f"duckdb:///{tmp / 'w.duckdb'}",
                         quality={"volume_drift": "warning"},
                         sources=[SourceConfig(name="slack", kind="file", options=opts)], **overrides)
