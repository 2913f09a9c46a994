"""The dbt runner: `dbt build` of the `sql/` project in-process, without Airflow.

`build(settings_or_url, params, schemas=...)` writes a dbt profile for the warehouse URL (`profile_for`:
dbt-duckdb for a `duckdb:///` file, dbt-postgres for `postgresql://`; a deployment on another warehouse
brings its own profiles.yml: `profiles_dir=` or $ESN_DBT_PROFILES_DIR), runs `dbt build` through
`dbt.cli.main.dbtRunner` with the run's parameters and the schema names as `--vars`, and returns a
`BuildResult` (one `NodeResult` a node) or raises `TransformError` naming the failing node(s).

Every invocation gets its own temporary target, log and profiles directories (removed afterwards):
nothing is written into the project (the checkout may be read-only) and two runs never share files.
dbt keeps process-global state (flags, the event manager, the adapter registry), so invocations in one
process are serialised by a lock; separate processes run in parallel. Anonymous usage statistics are
off and dbt's own console output is silenced: its events go to the `pipelines.transform.dbt` logger.

The parse (dbt's fixed cost per invocation) is done once per process and project content: the
manifest is kept, keyed by the hash of the project's files and the profile, and handed to the next
`dbtRunner(manifest=...)`. The run's `--vars` still reach the compiled SQL (models are compiled at run
time from the manifest's raw code); vars used in `dbt_project.yml` or `config()` are parse-time and
therefore part of the cache key.

DuckDB in the same process as `warehouse.make_engine`: DuckDB shares one database instance per file and
process only when the connection configs are equal, and duckdb-engine sets `custom_user_agent`; the
profile passes the very same value (`config_options`) and sets the session settings of make_engine
(TimeZone, memory_limit, preserve_insertion_order, search_path) per cursor, so dbt opens the file while
the caller's engine holds a connection to it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.warehouse import DEFAULT_SCHEMAS, Schemas, _duckdb_memory_limit

log = logging.getLogger(__name__)
dbt_log = logging.getLogger(__name__ + ".dbt")

PROJECT_DIR = Path(__file__).resolve().parent.parent / "sql"
PROFILE = "esn_metrics"
TARGET = "esn"
PROFILES_DIR_ENV = "ESN_DBT_PROFILES_DIR"
#: the vars every invocation passes besides the run's parameters
SCHEMA_VARS = ("schema_staging", "schema_internal", "schema_build", "schema_marts")

_POSTGRES_QUERY_KEYS = {"sslmode", "sslcert", "sslkey", "sslrootcert", "application_name", "connect_timeout",
                        "host", "port", "user", "password", "dbname"}
#: dbt's global state is per process: one invocation at a time
_LOCK = threading.RLock()
_MANIFESTS: dict[str, Any] = {}
_MANIFESTS_MAX = 4


class TransformError(RuntimeError):
    """dbt failed: a model or test errored, a test failed, or the project did not parse/compile.

    `result` is the `BuildResult` (None when dbt stopped before running any node)."""

    def __init__(self, message: str, result: BuildResult | None = None):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class NodeResult:
    name: str
    unique_id: str
    resource_type: str  # model, test, seed, snapshot, ...
    status: str  # success, error, skipped (models); pass, fail, warn, error, skipped (tests)
    seconds: float
    rows_affected: int | None  # PostgreSQL tables and incrementals; None for views, tests, on DuckDB
    message: str | None
    failures: int | None = None  # tests: the number of failing rows
    path: str | None = None  # the file, relative to the project
    models: tuple[str, ...] = ()  # tests: the model(s) tested

    @property
    def failed(self) -> bool:
        return self.status in ("error", "fail", "runtime error")


@dataclass
class BuildResult:
    command: str
    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0
    parse_seconds: float = 0.0  # 0 when the manifest came from the cache
    manifest_cached: bool = False

    @property
    def failed(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.failed]

    def node(self, name: str) -> NodeResult:
        for n in self.nodes:
            if n.name == name or n.unique_id == name:
                return n
        raise KeyError(f"no node {name!r} in this dbt {self.command} (have {[n.name for n in self.nodes]})")

    def statuses(self) -> dict[str, str]:
        return {n.name: n.status for n in self.nodes}


# ------------------------------------------------------------------------------------------- profile
def profile_for(url: str, schemas: Schemas = DEFAULT_SCHEMAS, *, threads: int = 1) -> dict[str, Any]:
    """The dbt profile (`esn_metrics`, target `esn`) of a warehouse SQLAlchemy URL, as the dict of a
    profiles.yml. DuckDB: the file (absolute path), with make_engine's settings; PostgreSQL: the server,
    schema = the internal schema, search path as make_engine's, time zone UTC (PGTZ at invocation)."""
    import sqlalchemy as sa

    try:
        u = sa.engine.make_url(url)
    except Exception as exc:
        raise TransformError(f"not a SQLAlchemy URL: {_redact(url)!r} ({exc})") from exc
    backend = u.get_backend_name()
    if backend == "duckdb":
        output = _duckdb_output(u, schemas)
    elif backend == "postgresql":
        output = _postgres_output(u, schemas)
    else:
        raise TransformError(
            f"no dbt profile for a warehouse of URL scheme {u.drivername!r} ({_redact(url)}): the runner makes "
            f"profiles for duckdb:/// and postgresql:// only (dbt adapters installed: "
            f"{', '.join(installed_adapters()) or 'none'}). A deployment on another warehouse installs its dbt "
            f"adapter and provides its own profiles.yml (profile {PROFILE!r}, target {TARGET!r}) in a "
            f"directory given as profiles_dir= or ${PROFILES_DIR_ENV}")
    output["threads"] = int(threads)
    return {PROFILE: {"target": TARGET, "outputs": {TARGET: output}}}


