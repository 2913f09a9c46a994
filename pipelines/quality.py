"""Data quality with Great Expectations 1.x: every batch is validated before it can be published.

The suites live in `expectations/<name>.json`; each expectation is `blocking` (a failure quarantines
the batch and stops publication) or `warning` (recorded and reported). Validation runs on pandas
DataFrames, one batch per source and run interval, because GX 1.x cannot validate DuckDB through its
SQL datasource. Results are kept as evidence: a table in the warehouse (`dq_validation_results`),
a JSON file beside the lake and GX data docs (HTML). This module never changes the data it checks.

Each validation has its own ephemeral GX context (`Validator`), so runs that overlap never share GX's
stores. Volume and freshness are judged per source and day against the same weekday's history
(`daily_volume`, `batch_freshness`, `day_statuses`): every day of a batch has a row, a day without any
activity too, so that a source that silently returned nothing is caught, not published as a quiet day.
"""

from __future__ import annotations

import datetime as dt
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
    #: a message that says what failed and where in the terms of the check (set by the caller that knows
    #: them, e.g. the day, its weekday and history of a volume check); replaces the generic description
    message: str | None = None
    #: the expectation's arguments (to tell a check's two bounds apart)
    kwargs: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.message:
            return f"[{self.severity}] {self.suite}: {self.message}"
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


#: loggers that speak at INFO in our runs (GX logs 200+ lines at import alone, from
#: `great_expectations._docs_decorators`, and more per context): WARNING and above only, our own INFO
#: lines untouched. GX's progress bars are off in every context (`ProgressBarsConfig`)
QUIET_LOGGERS = ("great_expectations",)


