"""The `esn` command line: the demo end to end (directly, and through the platforms' emulators: one, or
Slack + Bitrix24 + UserVoice at once) and its reports."""

from __future__ import annotations

import json

import duckdb
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


@pytest.mark.parametrize("via", ["direct", "slack", "bitrix24", "mangoapps", "uservoice",
                                 "slack,bitrix24,uservoice"])
def test_demo_runs_end_to_end_and_says_where_the_outputs_are(tmp_path, via):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--people", "120", "--days", "21", "--output", str(out), "--via", via])
    assert result.exit_code == 0, result.output
    assert "warehouse:" in result.output and "report:" in result.output
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    days = con.execute("select count(distinct activity_date) from esn_marts.mart_engagement_daily").fetchone()[0]
    nodes = con.execute("select count(*) from esn_internal.fct_person_network "
                        "where window_name = 'rolling_28d'").fetchone()[0]
    con.close()
    assert days == 21 and nodes > 0
    # what a BI tool opens: the published marts alone, in main
    with duckdb.connect(str(out / "published" / "esn_marts.duckdb"), read_only=True) as bi:
        tables = {t for (t,) in bi.execute("select table_name from duckdb_tables() where schema_name = 'main'").fetchall()}
        assert bi.execute("select count(distinct activity_date) from mart_engagement_daily").fetchone()[0] == 21
    assert "mart_network_org" in tables and not {t for t in tables if not t.startswith(("mart_", "_published"))}
    assert (out / "reports" / "report.html").exists() and (out / "reports" / "sales.eml").exists()
    if "uservoice" in via:
        with duckdb.connect(str(out / "published" / "esn_marts.duckdb"), read_only=True) as bi:
            ideas = bi.execute("select ideas from mart_ideas where segment_type = 'org' "
                               "and period_type = 'month'").fetchall()
        assert ideas and sum(n for (n,) in ideas if n is not None) > 0


def test_an_unknown_platform_is_refused_with_the_known_ones(tmp_path):
    result = runner.invoke(app, ["demo", "--output", str(tmp_path), "--via", "slack,myspace"])
    assert result.exit_code != 0 and "bitrix24" in result.output and "myspace" in result.output


def test_report_renders_from_an_existing_warehouse(tmp_path):
    out = tmp_path / "demo"
    assert runner.invoke(app, ["demo", "--people", "120", "--days", "21", "--output", str(out)]).exit_code == 0
    result = runner.invoke(app, ["report", "--warehouse-url", f"duckdb:///{out / 'warehouse.duckdb'}",
                                 "--demo-audiences", "--output", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "rep").iterdir()} >= {"report.html", "leadership.eml", "legal.html"}
    # who knows about the IT help channel (a container is a topic): the people who answered its questions
    result = runner.invoke(app, ["experts", "container:C-ask-it", "--warehouse-url",
                                 f"duckdb:///{out / 'warehouse.duckdb'}", "--json", "--limit", "5"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["topic_ids"] == ["container:C-ask-it"] and [p["rank"] for p in found["people"]] == [1, 2, 3, 4, 5]
    scores = [p["score"] for p in found["people"]]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    assert found["people"][0]["explanation"].startswith("answered ")
    result = runner.invoke(app, ["experts", "   ", "--warehouse-url", f"duckdb:///{out / 'warehouse.duckdb'}"])
    assert result.exit_code == 2 and "names no topic" in result.output
    # who could answer the open questions of the last day: each with up to 5 people, never the asker
    result = runner.invoke(app, ["answerers", "--warehouse-url", f"duckdb:///{out / 'warehouse.duckdb'}", "--json"])
    assert result.exit_code == 0, result.output
    open_qs = json.loads(result.output)
    assert open_qs and all(q["hours_open"] >= 24 for q in open_qs)
    assert all(0 < len(q["candidates"]) <= 5 and q["asker_key"] not in {c["person_key"] for c in q["candidates"]}
               for q in open_qs if q["candidates"])
    assert any(q["candidates"] for q in open_qs) and all(c["why"] for q in open_qs for c in q["candidates"])
    result = runner.invoke(app, ["answerers", "--warehouse-url", f"duckdb:///{out / 'warehouse.duckdb'}", "--send"])
    assert result.exit_code == 2 and "deliver_to is 'none'" in result.output
    # the dbt docs site of the same warehouse: one page with every model, its description and its lineage
    result = runner.invoke(app, ["docs", "--warehouse-url", f"duckdb:///{out / 'warehouse.duckdb'}",
                                 "--output", str(tmp_path / "docs")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "docs" / "manifest.json").read_text())
    node = manifest["nodes"]["model.esn_metrics.mart_engagement_daily"]
    assert node["description"] and "model.esn_metrics.fct_person_daily_activity" in node["depends_on"]["nodes"]
    catalog = json.loads((tmp_path / "docs" / "catalog.json").read_text())
    assert "model.esn_metrics.mart_engagement_daily" in catalog["nodes"]  # column types read from the warehouse
    page = (tmp_path / "docs" / "index.html").read_text()
    assert "mart_engagement_daily" in page and len(page) > 100_000


def test_bad_config_names_the_field(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("privacy:\n  min_group_size: -1\n")
    result = runner.invoke(app, ["check-config", str(cfg)])
    assert result.exit_code == 2
    assert "privacy.min_group_size" in result.output
