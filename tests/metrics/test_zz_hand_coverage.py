"""Every catalogue entry of sections 1, 2 and 4 is checked against a hand-computed value somewhere.

The hand tests record what they checked while they run, so this file runs last (named test_zz_...)."""

from __future__ import annotations  # noqa: I001

import test_adoption_hand
import test_ideas_hand
import test_impact_hand
import test_knowledge_hand
import test_usage_reports_hand

import pytest

from pipelines.catalogue import load_entries

# mart_alerts is checked by the alert tests of test_demo_runs.py (planted patterns) rather than by hand
NOT_HAND = {"mart_alerts"}


def test_every_section_1_2_4_entry_has_a_hand_computed_test() -> None:
    parts = (test_adoption_hand.COVERED, test_knowledge_hand.COVERED, test_impact_hand.COVERED,
             test_usage_reports_hand.COVERED, test_ideas_hand.COVERED)
    if not all(parts):
        pytest.skip("run together with the hand tests (tests/metrics), which record what they check")
    covered = set().union(*parts)
    entries = [e for e in load_entries(include_network=False) if e.section in ("1", "2", "4") and not e.shared
               and e.table not in NOT_HAND]
    assert entries
    missing = sorted(e.name for e in entries if e.name not in covered)
    assert not missing, f"catalogue entries without a hand-computed check: {missing}"
