"""Opt-out and erasure: remove a person from everything the pipeline has written, for good.

The opt-out list (`privacy.opt_out_file`: emails or person keys, one a line) and the erasure register
(below) are applied at extraction (`scrub_landed`: the raw days a run lands lose the person) and at
staging (`jobs._opt_out_keys`), so new data never carries an opted-out or erased person.

`erase(settings, ["ada@example.com" | "<24-hex key>"], key)` handles what was written before the request,
under the lake's run lock and every source lock (no run interleaves):

1. the person goes to the **erasure register** `<lake>/_state/erased.parquet` first: one Fernet token a
   person (the identifier `email:...` / `id:source:native` when known, from the request or the identity
   vault of `pipelines.rotation`, else the person key), encrypted under a sub-key of the pseudonymisation
   key. `jobs._opt_out_keys` reads it, so from this moment no run, replay or backfill brings them back,
   and since it stores the identifier (not the key) it survives a key rotation. Nothing in it is readable
   without the key: a scan of the lake finds neither their key nor their email there;
2. **every file of the lake** (raw, canonical, staging, quarantine, outcomes, identity vault, validation
   evidence, GX data docs, `_state`): Parquet files are rewritten without the person (`scrub_table`: a row
   they own goes, a column that merely points at them is nulled, list elements naming them go together
   with their parallel lists, e.g. Slack `reaction_names`/`reaction_user_keys`, and a row whose identifier
   is derived from their key, e.g. the event id `C1:1700000000.1:mention:<key>`, goes); text files have the
   key and email replaced by `[erased]` (line-oriented CSV/JSONL files lose the lines instead); other
   files that hold them are deleted. Columns are found generically: every string or list-of-string
   column whose values hold one of the keys, whatever its name; only the role of a few known names
   (who owns a row, what merely points) is listed here, and tests check the list against every raw schema;
3. **every warehouse table** (the same rules, in one transaction), then the models are rebuilt for the
   whole history from the scrubbed canonical lake (`jobs.publish`), the network windows the person was in
   are recomputed (`network_stage.run_network`: rolling windows and month snapshots), and the impact
   tables after them;
4. **the report archive** (`reports.output_dir`): files that mention the key, the email or the person's
   display name (`reports.names_file`, whose line is removed) are deleted; `esn report` renders new ones;
5. an **erasure record** (`<lake>/_state/erasures/<time>.json`: counts and file names, no identifier), and
   `scan(settings, keys, emails)`, which reads every file of the lake and of the report archive and every
   column of every warehouse table, must find nothing (`remaining` in the summary).

Rewritten files are replaced atomically (temporary file, fsync, rename). Canonical partitions go through
`lake.write_partition`; raw partitions are replaced the same way but *not* journaled as pending: their
canonical days are scrubbed by the same rules in the same call, so re-staging the whole history on the
next run would cost hours for nothing (a day that was already pending stays pending). A crash midway
leaves the person in the register (so no run brings them back); running `esn erase` again finishes.
This module never logs an identifier in clear.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email
import email.policy
import json
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import lake, runlock, warehouse
from pipelines.config import Settings
from pipelines.privacy import KEY_HEX_CHARS, Pseudonymiser

log = logging.getLogger(__name__)

#: a row whose column holds the person's key belongs to them: the row goes
OWNER_COLUMNS = frozenset({"actor_key", "person_key", "source_key"})
#: a column that merely points at the person (someone else's row): nulled
POINTER_COLUMNS = frozenset({"target_key", "manager_key", "parent_actor_key", "item_actor_key",
                             "idea_actor_key", "thread_starter_key"})
#: lists of people (mentioned, reacting, liking): the person's elements go, with the elements at the same
#: positions of the lists that share the name's first word (`reaction_names` with `reaction_user_keys`)
LIST_COLUMNS = frozenset({"mention_keys", "reaction_user_keys", "like_keys"})
#: `*_key` columns that do not hold person keys
NOT_PERSON_COLUMNS = frozenset({"group_key", "state_key", "api_key"})  # api_key: a credential's name
#: every column that holds person keys by name (the key rotation checks that each of their values is mapped)
PERSON_KEY_COLUMNS = OWNER_COLUMNS | POINTER_COLUMNS | LIST_COLUMNS

ERASED = "[erased]"
REGISTER = Path("_state") / "erased.parquet"
RECORDS = Path("_state") / "erasures"
#: line-oriented files: a line naming the person goes (a CSV row is a record, `[erased]` would not parse)
LINE_FILES = frozenset({".csv", ".tsv", ".jsonl", ".ndjson", ".txt"})
_PERSON_KEY = re.compile(rf"^[0-9a-f]{{{KEY_HEX_CHARS}}}$")
_HEX_RUN = re.compile(rf"[0-9a-f]{{{KEY_HEX_CHARS},}}")
_EMAILISH = re.compile(r"[a-z0-9._%+'\-]+@[a-z0-9.\-]+")


# ------------------------------------------------------------------------------------------ matching
class Matcher:
    """Finds person keys, emails (case-insensitive) and other terms (display names) inside strings, as
    whole values or as parts of them. Few needles: plain substring tests; many (a scan for every person of
    an organisation): keys are found as 24-hex windows of hex runs and emails as email-shaped tokens."""

    SMALL = 64

    def __init__(self, keys: Iterable[str] = (), emails: Iterable[str] = (), terms: Iterable[str] = ()):
        self.keys = frozenset(keys)
        self.emails = frozenset(e.strip().lower() for e in emails if e and e.strip())
        self.terms = tuple(sorted({t for t in terms if t}, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self.keys or self.emails or self.terms)

    def find(self, text: str) -> set[str]:
        out: set[str] = set()
        if self.keys:
            if len(self.keys) <= self.SMALL:
                out.update(k for k in self.keys if k in text)
            else:
                for m in _HEX_RUN.finditer(text):
                    run = m.group()
                    out.update(w for w in (run[i:i + KEY_HEX_CHARS] for i in range(len(run) - KEY_HEX_CHARS + 1))
                               if w in self.keys)
        if self.emails and "@" in text:
            low = text.lower()
            if len(self.emails) <= self.SMALL:
                out.update(e for e in self.emails if e in low)
            else:
                for m in _EMAILISH.finditer(low):
                    token = m.group().strip(".-")
                    if token in self.emails:
                        out.add(token)
        out.update(t for t in self.terms if t in text)
        return out

    def exact(self, value: str) -> bool:
        return value in self.keys or value.strip().lower() in self.emails or value in self.terms

    def replace(self, text: str) -> str:
        for token in sorted(self.find(text), key=len, reverse=True):
            if "@" in token:
                text = re.sub(re.escape(token), ERASED, text, flags=re.IGNORECASE)
            else:
                text = text.replace(token, ERASED)
        return text


def _string_like(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _list_like(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _candidates(values: pa.Array, m: Matcher) -> list[str]:
    """Distinct non-null values that may hold a needle (vectorised prefilter)."""
    u = pc.unique(values).drop_null()
    if len(u) == 0:
        return []
    masks = []
    if m.keys:
        masks.append(pc.match_substring_regex(u, f"[0-9a-f]{{{KEY_HEX_CHARS}}}"))
    if m.emails:
        masks.append(pc.match_substring(u, "@"))
    masks += [pc.match_substring(u, t) for t in m.terms]
    if not masks:
        return []
    mask = masks[0]
    for other in masks[1:]:
        mask = pc.or_(mask, other)
    return [str(v) for v in u.filter(pc.fill_null(mask, False)).to_pylist()]


@dataclasses.dataclass
class Hits:
    exact: set[str] = dataclasses.field(default_factory=set)  # values that are a key / an email
    partial: set[str] = dataclasses.field(default_factory=set)  # values that contain one

    def __bool__(self) -> bool:
        return bool(self.exact or self.partial)

    @property
    def all(self) -> set[str]:
        return self.exact | self.partial


def value_hits(values: pa.Array | pa.ChunkedArray, m: Matcher) -> Hits:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.cast(pa.string())
    hits = Hits()
    for v in _candidates(values, m):
        if m.find(v):
            (hits.exact if m.exact(v) else hits.partial).add(v)
    return hits


def _is_identifier(name: str) -> bool:
    """A column whose values identify something (a row with a person-derived id goes; free text is edited)."""
    return name.endswith(("id", "_key", "_keys", "ts", "_ids")) or name in ("event", "key")


def _leaves(arr: pa.Array) -> Iterator[pa.Array]:
    """Every string array inside `arr` (lists, structs and maps flattened)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        yield from _leaves(arr.cast(t.value_type))
    elif _string_like(t):
        yield arr
    elif _list_like(t) or pa.types.is_fixed_size_list(t):
        yield from _leaves(pc.list_flatten(arr))
    elif pa.types.is_map(t):
        yield from _leaves(arr.keys)
        yield from _leaves(arr.items)
    elif pa.types.is_struct(t):
        for i in range(t.num_fields):
            yield from _leaves(arr.field(i))


