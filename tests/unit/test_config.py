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
