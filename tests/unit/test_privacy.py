import json

import pandas as pd
import pytest

from pipelines.privacy import (
    DEMO_KEY,
    MissingKeyError,
    OptOutFileError,
    Pseudonymiser,
    WeakKeyError,
    check_key,
    key_fingerprint,
    read_opt_out_file,
    resolve_key,
)


def test_same_email_gets_same_key_on_every_platform():
    ps = Pseudonymiser(b"k")
    slack = ps.person("slack", "U123", "Ada.Lovelace@Example.com ")
    teams = ps.person("msgraph", "0f3c-guid", "ada.lovelace@example.com")
    assert slack == teams


def test_native_ids_are_scoped_by_source():
    ps = Pseudonymiser(b"k")
    assert ps.person("slack", "U1", None) != ps.person("yammer", "U1", None)


def test_key_depends_on_the_secret_and_hides_the_identifier():
    a = Pseudonymiser(b"secret-a").email("ada@example.com")
    b = Pseudonymiser(b"secret-b").email("ada@example.com")
    assert a != b
    assert "ada" not in a and len(a) == 24


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ESN_PSEUDONYM_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="ESN_PSEUDONYM_KEY"):
        resolve_key(None)


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("MY_KEY", "s3cret-long-enough-key")
    assert resolve_key(None, env_var="MY_KEY") == b"s3cret-long-enough-key"


def test_a_short_key_is_refused_naming_where_it_came_from(monkeypatch):
    monkeypatch.setenv("MY_KEY", "s3cret")
    with pytest.raises(WeakKeyError, match="environment variable MY_KEY is 6 byte"):
        resolve_key(None, env_var="MY_KEY")
    with pytest.raises(WeakKeyError, match="connection 'my_conn'"):
        resolve_key("short", conn_id="my_conn")


def test_the_demo_key_falls_back_only_when_allowed(monkeypatch):
    monkeypatch.delenv("ESN_PSEUDONYM_KEY", raising=False)
    assert resolve_key(None, allow_demo=True) == DEMO_KEY.encode()


def test_fingerprint_identifies_the_key_without_revealing_it():
    a, b = key_fingerprint(b"0123456789abcdef-a"), key_fingerprint(b"0123456789abcdef-b")
    assert a != b and len(a) == 16 and a == key_fingerprint(b"0123456789abcdef-a")
    assert "0123456789abcdef" not in a


def test_check_key_records_the_fingerprint_once_and_returns_it(tmp_path):
    key = b"0123456789abcdef-a"
    assert check_key(tmp_path, key, source_kind="slack") == key_fingerprint(key)
    first = json.loads((tmp_path / "_state" / "key_fingerprint.json").read_text())
    assert first["fingerprint"] == key_fingerprint(key) and first["first_used"] and not first["lake_had_data"]
    check_key(tmp_path, key, source_kind="slack")
    assert json.loads((tmp_path / "_state" / "key_fingerprint.json").read_text()) == first
    assert [p.name for p in (tmp_path / "_state").iterdir()] == ["key_fingerprint.json"]  # no temp file left


def test_check_key_without_record_only_reads(tmp_path):
    check_key(tmp_path, b"0123456789abcdef-a", source_kind="slack", record=False)
    assert not (tmp_path / "_state").exists()


def test_a_corrupt_fingerprint_file_is_a_clear_error(tmp_path):
    (tmp_path / "_state").mkdir()
    (tmp_path / "_state" / "key_fingerprint.json").write_text("{not json")
    with pytest.raises(MissingKeyError, match="restore the file from a backup"):
        check_key(tmp_path, b"0123456789abcdef-a", source_kind="slack")


def test_opt_out_file_lines(tmp_path):
    path = tmp_path / "opt_out.txt"
    path.write_text("# people who opted out\n\nAda@Example.com\n  " + "ab" * 12 + "  \n")
    assert read_opt_out_file(path) == [("email", "Ada@Example.com"), ("person_key", "ab" * 12)]
    path.write_text("ada@example.com # asked on 3 May\n")
    with pytest.raises(OptOutFileError, match="line 1: not an email address"):
        read_opt_out_file(path)
    path.write_text("ok@example.com\n" + "AB" * 12 + "\n")
    with pytest.raises(OptOutFileError, match="line 2: neither an email nor a person key"):
        read_opt_out_file(path)


def test_series_hashes_each_distinct_value_once_and_keeps_nulls():
    ps = Pseudonymiser(b"k")
    s = pd.Series(["a@x.io", None, "a@x.io", "b@x.io"])
    out = ps.series(s)
    assert out.iloc[0] == out.iloc[2] == ps.email("a@x.io")
    assert pd.isna(out.iloc[1])