def table_hits(table: pa.Table, m: Matcher) -> dict[str, int]:
    """column -> how many distinct values of it name a needle (for scans)."""
    out: dict[str, int] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        n = sum(len(value_hits(leaf, m).all) for leaf in _leaves(col))
        if n:
            out[name] = n
    return out


# ------------------------------------------------------------------------------------ Parquet scrubbing
@dataclasses.dataclass
class Scrubbed:
    rows_removed: int = 0
    values_nulled: int = 0
    list_elements_removed: int = 0
    texts_rewritten: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.rows_removed or self.values_nulled or self.list_elements_removed or self.texts_rewritten)

    def add(self, other: Scrubbed) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def _rebuild_list(col: pa.Array, keep: np.ndarray) -> pa.Array:
    """`col` (a list array) without the flattened elements where `keep` is False."""
    flat = pc.list_flatten(col)
    parents = pc.list_parent_indices(col).to_numpy(zero_copy_only=False)
    lengths = np.bincount(parents[keep], minlength=len(col)).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    cls = pa.LargeListArray if pa.types.is_large_list(col.type) else pa.ListArray
    otype = pa.int64() if cls is pa.LargeListArray else pa.int32()
    mask = col.is_null() if col.null_count else None
    out = cls.from_arrays(pa.array(offsets, otype), flat.filter(pa.array(keep)), type=col.type, mask=mask)
    return out


