"""Default thresholds of the daily alerts, kept in `sql/alert_thresholds.yaml` and bound as SQL parameters.

This module only reads the YAML and merges it into the model parameters; it never decides a threshold.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.config import ALERT_THRESHOLDS_FILE, read_alert_thresholds

THRESHOLDS_FILE = ALERT_THRESHOLDS_FILE  # sql/alert_thresholds.yaml


def load_thresholds(path: Path = THRESHOLDS_FILE, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The alert thresholds: the YAML defaults with `overrides` on top. Unknown override keys, a key
    given twice in the file, and values that are not finite numbers are errors (`ValueError`)."""
    return read_alert_thresholds(path, overrides)


def model_params_with_thresholds(settings: Any, interval: Any,
                                 overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """`jobs.model_params` plus the alert thresholds: what the SQL models of this package need."""
    from pipelines import jobs

    return {**jobs.model_params(settings, interval), **load_thresholds(overrides=overrides)}