def _duckdb_output(u: Any, schemas: Schemas) -> dict[str, Any]:
    database = u.database or ""
    if not database or database == ":memory:" or database.startswith(":memory:"):
        raise TransformError("dbt cannot build an in-memory DuckDB warehouse (duckdb:///:memory:): it runs on "
                             "its own connection and would see an empty database; use a file")
    if u.query:
        raise TransformError(f"the DuckDB URL's parameters {sorted(u.query)} are not supported by the dbt "
                             f"runner; give a profiles_dir with your own profiles.yml")
    path = Path(database).expanduser().resolve()
    return {
        "type": "duckdb",
        "path": str(path),
        "schema": schemas.internal,
        # must equal duckdb-engine's connection config, or DuckDB refuses a second instance on the file
        "config_options": _duckdb_engine_config(),
        # session settings of make_engine, applied by dbt-duckdb to every cursor
        "settings": {"TimeZone": "UTC", "memory_limit": _duckdb_memory_limit(),
                     "preserve_insertion_order": "false", "search_path": ",".join(schemas.search_path)},
        # another process holding the file's lock (a reader, a previous run) is waited for: 2^k seconds
        # after the k-th refused attempt, about 8.5 minutes in all
        "retries": {"connect_attempts": 10, "retryable_exceptions": ["IOException"]},
        # the file stays open for the invocation (opening and checkpointing it for every node made a
        # one-day build about twice as slow) and is closed when it ends (`_release_duckdb`): another
        # process (the snapshot writer, a next run) must be able to open it then
        "keep_open": True,
    }


def _duckdb_engine_config() -> dict[str, Any]:
    """The config duckdb-engine passes to `duckdb.connect` (for an URL without parameters)."""
    import duckdb_engine
    import sqlalchemy

    if not getattr(duckdb_engine, "supports_user_agent", False):
        return {}
    return {"custom_user_agent": f"duckdb_engine/{duckdb_engine.__version__}(sqlalchemy/{sqlalchemy.__version__})"}


