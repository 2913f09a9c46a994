"""Key rotation: move the lake and the warehouse from one pseudonymisation key to another.

A person key is HMAC(key, identifier)[:24] with the identifier `email:<address>` or `id:<source>:<native
id>`; the identifiers themselves are never stored in clear, so rotating needs, for every key of the lake,
the identifier it was made from. They come from the **identity vault**: at every extraction (and every
outcome ingestion) `record_identities` stores, for each person key it has not seen before, its
identifier encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a sub-key of the
pseudonymisation key (`Pseudonymiser.derive("esn-identity-vault-v1")`), in
`<lake>/_state/identities/source=<name>.parquet` (`person_key`, `identity`). Opted-out and erased people
are never recorded, and `erase` removes their rows. Lakes written before the vault existed, or people the
vault misses, can be mapped with `--identities FILE` (one email, or `id:<source>:<native id>`, a line: an
HR export, say), hashed under both keys.

`rotate(settings, old_key, new_key)` (`esn rotate-key --new-key-env VAR`), under the run lock and every
source lock:

1. builds the mapping old key -> new key from the vault (each identifier decrypted with the old key and
   checked against its old key) and the identities file, and refuses, before changing anything, when a
   person key of the lake (any column that holds person keys, in the lake or the warehouse) is not in it;
2. writes the mapping, encrypted under the new key, to `_state/rotation/plan.bin`, and replaces the
   lake's key fingerprint by a *rotation-in-progress* marker: from now on every run, whatever its key, is
   refused (`KeyMismatchError`) until the rotation is finished;
3. rewrites every file of the lake in place (each atomically): every string and list-of-string value of
   every Parquet file, every text file (validation evidence, GX data docs, state) with each old key
   replaced by its new key (inside event ids too), the identity vault and the erasure register re-
   encrypted under the new key; files that cannot be rewritten (binary, e-mail files) and hold an old key
   are deleted and listed;
4. rewrites every text column of every warehouse table in one transaction, then the report archive, the
   opt-out file's and the names file's person keys;
5. records the new key's fingerprint and deletes the plan; then scans the lake, the report archive and
   the warehouse for every old key (`remaining` in the summary must be empty).

Every step maps only old keys to new ones, so it can run twice: a rotation killed midway is finished by
running the same command again (the marker names both fingerprints and the plan holds the mapping).
Raw partitions are rewritten without being journaled as pending: their canonical days are rewritten by the
same mapping in the same call.

Limits: the vault lets whoever holds the pseudonymisation key *and* the lake read every identifier (before
it, they could only confirm a guessed email); people keyed before the vault existed need `--identities`
or re-extraction; an erased person whose identifier was unknown (registered by key only) cannot be
carried to the new key (counted in `register_entries_dropped`: add their email to the opt-out file);
e-mails already sent and backups of the lake keep the old keys.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from pipelines import erasure, warehouse
from pipelines.config import Settings
from pipelines.privacy import (
    DEMO_KEY,
    FINGERPRINT_FILE,
    KEY_HEX_CHARS,
    Pseudonymiser,
    check_key_length,
    fingerprint_path,
    key_fingerprint,
    read_fingerprint,
)

log = logging.getLogger(__name__)

VAULT_LABEL = "esn-identity-vault-v1"
VAULT_DIR = Path("_state") / "identities"
VAULT_SCHEMA = pa.schema([pa.field("person_key", pa.string()), pa.field("identity", pa.string())])
#: the vault file of the identities pseudonymised by the outcome ingestion (not a source name: those
#: cannot start with an underscore)
OUTCOMES_VAULT = "_outcomes"
PLAN = Path("_state") / "rotation" / "plan.bin"
MARKER = "rotating"
_HEX_RUN = re.compile(rf"[0-9a-f]{{{KEY_HEX_CHARS},}}")

#: tests set this to a callable to interrupt a rotation after the lake was rewritten
_after_lake: Callable[[], None] | None = None


class RotationError(RuntimeError):
    """The rotation cannot start or go on; the message says why and what to do."""


# -------------------------------------------------------------------------------------- the vault
def vault_cipher(ps: Pseudonymiser) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(ps.derive(VAULT_LABEL)))


def vault_files(lake_dir: Path) -> list[Path]:
    root = Path(lake_dir) / VAULT_DIR
    return sorted(root.glob("source=*.parquet")) if root.exists() else []


def vault_path(lake_dir: Path, source: str) -> Path:
    return Path(lake_dir) / VAULT_DIR / f"source={source}.parquet"


def record_identities(settings: Settings, source: str, ps: Pseudonymiser) -> int:
    """Add to the source's vault file the identifiers `ps` hashed that it does not hold yet (not those of
    opted-out or erased people). Called under the source's lock (`jobs.extract`) or the publication's
    (outcome ingestion). Returns how many were added."""
    from pipelines import jobs

    seen = {k: i for i, k in ps.seen().items() if i.startswith(("email:", "id:"))}
    if not seen:
        return 0
    path = vault_path(settings.lake_dir, source)
    old = pq.read_table(path) if path.exists() else None
    have = set(old.column("person_key").to_pylist()) if old is not None else set()
    new = {k: i for k, i in seen.items() if k not in have}
    if new:
        new = {k: i for k, i in new.items() if k not in jobs._opt_out_keys(settings, ps)}
    if not new:
        return 0
    cipher = vault_cipher(ps)
    added = pa.table({"person_key": pa.array(sorted(new), pa.string()),
                      "identity": pa.array([cipher.encrypt(new[k].encode()).decode() for k in sorted(new)],
                                           pa.string())}, schema=VAULT_SCHEMA)
    table = pa.concat_tables([old.select(VAULT_SCHEMA.names).cast(VAULT_SCHEMA), added]) if old is not None else added
    path.parent.mkdir(parents=True, exist_ok=True)
    erasure.write_parquet(path, table.sort_by("person_key"))
    return len(new)


def vault_identities(lake_dir: Path, ps: Pseudonymiser, keys: set[str] | None = None) -> dict[str, str]:
    """person key -> identifier, from every vault file (only `keys` when given). Entries that the key
    cannot decrypt or that do not hash back to their person key are skipped."""
    cipher = vault_cipher(ps)
    out: dict[str, str] = {}
    for path in vault_files(lake_dir):
        table = pq.read_table(path)
        for key, token in zip(table.column("person_key").to_pylist(), table.column("identity").to_pylist(),
                              strict=True):
            if key is None or token is None or (keys is not None and key not in keys) or key in out:
                continue
            try:
                ident = cipher.decrypt(token.encode()).decode()
            except InvalidToken:
                continue
            if ps.key_for(ident) == key:
                out[key] = ident
    return out


# ------------------------------------------------------------------------------------ key mapping
class KeyMap:
    """Old person key -> new person key, applied to whole values and to keys inside values."""

    def __init__(self, mapping: dict[str, str]):
        self.mapping = mapping

    def _run(self, run: str) -> str:
        if len(run) == KEY_HEX_CHARS:
            return self.mapping.get(run, run)
        out, i, last = [], 0, 0
        while i <= len(run) - KEY_HEX_CHARS:
            w = run[i:i + KEY_HEX_CHARS]
            if w in self.mapping:
                out += [run[last:i], self.mapping[w]]
                i += KEY_HEX_CHARS
                last = i
            else:
                i += 1
        return "".join(out) + run[last:]

    def sub(self, text: str) -> str:
        return _HEX_RUN.sub(lambda m: self._run(m.group()), text)

    def values(self, values: pa.Array) -> dict[str, str]:
        """The distinct values of a string array that change, with their new value."""
        u = pc.unique(values).drop_null()
        if len(u) == 0:
            return {}
        cand = u.filter(pc.fill_null(pc.match_substring_regex(u, f"[0-9a-f]{{{KEY_HEX_CHARS}}}"), False))
        out = {}
        for v in cand.to_pylist():
            new = self.sub(v)
            if new != v:
                out[v] = new
        return out


def _map_strings(col: pa.Array, changes: dict[str, str]) -> pa.Array:
    olds = pa.array(list(changes), col.type)
    news = pa.array(list(changes.values()), col.type)
    idx = pc.index_in(col, value_set=olds)
    return pc.if_else(pc.is_null(idx), col, pc.take(news, pc.fill_null(idx, 0)))


def map_table(table: pa.Table, km: KeyMap, where: str) -> tuple[pa.Table, int]:
    """`table` with every old key replaced; returns it with the number of values changed."""
    changed = 0
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_dictionary(t) and erasure._string_like(t.value_type):
            col, t = col.cast(t.value_type), t.value_type
        if erasure._string_like(t):
            changes = km.values(col)
            if changes:
                col = _map_strings(col, changes)
                changed += len(changes)
                table = table.set_column(table.column_names.index(name), table.schema.field(name), col)
        elif erasure._list_like(t) and erasure._string_like(t.value_type):
            flat = pc.list_flatten(col)
            changes = km.values(flat)
            if changes:
                lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
                offsets = pa.array([0, *lengths.cumsum().tolist()],
                                   pa.int64() if pa.types.is_large_list(t) else pa.int32())
                cls = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
                col = cls.from_arrays(offsets, _map_strings(flat, changes), type=t,
                                      mask=col.is_null() if col.null_count else None)
                changed += len(changes)
                table = table.set_column(table.column_names.index(name), table.schema.field(name), col)
        elif any(km.values(leaf) for leaf in erasure._leaves(col)):
            raise RotationError(f"{where}: column {name} holds person keys inside a nested value this rotation "
                                "cannot rewrite; nothing after it was rotated: report it")
    return table, changed


def _mapping(settings: Settings, old: Pseudonymiser, new: Pseudonymiser, identities_file: Path | None
             ) -> tuple[dict[str, str], dict[str, int]]:
    mapping: dict[str, str] = {}
    counts = {"vault": 0, "identities_file": 0, "register": 0}
    for key, ident in vault_identities(settings.lake_dir, old).items():
        mapping[key] = new.key_for(ident)
        counts["vault"] += 1
    if identities_file is not None:
        for n, line in enumerate(Path(identities_file).read_text(encoding="utf-8").splitlines(), start=1):
            value = line.strip()
            if not value or value.startswith("#"):
                continue
            if value.startswith(("email:", "id:")):
                ident = value if value.startswith("id:") else "email:" + value[6:].strip().lower()
            elif "@" in value:
                ident = "email:" + value.lower()
            else:
                raise RotationError(f"{identities_file}: line {n}: neither an email nor id:<source>:<native id>")
            mapping.setdefault(old.key_for(ident), new.key_for(ident))
            counts["identities_file"] += 1
    for entry in erasure.register_entries(settings.lake_dir, old):
        if entry.get("identifier"):
            mapping.setdefault(old.key_for(entry["identifier"]), new.key_for(entry["identifier"]))
            counts["register"] += 1
    clash = set(mapping) & set(mapping.values())
    if clash:
        raise RotationError(f"{len(clash)} new key(s) equal an old key: choose another new key")
    return mapping, counts


def _person_key_values(settings: Settings, engine: sa.Engine) -> set[str]:
    """Every value of a column that holds person keys by name, in the lake and the warehouse."""
    shaped = re.compile(rf"^[0-9a-f]{{{KEY_HEX_CHARS}}}$")
    values: set[str] = set()
    for path in erasure.files_under(settings.lake_dir):
        if not erasure._is_parquet(path) or path.is_relative_to(settings.lake_dir / VAULT_DIR):
            continue
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException):
            continue
        cols = [c for c in schema.names if c in erasure.PERSON_KEY_COLUMNS]
        if not cols:
            continue
        table = pq.read_table(path, columns=cols)
        for c in cols:
            col = table.column(c).combine_chunks()
            if erasure._list_like(col.type):
                col = pc.list_flatten(col)
            values.update(v for v in pc.unique(col).drop_null().to_pylist() if isinstance(v, str))
    with engine.connect() as conn:
        for table_name, column, _ in erasure.text_columns(conn):
            if column in erasure.PERSON_KEY_COLUMNS:
                values.update(str(v) for v in conn.execute(sa.text(
                    f"select distinct cast({erasure._quote(column)} as varchar) from {erasure._qtable(table_name)}"
                )).scalars() if v is not None)
    return {v for v in values if shaped.match(v)}


# ------------------------------------------------------------------------------------ plan and marker
def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    erasure.write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _save_plan(lake_dir: Path, new: Pseudonymiser, plan: dict[str, Any]) -> None:
    path = Path(lake_dir) / PLAN
    path.parent.mkdir(parents=True, exist_ok=True)
    erasure.write_bytes(path, vault_cipher(new).encrypt(json.dumps(plan).encode()))


def _load_plan(lake_dir: Path, new: Pseudonymiser) -> dict[str, Any]:
    path = Path(lake_dir) / PLAN
    try:
        return dict(json.loads(vault_cipher(new).decrypt(path.read_bytes())))
    except FileNotFoundError:
        raise RotationError(f"the rotation plan {path} is missing: restore the lake from its backup") from None
    except InvalidToken:
        raise RotationError(f"the rotation plan {path} cannot be read with the new key given") from None


# ------------------------------------------------------------------------------------ rewriting
def _reencrypt(token: str, old: Fernet, new: Fernet) -> bytes:
    try:
        return new.decrypt(token.encode())  # already rotated (a resumed rotation)
    except InvalidToken:
        return old.decrypt(token.encode())


def _rotate_vault(path: Path, old: Pseudonymiser, new: Pseudonymiser) -> int:
    table = pq.read_table(path)
    oc, nc = vault_cipher(old), vault_cipher(new)
    rows: dict[str, str] = {}
    for token in table.column("identity").to_pylist():
        ident = _reencrypt(token, oc, nc).decode()
        rows[new.key_for(ident)] = nc.encrypt(ident.encode()).decode()
    out = pa.table({"person_key": pa.array(sorted(rows), pa.string()),
                    "identity": pa.array([rows[k] for k in sorted(rows)], pa.string())}, schema=VAULT_SCHEMA)
    erasure.write_parquet(path, out)
    return len(rows)


def _rotate_register(lake_dir: Path, old: Pseudonymiser, new: Pseudonymiser, km: KeyMap) -> dict[str, int]:
    counts = {"register_entries": 0, "register_entries_dropped": 0}
    oc, nc = vault_cipher(old), vault_cipher(new)

    def rewrite(table: pa.Table) -> pa.Table:
        tokens, days = [], []
        for token, day in zip(table.column("token").to_pylist(), table.column("erased_on").to_pylist(),
                              strict=True):
            entry = json.loads(_reencrypt(token, oc, nc))
            if entry.get("person_key"):
                mapped = km.mapping.get(entry["person_key"])
                if mapped is None and entry["person_key"] not in set(km.mapping.values()):
                    counts["register_entries_dropped"] += 1
                    continue
                entry = {"person_key": mapped or entry["person_key"]}
            tokens.append(nc.encrypt(json.dumps(entry, sort_keys=True).encode()).decode())
            days.append(day)
        counts["register_entries"] = len(tokens)
        return pa.table({"token": pa.array(tokens, pa.string()), "erased_on": pa.array(days, pa.string())})

    erasure.rewrite_register(lake_dir, rewrite)
    return counts


def _rotate_files(root: Path, km: KeyMap, *, skip: set[Path]) -> dict[str, Any]:
    """Every file under `root` with old keys replaced; undeditable files that hold one are deleted."""
    old_keys = erasure.Matcher(km.mapping)
    out: dict[str, Any] = {"parquet_files": 0, "values": 0, "text_files": 0, "deleted": []}
    for path in erasure.files_under(root):
        rel = path.relative_to(root)
        if path.resolve() in skip or rel.parts[:2] == ("_state", "locks"):
            continue
        if erasure._is_parquet(path):
            try:
                table = pq.read_table(path)
            except (OSError, pa.ArrowException):
                table = None
            if table is not None:
                mapped, n = map_table(table, km, str(rel))
                if n:
                    erasure.write_parquet(path, mapped)
                    out["parquet_files"] += 1
                    out["values"] += n
                continue
        data = path.read_bytes()
        try:
            if path.suffix.lower() == ".eml":
                raise UnicodeDecodeError("eml", b"", 0, 1, "encoded parts")
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if old_keys.find(erasure._decoded_text(path, data)):
                path.unlink()
                out["deleted"].append(str(rel))
            continue
        new = km.sub(text)
        if new != text:
            erasure.write_bytes(path, new.encode("utf-8"))
            out["text_files"] += 1
    return out


def _rotate_warehouse(conn: sa.Connection, km: KeyMap) -> dict[str, int]:
    stats = {"columns": 0, "values": 0}
    temp = "_esn_rotation_values"
    for table, column, dtype in erasure.text_columns(conn):
        if table.rsplit(".", 1)[-1] == temp:
            continue
        expr = f"cast({erasure._quote(column)} as varchar)"
        cond, _ = erasure._prefilter(conn, expr, erasure.Matcher(keys=km.mapping))
        values = [str(v) for v in conn.execute(sa.text(
            f"select distinct {expr} from {erasure._qtable(table)} where {cond}")).scalars() if v is not None]
        changes = {v: km.sub(v) for v in values}
        changes = {o: n for o, n in changes.items() if o != n}
        if not changes:
            continue
        if not erasure._is_plain_text(dtype):
            raise RotationError(f"warehouse {table}.{column} ({dtype}) holds person keys this rotation cannot "
                                "rewrite: nothing of the warehouse was changed")
        conn.exec_driver_sql(f"drop table if exists {temp}")
        conn.exec_driver_sql(f"create table {temp} (old_value varchar, new_value varchar)")
        warehouse.insert_arrow(conn, temp, pa.table({"old_value": list(changes), "new_value": list(changes.values())}))
        t, c = erasure._qtable(table), erasure._quote(column)
        conn.exec_driver_sql(f"update {t} as u set {c} = m.new_value from {temp} m where u.{c} = m.old_value")
        conn.exec_driver_sql(f"drop table {temp}")
        stats["columns"] += 1
        stats["values"] += len(changes)
    return stats


def _rotate_opt_out(path: Path | None, km: KeyMap) -> dict[str, int]:
    if path is None or not Path(path).exists():
        return {}
    lines = Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
    mapped = unmapped = 0
    out = []
    new_keys = set(km.mapping.values())
    for line in lines:
        value = line.strip()
        if re.fullmatch(rf"[0-9a-f]{{{KEY_HEX_CHARS}}}", value):
            if value in km.mapping:
                line = line.replace(value, km.mapping[value])
                mapped += 1
            elif value not in new_keys:
                unmapped += 1
        out.append(line)
    if mapped:
        erasure.write_bytes(Path(path), "".join(out).encode("utf-8"))
    return {"keys_mapped": mapped, "keys_unmapped": unmapped}


# -------------------------------------------------------------------------------------------- rotate
@warehouse.with_engine
def rotate(settings: Settings, old_key: bytes, new_key: bytes, *, identities_file: Path | None = None,
           engine: sa.Engine | None = None) -> dict[str, Any]:
    """Move the lake, the warehouse, the report archive, the opt-out and names files from `old_key` to
    `new_key` (see the module doc). Returns counts, never identifiers."""
    assert engine is not None
    check_key_length(new_key, "the new key")
    if new_key == old_key:
        raise RotationError("the new key is the current key: nothing to rotate")
    if new_key == DEMO_KEY.encode() and any(s.kind != "demo" for s in settings.sources):
        raise RotationError("the new key is the published demo key: refused for real sources")
    old, new = Pseudonymiser(old_key), Pseudonymiser(new_key)
    old_fp, new_fp = key_fingerprint(old_key), key_fingerprint(new_key)
    lake_dir = settings.lake_dir
    report: dict[str, Any] = {"from": old_fp, "to": new_fp}
    with erasure.lake_locks(settings, "rotate-key", publish=True):
        stored = read_fingerprint(lake_dir)
        if stored is None:
            raise RotationError(f"the lake {lake_dir} has no key fingerprint ({fingerprint_path(lake_dir)}): "
                                "nothing was written with a key yet, just run with the new one")
        state = stored.get("rotation")
        if state:
            if state.get("from") != old_fp or state.get("to") != new_fp:
                raise RotationError(
                    f"an interrupted rotation from {state.get('from')} to {state.get('to')} is in progress: "
                    f"finish it with those keys (given: {old_fp} to {new_fp})")
            plan = _load_plan(lake_dir, new)
            report["resumed"] = True
        elif stored["fingerprint"] == new_fp:
            return {**report, "already_rotated": True, "remaining": []}
        elif stored["fingerprint"] != old_fp:
            raise RotationError(f"the current key (fingerprint {old_fp}) is not the lake's ({stored['fingerprint']}"
                                f", {fingerprint_path(lake_dir)}): set the key the lake was written with")
        else:
            mapping, sources = _mapping(settings, old, new, identities_file)
            unmapped = _person_key_values(settings, engine) - set(mapping)
            if unmapped:
                raise RotationError(
                    f"{len(unmapped)} person key(s) of the lake or the warehouse have no known identity (not in the "
                    f"identity vault {lake_dir / VAULT_DIR}, nor in --identities): they cannot be moved to the "
                    "new key. Give their emails or id:<source>:<native id> lines with --identities FILE (an "
                    "HR export), or erase them (esn erase KEY) first. Nothing was changed.")
            plan = {"from": old_fp, "to": new_fp, "mapping": mapping, "first_used": stored.get("first_used"),
                    "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
            report["mapping"] = {**sources, "people": len(mapping)}
            _save_plan(lake_dir, new, plan)
            _write_json(fingerprint_path(lake_dir), {
                "fingerprint": f"{MARKER}-{old_fp}-to-{new_fp}",
                "rotation": {"from": old_fp, "to": new_fp, "started": plan["started"]},
                "first_used": stored.get("first_used"),
                "about": "a key rotation is in progress (or was interrupted): every run is refused until "
                         "`esn rotate-key` is run again with the same old and new keys to finish it"})
        km = KeyMap(dict(plan["mapping"]))
        skip = {p.resolve() for p in (fingerprint_path(lake_dir), lake_dir / PLAN, lake_dir / erasure.REGISTER,
                                      *vault_files(lake_dir))}
        report["lake"] = _rotate_files(lake_dir, km, skip=skip)
        report["lake"]["vault_entries"] = sum(_rotate_vault(p, old, new) for p in vault_files(lake_dir))
        report["lake"].update(_rotate_register(lake_dir, old, new, km))
        if _after_lake is not None:
            _after_lake()
        with engine.begin() as conn:
            report["warehouse"] = _rotate_warehouse(conn, km)
        report["reports"] = _rotate_files(Path(settings.reports.output_dir), km, skip=set())
        report["opt_out_file"] = _rotate_opt_out(settings.privacy.opt_out_file, km)
        names = settings.reports.names_file
        if names is not None and Path(names).exists():
            text = Path(names).read_text(encoding="utf-8")
            if km.sub(text) != text:
                erasure.write_bytes(Path(names), km.sub(text).encode("utf-8"))
                report["names_file"] = "rewritten"
        _write_json(fingerprint_path(lake_dir), {
            "fingerprint": new_fp, "first_used": plan.get("first_used"),
            "rotated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "about": "HMAC-SHA256(key, 'esn-key-fingerprint'), first 16 hex characters: identifies the key the "
                     f"lake is written with, never reveals it ({FINGERPRINT_FILE})"})
        (lake_dir / PLAN).unlink(missing_ok=True)
    report["remaining"] = erasure.scan(settings, km.mapping, engine=engine)
    if report["remaining"]:
        log.error("rotation incomplete: old keys are still found in %d place(s): %s", len(report["remaining"]),
                  report["remaining"][:10])
    return report
