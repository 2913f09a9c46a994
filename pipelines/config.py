"""Typed configuration, validated at the boundary.

One YAML file (or the defaults) describes where the lake and the warehouse are, which sources to
extract, and the privacy settings. Errors name the bad field (`sources.0.options.people: ...`).
Secrets never live here: only the *names* of environment variables or Airflow connections that hold them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipelines.errors import ConfigError
from pipelines.reports_config import ReportsConfig

__all__ = ["ConfigError", "Settings", "SourceConfig", "load_settings"]

CONFIG_ENV = "ESN_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PrivacyConfig(_Strict):
    min_group_size: int = Field(5, ge=1, description="published aggregates over fewer people are suppressed")
    pseudonym_key_env: str = "ESN_PSEUDONYM_KEY"
    pseudonym_key_conn_id: str = "esn_pseudonym_key"
    opt_out_file: Path | None = Field(
        None, description="file of emails or person keys (one a line) whose data is dropped everywhere"
    )
    allow_named_leaderboards: bool = False


class SourceConfig(_Strict):
    name: str = Field(..., pattern=r"^[a-z][a-z0-9_]*$")
    kind: str
    enabled: bool = True
    conn_id: str | None = Field(
        None, description="Airflow connection holding this source's credentials (token in the password; "
                          "Graph: client id in login, secret in password, tenant_id in extra)")
    options: dict[str, Any] = Field(default_factory=dict)


class QualityConfig(_Strict):
    drift_window_days: int = Field(14, ge=1)
    drift_tolerance: float = Field(0.6, gt=0, description="allowed relative deviation from the recent median")
    volume_drift: Literal["blocking", "warning"] = Field(
        "blocking", description="a day outside the drift band rejects the batch (blocking) or is only reported")


class InteractionRules(_Strict):
    weights: dict[str, float] = Field(
        default_factory=lambda: {"reply": 1.0, "reaction": 0.5, "mention": 1.0, "share": 1.0}
    )

    @field_validator("weights")
    @classmethod
    def _known_types(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {"reply", "reaction", "mention", "share"}
        if unknown:
            raise ValueError(f"unknown interaction types {sorted(unknown)}")
        return value


class Settings(_Strict):
    lake_dir: Path = Path("data/lake")
    warehouse_url: str = "duckdb:///data/warehouse.duckdb"
    sources: list[SourceConfig] = Field(
        default_factory=lambda: [SourceConfig.model_validate({"name": "demo", "kind": "demo"})]
    )
    privacy: PrivacyConfig = Field(default_factory=lambda: PrivacyConfig.model_validate({}))
    quality: QualityConfig = Field(default_factory=lambda: QualityConfig.model_validate({}))
    interactions: InteractionRules = Field(default_factory=lambda: InteractionRules.model_validate({}))
    alert_thresholds: dict[str, float] = Field(
        default_factory=dict, description="overrides of sql/alert_thresholds.yaml (unknown names are errors)")
    reports: ReportsConfig = Field(default_factory=lambda: ReportsConfig.model_validate({}))

    @property
    def raw_dir(self) -> Path:
        return self.lake_dir / "raw"

    @property
    def canonical_dir(self) -> Path:
        return self.lake_dir / "canonical"

    @property
    def quarantine_dir(self) -> Path:
        return self.lake_dir / "quarantine"

    @property
    def evidence_dir(self) -> Path:
        return self.lake_dir / "validation"

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise ConfigError(f"no source named {name!r} in the configuration (have {[s.name for s in self.sources]})")


def _format(err: ValidationError, origin: str) -> str:
    lines = [f"invalid configuration in {origin}:"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from `path` (or $ESN_CONFIG, or defaults), with keyword overrides applied on top."""
    path = path or os.environ.get(CONFIG_ENV)
    data: dict[str, Any] = {}
    origin = "defaults"
    if path:
        origin = str(path)
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except FileNotFoundError:
            raise ConfigError(f"configuration file {path} does not exist") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format(err, origin)) from None