def scrub_table(table: pa.Table, m: Matcher) -> tuple[pa.Table, Scrubbed]:
    """`table` without the people `m` names (see the module doc for the rules)."""
    stats = Scrubbed()
    n = table.num_rows
    if not m or n == 0:
        return table, stats
    drop = np.zeros(n, dtype=bool)
    columns: dict[str, pa.Array] = {}
    list_masks: dict[str, np.ndarray] = {}
    nulled: list[np.ndarray] = []  # pointers nulled (counted on the rows that stay)
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_dictionary(t) and _string_like(t.value_type):
            col = col.cast(t.value_type)
            t = col.type
        if _string_like(t):
            hits = value_hits(col, m)
            if not hits:
                continue
            exact = pc.fill_null(pc.is_in(col, value_set=pa.array(sorted(hits.exact), t)), False) \
                if hits.exact else None
            if exact is not None:
                field = table.schema.field(name)
                if name in POINTER_COLUMNS and field.nullable:
                    nulled.append(exact.to_numpy(zero_copy_only=False))
                    col = pc.if_else(exact, pa.scalar(None, t), col)
                else:
                    drop |= exact.to_numpy(zero_copy_only=False)
            if hits.partial:
                partial = pc.fill_null(pc.is_in(col, value_set=pa.array(sorted(hits.partial), t)), False)
                if _is_identifier(name):
                    drop |= partial.to_numpy(zero_copy_only=False)
                else:
                    mapping = {v: m.replace(v) for v in hits.partial}
                    stats.texts_rewritten += int(pc.sum(partial).as_py() or 0)
                    col = pa.array([mapping.get(v, v) if v is not None else None for v in col.to_pylist()], t)
            columns[name] = col
        elif _list_like(t) and _string_like(t.value_type):
            flat = pc.list_flatten(col)
            hits = value_hits(flat, m)
            if hits:
                hit = pc.fill_null(pc.is_in(flat, value_set=pa.array(sorted(hits.all), flat.type)), False)
                list_masks[name] = hit.to_numpy(zero_copy_only=False)
        elif any(value_hits(leaf, m) for leaf in _leaves(col)):
            # a nested value naming the person: the row goes (no rule can say which part is theirs)
            rows = [bool(m.find(json.dumps(v, default=str))) for v in col.to_pylist()]
            drop |= np.array(rows, dtype=bool)
    # list elements: with the lists of the same family, when they are parallel (same length on every row)
    own_hits = set(list_masks)
    for name, mask in list(list_masks.items()):
        col = table.column(name).combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
        family = [c for c in table.column_names if c != name and c.split("_")[0] == name.split("_")[0]
                  and _list_like(table.schema.field(c).type)]
        for other in family:
            ocol = table.column(other).combine_chunks()
            olen = pc.fill_null(pc.list_value_length(ocol), 0).to_numpy(zero_copy_only=False)
            if np.array_equal(lengths, olen):
                list_masks[other] = list_masks.get(other, np.zeros(len(mask), dtype=bool)) | mask
                list_masks[name] = list_masks[name] | list_masks[other]
    for name, mask in list_masks.items():
        if not mask.any():
            continue
        if name in own_hits:
            stats.list_elements_removed += int(mask.sum())
        columns[name] = _rebuild_list(table.column(name).combine_chunks(), ~mask)
    for name, col in columns.items():
        i = table.column_names.index(name)
        table = table.set_column(i, table.schema.field(name), col)
    stats.values_nulled = int(sum((mask & ~drop).sum() for mask in nulled))
    if drop.any():
        stats.rows_removed = int(drop.sum())
        table = table.filter(pa.array(~drop))
    return table, stats


