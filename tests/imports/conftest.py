"""Helpers of the import tests: a SourceContext for a `file` source over a temporary lake."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from pipelines import lake
from pipelines.config import Settings, SourceConfig
from pipelines.privacy import Pseudonymiser
from pipelines.sources import SourceContext

DATA = Path(__file__).resolve().parent.parent / "data" / "imports"
#: the full public datasets behind tests/data/imports' samples, for a developer's opt-in check only: the
#: suite never reads them unless ESN_FULL_DATASETS names their folder (a user's clone does not have them)
SHARED = Path(os.environ["ESN_FULL_DATASETS"]) if os.environ.get("ESN_FULL_DATASETS") else None
EVER = (dt.date(1980, 1, 1), dt.date(2030, 12, 31))
KEY = b"import-tests-key"


def file_ctx(tmp: Path, name: str = "imp", key: bytes = KEY, **options: Any) -> SourceContext:
    settings = Settings(lake_dir=tmp / "lake", sources=[SourceConfig(name=name, kind="file", options=options)])
    return SourceContext(settings=settings, source=settings.sources[0], pseudonymiser=Pseudonymiser(key))


def landed(ctx: SourceContext, stream: str) -> pd.DataFrame:
    """Every raw partition of a stream, concatenated."""
    base = lake.raw_dir(ctx.lake_dir, ctx.source.name, stream)
    frames = [pq.read_table(f).to_pandas() for f in lake.partition_files(base, lake.partition_days(base))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def lake_files(ctx: SourceContext) -> list[Path]:
    return sorted(p for p in ctx.lake_dir.rglob("*") if p.is_file()) if ctx.lake_dir.exists() else []
