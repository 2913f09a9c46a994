"""Pseudonymisation at the boundary.

Every person identifier (native user id, email) is replaced by a keyed hash (HMAC-SHA256) before any
record is written anywhere. The same email gives the same key on every platform, so people can be
joined across sources without ever storing who they are. This module must never log or return a clear
identifier, and there is no way back from a key to a person without the secret.

The key itself is checked before anything is written (`check_key`, called for every source a step
runs): at least `MIN_KEY_BYTES` long, never the published demo key for a real source, and the same key
the lake was written with. A lake remembers its key by a fingerprint (`key_fingerprint`: an HMAC of a
fixed label under the key, never the key) in `<lake>/_state/key_fingerprint.json`, written on the first
run; a run with another key stops with `KeyMismatchError` instead of splitting every person in two.
The opt-out file (`read_opt_out_file`) is validated line by line: an email or a 24-hex person key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

KEY_ENV = "ESN_PSEUDONYM_KEY"
KEY_CONN_ID = "esn_pseudonym_key"
DEMO_KEY = "esn-demo-key-NOT-A-SECRET"
KEY_HEX_CHARS = 24  # 96 bits: no collision in any organisation's lifetime
#: shortest key accepted (bytes of its UTF-8 form): 128 bits, if it is random
MIN_KEY_BYTES = 16
GENERATE_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
#: where a lake keeps the fingerprint of the key it was written with (relative to the lake)
FINGERPRINT_FILE = Path("_state") / "key_fingerprint.json"
_FINGERPRINT_LABEL = b"esn-key-fingerprint"
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_PERSON_KEY = re.compile(rf"^[0-9a-f]{{{KEY_HEX_CHARS}}}$")


class MissingKeyError(RuntimeError):
    """No usable pseudonymisation key. Every key problem below is one, so that the callers that stop at
    once on a missing key (the DAGs' fail-fast, `esn run`) stop at once on all of them."""


class WeakKeyError(MissingKeyError):
    """The key is shorter than `MIN_KEY_BYTES`."""


class DemoKeyError(MissingKeyError):
    """The published demo key was given for a source that is not the demo organisation."""


class KeyMismatchError(MissingKeyError):
    """The key is not the one the lake was written with (their fingerprints differ)."""

    def __init__(self, message: str, *, lake_fingerprint: str, key_fingerprint: str, first_used: str | None):
        super().__init__(message)
        self.lake_fingerprint = lake_fingerprint
        self.key_fingerprint = key_fingerprint
        self.first_used = first_used


def key_origin(env_var: str = KEY_ENV, conn_id: str = KEY_CONN_ID, *, explicit: bool) -> str:
    """Where a key came from, for messages (never the key): the value passed in, else the environment."""
    if explicit:
        return f"the key passed in (in Airflow: the password of the connection '{conn_id}')"
    return f"the environment variable {env_var}"


def resolve_key(explicit: str | None = None, *, env_var: str = KEY_ENV, allow_demo: bool = False,
                conn_id: str = KEY_CONN_ID) -> bytes:
    """The pseudonymisation secret: explicit value, else the environment, else (demo only) the demo key.

    In Airflow the DAGs read it from the connection `esn_pseudonym_key` (password field) and pass it
    explicitly; a missing key is an error, never a silent fallback, and so is a key shorter than
    `MIN_KEY_BYTES` (`WeakKeyError`). Whether the key suits the source and the lake is `check_key`'s.
    """
    value = explicit or os.environ.get(env_var)
    if not value:
        if allow_demo:
            value = DEMO_KEY
        else:
            raise MissingKeyError(
                f"no pseudonymisation key: set the environment variable {env_var} or the Airflow "
                f"connection '{conn_id}' (password field). Refusing to write identifiers in clear. "
                f"Generate a key with: {GENERATE_KEY}"
            )
    secret = value.encode()
    check_key_length(secret, key_origin(env_var, conn_id, explicit=bool(explicit)))
    return secret


def check_key_length(secret: bytes, where: str = "the pseudonymisation key") -> None:
    if len(secret) < MIN_KEY_BYTES:
        raise WeakKeyError(
            f"{where} is {len(secret)} byte(s) long; a pseudonymisation key needs at least {MIN_KEY_BYTES} "
            "(a short key can be guessed, and with it every person key recomputed from an email). "
            f"Generate one with: {GENERATE_KEY}")


def key_fingerprint(secret: bytes) -> str:
    """16 hex characters that identify a key without revealing it: HMAC-SHA256(key, label)[:16]."""
    return hmac.new(secret, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]


def fingerprint_path(lake_dir: Path) -> Path:
    return Path(lake_dir) / FINGERPRINT_FILE


def read_fingerprint(lake_dir: Path) -> dict[str, Any] | None:
    """The lake's recorded key fingerprint (`fingerprint`, `first_used`, ...), or None before the first run."""
    path = fingerprint_path(lake_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise MissingKeyError(
            f"cannot read the lake's key fingerprint {path} ({type(exc).__name__}): restore the file from a "
            "backup; delete it only if you are sure every record of the lake was written with the current key"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("fingerprint"), str):
        raise MissingKeyError(f"the lake's key fingerprint {path} has no 'fingerprint': restore it from a backup")
    return data


def _record(path: Path, record: dict[str, Any]) -> bool:
    """Write `record` to `path` unless the file exists (atomically: a parallel first run cannot
    overwrite another's); True when written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".key_fingerprint-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        try:
            os.link(tmp, path)  # fails if the file exists: the first writer wins
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            try:
                with open(path, "x") as f:
                    json.dump(record, f, indent=2)
            except FileExistsError:
                return False
        return True
    finally:
        os.unlink(tmp)


def check_key(lake_dir: Path, secret: bytes, *, source_kind: str, allow_demo: bool = False,
              where: str = "the pseudonymisation key", record: bool = True) -> str:
    """Refuse a key that must not write to this lake; returns its fingerprint.

    - shorter than `MIN_KEY_BYTES`: `WeakKeyError`;
    - the published demo key for a source whose kind is not `demo`: `DemoKeyError` (`allow_demo` is for
      the demo organisation served through a real connector, `esn demo --via slack`, only);
    - not the key the lake was written with: `KeyMismatchError`. The first run records the key's
      fingerprint in `<lake>/_state/key_fingerprint.json` (unless `record` is false: `esn check-config`
      only reads it). `where` names where the key came from, for the messages.
    """
    check_key_length(secret, where)
    if secret == DEMO_KEY.encode() and source_kind != "demo" and not allow_demo:
        raise DemoKeyError(
            f"{where} holds the published demo key, refused for a source of kind {source_kind!r}: anyone can "
            "recompute the person keys of real people from their emails with it. Set a secret key of your "
            f"own (and keep it: changing it later splits every person in two). Generate one with: {GENERATE_KEY}")
    fingerprint = key_fingerprint(secret)
    lake_dir = Path(lake_dir)
    stored = read_fingerprint(lake_dir)
    if stored is None and record:
        entry = {"fingerprint": fingerprint,
                 "first_used": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "first_source_kind": source_kind,
                 "lake_had_data": any((lake_dir / d).exists() for d in ("raw", "canonical")),
                 "about": "HMAC-SHA256(key, 'esn-key-fingerprint'), first 16 hex characters: identifies the "
                          "key the lake is written with, never reveals it"}
        if not _record(fingerprint_path(lake_dir), entry):
            stored = read_fingerprint(lake_dir)  # a parallel first run recorded its key first
    if stored is not None and not hmac.compare_digest(stored["fingerprint"], fingerprint):
        first = stored.get("first_used")
        demo = (" For a demo lake, deleting the lake and running again is fine too."
                if source_kind == "demo" else "")
        raise KeyMismatchError(
            f"{where} is not the key the lake {lake_dir} was written with: its fingerprint is {fingerprint}, "
            f"the lake's is {stored['fingerprint']} (recorded in {fingerprint_path(lake_dir)}"
            f"{f', first used {first}' if first else ''}). Mixing two keys would split every person in two: "
            "the same email would get one person key in the data already in the lake and another in new "
            "data, and every metric would count them twice. Restore the previous key; or, to change keys on "
            "purpose, rotate the whole lake and warehouse to the new key (see docs/privacy.md, key "
            f"rotation) before running with it. Nothing was written.{demo}",
            lake_fingerprint=stored["fingerprint"], key_fingerprint=fingerprint, first_used=first)
    return fingerprint


class OptOutFileError(ValueError):
    """The opt-out file is missing, unreadable or has a line that is neither an email nor a person key."""


def read_opt_out_file(path: Path) -> list[tuple[str, str]]:
    """The opt-out file as (kind, value) pairs, kind `email` or `person_key`: one a line, blank lines and
    `#` comment lines skipped. A line that is neither an email nor a 24-hex person key is an error naming
    the line (a person left in by a typo would go on being measured)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OptOutFileError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptOutFileError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        if "@" in value:
            if not _EMAIL.match(value):
                raise OptOutFileError(f"{path}: line {n}: not an email address (one address a line, "
                                      "no names or comments after it)")
            out.append(("email", value))
        elif _PERSON_KEY.match(value):
            out.append(("person_key", value))
        else:
            raise OptOutFileError(f"{path}: line {n}: neither an email nor a person key "
                                  f"({KEY_HEX_CHARS} lower-case hex characters)")
    return out


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

    def seen(self) -> dict[str, str]:
        """identifier -> person key of every identifier hashed so far (in memory; `pipelines.rotation`
        records them encrypted in the lake's identity vault so that the key can be rotated)."""
        return dict(self._cache)

    def derive(self, label: str) -> bytes:
        """A 32-byte sub-key for another purpose (`label`): HMAC-SHA256(key, label). Never the key."""
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()
