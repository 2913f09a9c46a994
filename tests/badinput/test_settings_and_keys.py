"""Bad run-time inputs, one case each, with the outcome asserted on the message: pseudonymisation keys
(length, the demo key, a key other than the lake's) and settings (YAML, thresholds, opt-out and outcome
files)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.config import Settings, SourceConfig
from pipelines.privacy import (
    DEMO_KEY,
    DemoKeyError,
    KeyMismatchError,
    WeakKeyError,
    check_key,
    key_fingerprint,
    key_origin,
)

KEY = b"a-sixteen-byte-k"  # exactly MIN_KEY_BYTES
OTHER = b"another-key-of-enough-bytes"


# --- pseudonymisation keys ----------------------------------------------------------------------------
@pytest.mark.parametrize("secret", [b"k", b"x" * 15], ids=["1 byte", "15 bytes"])
def test_a_short_key_is_refused_with_how_to_make_one(tmp_path: Path, secret: bytes) -> None:
    with pytest.raises(WeakKeyError) as exc:
        check_key(tmp_path, secret, source_kind="slack", where=key_origin(explicit=False))
    text = str(exc.value)
    assert f"the environment variable ESN_PSEUDONYM_KEY is {len(secret)} byte(s) long" in text
    assert "at least 16" in text and 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in text
    assert not (tmp_path / "_state").exists()  # nothing recorded for a refused key


def test_a_16_byte_key_is_accepted(tmp_path: Path) -> None:
    assert check_key(tmp_path, KEY, source_kind="slack") == key_fingerprint(KEY)


def test_the_demo_key_is_refused_for_a_slack_source(tmp_path: Path) -> None:
    where = key_origin(explicit=True)
    with pytest.raises(DemoKeyError) as exc:
        check_key(tmp_path, DEMO_KEY.encode(), source_kind="slack", where=where)
    text = str(exc.value)
    assert "published demo key" in text and "'slack'" in text and "connection 'esn_pseudonym_key'" in text
    assert "secrets.token_urlsafe" in text


def test_the_demo_key_is_accepted_for_the_demo_source(tmp_path: Path) -> None:
    assert check_key(tmp_path, DEMO_KEY.encode(), source_kind="demo") == key_fingerprint(DEMO_KEY.encode())
    # and for the demo organisation served through a real connector (esn demo --via slack)
    assert check_key(tmp_path, DEMO_KEY.encode(), source_kind="slack", allow_demo=True)


def test_a_changed_key_is_detected_and_named(tmp_path: Path) -> None:
    check_key(tmp_path, KEY, source_kind="slack")
    recorded = json.loads((tmp_path / "_state" / "key_fingerprint.json").read_text())
    with pytest.raises(KeyMismatchError) as exc:
        check_key(tmp_path, OTHER, source_kind="slack", where=key_origin(explicit=False))
    err, text = exc.value, str(exc.value)
    assert err.lake_fingerprint == key_fingerprint(KEY) and err.key_fingerprint == key_fingerprint(OTHER)
    assert "the environment variable ESN_PSEUDONYM_KEY is not the key the lake" in text
    assert key_fingerprint(KEY) in text and key_fingerprint(OTHER) in text
    assert f"first used {recorded['first_used']}" in text
    assert "split every person in two" in text and "Restore the previous key" in text
    assert "docs/privacy.md" in text
    assert KEY.decode() not in text and OTHER.decode() not in text  # never the key itself
    assert json.loads((tmp_path / "_state" / "key_fingerprint.json").read_text()) == recorded  # unchanged


def test_the_same_key_twice_is_accepted(tmp_path: Path) -> None:
    assert check_key(tmp_path, KEY, source_kind="slack") == check_key(tmp_path, KEY, source_kind="yammer")


def test_every_step_checks_the_key_of_its_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines import jobs

    settings = Settings(lake_dir=tmp_path / "lake", sources=[
        SourceConfig(name="demo", kind="demo"), SourceConfig(name="slack", kind="slack")])
    monkeypatch.delenv("ESN_PSEUDONYM_KEY", raising=False)
    jobs._context(settings, "demo", None, False)  # no key: the demo organisation falls back to the demo key
    with pytest.raises(DemoKeyError):
        jobs._context(settings, "slack", DEMO_KEY, False)
    with pytest.raises(KeyMismatchError, match="connection 'esn_pseudonym_key'"):
        jobs._context(settings, "slack", OTHER.decode(), False)
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", "short")
    with pytest.raises(WeakKeyError, match="ESN_PSEUDONYM_KEY is 5 byte"):
        jobs._context(settings, "slack", None, False)


# --- settings: refused at load ------------------------------------------------------------------------
def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "esn.yaml"
    path.write_text(text)
    return path


def test_a_key_given_twice_in_the_yaml_is_refused_naming_it_and_its_lines(tmp_path: Path) -> None:
    from pipelines.config import ConfigError, load_settings

    cfg = _config(tmp_path, "privacy:\n  min_group_size: 5\n  opt_out_file: null\n  min_group_size: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert str(exc.value) == (f"invalid configuration in {cfg}:\n"
                              "  privacy.min_group_size: given twice (line 2 and line 4); keep one")


def test_a_nan_threshold_is_refused_naming_the_field(tmp_path: Path) -> None:
    from pipelines.config import ConfigError, load_settings

    cfg = _config(tmp_path, "alert_thresholds:\n  decline_min_drop: .nan\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert f"invalid configuration in {cfg}:\n  alert_thresholds.decline_min_drop: Input should be a finite number" \
        in str(exc.value)


def test_an_unknown_threshold_name_is_refused_at_load(tmp_path: Path) -> None:
    from pipelines.config import ConfigError, load_settings

    cfg = _config(tmp_path, "alert_thresholds:\n  decline_min_dorp: 0.2\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    text = str(exc.value)
    assert "alert_thresholds: Value error, unknown alert threshold(s) ['decline_min_dorp']" in text
    assert "decline_min_drop" in text  # the known names are listed


def test_an_infinite_number_anywhere_in_the_settings_is_refused(tmp_path: Path) -> None:
    from pipelines.config import ConfigError, load_settings

    cfg = _config(tmp_path, "quality:\n  drift_tolerance: .inf\nreports:\n  delivery:\n    backoff_seconds: -.inf\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert "quality.drift_tolerance: Input should be a finite number" in str(exc.value)
    assert "reports.delivery.backoff_seconds: Input should be a finite number" in str(exc.value)


def test_an_infinite_impact_target_is_refused(tmp_path: Path) -> None:
    from pipelines.metrics.config import load_impact_config

    path = _config(tmp_path, "targets:\n  participation_rate: {target: .inf}\n")
    with pytest.raises(ValueError, match="targets.participation_rate.target: Input should be a finite number"):
        load_impact_config(path)


# --- settings: refused by the run-time check (esn check-config) ---------------------------------------
def _checked(tmp_path: Path, text: str, impact: str | None = None) -> str:
    """The ConfigError message of check_runtime for this configuration (and impact configuration)."""
    from pipelines.config import ConfigError, load_settings

    settings = load_settings(_config(tmp_path, f"lake_dir: {tmp_path / 'lake'}\n{text}"))
    impact_path = None
    if impact is not None:
        impact_path = tmp_path / "impact.yaml"
        impact_path.write_text(impact)
    with pytest.raises(ConfigError) as exc:
        settings.check_runtime(impact_config=impact_path)
    return str(exc.value)


def test_a_missing_opt_out_file_is_refused(tmp_path: Path) -> None:
    text = _checked(tmp_path, f"privacy:\n  opt_out_file: {tmp_path / 'nope.txt'}\n")
    assert text == (f"invalid configuration in {tmp_path / 'esn.yaml'}:\n"
                    f"  privacy.opt_out_file: {tmp_path / 'nope.txt'} does not exist")


def test_a_malformed_opt_out_line_is_refused_naming_the_line(tmp_path: Path) -> None:
    opt_out = tmp_path / "opt_out.txt"
    opt_out.write_text("# opted out\nada@example.com\nBob Smith <bob@example.com>\n")
    text = _checked(tmp_path, f"privacy:\n  opt_out_file: {opt_out}\n")
    assert f"privacy.opt_out_file: {opt_out}: line 3: not an email address" in text


def test_a_missing_outcome_file_is_refused(tmp_path: Path) -> None:
    text = _checked(tmp_path, "", impact=f"outcome_files: [{tmp_path / 'sales.csv'}]\n")
    assert text == (f"invalid impact configuration in {tmp_path / 'impact.yaml'}:\n"
                    f"  outcome_files.0: {tmp_path / 'sales.csv'} does not exist")


def test_an_infinite_outcome_value_is_refused_naming_file_line_and_column(tmp_path: Path) -> None:
    sales = tmp_path / "sales.csv"
    sales.write_text("department,period,outcome,value\nSales,2026-05,revenue,12.5\nLegal,2026-05,revenue,inf\n")
    text = _checked(tmp_path, "", impact=f"outcome_files: [{sales}]\n")
    assert f"outcome_files.0: {sales}: line 3, column 'value': 'inf' is not a finite number" in text


def test_an_outcome_file_in_the_lake_is_checked_too(tmp_path: Path) -> None:
    outcomes = tmp_path / "lake" / "outcomes"
    outcomes.mkdir(parents=True)
    (outcomes / "nps.csv").write_text("email,period,outcome,value\nnot-an-email,2026-05,nps,3\n")
    text = _checked(tmp_path, "", impact="{}\n")
    assert "line 2, column 'email': not an email address" in text


def test_an_unknown_source_kind_and_bad_source_options_are_refused(tmp_path: Path) -> None:
    text = _checked(tmp_path, "sources:\n  - {name: a, kind: slak}\n  - {name: demo, kind: demo, options: {people: 1}}\n")
    assert "sources.0.kind: unknown source kind 'slak'" in text
    assert "sources.1.options.people:" in text


def test_a_valid_configuration_passes_the_run_time_check(tmp_path: Path) -> None:
    from pipelines.config import load_settings

    opt_out = tmp_path / "opt_out.txt"
    opt_out.write_text("ada@example.com\n" + "0" * 24 + "\n")
    settings = load_settings(_config(tmp_path, f"lake_dir: {tmp_path / 'lake'}\nprivacy:\n  opt_out_file: {opt_out}\n"
                                               "alert_thresholds:\n  decline_min_drop: 0.2\n"))
    assert settings.check_runtime() == []


def test_check_config_reports_the_bad_field_and_checks_the_key(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pipelines.cli import app

    runner = CliRunner()

    def check(cfg: Path) -> tuple[int, str]:
        result = runner.invoke(app, ["check-config", str(cfg)])
        return result.exit_code, " ".join(result.output.split())  # rich wraps long lines

    lake = tmp_path / "lake"
    bad = _config(tmp_path, f"lake_dir: {lake}\nprivacy:\n  opt_out_file: {tmp_path / 'nope.txt'}\n")
    code, text = check(bad)
    assert code == 2 and "privacy.opt_out_file:" in text and "does not exist" in text
    good = _config(tmp_path, f"lake_dir: {lake}\nsources:\n  - {{name: slack, kind: slack}}\n")
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", KEY.decode())
    assert check(good)[0] == 0
    assert not (lake / "_state").exists()  # checking records nothing
    check_key(lake, OTHER, source_kind="slack")  # the lake was written with another key
    code, text = check(good)
    assert code == 2 and "is not the key the lake" in text
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", DEMO_KEY)
    code, text = check(good)
    assert code == 2 and "published demo key" in text