def _postgres_output(u: Any, schemas: Schemas) -> dict[str, Any]:
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in u.query.items()}
    unknown = sorted(set(query) - _POSTGRES_QUERY_KEYS)
    if unknown:
        raise TransformError(f"the PostgreSQL URL's parameters {unknown} are not supported by the dbt runner "
                             f"(supported: {sorted(_POSTGRES_QUERY_KEYS)}); give a profiles_dir with your own "
                             f"profiles.yml")
    host = u.host or query.pop("host", None) or os.environ.get("PGHOST") or "localhost"
    output: dict[str, Any] = {
        "type": "postgres",
        "host": host,
        "port": int(u.port or query.pop("port", None) or 5432),
        "user": u.username or query.pop("user", None) or os.environ.get("PGUSER") or "postgres",
        # dbt-postgres requires a password; empty for trust/peer auth (libpq then reads PGPASSWORD/.pgpass)
        "password": u.password or query.pop("password", None) or "",
        "dbname": u.database or query.pop("dbname", None) or "postgres",
        "schema": schemas.internal,
        "search_path": ",".join((*schemas.search_path, "public")),
    }
    for key in ("host", "port", "user", "password", "dbname"):
        query.pop(key, None)
    if "connect_timeout" in query:
        output["connect_timeout"] = int(query.pop("connect_timeout"))
    output.update(query)
    return output


def _prepare_duckdb(profile: dict[str, Any], schemas: Schemas) -> None:
    """A DuckDB file gets the schemas before dbt connects (as make_engine does): the profile's search_path
    setting is refused by DuckDB while a schema of it is missing."""
    output = profile[PROFILE]["outputs"][TARGET]
    if output.get("type") != "duckdb":
        return
    import duckdb

    Path(output["path"]).parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(10):
        try:
            con = duckdb.connect(output["path"], config=dict(output.get("config_options") or {}))
            break
        except duckdb.IOException:  # the file is locked by another process: wait as dbt-duckdb would
            if attempt == 9:
                raise
            log.info("DuckDB file %s is locked by another process; retrying in %ds", output["path"], 2**attempt)
            time.sleep(2**attempt)
    try:
        for name in schemas.all:
            con.execute(f"create schema if not exists {name}")
    finally:
        con.close()


def _release_duckdb() -> None:
    """Close the database dbt-duckdb keeps open between invocations (a profile with keep_open, the default
    of dbt-duckdb): the process must not hold the file (another process's lock, and a connection of
    another config in this process, would be refused)."""
    import sys

    module = sys.modules.get("dbt.adapters.duckdb.connections")
    if module is None:
        return
    manager = module.DuckDBConnectionManager
    with manager._LOCK:
        env = manager._ENV
        manager._ENV = None
        if env is not None:
            with contextlib.suppress(Exception):
                env.close()


def installed_adapters() -> list[str]:
    """The dbt adapter plugins importable in this environment (dbt.adapters.<name>)."""
    import pkgutil

    import dbt.adapters

    skip = {"base", "sql", "contracts", "events", "exceptions", "relation_configs", "record", "catalogs",
            "protocol", "factory", "cache", "capability", "reference_keys", "utils", "clients", "behaviour"}
    return sorted(m.name for m in pkgutil.iter_modules(dbt.adapters.__path__)
                  if m.ispkg and m.name not in skip)


