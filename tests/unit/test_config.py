import pytest

from pipelines.config import ConfigError, load_settings


def test_defaults_are_valid():
    s = load_settings(None)
    assert s.privacy.min_group_size == 5
    assert s.warehouse_url.startswith("duckdb:///")


def test_errors_name_the_bad_field(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("privacy:\n  min_group_size: 0\nsources:\n  - name: Bad Name\n    kind: demo\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    text = str(err.value)
    assert "privacy.min_group_size" in text
    assert "sources.0.name" in text
    assert str(cfg) in text


def test_unknown_field_is_rejected(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("warehouse_uri: duckdb:///x.duckdb\n")
    with pytest.raises(ConfigError, match="warehouse_uri"):
        load_settings(cfg)


def test_unknown_interaction_type_is_rejected():
    with pytest.raises(ConfigError, match="interactions.weights"):
        load_settings(None, interactions={"weights": {"like": 1.0}})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_a_duplicate_key_inside_a_list_is_named_by_its_path(tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("sources:\n  - name: a\n    kind: demo\n    name: b\n")
    with pytest.raises(ConfigError, match=r"sources\.0\.name: given twice \(line 2 and line 4\)"):
        load_settings(cfg)


def test_anchors_and_merge_keys_are_not_duplicates(tmp_path):
    cfg = tmp_path / "anchors.yaml"
    cfg.write_text("quality: &q\n  drift_window_days: 7\ninteractions:\n  weights:\n    <<: {reply: 2.0}\n"
                   "    reaction: 0.25\n")
    s = load_settings(cfg)
    assert s.quality.drift_window_days == 7 and s.interactions.weights == {"reply": 2.0, "reaction": 0.25}


def test_the_same_threshold_name_twice_in_the_defaults_file_is_an_error(tmp_path):
    from pipelines.metrics.thresholds import load_thresholds

    path = tmp_path / "t.yaml"
    path.write_text("decline_weeks: 4\ndecline_weeks: 5\n")
    with pytest.raises(ValueError, match="decline_weeks: given twice"):
        load_thresholds(path)
    path.write_text("decline_weeks: .nan\n")
    with pytest.raises(ValueError, match="'decline_weeks' must be a finite number"):
        load_thresholds(path)


def test_threshold_overrides_are_checked_and_applied():
    s = load_settings(None, alert_thresholds={"decline_min_drop": 0.2})
    from pipelines.metrics.thresholds import load_thresholds

    assert load_thresholds(overrides=s.alert_thresholds)["decline_min_drop"] == 0.2
    with pytest.raises(ConfigError, match="unknown alert threshold"):
        load_settings(None, alert_thresholds={"nope": 1.0})


def test_the_example_configuration_passes_the_run_time_check():
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "config" / "example.yaml"
    warnings = load_settings(example).check_runtime()
    assert all("names_file" not in w for w in warnings)
