"""The usage-segment thresholds come from the configuration (`usage_segments:`), through jobs.model_params, and
an inconsistent set is refused naming the key.

Twelve 7-day blocks end on E = 2026-03-22 (block k holds E-7k-6 .. E-7k); one view a day on E-7k for the
weeks listed, n views each:
  p: 10 views in each of the 12 weeks -> 120 actions, 10 a week, 12 weeks
  q: 1 view in each of 8 weeks (k = 0..7) -> 8 actions, 8 weeks
  r: 6 views on one day -> 6/12 = 0.5 a week, 1 week
  s: 1 view -> 1/12 a week, 1 week
Defaults (power 15 a week and 9 weeks, habitual 9 weeks, novice 1 a week):
  p habitual (10 < 15), q low (8 weeks < 9, 8/12 < 1), r low, s low.
With power_actions_per_week 10, habitual_active_weeks 8, novice_actions_per_week 0.5:
  p power (10 >= 10 and 12 >= 9), q habitual (8 >= 8), r novice (0.5 >= 0.5), s low.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from hand_data import activities, people

from pipelines import jobs, transform, warehouse
from pipelines.config import ConfigError, load_settings

E = dt.date(2026, 3, 22)
START = E - dt.timedelta(days=83)


def _rows() -> list[tuple]:
    rows: list[tuple] = []
    for who, n, weeks in (("p", 10, range(12)), ("q", 1, range(8))):
        for wk in weeks:
            day = E - dt.timedelta(days=7 * wk)
            rows += [(f"{who}{wk}-{j}", f"{day} 12:00", who, "view", None, None, None, False, False) for j in range(n)]
    rows += [(f"r-{j}", "2026-03-10 12:00", "r", "view", None, None, None, False, False) for j in range(6)]
    rows += [("s-0", "2026-03-11 12:00", "s", "view", None, None, None, False, False)]
    return rows


def _segments(tmp: Path, usage_segments: dict[str, Any] | None) -> dict[str, str]:
    from conftest import load_lake  # noqa: PLC0415  (tests/metrics/conftest.py)

    settings = load_settings(None, lake_dir=tmp / "lake", usage_segments=usage_segments,
                             privacy={"min_group_size": 1})
    engine = warehouse.make_engine(f"duckdb:///{tmp / 'w.duckdb'}")
    ppl = people([(k, "Ops", "Paris", "Associate", None, False, "2020-01-01") for k in "pqrs"], E)
    load_lake(engine, activities(_rows()), ppl)
    params = jobs.model_params(settings, jobs.Interval(START, E))
    transform.build(engine.url.render_as_string(hide_password=False), params, schemas=warehouse.schemas_of(engine))
    with engine.begin() as conn:
        jobs.refresh_marts(conn, jobs.Interval(START, E))
    got = warehouse.read_frame(engine, "select person_key, usage_segment from fct_person_usage_daily "
                                       "where as_of_date = :d", {"d": E})
    adoption = warehouse.read_frame(engine, "select power_users, habitual_users, novice_users, low_users "
                                            "from mart_adoption_daily where as_of_date = :d and segment_type = 'org'",
                                    {"d": E})
    engine.dispose()
    out = dict(zip(got["person_key"], got["usage_segment"], strict=True))
    out["_mart"] = ",".join(str(int(v)) for v in adoption.iloc[0])
    return out


def test_a_config_change_moves_people_between_usage_segments(tmp_path: Path) -> None:
    default = _segments(tmp_path / "default", None)
    assert default == {"p": "habitual", "q": "low", "r": "low", "s": "low", "_mart": "0,1,0,3"}
    moved = _segments(tmp_path / "moved", {"power_actions_per_week": 10, "habitual_active_weeks": 8,
                                           "novice_actions_per_week": 0.5})
    assert moved == {"p": "power", "q": "habitual", "r": "novice", "s": "low", "_mart": "1,1,1,1"}


@pytest.mark.parametrize(("section", "key", "why"), [
    ({"power_active_weeks": 8}, "usage_segments.power_active_weeks", "below habitual_active_weeks (9)"),
    ({"habitual_active_weeks": 10}, "usage_segments.power_active_weeks", "below habitual_active_weeks (10)"),
    ({"power_actions_per_week": 2, "novice_actions_per_week": 3}, "usage_segments.power_actions_per_week",
     "below novice_actions_per_week (3)"),
    ({"habitual_active_weeks": 13}, "usage_segments.habitual_active_weeks", "less than or equal to 12"),
    ({"novice_actions_per_week": 0}, "usage_segments.novice_actions_per_week", "greater than 0"),
])
def test_an_inconsistent_usage_segment_set_is_refused_naming_the_key(section: dict[str, Any], key: str,
                                                                     why: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(None, usage_segments=section)
    line = next(line for line in str(err.value).splitlines() if line.strip().startswith(key + ":"))
    assert why in line


def test_the_usage_segment_defaults_are_the_specification(tmp_path: Path) -> None:
    params = jobs.model_params(load_settings(None, lake_dir=tmp_path), jobs.Interval(START, E))
    assert {k: v for k, v in params.items() if k.startswith("usage_") and not k.startswith("usage_report_")} == {
        "usage_power_actions_per_week": 15.0, "usage_power_active_weeks": 9, "usage_habitual_active_weeks": 9,
        "usage_novice_actions_per_week": 1.0}