def _redact(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


# ---------------------------------------------------------------------------------------------- vars
def dbt_vars(params: Mapping[str, Any], schemas: Schemas) -> dict[str, Any]:
    """The `--vars` of an invocation: the run's parameters (dates as ISO strings) and the schema names."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise TransformError(f"dbt var names must be identifiers, got {key!r}")
        if key in SCHEMA_VARS:
            raise TransformError(f"{key!r} is set by the runner from the schemas, not a parameter")
        if isinstance(value, float) and not math.isfinite(value):
            raise TransformError(f"dbt var {key!r} must be a finite number, got {value!r}")
        if isinstance(value, bool | int | float | str):
            out[key] = value
        elif isinstance(value, dt.datetime):
            raise TransformError(f"dbt var {key!r}: a datetime ({value!r}); pass a date or an ISO string")
        elif isinstance(value, dt.date):
            out[key] = value.isoformat()
        else:
            raise TransformError(f"dbt var {key!r} must be a str, int, float, bool or date, "
                                 f"got {type(value).__name__}: {value!r}")
    out.update(schema_staging=schemas.staging, schema_internal=schemas.internal, schema_build=schemas.build,
               schema_marts=schemas.marts)
    return out


# --------------------------------------------------------------------------------------------- build
def _resolve(url_or_settings: Any, schemas: Schemas | None) -> tuple[str, Schemas]:
    if isinstance(url_or_settings, str):
        return url_or_settings, schemas or DEFAULT_SCHEMAS
    url = url_or_settings.warehouse_url
    return url, schemas or url_or_settings.schemas()


def _profiles_dir(explicit: str | Path | None) -> Path | None:
    given = explicit or os.environ.get(PROFILES_DIR_ENV)
    if not given:
        return None
    path = Path(given).expanduser().resolve()
    if not (path / "profiles.yml").is_file():
        raise TransformError(f"no profiles.yml in the dbt profiles directory {path} "
                             f"({'profiles_dir=' if explicit else '$' + PROFILES_DIR_ENV})")
    return path


def project_hash(project_dir: Path) -> str:
    """A hash of every file dbt reads from the project (names and contents)."""
    h = hashlib.sha256()
    skip = {"target", "logs", "dbt_packages", "__pycache__", ".git"}
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if d not in skip and not d.startswith("."))
        for name in sorted(files):
            p = Path(root) / name
            h.update(str(p.relative_to(project_dir)).encode() + b"\0")
            h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


@contextlib.contextmanager
def _invocation_dirs(profile: dict[str, Any] | None) -> Iterator[tuple[Path, Path, Path]]:
    root = Path(tempfile.mkdtemp(prefix="esn-dbt-"))  # 0700: the profile may hold a password
    try:
        target, logs, profiles = root / "target", root / "logs", root / "profiles"
        for d in (target, logs, profiles):
            d.mkdir()
        if profile is not None:
            fd = os.open(profiles / "profiles.yml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(profile, fh)  # JSON is YAML
        yield target, logs, profiles
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _env(**values: str) -> Iterator[None]:
    """Set environment variables for the invocation (under the lock), restoring them afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}


def _forward_event(msg: Any) -> None:
    level = _LEVELS.get(msg.info.level, logging.DEBUG)
    # dbt's info lines are progress chatter: INFO for the per-node result lines, DEBUG for the rest
    if level == logging.INFO and msg.info.name not in ("LogModelResult", "LogTestResult", "LogSeedResult",
                                                       "LogSnapshotResult", "EndOfRunSummary", "StatsLine",
                                                       "RunResultError", "RunResultFailure"):
        level = logging.DEBUG
    if dbt_log.isEnabledFor(level) and msg.info.msg:
        dbt_log.log(level, "%s", msg.info.msg)


def _common_args(project_dir: Path, profiles: Path, target: Path, logs: Path) -> list[str]:
    return ["--no-send-anonymous-usage-stats", "--log-level", "none", "--log-level-file", "none",
            "--no-use-colors", "--no-version-check", "--log-path", str(logs)]


def _command_args(project_dir: Path, profiles: Path, target: Path, vars_: dict[str, Any]) -> list[str]:
    return ["--project-dir", str(project_dir), "--profiles-dir", str(profiles), "--profile", PROFILE,
            "--target", TARGET, "--target-path", str(target), "--vars", json.dumps(vars_),
            "--no-partial-parse"]


