"""Pseudonymisation at the boundary.

Every person identifier (native user id, email) is replaced by a keyed hash (HMAC-SHA256) before any
record is written anywhere. The same email gives the same key on every platform, so people can be
joined across sources without ever storing who they are. This module must never log or return a clear
identifier, and there is no way back from a key to a person without the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable

import pandas as pd

KEY_ENV = "ESN_PSEUDONYM_KEY"
DEMO_KEY = "esn-demo-key-NOT-A-SECRET"
KEY_HEX_CHARS = 24  # 96 bits: no collision in any organisation's lifetime


class MissingKeyError(RuntimeError):
    pass


def resolve_key(explicit: str | None = None, *, env_var: str = KEY_ENV, allow_demo: bool = False) -> bytes:
    """The pseudonymisation secret: explicit value, else the environment, else (demo only) the demo key.

    In Airflow the DAGs read it from the connection `esn_pseudonym_key` (password field) and pass it
    explicitly; a missing key is an error, never a silent fallback.
    """
    value = explicit or os.environ.get(env_var)
    if not value:
        if allow_demo:
            value = DEMO_KEY
        else:
            raise MissingKeyError(
                f"no pseudonymisation key: set the environment variable {env_var} or the Airflow "
                "connection 'esn_pseudonym_key' (password field). Refusing to write identifiers in clear."
            )
    return value.encode()


class Pseudonymiser:
    """Keyed hash of person identifiers with a cache, so that a batch of millions of events costs one
    HMAC per distinct person."""

    def __init__(self, key: bytes):
        self._key = key
        self._cache: dict[str, str] = {}

    def key_for(self, identifier: str) -> str:
        cached = self._cache.get(identifier)
        if cached is None:
            digest = hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()
            cached = self._cache[identifier] = digest[:KEY_HEX_CHARS]
        return cached

    def email(self, email: str) -> str:
        """Key for an email: normalised so that the same address matches across platforms."""
        return self.key_for("email:" + email.strip().lower())

    def native(self, source: str, native_id: str) -> str:
        """Key for a platform's own user id when no email is known."""
        return self.key_for(f"id:{source}:{native_id}")

    def person(self, source: str, native_id: str | None, email: str | None) -> str | None:
        if email:
            return self.email(email)
        if native_id:
            return self.native(source, native_id)
        return None

    def series(self, values: pd.Series, *, source: str | None = None, kind: str = "email") -> pd.Series:
        """Vectorised: hash each distinct value once. Nulls stay null."""
        uniques = values.dropna().unique()
        if kind == "email":
            mapping = {v: self.email(v) for v in uniques}
        else:
            if source is None:
                raise ValueError("source is required to pseudonymise native ids")
            mapping = {v: self.native(source, v) for v in uniques}
        return values.map(mapping).astype("string")

    def many(self, identifiers: Iterable[str]) -> list[str]:
        return [self.key_for(i) for i in identifiers]