def quiet_gx_logs() -> None:
    """GX's loggers to WARNING. Called before GX is first imported (its import is the noisiest part) and
    again when a context is made, in case a host (Airflow's task runner) reset the levels meanwhile."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


quiet_gx_logs()


class Validator:
    """An ephemeral GX context of one validation (the suites and validation definitions in memory): every
    batch a run validates gets its own, so that runs that overlap (an Airflow 3 backfill runs days in
    parallel; mapped sources run at once) never share GX's stores. A file context shared by two processes
    is not safe: one process rewrites a suite's JSON while the other reads it (`ExpectationSuite() argument
    after ** must be a mapping`, tests/pipeline/test_validation_concurrency.py).

    With `gx_dir` (the source's folder, `jobs.gx_dir`), the validation results are also written there
    (`uncommitted/validations/`, one file per result, named by `run_name` and time: never rewritten, so
    writers do not collide) and the data docs site beside them (`uncommitted/data_docs/local_site/`): each
    validation renders its own pages, and the index lists every result of the folder."""

    def __init__(self, gx_dir: Path | None = None, *, severities: dict[str, str] | None = None,
                 run_name: str | None = None):
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        quiet_gx_logs()
        import great_expectations as gx  # heavy: import only when validating
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration
        from great_expectations.expectations.metadata_types import FailureSeverity

        self._gx = gx
        self._config_cls = ExpectationConfiguration
        self._severity = FailureSeverity
        self._run_id = RunIdentifier
        #: GX keys results by run name and time; a name of ours also says which batch and run they are of
        self.run_name = (run_name or new_run_id()).replace("/", "_")
        self.gx_dir = Path(gx_dir).resolve() if gx_dir is not None else None
        defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        sites: dict[str, Any] = {}
        if self.gx_dir is not None:
            # no `.ge_store_backend_id` file: it would be the one file every validation writes
            defaults.stores[defaults.validation_results_store_name]["store_backend"] = {
                "class_name": "TupleFilesystemStoreBackend", "suppress_store_backend_id": True,
                "base_directory": str(self.gx_dir / "uncommitted" / "validations")}
            sites = {"local_site": {
                "class_name": "SiteBuilder", "show_how_to_buttons": False,
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "suppress_store_backend_id": True,
                                  "base_directory": str(self.docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}}
        config = DataContextConfig(store_backend_defaults=defaults, data_docs_sites=sites,
                                   progress_bars=ProgressBarsConfig(globally=False))
        with _lock:  # get_context also sets GX's process-wide current project
            self.context = gx.get_context(mode="ephemeral", project_config=config)
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
        suite = self.context.suites.add(suite)
        batch_def = self._datasource.add_dataframe_asset(suite_name).add_batch_definition_whole_dataframe("whole")
        vd = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch_def, suite=suite))
        self._definitions[suite_name] = vd
        return vd

    @property
    def docs_dir(self) -> Path | None:
        return self.gx_dir / "uncommitted" / "data_docs" / "local_site" if self.gx_dir is not None else None

    def validate(self, suite_name: str, df: pd.DataFrame, batch: str,
                 parameters: dict[str, Any] | None = None) -> ValidationOutcome:
        with _lock:  # GX contexts are not thread safe
            vd = self._definition(suite_name)
            result = vd.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {},
                            run_id=self._run_id(run_name=self.run_name),
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
                kwargs=dict(kwargs),
            ))
        return outcome

    def build_docs(self) -> Path | None:
        """The data docs pages of what this context validated, and the site's index of every result in
        `gx_dir` (None without one). Never raises: docs are evidence, not a gate."""
        if self.gx_dir is None:
            return None
        try:
            with _lock:
                store = self.context.validation_results_store
                mine: list[Any] = [k for k in store.list_keys()
                                   if getattr(getattr(k, "run_id", None), "run_name", None) == self.run_name]
                suites = [k.expectation_suite_identifier for k in mine]
                self.context.build_data_docs(resource_identifiers=[*mine, *suites])
            index = self.docs_dir / "index.html" if self.docs_dir else None
            return index if index is not None and index.exists() else None
        except Exception as exc:  # a failure here must not stop a run
            log.warning("could not build GX data docs in %s: %s", self.docs_dir, exc)
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


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: what dq_source_days says of a day: delivered (its volume is in line, or it is a quiet day the history
#: expects), empty (nothing although the same weekday usually has activity: not delivered), low / high
#: (volume drift), stale (after the newest activity of a batch that is not fresh)
DAY_STATUSES = ("delivered", "empty", "low", "high", "stale")


def daily_volume(activities: pd.DataFrame, history: dict[str, int], weeks: int, days: list[dt.date] | None = None,
                 *, min_weeks: int | None = None, min_events: int = 1) -> pd.DataFrame:
    """One row per day of the batch (`days`; the days with activity when not given), a day without any
    activity included (rows 0), against the same weekday of the previous `weeks` weeks (`history`: ISO
    date -> count of every landed day, 0 included; a day never landed is absent, so a new source has no
    history; the batch's own days count too, so a long batch is compared with itself).

    Columns: date, weekday, rows, baseline (median of the known same weekdays, two or more), drift_ratio
    (rows / baseline; null for a day without activity, which `delivered` judges, and without a baseline),
    weeks_known / weeks_active (same weekdays landed / with activity), prior (JSON {date: count or null},
    for the messages; not validated), delivered (False when the day is empty although the weekday had
    activity in at least `min_weeks` of the previous weeks, each of those with `min_events` activities or
    more; None: the check is off, always True). `min_events` keeps sparse sources out: a weekday that
    usually brings a handful of events (a small team's Sunday, a historical mail sample) can be empty by
    chance, which is not a missing delivery (with 10 expected, an empty day has a chance of 0.005%)."""
    counts = activities.groupby(pd.to_datetime(activities["occurred_at"]).dt.date).size() if len(activities) \
        else pd.Series(dtype="int64")
    batch_days = sorted(days) if days is not None else sorted(counts.index)
    by_day = {d.isoformat(): int(n) for d, n in counts.items()}
    all_counts = {**history, **{d.isoformat(): by_day.get(d.isoformat(), 0) for d in batch_days}}
    rows = []
    for day in batch_days:
        n = by_day.get(day.isoformat(), 0)
        prior_days = [(day - dt.timedelta(days=7 * k)).isoformat() for k in range(1, weeks + 1)]
        prior = {d: all_counts.get(d) for d in prior_days}
        known = [c for c in prior.values() if c is not None]
        med = float(pd.Series(known).median()) if len(known) >= 2 else None
        active = sum(1 for c in known if c > 0)
        busy = sum(1 for c in known if c >= max(1, min_events))
        rows.append({"date": day.isoformat(), "weekday": WEEKDAYS[day.weekday()], "rows": n, "baseline": med,
                     "drift_ratio": (n / med) if med and n else None,
                     "weeks_known": len(known), "weeks_active": active, "prior": json.dumps(prior),
                     "delivered": not (min_weeks is not None and n == 0 and active >= min_weeks
                                       and busy >= min_weeks)})
    cols = ["date", "weekday", "rows", "baseline", "drift_ratio", "weeks_known", "weeks_active", "prior", "delivered"]
    return pd.DataFrame(rows, columns=cols).astype({"baseline": "float64", "drift_ratio": "float64",
                                                    "delivered": "bool"})


def batch_freshness(activities: pd.DataFrame, volume: pd.DataFrame, *, min_weeks: int,
                    evaluate: bool = True) -> dict[str, Any]:
    """How far the newest activity of a batch lies before its end, in hours (`lag_hours`).

    The lag runs to the end of the batch's last day that is not a known quiet day: days after the newest
    activity whose weekday the history knows (>= `min_weeks` weeks landed) and found active in fewer than
    `min_weeks` of them (a weekend of a weekday-only workspace) are not counted, so a batch ending on a
    quiet Sunday is not stale. `lag_hours` is null (nothing to judge) for a batch without activity (each
    of its days is judged by `daily_volume`'s `delivered`) and when `evaluate` is False (no history: a
    new source; an aggregate-only source)."""
    days = [dt.date.fromisoformat(d) for d in volume["date"]]
    end = (max(days) + dt.timedelta(days=1)) if days else None
    out: dict[str, Any] = {"newest_activity": None, "batch_end": end.isoformat() if end else None,
                           "counted_until": None, "lag_hours": None, "quiet_days_not_counted": []}
    if not evaluate or not len(activities) or end is None:
        return out
    newest = pd.Timestamp(pd.to_datetime(activities["occurred_at"]).max())
    newest = newest.tz_localize("UTC") if newest.tzinfo is None else newest.tz_convert("UTC")
    counted = newest.date()
    for row in volume.itertuples(index=False):
        day = dt.date.fromisoformat(row.date)
        if day <= newest.date():
            continue
        if row.weeks_known >= min_weeks and row.weeks_active < min_weeks:
            out["quiet_days_not_counted"].append(row.date)
        else:
            counted = day
    until = pd.Timestamp(counted + dt.timedelta(days=1), tz="UTC")
    out.update(newest_activity=newest.isoformat(), counted_until=until.isoformat(),
               lag_hours=round((until - newest).total_seconds() / 3600, 2))
    return out


def day_statuses(volume: pd.DataFrame, freshness: dict[str, Any], *, stale: bool, drift_min: float,
                 drift_max: float) -> list[dict[str, Any]]:
    """What each day of a batch was (`DAY_STATUSES`): the rows of dq_source_days, without source and run."""
    newest = freshness.get("newest_activity")
    newest_day = pd.Timestamp(newest).date().isoformat() if newest else None
    quiet = set(freshness.get("quiet_days_not_counted") or [])
    out = []
    for row in volume.itertuples(index=False):
        ratio = row.drift_ratio
        if not row.delivered:
            status = "empty"
        elif stale and newest_day is not None and row.date > newest_day and row.date not in quiet:
            status = "stale"
        elif pd.notna(ratio) and ratio < drift_min:
            status = "low"
        elif pd.notna(ratio) and ratio > drift_max:
            status = "high"
        else:
            status = "delivered"
        out.append({"day": dt.date.fromisoformat(row.date), "rows": int(row.rows),
                    "baseline": None if pd.isna(row.baseline) else float(row.baseline), "status": status})
    return out
