"""Configuration of the business-impact metrics: outcome files, dated interventions, scorecard targets.

Read from the YAML named by $ESN_IMPACT_CONFIG, else `impact_defaults.yaml` next to this module; validated
at the boundary with messages naming the bad field (a key given twice, NaN or infinity included). That
the outcome files exist and parse is checked by `pipelines.config.check_runtime` (`esn check-config`).
It holds no secrets and no data.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.config import DuplicateKeyError, yaml_load

IMPACT_CONFIG_ENV = "ESN_IMPACT_CONFIG"
DEFAULTS_FILE = Path(__file__).with_name("impact_defaults.yaml")


class Intervention(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(..., pattern=r"^[A-Za-z0-9_ .-]+$")
    date: dt.date
    metric: str = Field("dau", description="column of mart_engagement_daily (org-wide) to test")


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    target: float
    direction: str = Field("min", pattern="^(min|max)$", description="min: value >= target; max: value <= target")


class ImpactConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    outcome_files: list[Path] = Field(
        default_factory=list, description="CSV/Parquet outcome files the organisation drops, outside the lake: "
        "pseudonymised at ingestion into <lake>/outcomes/; empty: the files already in <lake>/outcomes/")
    generate_demo_outcomes: bool | None = Field(
        None, description="write demo outcomes when every source is the demo (None: automatic)")
    engaged_segments: list[str] = Field(default_factory=lambda: ["power", "habitual"])
    bootstrap_samples: int = Field(1000, ge=100)
    seed: int = 0
    its_window_days: int = Field(56, ge=28, description="days before and after an intervention; the series is "
                                 "weekly, so its_window_days // 7 weeks on each side (at least 4 for a result)")
    interventions: list[Intervention] = Field(
        default_factory=list, description="the organisation's dated interventions; none by default (the demo "
        "organisation's own come with its generated outcomes when none is configured)")
    targets: dict[str, Target] = Field(default_factory=dict)


def load_impact_config(path: str | Path | None = None) -> ImpactConfig:
    path = Path(path or os.environ.get(IMPACT_CONFIG_ENV) or DEFAULTS_FILE)
    try:
        data = yaml_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ValueError(f"impact configuration {path} does not exist") from None
    except DuplicateKeyError as exc:
        raise ValueError(f"invalid impact configuration in {path}:\n  {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"impact configuration {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"impact configuration {path} must hold a mapping at the top level")
    try:
        return ImpactConfig.model_validate(data)
    except ValidationError as err:
        lines = [f"invalid impact configuration in {path}:"]
        lines += [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ValueError("\n".join(lines)) from None