def _replace_file(path: Path, write: Any) -> None:
    """Atomically replace `path` with what `write(tmp_path)` writes (fsync, rename, fsync the folder)."""
    tmp = path.with_name(f".{path.name}.erasing-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        lake.fsync_path(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    lake.fsync_path(path.parent)


def write_parquet(path: Path, table: pa.Table) -> None:
    _replace_file(path, lambda tmp: pq.write_table(table, tmp, compression=lake.COMPRESSION))


def write_bytes(path: Path, data: bytes) -> None:
    _replace_file(path, lambda tmp: tmp.write_bytes(data))


def _canonical_partition(lake_dir: Path, path: Path) -> tuple[Path, dt.date] | None:
    """(base, day) when `path` is `<lake>/canonical/<table>/source=<s>/date=<d>/part-0.parquet`."""
    try:
        rel = path.relative_to(lake_dir)
    except ValueError:
        return None
    parts = rel.parts
    if len(parts) == 5 and parts[0] == "canonical" and parts[3].startswith("date=") and parts[4] == lake.PART:
        return path.parent.parent, dt.date.fromisoformat(parts[3][5:])
    return None


# --------------------------------------------------------------------------------------- text files
def _decoded_text(path: Path, data: bytes) -> str:
    """What a reader sees in a file: MIME parts decoded for .eml, else the bytes (UTF-8, else Latin-1)."""
    if path.suffix.lower() == ".eml":
        msg = email.message_from_bytes(data, policy=email.policy.default)
        chunks = [str(v) for _, v in msg.items()]
        for part in msg.walk():
            if part.is_multipart():
                continue
            chunks += [str(v) for _, v in part.items()]
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("utf-8", errors="replace"))
        return "\n".join(chunks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _is_parquet(path: Path) -> bool:
    if path.suffix.lower() in (".parquet", ".pq"):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def files_under(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def scan_file(path: Path, m: Matcher) -> list[str]:
    """What of `path` names a needle: Parquet columns, else the file itself."""
    if _is_parquet(path):
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException):
            table = None
        if table is not None:
            return [f"column {c} ({n} value(s))" for c, n in table_hits(table, m).items()]
    try:
        data = path.read_bytes()
    except OSError:
        return []
    return ["content"] if m.find(_decoded_text(path, data)) else []


def _scrub_text_file(path: Path, m: Matcher) -> str | None:
    """Rewrite or delete a non-Parquet file naming a needle; returns 'rewritten', 'deleted' or None."""
    data = path.read_bytes()
    if path.suffix.lower() == ".eml":
        if m.find(_decoded_text(path, data)):
            path.unlink()
            return "deleted"
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if m.find(data.decode("latin-1")):
            path.unlink()  # a binary file we cannot edit
            return "deleted"
        return None
    if not m.find(text):
        return None
    if path.suffix.lower() in LINE_FILES:
        lines = text.splitlines(keepends=True)
        new = "".join(line for line in lines if not m.find(line))
    else:
        new = m.replace(text)
    write_bytes(path, new.encode("utf-8"))
    return "rewritten"


# ---------------------------------------------------------------------------------- the erasure register
def _register_path(lake_dir: Path) -> Path:
    return Path(lake_dir) / REGISTER


def _read_register(lake_dir: Path) -> pa.Table | None:
    path = _register_path(lake_dir)
    return pq.read_table(path) if path.exists() else None


def register_entries(lake_dir: Path, ps: Pseudonymiser) -> list[dict[str, str]]:
    """The decrypted entries of the erasure register: {"identifier": ...} or {"person_key": ...}."""
    from cryptography.fernet import InvalidToken

    from pipelines.rotation import vault_cipher

    table = _read_register(lake_dir)
    if table is None:
        return []
    cipher = vault_cipher(ps)
    out = []
    for token in table.column("token").to_pylist():
        try:
            out.append(json.loads(cipher.decrypt(token.encode())))
        except InvalidToken:
            raise RuntimeError(
                f"the erasure register {_register_path(lake_dir)} cannot be read with this pseudonymisation key: "
                "it was written under another key (a key rotation not finished? run `esn rotate-key` again)"
            ) from None
    return out


def erased_keys(lake_dir: Path, ps: Pseudonymiser) -> set[str]:
    """The person keys, under the current key, of everyone `erase` removed."""
    return {ps.key_for(e["identifier"]) if e.get("identifier") else e["person_key"]
            for e in register_entries(lake_dir, ps)}


def _register_add(lake_dir: Path, ps: Pseudonymiser, entries: list[dict[str, str]]) -> int:
    from pipelines.rotation import vault_cipher

    have = register_entries(lake_dir, ps)
    known = {json.dumps(e, sort_keys=True) for e in have}
    new = [e for e in entries if json.dumps(e, sort_keys=True) not in known]
    if not new:
        return 0
    cipher = vault_cipher(ps)
    old = _read_register(lake_dir)
    tokens = (old.column("token").to_pylist() if old is not None else []) + \
        [cipher.encrypt(json.dumps(e, sort_keys=True).encode()).decode() for e in new]
    days = (old.column("erased_on").to_pylist() if old is not None else []) + \
        [dt.datetime.now(dt.UTC).date().isoformat()] * len(new)
    path = _register_path(lake_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_parquet(path, pa.table({"token": pa.array(tokens, pa.string()), "erased_on": pa.array(days, pa.string())}))
    return len(new)


def rewrite_register(lake_dir: Path, fn: Any) -> None:
    """Replace the register's table by `fn(table)` (key rotation)."""
    table = _read_register(lake_dir)
    if table is not None:
        write_parquet(_register_path(lake_dir), fn(table))


# ----------------------------------------------------------------------------------------- targets
@dataclasses.dataclass
class Targets:
    keys: set[str]
    emails: set[str]
    entries: list[dict[str, str]]  # for the register
    unknown_identity: int = 0  # keys the vault does not know (registered by key)

    def matcher(self, terms: Iterable[str] = ()) -> Matcher:
        return Matcher(self.keys, self.emails, terms)


def keys_for(identifiers: list[str], ps: Pseudonymiser) -> set[str]:
    """Person keys for a list of emails or keys (anything with an '@' is taken as an email)."""
    return {ps.email(i) if "@" in i else i.strip() for i in identifiers if i.strip()}


def resolve(settings: Settings, identifiers: list[str], ps: Pseudonymiser) -> Targets:
    """Keys, emails and register entries of a request (emails or 24-hex keys). A key is looked up in the
    identity vault, so that its email (when it was keyed by one) is erased too and its register entry
    outlives a key rotation."""
    from pipelines.rotation import vault_identities

    targets = Targets(set(), set(), [])
    wanted: list[str] = []
    for raw in identifiers:
        value = raw.strip()
        if not value:
            continue
        if "@" in value:
            norm = value.lower()
            targets.keys.add(ps.email(norm))
            targets.emails.add(norm)
            targets.entries.append({"identifier": "email:" + norm})
        elif _PERSON_KEY.match(value):
            targets.keys.add(value)
            wanted.append(value)
        else:
            raise ValueError(f"{value[:3]}...: neither an email nor a person key ({KEY_HEX_CHARS} lower-case hex "
                             "characters)")
    if wanted:
        known = vault_identities(settings.lake_dir, ps, keys=set(wanted))
        for key in wanted:
            ident = known.get(key)
            if ident is None:
                targets.entries.append({"person_key": key})
                targets.unknown_identity += 1
            else:
                targets.entries.append({"identifier": ident})
                if ident.startswith("email:"):
                    targets.emails.add(ident.removeprefix("email:"))
    if not targets.keys:
        raise ValueError("nothing to erase: give at least one email or person key")
    return targets


# ------------------------------------------------------------------------------------------ the lake
def erase_lake(lake_dir: Path, m: Matcher, *, skip: Iterable[Path] = ()) -> dict[str, Any]:
    """Every file under the lake without the people `m` names (see the module doc)."""
    skipped = {Path(p).resolve() for p in skip} | {_register_path(lake_dir).resolve()}
    total = Scrubbed()
    files = 0
    text: dict[str, list[str]] = {"rewritten": [], "deleted": []}
    for path in files_under(lake_dir):
        if path.resolve() in skipped or "locks" in path.relative_to(lake_dir).parts[:2]:
            continue
        rel = str(path.relative_to(lake_dir))
        if _is_parquet(path):
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException):
                table = None
            if table is not None:
                scrubbed, stats = scrub_table(table, m)
                if stats.changed:
                    part = _canonical_partition(lake_dir, path)
                    if part is not None:
                        lake.write_partition(part[0], part[1], scrubbed)
                    else:
                        write_parquet(path, scrubbed)
                    files += 1
                    total.add(stats)
                continue
        what = _scrub_text_file(path, m)
        if what:
            text[what].append(rel)
    return {"files_rewritten": files, **dataclasses.asdict(total),
            "text_files_rewritten": text["rewritten"], "files_deleted": text["deleted"]}


def scrub_landed(settings: Settings, source_name: str, ps: Pseudonymiser) -> int:
    """Remove opted-out and erased people from the raw days of a source waiting for staging (those an
    extraction just landed): called by `jobs.extract`, so the raw lake never keeps them. Returns rows
    removed (their list elements and pointers are removed too)."""
    from pipelines import jobs

    keys = jobs._opt_out_keys(settings, ps)
    if not keys:
        return 0
    m = Matcher(keys)
    days = lake.pending(settings.lake_dir, source_name, "raw").days()
    removed = 0
    root = settings.raw_dir / f"source={source_name}"
    for stream in sorted(root.glob("stream=*")) if root.exists() else []:
        for day in days:
            table = lake.read_partition(stream, day)
            if table is None:
                continue
            scrubbed, stats = scrub_table(table, m)
            if stats.changed:
                lake.write_partition(stream, day, scrubbed)
                removed += stats.rows_removed
    return removed


# ------------------------------------------------------------------------------------- the warehouse
_NOT_TEXT = ("int", "double", "float", "real", "numeric", "decimal", "bool", "date", "time", "interval",
             "uuid", "serial", "money", "bit", "hugeint")


def text_columns(conn: sa.Connection) -> list[tuple[str, str, str]]:
    """(schema.table, column, data type) of every column that can hold text, of every base table of every
    schema of the warehouse (`warehouse.Schemas.all`: the published marts, the internal tables, the lake
    and staging, and the build copies of the marts)."""
    rows = conn.execute(sa.text(
        "select c.table_schema, c.table_name, c.column_name, c.data_type from information_schema.columns c "
        "join information_schema.tables t on t.table_name = c.table_name and t.table_schema = c.table_schema "
        "where c.table_schema in :schemas and t.table_type = 'BASE TABLE' "
        "order by c.table_schema, c.table_name, c.ordinal_position").bindparams(
            sa.bindparam("schemas", expanding=True)), {"schemas": list(warehouse.schemas_of(conn).all)}).fetchall()
    out = []
    for schema, table, column, dtype in rows:
        d = str(dtype).lower()
        if d.endswith("[]") or d in ("array", "json", "jsonb") or not any(d.startswith(x) or x in d for x in _NOT_TEXT):
            out.append((f"{schema}.{table}", str(column), d))
    return out


def _is_plain_text(dtype: str) -> bool:
    return dtype in ("varchar", "text", "character varying", "string") or dtype.startswith(("varchar", "character"))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _qtable(qualified: str) -> str:
    """A `schema.table` name of `text_columns`, quoted part by part."""
    return ".".join(_quote(part) for part in qualified.split(".", 1))


def _prefilter(conn: sa.Connection, expr: str, m: Matcher) -> tuple[str, dict[str, Any]]:
    """A SQL condition on `expr` true for every value that may hold a needle."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if m.keys:
        pattern = f"[0-9a-f]{{{KEY_HEX_CHARS}}}"
        parts.append(f"regexp_matches({expr}, '{pattern}')" if warehouse.dialect(conn) == "duckdb"
                     else f"{expr} ~ '{pattern}'")
    if m.emails:
        parts.append(f"strpos({expr}, '@') > 0")
    for i, term in enumerate(m.terms):
        parts.append(f"strpos({expr}, :term{i}) > 0")
        params[f"term{i}"] = term
    return " or ".join(parts) or "false", params


def warehouse_hits(conn: sa.Connection, m: Matcher) -> dict[tuple[str, str], tuple[str, Hits]]:
    """(table, column) -> (data type, the distinct values naming a needle)."""
    out: dict[tuple[str, str], tuple[str, Hits]] = {}
    if not m:
        return out
    for table, column, dtype in text_columns(conn):
        expr = f"cast({_quote(column)} as varchar)"
        cond, params = _prefilter(conn, expr, m)
        values = conn.execute(sa.text(f"select distinct {expr} from {_qtable(table)} where {cond}"), params).scalars()
        hits = Hits()
        for v in values:
            if v is not None and m.find(str(v)):
                (hits.exact if m.exact(str(v)) else hits.partial).add(str(v))
        if hits:
            out[(table, column)] = (dtype, hits)
    return out


def erase_warehouse(conn: sa.Connection, m: Matcher) -> dict[str, int]:
    """Every warehouse table without the people `m` names, inside the caller's transaction."""
    stats = {"rows_deleted": 0, "values_nulled": 0, "texts_rewritten": 0, "tables": 0}
    touched: set[str] = set()
    for (table, column), (dtype, hits) in warehouse_hits(conn, m).items():
        t, c = _qtable(table), _quote(column)
        touched.add(table)
        plain = _is_plain_text(dtype)
        for value in sorted(hits.exact):
            if plain and column in POINTER_COLUMNS:
                stats["values_nulled"] += conn.execute(sa.text(f"update {t} set {c} = null where {c} = :v"),
                                                       {"v": value}).rowcount or 0
            else:
                stats["rows_deleted"] += conn.execute(
                    sa.text(f"delete from {t} where cast({c} as varchar) = :v"), {"v": value}).rowcount or 0
        for value in sorted(hits.partial):
            if plain and not _is_identifier(column):
                stats["texts_rewritten"] += conn.execute(sa.text(f"update {t} set {c} = :new where {c} = :v"),
                                                         {"v": value, "new": m.replace(value)}).rowcount or 0
            else:
                stats["rows_deleted"] += conn.execute(
                    sa.text(f"delete from {t} where cast({c} as varchar) = :v"), {"v": value}).rowcount or 0
    stats["tables"] = len(touched)
    return stats


def _affected_windows(conn: sa.Connection, m: Matcher) -> list[tuple[str, dt.date]]:
    """(window_name, window_end) of every network table row naming the person."""
    from pipelines.network import TABLES

    out: set[tuple[str, dt.date]] = set()
    for table in TABLES:
        if not warehouse.table_exists(conn, table):
            continue
        cols = set(warehouse.columns(conn, table))
        if not {"window_name", "window_end"} <= cols:
            continue
        for column in sorted(c for c in cols if c in PERSON_KEY_COLUMNS or c.endswith("_key")):
            rows = conn.execute(sa.text(
                f"select distinct window_name, window_end from {_quote(table)} where {_quote(column)} in :keys")
                .bindparams(sa.bindparam("keys", expanding=True)), {"keys": sorted(m.keys)}).fetchall()
            for name, end in rows:
                out.add((str(name), end if isinstance(end, dt.date) else dt.date.fromisoformat(str(end)[:10])))
    return sorted(out, key=lambda w: (w[1], w[0]))


# --------------------------------------------------------------------------------------- the reports
def _display_names(settings: Settings, keys: set[str]) -> list[str]:
    names = settings.reports.names_file
    if names is None or not Path(names).exists():
        return []
    from pipelines.config import yaml_load

    try:
        data = yaml_load(Path(names).read_text()) or {}
    except Exception:  # a broken names file names nobody; check-config reports it
        return []
    return [str(v) for k, v in data.items() if str(k) in keys and v] if isinstance(data, dict) else []


def _erase_names_file(settings: Settings, keys: set[str]) -> int:
    names = settings.reports.names_file
    if names is None or not Path(names).exists():
        return 0
    text = Path(names).read_text()
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not any(k in line for k in keys)]
    if len(kept) != len(lines):
        write_bytes(Path(names), "".join(kept).encode())
    return len(lines) - len(kept)


