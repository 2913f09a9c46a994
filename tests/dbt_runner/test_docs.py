"""`dbt docs generate --static` through the runner (pipelines.transform.docs)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from pipelines.transform import build, docs


def test_docs_is_one_static_page_with_the_models_and_their_catalog(tmp_path: Path, project: Path) -> None:
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    params = {"start": dt.date(2026, 5, 1)}
    build(url, params, project_dir=project)

    index = docs(url, None, tmp_path / "site", params, project_dir=project)

    assert index == tmp_path / "site" / "index.html"
    html = index.read_text()
    # the manifest and the catalog are inlined: the page needs no other file, no server
    assert "the numbers, scaled" in html and "model.tiny.mart_numbers" in html
    catalog = json.loads((tmp_path / "site" / "catalog.json").read_text())
    assert "model.tiny.int_numbers" in catalog["nodes"]
    assert {c.lower() for c in catalog["nodes"]["model.tiny.int_numbers"]["columns"]} >= {"n", "scaled"}
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    # the lineage: mart_numbers <- int_numbers <- stg_numbers
    assert manifest["parent_map"]["model.tiny.mart_numbers"] == ["model.tiny.int_numbers"]
    assert not (project / "target").exists()
