"""docs/metrics.md renders every rule and threshold the network, influence tier and persona metrics use,
with its default and the configuration key that sets it (issue 12), and is current with the code."""

from __future__ import annotations

from pathlib import Path

from pipelines.network.catalogue import RULES, _settings, render_rules
from pipelines.network.rules import SET_ELSEWHERE, InfluenceRules, NetworkRules, PersonaRules

DOCS = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_render_every_network_setting_with_its_key_and_default():
    text = DOCS.read_text()
    section = "\n".join(render_rules())
    assert section in text, "docs/metrics.md is not current: run python -m pipelines.catalogue"
    keys = [key for key, _, _ in _settings(NetworkRules, "")]
    assert {f"personas.{k}" for k in PersonaRules.model_fields} <= set(keys)
    assert {f"influence.{k}" for k in InfluenceRules.model_fields} <= set(keys)
    for key in keys:
        if key not in SET_ELSEWHERE:
            assert f"| `network.{key}` |" in section, key
    assert "| `interactions.weights` |" in section and "| `privacy.min_group_size` |" in section
    for name in RULES:
        assert f"| {name} |" in section, name