def erase_reports(out_dir: Path, m: Matcher) -> list[str]:
    """Delete every file of the report archive naming the person; returns their paths (relative)."""
    deleted = []
    for path in files_under(Path(out_dir)):
        if scan_file(path, m):
            path.unlink()
            deleted.append(str(path.relative_to(out_dir)))
    return deleted


# --------------------------------------------------------------------------------------------- scan
@warehouse.with_engine
def scan(settings: Settings, keys: Iterable[str], emails: Iterable[str] = (), *, terms: Iterable[str] = (),
         engine: sa.Engine | None = None) -> list[str]:
    """Where the keys, emails or terms still are: every file under the lake and the report archive
    (Parquet values, text, decoded email parts), every column of every warehouse table. Empty when
    nowhere. Findings name places and counts, never the values."""
    m = Matcher(keys, emails, terms)
    if not m:
        return []
    found: list[str] = []
    for label, root in (("lake", settings.lake_dir), ("reports", settings.reports.output_dir)):
        root = Path(root)
        for path in files_under(root):
            found += [f"{label}/{path.relative_to(root)}: {what}" for what in scan_file(path, m)]
    assert engine is not None
    with engine.connect() as conn:
        for (table, column), (_, hits) in warehouse_hits(conn, m).items():
            found.append(f"warehouse {table}.{column}: {len(hits.all)} value(s)")
    return found


