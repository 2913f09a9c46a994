"""Airflow connections read by `pipelines`, inside Airflow and outside it.

Secrets stay out of the YAML: the configuration names a connection (`warehouse.conn_id`) and this module
finds it. Inside an Airflow task the SDK's `Connection.get` answers (every secrets backend of the
deployment, and the task log masks the password); elsewhere (`esn` on a laptop, a test, a task whose SDK
cannot reach the API server) the connection is the environment variable `AIRFLOW_CONN_<CONN_ID>`, in
either of Airflow's forms (a URI or JSON), parsed here without importing Airflow: importing it costs
seconds and needs an Airflow configuration, which the CLI must not.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from pipelines.errors import ConfigError

log = logging.getLogger(__name__)

#: Airflow's query parameter holding the whole extra as JSON in a connection URI
_EXTRA_KEY = "__extra__"


@dataclass(frozen=True)
class ConnectionFields:
    """The fields of an Airflow connection that `pipelines` reads (a plain copy, no Airflow object)."""

    conn_id: str
    conn_type: str | None
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    port: int | None = None
    schema: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: where it was read, for messages: "Airflow" or "$AIRFLOW_CONN_..."
    origin: str = "Airflow"


def env_var(conn_id: str) -> str:
    """The environment variable Airflow reads the connection `conn_id` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def in_airflow_task() -> bool:
    """True inside an Airflow task process (the SDK's supervisor channel is set). Checked on the modules
    already imported, so that a CLI process never imports Airflow for it."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    return runner is not None and getattr(runner, "SUPERVISOR_COMMS", None) is not None


def get_connection(conn_id: str, *, purpose: str = "connection") -> ConnectionFields:
    """The connection `conn_id`: from the Airflow SDK inside a task, else from `AIRFLOW_CONN_<CONN_ID>`.

    Raises `ConfigError` naming the connection, the variable and `purpose` (what needed it) when neither
    has it, or when the variable cannot be parsed."""
    if in_airflow_task():
        found = _from_airflow(conn_id)
        if found is not None:
            return found
    var = env_var(conn_id)
    value = os.environ.get(var)
    if not value or not value.strip():
        where = "defined in Airflow nor in" if in_airflow_task() else "in"
        raise ConfigError(
            f"the Airflow connection '{conn_id}' ({purpose}) is not {where} the environment variable {var}: "
            f"create it (`airflow connections add {conn_id} --conn-uri ...`) or set {var} to its URI "
            f"(e.g. postgres://user:password@host:5432/database) or to Airflow's JSON form")
    conn = parse_connection(conn_id, value.strip(), origin=f"${var}")
    if conn.password and in_airflow_task():  # the SDK masks what it reads itself; this one too
        from airflow.sdk.log import mask_secret

        mask_secret(conn.password)
    return conn


def _from_airflow(conn_id: str) -> ConnectionFields | None:
    """The SDK's answer; None when the SDK cannot answer (no API server: the caller reads the environment).
    A connection the deployment does not define is an error here already: the environment was the SDK's
    first backend."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise ConfigError(f"the Airflow connection '{conn_id}' is not defined (Admin > Connections, "
                          f"`airflow connections add {conn_id}`, or the variable {env_var(conn_id)})") from None
    except Exception as exc:  # noqa: BLE001 - an unreachable API server: fall back to the environment
        log.warning("the Airflow SDK could not read the connection %r (%s): trying $%s",
                    conn_id, type(exc).__name__, env_var(conn_id))
        return None
    return ConnectionFields(conn_id=conn_id, conn_type=conn.conn_type, host=conn.host, login=conn.login,
                            password=conn.password, port=conn.port, schema=conn.schema,
                            extra=dict(conn.extra_dejson or {}), origin="Airflow")


def parse_connection(conn_id: str, value: str, *, origin: str = "the connection") -> ConnectionFields:
    """An Airflow connection serialised as Airflow's environment backend reads it: JSON (`{"conn_type":
    ...}`) when it starts with `{`, else a URI (`postgres://login:password@host:port/schema?extra=...`).
    Follows `airflow.sdk.Connection.from_json` / `from_uri` (conn_type `postgresql` is `postgres`, `-`
    becomes `_`; query parameters are the extra, or `__extra__` holds it as JSON)."""
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{origin}: the connection '{conn_id}' is not valid JSON ({exc.msg} at "
                              f"position {exc.pos})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{origin}: the connection '{conn_id}' must be a JSON object")
        unknown = sorted(set(data) - {"conn_type", "host", "login", "password", "port", "schema", "extra",
                                      "description"})
        if unknown:
            raise ConfigError(f"{origin}: the connection '{conn_id}' has unknown field(s) {unknown} (Airflow's "
                              "fields: conn_type, host, login, password, port, schema, extra)")
        given = data.get("extra") or {}
        fields_extra = _json_extra(given, conn_id, origin) if isinstance(given, str) else given
        if not isinstance(fields_extra, dict):
            raise ConfigError(f"{origin}: the extra of the connection '{conn_id}' must be a JSON object")
        return ConnectionFields(conn_id=conn_id, conn_type=_normalise_type(data.get("conn_type")),
                                host=data.get("host"), login=data.get("login"), password=data.get("password"),
                                port=_port(data.get("port"), conn_id, origin), schema=data.get("schema"),
                                extra=dict(fields_extra), origin=origin)
    if value.count("://") != 1:
        raise ConfigError(f"{origin}: the connection '{conn_id}' is neither JSON nor a URI "
                          "(conn_type://login:password@host:port/schema)")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{origin}: the connection '{conn_id}' has a port that is not a number") from None
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra: dict[str, Any] = (_json_extra(query[_EXTRA_KEY], conn_id, origin) if _EXTRA_KEY in query
                             else query)
    return ConnectionFields(
        conn_id=conn_id, conn_type=_normalise_type(parts.scheme), host=parts.hostname or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None, port=port,
        schema=unquote(parts.path[1:]) if parts.path[1:] else None, extra=extra, origin=origin)


def _normalise_type(conn_type: Any) -> str | None:
    if not conn_type:
        return None
    text = str(conn_type)
    return "postgres" if text == "postgresql" else text.replace("-", "_")


def _json_extra(text: str, conn_id: str, origin: str) -> dict[str, Any]:
    try:
        extra = json.loads(text)
    except ValueError:
        raise ConfigError(f"{origin}: the extra of the connection '{conn_id}' is not valid JSON") from None
    if not isinstance(extra, dict):
        raise ConfigError(f"{origin}: the extra of the connection '{conn_id}' must be a JSON object")
    return extra


def _port(value: Any, conn_id: str, origin: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{origin}: the connection '{conn_id}' has port {value!r}, not a number") from None