def build(url_or_settings: Any, params: Mapping[str, Any], *, schemas: Schemas | None = None,
          select: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
          on_node: Callable[[str, str], None] | None = None, threads: int = 1, command: str = "build",
          project_dir: str | Path | None = None, profiles_dir: str | Path | None = None,
          fail_fast: bool = False, full_refresh: bool = False, reuse_manifest: bool = True) -> BuildResult:
    """`dbt <command>` (build, run, test, compile, seed) of the project; raises `TransformError` naming
    the failing nodes (tests: the model and the number of failing rows; compile errors: the file).

    `url_or_settings`: a warehouse SQLAlchemy URL or a `Settings` (its warehouse_url and schemas).
    `on_node(name, status)` is called as each node finishes, from dbt's event callback (an exception it
    raises is re-raised once dbt returns: dbt cannot be stopped in the middle of a node)."""
    url, schemas = _resolve(url_or_settings, schemas)
    project = Path(project_dir or PROJECT_DIR).resolve()
    vars_ = dbt_vars(params, schemas)
    own_profiles = _profiles_dir(profiles_dir)
    profile = None if own_profiles else profile_for(url, schemas, threads=threads)
    args_select = [*(["--select", *select] if select else []), *(["--exclude", *exclude] if exclude else [])]
    extra = [*(["--fail-fast"] if fail_fast else []), *(["--full-refresh"] if full_refresh else [])]
    if threads and own_profiles:
        extra += ["--threads", str(int(threads))]
    errors: list[BaseException] = []

    def node_finished(msg: Any) -> None:
        if msg.info.name != "NodeFinished" or on_node is None:
            return
        info = msg.data.node_info
        try:
            on_node(info.node_name, info.node_status)
        except BaseException as exc:  # re-raised after the invocation
            errors.append(exc)

    from dbt.cli.main import dbtRunner

    with _LOCK, _invocation_dirs(profile) as (target, logs, generated), _env(PGTZ="UTC"):
        profiles = own_profiles or generated
        started = time.perf_counter()
        if profile is not None:
            _prepare_duckdb(profile, schemas)
        common = _common_args(project, profiles, target, logs)
        cmd_args = _command_args(project, profiles, target, vars_)
        manifest, parse_seconds, cached = _manifest(project, profile, own_profiles, vars_, common, cmd_args,
                                                    reuse_manifest)
        runner = dbtRunner(manifest=manifest, callbacks=[_forward_event, node_finished])
        try:
            res = runner.invoke([*common, command, *cmd_args, *args_select, *extra])
        finally:
            _release_duckdb()
        seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    result = BuildResult(command=command, success=bool(res.success), seconds=seconds,
                         parse_seconds=parse_seconds, manifest_cached=cached)
    if res.result is not None and hasattr(res.result, "results"):
        result.nodes = [_node_result(r, manifest) for r in res.result.results]
    log.info("dbt %s: %d nodes in %.1fs (parse %.1fs%s)%s", command, len(result.nodes), seconds, parse_seconds,
             ", cached manifest" if cached else "", "" if result.success else " FAILED")
    if not res.success:
        raise TransformError(_failure_message(command, result, res.exception), result)
    return result


def _manifest(project: Path, profile: dict[str, Any] | None, own_profiles: Path | None, vars_: dict[str, Any],
              common: list[str], cmd_args: list[str], reuse: bool) -> tuple[Any, float, bool]:
    """The parsed manifest of the project (from the process cache when the project's files, the profile
    and the vars are unchanged), the seconds the parse took and whether it was cached."""
    if not reuse:
        return None, 0.0, False
    from dbt.cli.main import dbtRunner

    key_src = {"project": str(project), "files": project_hash(project), "vars": _parse_time_vars(project, vars_),
               "profile": _parse_profile(profile) if profile is not None
               else (own_profiles / "profiles.yml").read_text() if own_profiles else None}
    from dbt.version import __version__ as dbt_version

    key_src["dbt"] = dbt_version
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()
    if key in _MANIFESTS:
        return _MANIFESTS[key], 0.0, True
    started = time.perf_counter()
    manifest = _load_cached_manifest(key)
    if manifest is None:
        res = dbtRunner(callbacks=[_forward_event]).invoke([*common, "parse", *cmd_args])
        if not res.success:
            raise TransformError(_failure_message("parse", None, res.exception))
        manifest = res.result
        _store_cached_manifest(key, manifest)
    seconds = time.perf_counter() - started
    while len(_MANIFESTS) >= _MANIFESTS_MAX:
        _MANIFESTS.pop(next(iter(_MANIFESTS)))
    _MANIFESTS[key] = manifest
    return manifest, seconds, False


