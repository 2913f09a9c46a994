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
