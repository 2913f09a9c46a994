"""The report archive (issue 16, part 6) and the scorecard history file.

Each scheduled run writes into `<reports.output_dir>/<as_of>/` (report.html, the emails) and, here, a
`run.json` with the run's coverage and objectives; `index.html` in `output_dir` links every run's
report.html, newest first, with its coverage. Nothing of an earlier run is overwritten: a rerun of the
same `as_of` replaces only that day's folder.

The scorecard history keeps one row per period end, frequency and objective: a row is added the first
time a period is reported and never replaced nor removed afterwards (a rerun of a period already there adds
nothing), so it shows what the leaders were told at the time. It is kept twice, with the same rows: the
warehouse table `mart_scorecard_history` (published marts schema, for BI tools; written under the lake's
publish lock, in one transaction; on DuckDB the file BI tools open gets it at the next publish) and
`scorecard_history.csv` in `output_dir` beside the archive.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import os
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.reports.content import Report

RUN_FILE = "run.json"
INDEX = "index.html"
HISTORY = "scorecard_history.csv"
HISTORY_COLUMNS = ["period_end", "frequency", "objective", "title", "status", "trend", "metrics", "data_complete",
                   "reported_on"]
HISTORY_TABLE = "mart_scorecard_history"
#: the table's columns, SQL types (portable: DuckDB and PostgreSQL) and descriptions (COMMENT ON)
HISTORY_SCHEMA = {
    "period_end": ("date", "last day of the reported period"),
    "frequency": ("varchar(16)", "the period's length: daily, weekly or monthly"),
    "objective": ("varchar(64)", "the plan objective's name (reports.plan.objectives[].name)"),
    "title": ("text", "the objective as the emails title it"),
    "status": ("varchar(32)", "on track, off track, partly on track or no data, as reported then"),
    "trend": ("varchar(32)", "better, worse, steady or no trend against the previous period, as reported then"),
    "metrics": ("text", "JSON: per metric of the objective its organisation value, target, direction, status"),
    "data_complete": ("boolean", "every source covered the period completely when it was reported"),
    "reported_on": ("date", "the run date that first reported the period (rows are never replaced)"),
}
HISTORY_DESCRIPTION = ("The ESN action plan's scorecard as reported: one row per period end, frequency and "
                       "objective, added the first time the period is reported and never replaced")


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def run_record(report: Report) -> dict[str, Any]:
    return {"as_of": report.as_of.isoformat(), "period": report.period.label,
            "data_complete": report.data_complete,
            "data_through": report.data_through.isoformat() if report.data_through else None,
            "coverage": report.coverage.as_dict() if report.coverage else None,
            "objectives": [{"name": o.objective.name, "title": o.objective.title, "status": o.status,
                            "trend": o.trend} for o in report.objectives]}


def archive_run(root: Path, run_dir: Path, report: Report, *, period_closed: bool) -> dict[str, Path]:
    """Record the run (run.json), rebuild the index of every run and, when the report's period closes on
    its as_of (a daily run reports a week to date on the other days), add the period to the history."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _atomic(run_dir / RUN_FILE, json.dumps(run_record(report), indent=2, sort_keys=True))
    out = {"index": write_index(root)}
    if period_closed:
        out["history"] = append_history(root, report)
    return out


def write_index(root: Path) -> Path:
    runs = []
    for f in sorted(root.glob(f"*/{RUN_FILE}"), reverse=True):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if (f.parent / "report.html").exists():
            runs.append((f.parent.name, rec))
    rows = []
    for folder, rec in runs:
        state = "complete" if rec.get("data_complete") else (
            f"INCOMPLETE (complete up to {rec['data_through']})" if rec.get("data_through") else "INCOMPLETE")
        colour = "#2e7d32" if rec.get("data_complete") else "#c62828"
        objectives = ", ".join(f"{o['title']}: {o['status']}" for o in rec.get("objectives") or [])
        rows.append(f'<tr><td><a href="{html.escape(folder)}/report.html">{html.escape(str(rec.get("as_of")))}</a>'
                    f'</td><td>{html.escape(str(rec.get("period") or ""))}</td>'
                    f'<td style="color:{colour}">{html.escape(state)}</td><td>{html.escape(objectives)}</td></tr>')
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            "<title>ESN report archive</title></head>"
            "<body style=\"font-family:Arial,Helvetica,sans-serif;margin:24px;color:#222\">"
            "<h1>ESN report archive</h1><p>One report per run, newest first, with the data's coverage.</p>"
            "<table cellpadding=\"6\" style=\"border-collapse:collapse\"><tr><th align=\"left\">As of</th>"
            "<th align=\"left\">Period</th><th align=\"left\">Data</th><th align=\"left\">Objectives</th></tr>\n"
            + "\n".join(rows) + "\n</table></body></html>\n")
    path = root / INDEX
    _atomic(path, page)
    return path