def _parse_profile(profile: dict[str, Any]) -> dict[str, Any]:
    """What of a generated profile the parse depends on: a DuckDB file's folder does not (its database is
    named after the file's stem), nor its session settings (memory) and connection retries, so warehouses
    of the same name in other folders share the parse."""
    out = json.loads(json.dumps(profile, default=str))
    for target in out.get(PROFILE, {}).get("outputs", {}).values():
        if target.get("type") == "duckdb":
            target["path"] = Path(target["path"]).stem
            target.pop("settings", None)
            target.pop("retries", None)
    return out


#: where parsed manifests are kept between processes (each Airflow task, each CLI run is a process)
MANIFEST_CACHE_ENV = "ESN_DBT_CACHE_DIR"


def _manifest_cache_dir() -> Path | None:
    """$ESN_DBT_CACHE_DIR, else ~/.cache/esn-metrics/dbt-manifests; '' turns the disk cache off."""
    value = os.environ.get(MANIFEST_CACHE_ENV)
    if value == "":
        return None
    if value:
        return Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esn-metrics" / "dbt-manifests"


def _load_cached_manifest(key: str) -> Any:
    """The manifest another process parsed for the same key (project files, profile, parse-time vars and
    dbt version), or None. The cache is the user's own folder: a pickle, so only this user may write it
    (made 0700); an unreadable or stale entry is parsed again."""
    folder = _manifest_cache_dir()
    path = folder / f"{key}.pickle" if folder else None
    if path is None or not path.is_file():
        return None
    import pickle

    try:
        with path.open("rb") as f:
            return pickle.load(f)  # noqa: S301 - our own cache folder (0700), keyed by content
    except Exception as exc:  # noqa: BLE001 - a broken entry is parsed again
        log.warning("dbt manifest cache %s unreadable (%s): parsing again", path, exc)
        return None


def _store_cached_manifest(key: str, manifest: Any) -> None:
    folder = _manifest_cache_dir()
    if folder is None:
        return
    import pickle

    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            pickle.dump(manifest, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, folder / f"{key}.pickle")
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation only
        log.warning("could not keep the parsed dbt project in %s: %s", folder, exc)


_VAR_CALL = re.compile(r"var\(\s*['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]")
_CONFIG_BLOCK = re.compile(r"\{\{\s*config\((.*?)\)\s*\}\}", re.S)


def _parse_time_vars(project: Path, vars_: dict[str, Any]) -> dict[str, Any]:
    """The vars whose value dbt resolves at parse time, which a cached manifest would freeze: those named
    in dbt_project.yml, in YAML property files, in `config()` blocks and in macros by a literal name, and
    always the schema vars (generate_schema_name reads them by a computed name, at parse time); the vars
    used only in a model's SQL body (directly or through a macro) are compiled per invocation."""
    names: set[str] = set()
    for p in project.rglob("*"):
        if not p.is_file() or any(part in ("target", "logs", "dbt_packages") for part in p.parts):
            continue
        if p.suffix in (".yml", ".yaml"):
            names |= set(_VAR_CALL.findall(p.read_text()))
        elif p.suffix == ".sql":
            text = p.read_text()
            if "macros" in p.relative_to(project).parts:
                names |= set(_VAR_CALL.findall(text))
            else:
                for block in _CONFIG_BLOCK.findall(text):
                    names |= set(_VAR_CALL.findall(block))
    return {k: vars_.get(k) for k in sorted(names | set(SCHEMA_VARS))}


