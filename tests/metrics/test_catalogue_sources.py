"""docs/metrics.md says per table what it is computed from, derived from the SQL models' dependency graph,
and renders the usage-segment thresholds of the configuration; no post, response or network table is computed
from the aggregate usage reports."""

from __future__ import annotations

from pathlib import Path

from pipelines import catalogue, dbt_project, warehouse
from pipelines.config import UsageSegments

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
#: the models of posts, responses and interactions (the network's input): never from counts
EVENT_MODELS = ("fct_posts", "int_post_responses", "int_interactions", "fct_person_daily_activity")


def _downstream(models: list[warehouse.Model], roots: tuple[str, ...]) -> set[str]:
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for m in models:
            if m.name not in out and out & set(m.depends_on):
                out.add(m.name)
                changed = True
    return out


def test_no_post_response_or_network_model_is_computed_from_the_usage_reports() -> None:
    models = dbt_project.discover_models()
    for name in sorted(_downstream(models, EVENT_MODELS) - {"fct_person_usage_daily", "mart_adoption_daily"}):
        assert "lake_usage_daily" not in catalogue.lake_lineage(name, [], models), name
    for table in ("mart_network_org", "fct_person_network"):
        assert "lake_usage_daily" not in catalogue.lake_lineage(table, [], models)
    # the report's mart is computed from the reports (and who is counted), not from events
    lineage = catalogue.lake_lineage("mart_usage_daily", [], models)
    assert lineage - {"lake_people", "lake_people_history"} == {"lake_usage_daily"}
    assert {"lake_activities", "lake_usage_daily"} <= catalogue.lake_lineage("fct_person_usage_daily", [], models)


def test_the_docs_say_per_table_what_it_is_computed_from() -> None:
    text = DOCS.read_text()
    models = dbt_project.discover_models()
    kinds = catalogue._source_kinds()
    assert kinds[1] == ["m365_usage"] and "msgraph" in kinds[0]
    entries = catalogue.load_entries()
    for table in sorted({e.table for e in entries}):
        inputs = next(e.inputs for e in entries if e.table == table)
        source = catalogue.computed_from(catalogue.lake_lineage(table, inputs, models), kinds)
        if source:
            section = text.split(f"\n## {table}\n", 1)[1].split("\n## ", 1)[0]
            assert f"Computed from: {source}." in section, f"{table}: docs/metrics.md is not current"
    section = text.split("\n## mart_knowledge_sharing\n", 1)[1].split("\n## ", 1)[0]
    assert "aggregate usage reports excluded" in section


def test_the_docs_render_every_usage_segment_threshold_with_its_default() -> None:
    text = DOCS.read_text()
    assert "\n".join(catalogue.usage_segment_rules()) in text, "docs/metrics.md is not current"
    defaults = UsageSegments()
    for name in UsageSegments.model_fields:
        assert f"| usage_segments.{name} | {getattr(defaults, name):g} |" in text
