"""docs/metrics.md says when every platform's events are dated and renders every setting of the question
heuristic with its default (issue 12), and is current with the code and the catalogue."""

from __future__ import annotations

from pathlib import Path

from pipelines.catalogue import load_event_times, render_event_rules
from pipelines.config import QuestionRules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_render_the_event_times_and_every_question_setting():
    text = DOCS.read_text()
    section = "\n".join(render_event_rules(load_event_times()))
    assert section in text, "docs/metrics.md is not current: run python -m pipelines.catalogue"
    for name in QuestionRules.model_fields:
        assert f"| `questions.{name}` |" in section, name
    assert '| `questions.marks` | `["?"]` |' in section  # the historical rule is the default
    platforms = load_event_times()["platforms"]
    for kind in ("msgraph", "salesforce", "slack", "yammer", "file"):
        assert any(f"({kind}" in name or f", {kind}" in name for name in platforms), kind
    assert "createdDateTime" in section and "FeedLike" in section