def _node_result(r: Any, manifest: Any) -> NodeResult:
    node = r.node
    resp = r.adapter_response or {}
    models: tuple[str, ...] = ()
    if node.resource_type == "test":
        deps = list(getattr(getattr(node, "depends_on", None), "nodes", []) or [])
        attached = getattr(node, "attached_node", None)
        ids = [attached] if attached else deps
        models = tuple(i.split(".")[-1] for i in ids if i and i.split(".")[0] in ("model", "seed", "snapshot"))
    rows = resp.get("rows_affected")
    # a test's "rows" are those of its failure-count query, a view's -1: neither is rows of a relation
    if node.resource_type == "test" or not isinstance(rows, int) or rows < 0:
        rows = None
    return NodeResult(
        name=node.name, unique_id=node.unique_id, resource_type=str(node.resource_type), status=str(r.status),
        seconds=float(r.execution_time or 0.0), rows_affected=rows, message=r.message,
        failures=r.failures, path=getattr(node, "original_file_path", None), models=models)


def _failure_message(command: str, result: BuildResult | None, exc: BaseException | None) -> str:
    lines = [f"dbt {command} failed"]
    if result is not None:
        for n in result.failed:
            if n.resource_type in ("test", "unit_test"):
                on = f" on {', '.join(n.models)}" if n.models else ""
                rows = f": {n.failures} failing row{'s' if n.failures != 1 else ''}" if n.status == "fail" else ""
                lines.append(f"- test {n.name}{on} ({n.path}) {n.status}{rows}"
                             + (f": {n.message}" if n.status == "error" and n.message else ""))
            else:
                lines.append(f"- {n.resource_type} {n.name} ({n.path}) {n.status}: {n.message}")
        skipped = [n.name for n in result.nodes if n.status == "skipped"]
        if skipped:
            lines.append(f"- skipped because of it: {', '.join(skipped)}")
    if exc is not None:
        lines.append(f"- {type(exc).__name__}: {exc}".rstrip())
    if len(lines) == 1:
        lines.append("- no node failed and dbt gave no error (see the pipelines.transform.dbt log)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- docs
def docs(url_or_settings: Any, schemas: Schemas | None, out_dir: Path, params: Mapping[str, Any] | None = None, *,
         project_dir: str | Path | None = None, profiles_dir: str | Path | None = None) -> Path:
    """`dbt docs generate --static` into `out_dir`: the single-file site (manifest and catalog inlined,
    lineage graph included) as `out_dir/index.html`, with manifest.json and catalog.json beside it.
    Returns the index.html path. The catalog is read from the warehouse (the built relations)."""
    url, schemas = _resolve(url_or_settings, schemas)
    project = Path(project_dir or PROJECT_DIR).resolve()
    vars_ = dbt_vars(params or {}, schemas)
    own_profiles = _profiles_dir(profiles_dir)
    profile = None if own_profiles else profile_for(url, schemas)
    from dbt.cli.main import dbtRunner

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _LOCK, _invocation_dirs(profile) as (target, logs, generated), _env(PGTZ="UTC"):
        profiles = own_profiles or generated
        try:
            res = dbtRunner(callbacks=[_forward_event]).invoke(
                [*_common_args(project, profiles, target, logs), "docs", "generate", "--static",
                 *_command_args(project, profiles, target, vars_)])
        finally:
            _release_duckdb()
        if not res.success:
            raise TransformError(_failure_message("docs generate", None, res.exception))
        static = target / "static_index.html"
        if not static.is_file():
            raise TransformError(f"dbt docs generate --static wrote no {static.name}")
        index = out_dir / "index.html"
        tmp = out_dir / ".index.html.tmp"
        shutil.copyfile(static, tmp)
        os.replace(tmp, index)
        for name in ("manifest.json", "catalog.json"):
            if (target / name).is_file():
                shutil.copyfile(target / name, out_dir / name)
    return index