# ------------------------------------------------------------------------------------------- erase
@contextlib.contextmanager
def lake_locks(settings: Settings, why: str, *, publish: bool = False) -> Iterator[None]:
    """The run lock and every source's lock of the lake (and the publication's when `publish`): no run,
    no Airflow step interleaves. `erase` leaves the publication's to the `jobs.publish` it calls."""
    names = {s.name for s in settings.sources}
    root = settings.raw_dir
    if root.exists():
        names |= {p.name.removeprefix("source=") for p in root.glob("source=*")}
    with contextlib.ExitStack() as stack:
        stack.enter_context(runlock.hold(settings.lake_dir, "run", interval=why))
        for name in sorted(names):
            stack.enter_context(runlock.hold(settings.lake_dir, f"source={name}", interval=why))
        if publish:
            stack.enter_context(runlock.hold(settings.lake_dir, "publish", interval=why))
        yield


def _record(settings: Settings, report: dict[str, Any]) -> Path:
    path = settings.lake_dir / RECORDS / f"{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in report.items() if k != "remaining"}
    write_bytes(path, json.dumps({"erased_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), **body},
                                 indent=2, default=str).encode())
    return path


def _as_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


@warehouse.with_engine
def erase(settings: Settings, identifiers: list[str], key: bytes, *,
          engine: sa.Engine | None = None) -> dict[str, Any]:
    """Erase people everywhere, rebuild what counted them, and scan. Returns counts, never identifiers."""
    from pipelines import jobs
    from pipelines.network_stage import run_network
    from pipelines.privacy import check_key

    assert engine is not None
    # another key than the lake's would find nobody and say nothing; a rotation in progress is refused too
    check_key(settings.lake_dir, key, source_kind="erase", allow_demo=True, record=False)
    ps = Pseudonymiser(key)
    targets = resolve(settings, identifiers, ps)
    terms = _display_names(settings, targets.keys)
    m = targets.matcher(terms)
    report: dict[str, Any] = {"people": len(targets.keys)}
    with lake_locks(settings, "erase"):
        report["register_added"] = _register_add(settings.lake_dir, ps, targets.entries)
        if targets.unknown_identity:
            report["registered_by_key_only"] = targets.unknown_identity
        with engine.connect() as conn:
            windows = _affected_windows(conn, m)
        report["lake"] = erase_lake(settings.lake_dir, m)
        with engine.begin() as conn:
            warehouse.ensure_lake_tables(conn)
            report["warehouse"] = erase_warehouse(conn, m)
            # the history is the activities' and the aggregate usage reports' (a tenant may load only those)
            span = conn.execute(sa.text(
                "select min(d), max(d) from (select activity_date as d from lake_activities "
                "union all select usage_date as d from lake_usage_daily) h")).one()
        report["warehouse_rows_removed"] = report["warehouse"]["rows_deleted"]
        if span[0] is not None:
            interval = jobs.Interval(_as_date(span[0]), _as_date(span[1]))
            # the whole history is rebuilt from the (already scrubbed) canonical lake
            report["republished"] = jobs.publish(settings, interval, engine=engine)["interval"]
            by_end: dict[dt.date, set[str]] = {}
            for name, end in windows:
                by_end.setdefault(end, set()).add(name)
            for end, names in sorted(by_end.items()):
                run_network(settings, end, engine=engine, rolling=any(n.startswith("rolling") for n in names))
            report["network_windows"] = [f"{n} {e.isoformat()}" for n, e in windows]
            if windows:  # the impact tables read the network's influence
                from pipelines.metrics import compute_python_metrics

                with engine.begin() as conn:
                    compute_python_metrics(conn, settings, interval, key=key.decode())
        report["reports_deleted"] = erase_reports(Path(settings.reports.output_dir), m)
        report["names_file_lines_removed"] = _erase_names_file(settings, targets.keys)
        report["record"] = str(_record(settings, report).relative_to(settings.lake_dir))
    report["remaining"] = scan(settings, targets.keys, targets.emails, terms=terms, engine=engine)
    if report["remaining"]:
        log.error("erasure incomplete: the person is still found in %d place(s): %s", len(report["remaining"]),
                  report["remaining"][:10])
    return report
