import pandas as pd
import pytest

from pipelines.privacy import MissingKeyError, Pseudonymiser, resolve_key


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
    monkeypatch.setenv("MY_KEY", "s3cret")
    assert resolve_key(None, env_var="MY_KEY") == b"s3cret"


def test_series_hashes_each_distinct_value_once_and_keeps_nulls():
    ps = Pseudonymiser(b"k")
    s = pd.Series(["a@x.io", None, "a@x.io", "b@x.io"])
    out = ps.series(s)
    assert out.iloc[0] == out.iloc[2] == ps.email("a@x.io")
    assert pd.isna(out.iloc[1])