def history_rows(report: Report, reported_on: dt.date | None = None) -> list[dict[str, Any]]:
    """The history rows of the report's period, one per objective (`HISTORY_COLUMNS`)."""
    rows = []
    for o in report.objectives:
        metrics = {m.spec.metric: {"value": m.value, "target": m.spec.target, "direction": m.spec.direction,
                                   "status": m.status} for m in o.metrics}
        rows.append({"period_end": report.period.end.isoformat(), "frequency": report.period.frequency.value,
                     "objective": o.objective.name, "title": o.objective.title, "status": o.status,
                     "trend": o.trend, "metrics": json.dumps(metrics, sort_keys=True),
                     "data_complete": report.data_complete,
                     "reported_on": (reported_on or report.as_of).isoformat()})
    return rows


def append_history(root: Path, report: Report, reported_on: dt.date | None = None) -> Path:
    """Add the report's objectives for its period, unless that (period end, frequency, objective) is there."""
    path = root / HISTORY
    have: set[tuple[str, str, str]] = set()
    if path.exists():
        with path.open(newline="", encoding="utf-8") as f:
            have = {(r["period_end"], r["frequency"], r["objective"]) for r in csv.DictReader(f)}
    new = [r for r in history_rows(report, reported_on)
           if (r["period_end"], r["frequency"], r["objective"]) not in have]
    if not new:
        return path
    write_header = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as f:  # append only: earlier rows are never rewritten
        writer = csv.DictWriter(f, fieldnames=HISTORY_COLUMNS)
        if write_header:
            writer.writeheader()
        writer.writerows(new)
        f.flush()
        os.fsync(f.fileno())
    return path


def record_history(settings: Any, engine: sa.Engine, report: Report, reported_on: dt.date | None = None) -> int:
    """Add the report's period to `mart_scorecard_history` in the warehouse (created, with its comments,
    the first time), keeping every row already there: one transaction under the lake's publish lock (a
    DuckDB file has one writer; a publication running meanwhile is waited for). Returns the rows added."""
    from pipelines import publication, runlock
    from pipelines.warehouse import schemas_of

    rows = history_rows(report, reported_on)
    if not rows:
        return 0
    schema = schemas_of(engine).marts
    table = f"{schema}.{HISTORY_TABLE}"
    columns = ", ".join(f"{c} {t}" for c, (t, _) in HISTORY_SCHEMA.items())
    names = ", ".join(HISTORY_SCHEMA)
    with runlock.hold(settings.lake_dir, "publish", interval=f"reports {report.as_of}"), engine.begin() as conn:
        conn.exec_driver_sql(f"create schema if not exists {schema}")
        created = publication.table_columns(conn, schema, HISTORY_TABLE) is None
        conn.exec_driver_sql(f"create table if not exists {table} ({columns}, "
                             "primary key (period_end, frequency, objective))")
        if created:
            publication.apply_descriptions(conn, schema, HISTORY_TABLE, HISTORY_DESCRIPTION,
                                           {c: d for c, (_, d) in HISTORY_SCHEMA.items()})
        have = {(str(p), f, o) for p, f, o in conn.execute(sa.text(
            f"select period_end, frequency, objective from {table} where period_end = :p and frequency = :f"),
            {"p": dt.date.fromisoformat(rows[0]["period_end"]), "f": rows[0]["frequency"]})}
        new = [r for r in rows if (r["period_end"], r["frequency"], r["objective"]) not in have]
        if new:
            conn.execute(sa.text(f"insert into {table} ({names}) values ("
                                 + ", ".join(f":{c}" for c in HISTORY_SCHEMA) + ")"),
                         [{**r, "period_end": dt.date.fromisoformat(r["period_end"]),
                           "reported_on": dt.date.fromisoformat(r["reported_on"])} for r in new])
    return len(new)


def read_history_table(engine: sa.Engine) -> list[dict[str, Any]]:
    """The warehouse's scorecard history, oldest period first ([] before the first report)."""
    from pipelines import publication
    from pipelines.warehouse import schemas_of

    schema = schemas_of(engine).marts
    with engine.connect() as conn:
        if publication.table_columns(conn, schema, HISTORY_TABLE) is None:
            return []
        result = conn.execute(sa.text(f"select * from {schema}.{HISTORY_TABLE} "
                                      "order by period_end, frequency, objective"))
        return [dict(r._mapping) for r in result]


def read_history(root: Path) -> list[dict[str, str]]:
    path = root / HISTORY
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
