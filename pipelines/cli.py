"""`esn`: the command line on the same functions the Airflow DAGs call.

  esn demo                 the whole pipeline on the built-in demo organisation (DuckDB + local Parquet)
  esn run --date D         the configured sources for one day (or --start/--end, one batch per day)
  esn check-config FILE    validate a configuration file and print it resolved
  esn erase EMAIL|KEY      erase people everywhere and keep them out (docs/privacy.md)
  esn rotate-key --new-key-env VAR   move the lake and the warehouse to a new pseudonymisation key
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines import jobs
from pipelines.config import ConfigError, Settings, SourceConfig, load_settings
from pipelines.privacy import DEMO_KEY, MissingKeyError, OptOutFileError
from pipelines.runlock import RunLocked
from pipelines.sources.file_import_formats import ImportRejected
from pipelines.sources.safe_archive import ArchiveError
from pipelines.sources.slack_export import ExportFormatError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="esn-metrics: measure enterprise social networks.")
console = Console(stderr=True)
out = Console()


#: who receives what in the demo organisation (fictitious addresses; nothing is sent by `esn demo`)
DEMO_AUDIENCES: dict[str, Any] = {
    "organisation_name": "Demo Corp",
    "audiences": [
        {"name": "leadership", "title": "Demo Corp leadership", "recipients": ["ceo@demo-corp.example"]},
        {"name": "sales", "recipients": ["vp-sales@demo-corp.example"],
         "scope": {"segment_type": "department", "segment_value": "Sales"}},
        {"name": "legal", "recipients": ["general-counsel@demo-corp.example"],
         "scope": {"segment_type": "department", "segment_value": "Legal"}},
    ],
}


def _fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code=2)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="size of the demo organisation")] = 3000,
    days: Annotated[int, typer.Option(help="days of activity to generate")] = 184,
    start: Annotated[str, typer.Option(help="first day (YYYY-MM-DD)")] = "2026-05-01",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same organisation")] = 7,
    output: Annotated[Path, typer.Option("--output", "-o", help="where the lake and warehouse go")] = Path("output/demo"),
    warehouse_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: DuckDB file in --output)")] = None,
    min_group_size: Annotated[int, typer.Option(help="suppress published aggregates below this many people")] = 5,
    via: Annotated[str, typer.Option(help="'direct' (generator -> raw lake) or 'slack': the same organisation "
                                          "served by the local Slack API emulator and extracted by the real "
                                          "Slack connector")] = "direct",
) -> None:
    """Run everything on the demo organisation and print where the outputs are."""
    first = dt.date.fromisoformat(start)
    interval = jobs.Interval(first, first + dt.timedelta(days=days - 1))
    demo_options = {"people": people, "days": days, "start": first, "seed": seed}
    if via not in ("direct", "slack"):
        _fail(f"--via must be 'direct' or 'slack', not {via!r}")
    sources = [SourceConfig.model_validate({"name": "demo", "kind": "demo", "options": demo_options})]
    settings = _settings(None, lake_dir=output / "lake",
                         warehouse_url=warehouse_url or f"duckdb:///{(output / 'warehouse.duckdb').as_posix()}",
                         sources=sources, privacy={"min_group_size": min_group_size},
                         reports={**DEMO_AUDIENCES, "output_dir": output / "reports"})
    console.print(f"[yellow]demo:[/] pseudonymising with the published demo key (fine for a fictitious "
                  f"organisation, never for real data). {people} people, {interval.start} to {interval.end}.")
    if via == "slack":
        _demo_via_slack(settings, interval, demo_options)
        return
    steps = ["extract", "stage", "validate", "land", "publish", "network", "reports"]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task("demo pipeline", total=len(steps))

        def on_step(step: str, info: dict[str, Any]) -> None:
            progress.update(task, advance=1, description=f"{step} done")

        try:
            report = jobs.run(settings, interval, on_step=on_step)
        except jobs.BatchRejected as exc:
            _fail(str(exc))
            return
        from pipelines.network_stage import run_network_range

        network = run_network_range(settings, interval.start, interval.end)
        report["network"] = network
        on_step("network", network[-1])
        report["reports"] = _render_demo_reports(settings, interval.end)
        on_step("reports", {})
    _summary(settings, report)


def _demo_via_slack(settings: Settings, interval: jobs.Interval, demo_options: dict[str, Any]) -> None:
    """The demo through the real extraction path: the HR directory from the generator, the activity
    from the local Slack emulator through the Slack connector (rate limits scaled down to keep it quick)."""
    import os

    from pipelines.emulators.slack import SlackEmulator
    from pipelines.network_stage import run_network_range
    from pipelines.sources.demo_org import build_org

    org = build_org(demo_options["people"], demo_options["days"], demo_options["start"], demo_options["seed"])
    token = "xoxb-local-emulator"
    os.environ["ESN_DEMO_SLACK_TOKEN"] = token
    # the organisation is fictitious, so every step of this process may use the published demo key
    os.environ.setdefault(settings.privacy.pseudonym_key_env, DEMO_KEY)
    with SlackEmulator(org, token=token, period_s=0.01) as emu:
        emu.advance_to(interval.end)
        console.print(f"[yellow]demo:[/] Slack API emulator at {emu.url}")
        settings.sources = [
            SourceConfig.model_validate({"name": "hr", "kind": "demo",
                                         "options": {**demo_options, "directory_only": True}}),
            SourceConfig.model_validate({"name": "slack", "kind": "slack", "options": {
                "base_url": emu.url, "token_env": "ESN_DEMO_SLACK_TOKEN", "rate_period_s": 0.01,
                "backoff_base_s": 0.01}}),
        ]
        with console.status("extracting through the Slack API emulator"):
            report = jobs.run(settings, interval, allow_demo_key=True)
    report["network"] = run_network_range(settings, interval.start, interval.end)
    report["reports"] = _render_demo_reports(settings, interval.end)
    _summary(settings, report)


def _render_demo_reports(settings: Settings, as_of: dt.date) -> list[str]:
    from pipelines.reports import render_reports

    return [str(p) for p in render_reports(settings, as_of, settings.reports.output_dir)]


def _summary(settings: Settings, report: dict[str, Any]) -> None:
    table = Table(title=f"esn-metrics run {report['run_id']} ({report['interval']})")
    table.add_column("step")
    table.add_column("result")
    for src, steps in report["sources"].items():
        ex = steps["extract"]
        table.add_row(f"{src}: extract", json.dumps(ex["rows"])
                      + (f"; covered {ex['covered']}" if ex.get("covered") and
                         ex["covered"] != report["interval"] else ""))
        outside = ex["details"].get("outside_interval") or {}
        if outside.get("before") or outside.get("after"):
            table.add_row(f"{src}: outside the interval",
                          f"{outside.get('before', 0)} before, {outside.get('after', 0)} after "
                          f"({outside.get('first')} .. {outside.get('last')}); not landed")
        if ex["details"].get("quarantined"):
            table.add_row(f"{src}: quarantined at extraction",
                          f"{json.dumps(ex['details']['quarantined'])} in {ex['details'].get('quarantine_file')}")
        if ex.get("recovered"):
            table.add_row(f"{src}: recovered", json.dumps(ex["recovered"]))
        q = steps["stage"].get("quarantined") or {}
        table.add_row(f"{src}: quarantined records", json.dumps(q) if q else "none")
        if steps.get("land", {}).get("superseded_days"):
            table.add_row(f"{src}: left to a newer run", ", ".join(steps["land"]["superseded_days"]))
        v = steps["validate"]
        table.add_row(f"{src}: validation", f"{v['checks']} checks, {v['blocking_failures']} blocking failures, "
                                            f"{v['warnings']} warnings")
    pub = report["publish"]
    table.add_row("published tables", ", ".join(f"{k} ({v})" for k, v in pub["models"].items() if v))
    table.add_row("publish time", f"{pub['total_seconds']} s")
    if report.get("network"):
        last = report["network"][-1]
        table.add_row("network tables", f"{len(report['network'])} snapshot date(s); last {last['end']}: "
                      + ", ".join(f"{k} ({v})" for k, v in last["rows"].items()))
    out.print(table)
    out.print(f"lake:       {settings.lake_dir.resolve()}")
    out.print(f"warehouse:  {settings.warehouse_url}")
    docs = next((s["validate"].get("data_docs") for s in report["sources"].values()), None)
    if docs:
        out.print(f"data docs:  {docs}")
    for path in report.get("reports", []):
        out.print(f"report:     {path}")


@app.command("run")
def run_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    date: Annotated[str | None, typer.Option(help="logical date YYYY-MM-DD")] = None,
    start: Annotated[str | None, typer.Option(help="first logical date of a range")] = None,
    end: Annotated[str | None, typer.Option(help="last logical date of a range")] = None,
    single_batch: Annotated[bool, typer.Option(help="treat the range as one batch instead of one per day")] = False,
) -> None:
    """Run the configured sources for a date or a range of dates."""
    settings = _settings(config)
    if date:
        start = end = date
    if not (start and end):
        _fail("give --date, or --start and --end")
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)  # type: ignore[arg-type]
    intervals = ([jobs.Interval(first, last)] if single_batch else
                 [jobs.Interval(d, d) for d in jobs.Interval(first, last).days])
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("days", total=len(intervals))
        for interval in intervals:
            progress.update(task, description=f"{interval.batch}")
            try:
                report = jobs.run(settings, interval)
            except (jobs.BatchRejected, MissingKeyError, RunLocked, ConfigError, ImportRejected, ArchiveError,
                    ExportFormatError, OptOutFileError) as exc:
                _fail(f"{interval.batch}: {type(exc).__name__}: {exc}")
                return
            progress.advance(task)
    _summary(settings, report)


@app.command()
def report(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    as_of: Annotated[str | None, typer.Option(help="last day the report covers (default: latest published day)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="where .eml/.html files go")] = Path("output/reports"),
    warehouse_url: Annotated[str | None, typer.Option(help="override the configured warehouse")] = None,
    audience: Annotated[list[str] | None, typer.Option(help="only these audiences (repeatable)")] = None,
    send: Annotated[bool, typer.Option(help="also send the emails (Airflow SMTP connection or configured SMTP)")] = False,
    demo_audiences: Annotated[bool, typer.Option(help="use the demo organisation's audiences (leadership, "
                                                      "Sales, Legal) instead of the configured ones")] = False,
) -> None:
    """Render the stakeholder emails (.eml, .html) and the static organisation report; optionally send.

    On the demo: `esn report --warehouse-url duckdb:///output/demo/warehouse.duckdb --demo-audiences`."""
    from pipelines import reports, warehouse

    overrides: dict[str, Any] = {"warehouse_url": warehouse_url}
    if demo_audiences:
        overrides["reports"] = {**DEMO_AUDIENCES, "output_dir": output}
    settings = _settings(config, **overrides)
    if as_of is None:
        engine = warehouse.engine_for(settings)
        latest = warehouse.read_frame(engine, "select max(activity_date) as d from mart_engagement_daily")
        engine.dispose()
        if latest.empty or latest.loc[0, "d"] is None:
            _fail(f"nothing published yet in {settings.warehouse_url}: run `esn demo` or `esn run` first")
        day = latest.loc[0, "d"]
    else:
        day = dt.date.fromisoformat(as_of)
    if send:
        result = reports.send_reports(settings, day, audiences=audience)
        out.print_json(json.dumps(result, default=str))
        if result.get("failed"):
            raise typer.Exit(code=1)
        return
    paths = reports.render_reports(settings, day, output, audiences=audience)
    for p in paths:
        out.print(str(p))


@app.command()
def docs(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="folder of the site (index.html)")] = Path("output/docs"),
    warehouse_url: Annotated[str | None, typer.Option(help="override the configured warehouse")] = None,
) -> None:
    """Build the dbt docs site of the warehouse (every model, its columns, tests and lineage) as one static
    page, output/docs/index.html by default: the models' descriptions are the catalogue's, the column types
    are read from the warehouse.

    On the demo: `esn docs --warehouse-url duckdb:///output/demo/warehouse.duckdb`."""
    from pipelines import transform

    settings = _settings(config, warehouse_url=warehouse_url)
    day = dt.datetime.now(dt.UTC).date()  # the vars only render the SQL shown; no model runs
    index = transform.docs(settings, settings.schemas(), output, jobs.model_params(settings, jobs.Interval(day, day)))
    out.print(str(index))


@app.command()
def erase(
    identifiers: Annotated[list[str] | None, typer.Argument(help="emails or person keys (24 hex) to erase")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    from_file: Annotated[Path | None, typer.Option("--from-file", help="read the emails / keys from this file, "
                                                   "one a line (keeps them out of the process list)")] = None,
    demo_key: Annotated[bool, typer.Option(help="hash emails with the demo key (demo organisation only)")] = False,
) -> None:
    """Honour an erasure request: remove people from the lake (raw, canonical, quarantine, validation
    evidence, state), the warehouse (network windows and month snapshots recomputed) and the report
    archive, keep them out of every later run, then scan everything for what is left (docs/privacy.md)."""
    from pipelines.erasure import erase as erase_people
    from pipelines.privacy import check_key, resolve_key

    settings = _settings(config)
    wanted = list(identifiers or [])
    if from_file is not None:
        try:
            wanted += [x.strip() for x in from_file.read_text(encoding="utf-8").splitlines()
                       if x.strip() and not x.strip().startswith("#")]
        except OSError as exc:
            _fail(f"cannot read {from_file}: {exc}")
    if not wanted:
        _fail("give the emails or person keys to erase (arguments or --from-file)")
    try:
        key = resolve_key(None, env_var=settings.privacy.pseudonym_key_env, allow_demo=demo_key)
        # a different key than the lake's would find nobody and say nothing: refuse it by name
        check_key(settings.lake_dir, key, source_kind="demo" if demo_key else "erase", allow_demo=demo_key,
                  record=False)
        result = erase_people(settings, wanted, key)
    except (MissingKeyError, RunLocked, ValueError) as exc:
        _fail(str(exc))
        return
    out.print_json(json.dumps(result, default=str))
    if result.get("remaining"):
        console.print(f"[bold red]erasure incomplete:[/] still found in {len(result['remaining'])} place(s)")
        raise typer.Exit(code=1)
    console.print(f"erased {result['people']} person(s); a scan of the lake, the report archive and every warehouse "
                  "table finds them nowhere")


@app.command("rotate-key")
def rotate_key(
    new_key_env: Annotated[str, typer.Option("--new-key-env", help="environment variable holding the new key")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    identities: Annotated[Path | None, typer.Option(help="emails (or id:<source>:<native id>), one a line, of "
                                                         "people the identity vault does not know (an HR export)")] = None,
    demo_key: Annotated[bool, typer.Option(help="the current key is the demo key (demo organisation only)")] = False,
) -> None:
    """Move the lake, the warehouse and the report archive from the current pseudonymisation key
    ($ESN_PSEUDONYM_KEY) to the one in --new-key-env; rerun the same command to finish an interrupted
    rotation. Afterwards deploy the new key (docs/privacy.md, key rotation)."""
    import os

    from pipelines.privacy import check_key_length, resolve_key
    from pipelines.rotation import RotationError, rotate

    settings = _settings(config)
    value = os.environ.get(new_key_env)
    if not value:
        _fail(f"the environment variable {new_key_env} (--new-key-env) is not set")
        return
    try:
        old = resolve_key(None, env_var=settings.privacy.pseudonym_key_env, allow_demo=demo_key)
        new = value.encode()
        check_key_length(new, f"the environment variable {new_key_env}")
        result = rotate(settings, old, new, identities_file=identities)
    except (MissingKeyError, RunLocked, RotationError, OSError) as exc:
        _fail(str(exc))
        return
    out.print_json(json.dumps(result, default=str))
    if result.get("remaining"):
        console.print(f"[bold red]rotation incomplete:[/] old keys still found in {len(result['remaining'])} place(s)")
        raise typer.Exit(code=1)
    console.print(f"rotated to the key in {new_key_env} (fingerprint {result['to']}). Now set "
                  f"{settings.privacy.pseudonym_key_env} / the Airflow connection "
                  f"'{settings.privacy.pseudonym_key_conn_id}' to it: runs with the old key are refused.")


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="YAML configuration file")],
    impact_config: Annotated[Path | None, typer.Option(
        help="business-impact YAML (default: $ESN_IMPACT_CONFIG, else the built-in defaults)")] = None,
) -> None:
    """Validate a configuration file and what a run reads besides it: source options, the opt-out file,
    alert thresholds, business-outcome files, the reports' catalogue and names file, and the
    pseudonymisation key when it is set here (length, demo key, the lake's fingerprint; nothing is
    written). Errors name the bad field; prints the resolved settings."""
    import os

    from rich.markup import escape

    from pipelines.privacy import check_key, key_origin, resolve_key

    settings = _settings(config)
    try:
        warnings = settings.check_runtime(impact_config=impact_config)
    except ConfigError as exc:
        _fail(escape(str(exc)))
        return
    privacy = settings.privacy
    if os.environ.get(privacy.pseudonym_key_env):
        try:
            secret = resolve_key(None, env_var=privacy.pseudonym_key_env, conn_id=privacy.pseudonym_key_conn_id)
            for kind in sorted({s.kind for s in settings.sources if s.enabled}):
                check_key(settings.lake_dir, secret, source_kind=kind, record=False,
                          where=key_origin(privacy.pseudonym_key_env, privacy.pseudonym_key_conn_id, explicit=False))
        except MissingKeyError as exc:
            _fail(escape(str(exc)))
            return
    else:
        warnings.append(f"pseudonymisation key not checked: ${privacy.pseudonym_key_env} is not set here (runs "
                        f"read the Airflow connection '{privacy.pseudonym_key_conn_id}' or that variable)")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    out.print_json(settings.model_dump_json())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
