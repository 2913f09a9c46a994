"""Sources: each module here lands one platform's data in the raw lake, already pseudonymised.

A source module exposes `extract(ctx, start, end) -> ExtractReport` (I/O: call the API or read files,
minimise and pseudonymise, land raw partitions per day) and `canonicalise(ctx, day) -> dict[str, DataFrame]`
(pure over the raw landing: turn what was landed into the canonical tables). Canonicalisation reads only
the raw lake, so a landing can be replayed without calling the API again. A new source is a new module
registered by its `kind` below; nothing else changes.

People: `canonicalise` also returns a `people` frame when the source knows people: an HR directory its
directory rows (`in_directory` true), a platform its user listing (`in_directory` false, with
`account_type` and `is_deactivated`, see `pipelines.model.PEOPLE`). A module whose people rows are an HR
directory for some options says so with `lands_directory(source_config) -> bool` (see `lands_directory`).
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import pandas as pd

from pipelines.config import ConfigError, Settings, SourceConfig
from pipelines.privacy import Pseudonymiser

#: kind -> module implementing it
REGISTRY: dict[str, str] = {
    "demo": "pipelines.sources.demo",
    "file": "pipelines.sources.file_import",
    "slack": "pipelines.sources.slack",
    "slack_export": "pipelines.sources.slack_export",
    "msgraph": "pipelines.sources.msgraph",
    "m365_usage": "pipelines.sources.usage_reports",
    "yammer": "pipelines.sources.yammer",
    "yammer_export": "pipelines.sources.yammer_export",
    "salesforce": "pipelines.sources.salesforce",
    "bitrix24": "pipelines.sources.bitrix24",
    "mangoapps": "pipelines.sources.mangoapps",
    "socialcast_archive": "pipelines.sources.socialcast_archive",
    "uservoice": "pipelines.sources.uservoice",
}


@dataclass
class SourceContext:
    settings: Settings
    source: SourceConfig
    pseudonymiser: Pseudonymiser

    @property
    def lake_dir(self):
        return self.settings.lake_dir


@dataclass
class ExtractReport:
    source: str
    days: list[dt.date]
    rows: dict[str, int] = field(default_factory=dict)  # stream -> rows landed
    details: dict[str, Any] = field(default_factory=dict)


class SourceModule(Protocol):
    def extract(self, ctx: SourceContext, start: dt.date, end: dt.date) -> ExtractReport: ...

    def canonicalise(self, ctx: SourceContext, day: dt.date) -> dict[str, pd.DataFrame]: ...


def load(kind: str) -> SourceModule:
    try:
        module_name = REGISTRY[kind]
    except KeyError:
        raise ConfigError(f"unknown source kind {kind!r}; known kinds: {sorted(REGISTRY)}") from None
    return importlib.import_module(module_name)  # type: ignore[return-value]


def lands_directory(cfg: SourceConfig) -> bool:
    """Whether the source lands an HR directory (people rows with `in_directory` true) with its options:
    the module's `lands_directory(cfg)`, false for a module without one (the platforms)."""
    if cfg.kind not in REGISTRY:
        return False
    hook = getattr(load(cfg.kind), "lands_directory", None)
    return bool(hook(cfg)) if hook is not None else False


def credentials_from_connection(kind: str, *, login: str | None, password: str | None,
                                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The keyword arguments a source's `extract` takes, from the fields of an Airflow connection."""
    extra = extra or {}
    if kind in ("msgraph", "m365_usage"):
        return {"tenant_id": extra.get("tenant_id"), "client_id": login, "client_secret": password}
    if kind in ("slack", "yammer", "yammer_export", "salesforce"):
        return {"token": password}
    if kind == "uservoice":
        return {"client_id": login, "client_secret": password}
    if kind == "bitrix24":
        from pipelines.sources.bitrix24 import connection_credentials
        return connection_credentials(login, password, extra)
    if kind == "mangoapps":
        from pipelines.sources.mangoapps import connection_credentials as mangoapps_credentials
        return mangoapps_credentials(login, password, extra)
    return {}
