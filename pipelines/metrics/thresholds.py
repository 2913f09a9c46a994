"""Default thresholds of the daily alerts, kept in `sql/alert_thresholds.yaml` and bound as SQL parameters.

This module only reads the YAML and merges it into the model parameters; it never decides a threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipelines.warehouse import SQL_DIR

THRESHOLDS_FILE = SQL_DIR / "alert_thresholds.yaml"


def load_thresholds(path: Path = THRESHOLDS_FILE, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The alert thresholds: the YAML defaults with `overrides` on top. Unknown override keys are errors."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of threshold names to numbers")
    for key, value in data.items():
        if not isinstance(value, int | float):
            raise ValueError(f"{path}: threshold {key!r} must be a number, got {value!r}")
    for key, value in (overrides or {}).items():
        if key not in data:
            raise ValueError(f"unknown alert threshold {key!r} (known: {sorted(data)})")
        data[key] = value
    return data


def model_params_with_thresholds(settings: Any, interval: Any,
                                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`jobs.model_params` plus the alert thresholds: what the SQL models of this package need."""
    from pipelines import jobs

    return {**jobs.model_params(settings, interval), **load_thresholds(overrides=overrides)}
