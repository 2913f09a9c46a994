"""Data quality with Great Expectations 1.x: every batch is validated before it can be published.

The suites live in `expectations/<name>.json`; each expectation is `blocking` (a failure quarantines
the batch and stops publication) or `warning` (recorded and reported). Validation runs on pandas
DataFrames, one batch per source and run interval, because GX 1.x cannot validate DuckDB through its
SQL datasource. Results are kept as evidence: a table in the warehouse (`dq_validation_results`),
a JSON file beside the lake and GX data docs (HTML). This module never changes the data it checks.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

EXPECTATIONS_DIR = Path(__file__).resolve().parent.parent / "expectations"
SEVERITY_TO_GX = {"blocking": "critical", "warning": "warning"}
GX_TO_SEVERITY = {v: k for k, v in SEVERITY_TO_GX.items()}
_lock = threading.Lock()


@dataclass
class CheckResult:
    suite: str
    expectation: str
    column: str | None
    severity: str
    success: bool
    unexpected_count: int | None
    unexpected_sample: list[Any]
    observed: Any = None

    def describe(self) -> str:
        where = f" on column {self.column!r}" if self.column else ""
        sample = f"; examples: {self.unexpected_sample[:5]}" if self.unexpected_sample else ""
        count = f"{self.unexpected_count} unexpected value(s)" if self.unexpected_count else f"observed {self.observed}"
        return f"[{self.severity}] {self.suite}: {self.expectation}{where} failed: {count}{sample}"


@dataclass
class ValidationOutcome:
    suite: str
    batch: str
    rows: int
    results: list[CheckResult] = field(default_factory=list)

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "blocking"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.blocking_failures

    def records(self, run_id: str) -> list[dict[str, Any]]:
        return [
            {
                "run_id": run_id, "suite": self.suite, "batch": self.batch, "rows_checked": self.rows,
                "expectation": r.expectation, "column_name": r.column, "severity": r.severity,
                "success": r.success, "unexpected_count": r.unexpected_count,
                "unexpected_sample": json.dumps(r.unexpected_sample[:10], default=str),
            }
            for r in self.results
        ]


@lru_cache(maxsize=16)
def load_suite_spec(name: str) -> dict[str, Any]:
    path = EXPECTATIONS_DIR / f"{name}.json"
    spec = json.loads(path.read_text())
    for i, e in enumerate(spec["expectations"]):
        if e.get("severity") not in SEVERITY_TO_GX:
            raise ValueError(f"{path}: expectation {i} ({e.get('type')}) needs severity blocking or warning")
    return spec


class Validator:
    """A GX file context under `evidence_dir/gx`, reused for every batch of a run. One context per
    source (the caller passes the source's folder): two sources validated at once never share one."""

    def __init__(self, evidence_dir: Path, *, severities: dict[str, str] | None = None):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx  # heavy: import only when validating
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
        from great_expectations.expectations.metadata_types import FailureSeverity

        self._gx = gx
        self._config_cls = ExpectationConfiguration
        self._severity = FailureSeverity
        evidence_dir.mkdir(parents=True, exist_ok=True)
        self.root = evidence_dir
        self.context = gx.get_context(mode="file", project_root_dir=str(evidence_dir))
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._datasource = self.context.data_sources.add_or_update_pandas("esn")
        self._definitions: dict[str, Any] = {}
        #: setting -> severity, for the expectations whose meta says `severity_from: <setting>`
        #: (e.g. {"quality.volume_drift": "warning"})
        self._severities = dict(severities or {})

    def _definition(self, suite_name: str):
        if suite_name in self._definitions:
            return self._definitions[suite_name]
        gx = self._gx
        spec = load_suite_spec(suite_name)
        suite = gx.ExpectationSuite(name=suite_name)
        for e in spec["expectations"]:
            severity = self._severities.get(e.get("meta", {}).get("severity_from", ""), e["severity"])
            cfg = self._config_cls(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta", {}),
                                   severity=self._severity(SEVERITY_TO_GX[severity]))
            suite.add_expectation(cfg.to_domain_obj())
        suite = self.context.suites.add_or_update(suite)
        names = [a.name for a in self._datasource.assets]
        asset = (self._datasource.get_asset(suite_name) if suite_name in names
                 else self._datasource.add_dataframe_asset(suite_name))
        batch_def = (asset.batch_definitions[0] if asset.batch_definitions
                     else asset.add_batch_definition_whole_dataframe("whole"))
        vd = self.context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=suite_name, data=batch_def, suite=suite))
        self._definitions[suite_name] = vd
        return vd

    def validate(self, suite_name: str, df: pd.DataFrame, batch: str,
                 parameters: dict[str, Any] | None = None) -> ValidationOutcome:
        with _lock:  # GX contexts are not thread safe
            vd = self._definition(suite_name)
            result = vd.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {},
                            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 10})
        outcome = ValidationOutcome(suite=suite_name, batch=batch, rows=len(df))
        for r in result.results:
            cfg = r.expectation_config
            res = r.result or {}
            severity = cfg.severity.value if hasattr(cfg.severity, "value") else str(cfg.severity)
            kwargs = cfg.kwargs
            column = kwargs.get("column") or (",".join(kwargs["column_list"]) if "column_list" in kwargs else None)
            exc = (r.exception_info or {}).get("exception_message") if isinstance(r.exception_info, dict) else None
            outcome.results.append(CheckResult(
                suite=suite_name, expectation=cfg.type, column=column,
                severity=GX_TO_SEVERITY.get(severity, "warning"), success=bool(r.success),
                unexpected_count=res.get("unexpected_count"),
                unexpected_sample=[_plain(v) for v in res.get("partial_unexpected_list") or []],
                observed=_plain(res.get("observed_value")) if exc is None else f"error: {exc}",
            ))
        return outcome

    def build_docs(self) -> Path | None:
        try:
            self.context.build_data_docs()
            sites = self.context.get_docs_sites_urls()
            url = sites[0].get("site_url") if sites else None
            return Path(url.removeprefix("file://")) if url else None
        except Exception as exc:  # docs are evidence, not a gate: a failure here must not stop a run
            log.warning("could not build GX data docs: %s", exc)
            return None


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        return v.item()
    return v


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def daily_volume(activities: pd.DataFrame, history: dict[str, int], weeks: int) -> pd.DataFrame:
    """Events per day of the batch with the ratio to the median of the same weekday in the previous
    `weeks` weeks (from `history`: ISO date -> count, batch days included so that a long batch is
    compared with itself). Days without history get a null ratio, which the expectation ignores."""
    counts = activities.groupby(activities["occurred_at"].dt.date).size()
    all_counts = {**history, **{d.isoformat(): int(n) for d, n in counts.items()}}
    rows = []
    for day, n in counts.items():
        prior = [all_counts.get((day - pd.Timedelta(days=7 * k)).isoformat()) for k in range(1, weeks + 1)]
        prior = [p for p in prior if p is not None]
        med = float(pd.Series(prior).median()) if len(prior) >= 2 else None
        rows.append({"date": day.isoformat(), "rows": int(n), "baseline": med,
                     "drift_ratio": (n / med) if med else None})
    return pd.DataFrame(rows, columns=["date", "rows", "baseline", "drift_ratio"]).astype({"drift_ratio": "float64"})
