"""Shared helpers for the connector tests: paths of the copied fixtures and a source context factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.config import Settings, SourceConfig
from pipelines.privacy import Pseudonymiser
from pipelines.sources import SourceContext

DATA = Path(__file__).resolve().parents[1] / "data" / "slack"
API = DATA / "api"
EXPORTS = DATA / "exports"
KEY = b"test-key-not-a-secret"


def make_ctx(tmp_path: Path, kind: str, options: dict[str, Any], *, name: str | None = None,
             warehouse: str | None = None) -> SourceContext:
    settings = Settings(lake_dir=tmp_path / "lake",
                        warehouse_url=warehouse or f"duckdb:///{tmp_path / 'warehouse.duckdb'}",
                        sources=[SourceConfig(name=name or kind, kind=kind, options=options)])
    return SourceContext(settings, settings.sources[0], Pseudonymiser(KEY))


@pytest.fixture
def ctx_factory(tmp_path: Path):
    def factory(kind: str, options: dict[str, Any], **kw: Any) -> SourceContext:
        return make_ctx(tmp_path, kind, options, **kw)
    return factory
