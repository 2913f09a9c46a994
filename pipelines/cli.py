"""`esn`: the command line on the same functions the Airflow DAGs call.

  esn demo                 the whole pipeline on the built-in demo organisation (DuckDB + local Parquet)
  esn run --date D         the configured sources for one day (or --start/--end, one batch per day), then
                           the network stage (--no-network to skip it)
  esn network --date D     the network stage alone for a day (or --start/--end)
  esn report               the stakeholder emails and the organisation report from the warehouse
  esn check-config FILE    validate a configuration file and what it points at; print it resolved
  esn erase EMAIL|KEY      erase people everywhere and keep them out (docs/privacy.md)
  esn rotate-key --new-key-env VAR   move the lake and the warehouse to a new pseudonymisation key

Imports are lazy: this module loads typer and the standard library only, and each command imports what
it uses (pandas, SQLAlchemy, DuckDB, Great Expectations, dbt take seconds to import), so that `esn --help`
and a mistyped option answer at once (tests/cli/test_startup.py).

Errors end in one short message naming what to fix and a non-zero exit code (`_handled`): the known
errors of the package by their message, a warehouse that cannot be reached or has no marts yet by what
to do, anything else by its type and first line. `esn --debug <command>` shows the traceback instead.
Messages are printed as plain text, never as rich markup (a message holding `[a-z]` keeps its brackets).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from pipelines.config import Settings
    from pipelines.jobs import Interval


class _App(typer.Typer):
    """A Typer whose commands end in a short message instead of a traceback (`_handled`), and whose
    process (the `esn` script, `python -m pipelines.cli`) does not print DuckDB's `nanobind: leaked`
    report at exit (`duckdb_access.quiet_interpreter_teardown`)."""

    def command(self, *args: Any, **kwargs: Any  # type: ignore[override]
                ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        register = super().command(*args, **kwargs)

        def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
            register(_handled(fn))
            return fn
        return decorator

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from pipelines.duckdb_access import quiet_interpreter_teardown

        quiet_interpreter_teardown()
        return super().__call__(*args, **kwargs)


app = _App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
           help="esn-metrics: measure enterprise social networks.")

#: set by the global --debug option: errors are raised with their traceback instead of summarised
_debug = False
#: the command's settings, for the messages of warehouse errors (`_settings`)
_current: Settings | None = None


@functools.cache
def _consoles() -> tuple[Console, Console]:
    from rich.console import Console

    return Console(stderr=True), Console()


def _console() -> Console:
    """The console of messages and progress (stderr)."""
    return _consoles()[0]


def _out() -> Console:
    """The console of results (stdout)."""
    return _consoles()[1]


def _say(label: str, message: str, style: str = "bold red") -> None:
    """`label: message` on stderr, the message as plain text (no markup, no highlighting)."""
    from rich.text import Text

    _console().print(Text.assemble((f"{label}:", style), " ", message), highlight=False, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    _say("error", message)
    raise typer.Exit(code=code)


def _settings(config: Path | None, **overrides: Any) -> Settings:
    global _current
    from pipelines.config import load_settings

    _current = load_settings(config, **overrides)  # a ConfigError is summarised by _handled
    return _current


def _warehouse_url() -> str:
    """The command's warehouse URL, password redacted (its Airflow connection's when `warehouse.conn_id`)."""
    from pipelines.config import redact_url

    if _current is None:
        return "(no settings read)"
    url = _current.warehouse_url
    if _current.warehouse.conn_id:
        try:
            from pipelines.warehouse import warehouse_url_of

            url = warehouse_url_of(_current)
        except Exception:  # the connection itself cannot be read: name it instead
            return f"of connection {_current.warehouse.conn_id!r}"
    return redact_url(url)


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        _fail(f"{option} must be a date YYYY-MM-DD, got {value!r}")
        raise  # unreachable


def _days(date: str | None, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
    """(first, last) day of --date or --start/--end."""
    if date and (start or end):
        _fail("give --date, or --start and --end, not both")
    if date:
        start = end = date
    if not (start and end):
        _fail("give --date, or --start and --end")
    first, last = _date(start, "--start" if not date else "--date"), _date(end, "--end" if not date else "--date")  # type: ignore[arg-type]
    if last < first:
        _fail(f"--end {last} is before --start {first}")
    return first, last


# --- errors ---------------------------------------------------------------------------------------------
#: the package's own errors (module, class): their messages already say what is wrong and where
_KNOWN_ERRORS = (
    ("pipelines.errors", "ConfigError"),
    ("pipelines.privacy", "MissingKeyError"),  # KeyMismatchError, WeakKeyError, DemoKeyError too
    ("pipelines.privacy", "OptOutFileError"),
    ("pipelines.runlock", "RunLocked"),
    ("pipelines.sources.file_import_formats", "ImportRejected"),
    ("pipelines.sources.safe_archive", "ArchiveError"),
    ("pipelines.sources.slack_export", "ExportFormatError"),
    ("pipelines.jobs", "BatchRejected"),
    ("pipelines.transform", "TransformError"),
    ("pipelines.duckdb_access", "DuckDBLockTimeout"),
    ("pipelines.rotation", "RotationError"),
    ("pipelines.connectors.errors", "AuthError"),
)


def _is_known(exc: BaseException) -> bool:
    # looked up in sys.modules: an error of a module that was never imported cannot have been raised,
    # and importing the modules here would cost the start-up time the lazy imports save
    for module, name in _KNOWN_ERRORS:
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return True
    return False


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _warehouse_problem(exc: BaseException) -> str | None:
    """The message of a SQLAlchemy error on the warehouse: it cannot be reached, or it has no marts."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is None or not isinstance(exc, sa_exc.DBAPIError):
        return None
    url = _warehouse_url()
    detail = _first_line(exc)
    missing = ("does not exist" in detail and "relation" in detail) or "Table with name" in detail
    if missing:
        return f"the warehouse {url} has no published marts yet: run `esn run` or `esn demo` first ({detail})"
    if exc.statement is None or isinstance(exc, sa_exc.OperationalError):
        # no statement: the connection itself failed (server down, no such database, bad password)
        return f"cannot connect to the warehouse {url}: {detail} (fix warehouse_url or create the database)"
    return None


def _handled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its errors summarised in one short message and exit code 2 (1 for anything unexpected);
    with --debug they are raised as they are."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            if _debug:
                raise
            _say("interrupted", "stopped by the user (a run's lock is released; rerun the same command)")
            raise typer.Exit(code=130) from None
        except Exception as exc:
            if _debug or type(exc).__module__.startswith("click"):
                raise
            warehouse = _warehouse_problem(exc)
            if warehouse is not None:
                _fail(warehouse)
            if _is_known(exc):
                _fail(str(exc))
            _say("error", f"{type(exc).__name__}: {_first_line(exc)} (run with --debug for the traceback)")
            raise typer.Exit(code=1) from None
    return wrapper


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at INFO level")] = False,
         debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an error instead of a "
                                             "one-line message")] = False) -> None:
    global _debug, _current
    _debug, _current = debug, None
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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


#: where `esn demo` writes its lake, warehouse and reports by default (`esn report` finds it there)
DEMO_OUTPUT = Path("output/demo")


def _progress() -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # on a terminal only: in a log or a pipe, a progress line would stand before every message
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=_console(), transient=False, disable=not _console().is_terminal)


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="size of the demo organisation")] = 3000,
    days: Annotated[int, typer.Option(help="days of activity to generate")] = 184,
    start: Annotated[str, typer.Option(help="first day (YYYY-MM-DD)")] = "2026-05-01",
    seed: Annotated[int, typer.Option(help="random seed; the same seed gives the same organisation")] = 7,
    output: Annotated[Path, typer.Option("--output", "-o", help="where the lake and warehouse go")] = DEMO_OUTPUT,
    warehouse_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL (default: DuckDB file in --output)")] = None,
    min_group_size: Annotated[int, typer.Option(help="suppress published aggregates below this many people")] = 5,
    via: Annotated[str, typer.Option(help="'direct' (generator -> raw lake), or platforms separated by commas "
                                          "(slack, bitrix24, mangoapps, uservoice): the same organisation served by each "
                                          "platform's local API emulator and extracted by the real "
                                          "connectors, the HR directory from the generator")] = "direct",
) -> None:
    """Run everything on the demo organisation and print where the outputs are."""
    from pipelines import jobs
    from pipelines.config import SourceConfig
    from pipelines.network_stage import run_network_range

    first = _date(start, "--start")
    interval = jobs.Interval(first, first + dt.timedelta(days=days - 1))
    demo_options = {"people": people, "days": days, "start": first, "seed": seed}
    platforms: tuple[str, ...] = ()
    if via != "direct":
        from pipelines.emulators.demo_served import parse_platforms

        try:
            platforms = parse_platforms(via)
        except ValueError as exc:
            _fail(str(exc))
    sources = [SourceConfig.model_validate({"name": "demo", "kind": "demo", "options": demo_options})]
    settings = _settings(None, lake_dir=output / "lake",
                         warehouse_url=warehouse_url or f"duckdb:///{(output / 'warehouse.duckdb').as_posix()}",
                         sources=sources, privacy={"min_group_size": min_group_size},
                         reports={**DEMO_AUDIENCES, "output_dir": output / "reports"})
    _say("demo", "pseudonymising with the published demo key (fine for a fictitious organisation, never for "
                 f"real data). {people} people, {interval.start} to {interval.end}.", style="yellow")
    if platforms:
        _demo_via_platforms(settings, interval, demo_options, platforms)
        return
    steps = ["extract", "stage", "validate", "land", "publish", "network", "reports"]
    with _progress() as progress:
        task = progress.add_task("demo pipeline", total=len(steps))

        def on_step(step: str, info: dict[str, Any]) -> None:
            progress.update(task, advance=1, description=f"{step} done")

        report = jobs.run(settings, interval, on_step=on_step)
        network = run_network_range(settings, interval.start, interval.end)
        report["network"] = network
        on_step("network", network[-1])
        report["reports"] = _render_demo_reports(settings, interval.end)
        on_step("reports", {})
    _summary(settings, report)


def _demo_via_platforms(settings: Settings, interval: Interval, demo_options: dict[str, Any],
                        platforms: tuple[str, ...]) -> None:
    """The demo through the real extraction path: the HR directory from the generator, the activity from
    the platforms' local API emulators through their connectors (limits scaled to keep it quick)."""
    from pipelines import jobs
    from pipelines.emulators.demo_served import serve
    from pipelines.network_stage import run_network_range
    from pipelines.privacy import DEMO_KEY
    from pipelines.sources.demo_org import build_org

    org = build_org(demo_options["people"], demo_options["days"], demo_options["start"], demo_options["seed"])
    # the organisation is fictitious, so every step of this process may use the published demo key
    os.environ.setdefault(settings.privacy.pseudonym_key_env, DEMO_KEY)
    with serve(org, platforms, interval.end, demo_options) as (sources, urls):
        for platform, url in urls.items():
            _say("demo", f"{platform} API emulator at {url}", style="yellow")
        settings.sources = sources
        with _console().status(f"extracting through the {', '.join(platforms)} API emulator(s)"):
            report = jobs.run(settings, interval, allow_demo_key=True)
    report["network"] = run_network_range(settings, interval.start, interval.end)
    report["reports"] = _render_demo_reports(settings, interval.end)
    _summary(settings, report)


def _render_demo_reports(settings: Settings, as_of: dt.date) -> list[str]:
    from pipelines.reports import render_reports

    return [str(p) for p in render_reports(settings, as_of, settings.reports.output_dir)]


def _network_row(network: list[dict[str, Any]]) -> str:
    last = network[-1]
    return (f"{len(network)} snapshot date(s); last {last['end']}: "
            + (", ".join(f"{k} ({v})" for k, v in last["rows"].items()) or "no activity in its windows"))


def _summary(settings: Settings, report: dict[str, Any]) -> None:
    from rich.table import Table

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
        table.add_row("network tables", _network_row(report["network"]))
    out = _out()
    out.print(table, markup=False)
    out.print(f"lake:       {settings.lake_dir.resolve()}", markup=False, highlight=False)
    out.print(f"warehouse:  {_warehouse_url()}", markup=False, highlight=False)
    docs = next((s["validate"].get("data_docs") for s in report["sources"].values()), None)
    if docs:
        out.print(f"data docs:  {docs}", markup=False, highlight=False)
    for path in report.get("reports", []):
        out.print(f"report:     {path}", markup=False, highlight=False)


@app.command("run")
def run_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    date: Annotated[str | None, typer.Option(help="logical date YYYY-MM-DD")] = None,
    start: Annotated[str | None, typer.Option(help="first logical date of a range")] = None,
    end: Annotated[str | None, typer.Option(help="last logical date of a range")] = None,
    single_batch: Annotated[bool, typer.Option(help="treat the range as one batch instead of one per day")] = False,
    network: Annotated[bool, typer.Option("--network/--no-network", help="after publishing, compute the network "
                                          "tables (the month ends in the range and its last day)")] = True,
) -> None:
    """Run the configured sources for a date or a range of dates, then the network stage."""
    first, last = _days(date, start, end)  # before the imports: a mistyped date is answered at once
    settings = _settings(config)
    from pipelines import jobs

    intervals = ([jobs.Interval(first, last)] if single_batch else
                 [jobs.Interval(d, d) for d in jobs.Interval(first, last).days])
    _reach_warehouse(settings)
    with _progress() as progress:
        task = progress.add_task("days", total=len(intervals) + (1 if network else 0))
        for interval in intervals:
            progress.update(task, description=f"{interval.batch}")
            try:
                report = jobs.run(settings, interval)
            except Exception:
                if len(intervals) > 1:  # which day of the range failed, and where to resume
                    progress.stop()
                    _say("run", f"stopped at {interval.batch} (the days before it are published; resume with "
                                f"--start {interval.start} --end {last})", style="yellow")
                raise
            progress.advance(task)
        if network:
            from pipelines.network_stage import run_network_range

            progress.update(task, description="network")
            report["network"] = run_network_range(settings, first, last)
            progress.advance(task)
    _summary(settings, report)


def _reach_warehouse(settings: Settings) -> None:
    """Connect to the warehouse once before a run extracts anything: a wrong URL, a missing database or a
    bad password is reported at once (`_warehouse_problem`), not after the extraction."""
    from pipelines import warehouse

    engine = warehouse.engine_for(settings)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


@app.command()
def network(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    date: Annotated[str | None, typer.Option(help="the windows ending on this day (YYYY-MM-DD)")] = None,
    start: Annotated[str | None, typer.Option(help="first day of a range")] = None,
    end: Annotated[str | None, typer.Option(help="last day of a range")] = None,
) -> None:
    """Compute and publish the network tables from the published warehouse: the rolling windows ending on
    --date (and its calendar month when it is a month end), or for a range every month end in it and the
    rolling windows ending on --end (what `esn run` does after publishing, and the esn_network DAG)."""
    first, last = _days(date, start, end)
    settings = _settings(config)
    from pipelines.network_stage import run_network_range

    file = _duckdb_file(settings.warehouse_url if not settings.warehouse.conn_id else "")
    if file is not None and not file.exists():
        _fail(f"no warehouse at {file} (warehouse_url): run `esn run` or `esn demo` first, or pass --config FILE")
    with _console().status(f"network stage {first} .. {last}"):
        results = run_network_range(settings, first, last)
    out = _out()
    for r in results:
        out.print(f"{r['end']}: " + (", ".join(f"{k} ({v})" for k, v in r["rows"].items())
                                     or "no activity in its windows") + f" in {r['seconds']} s",
                  markup=False, highlight=False)


def _duckdb_file(url: str) -> Path | None:
    """The file of a DuckDB URL (None for another warehouse or an in-memory one)."""
    if not url.startswith("duckdb:///") or url.startswith("duckdb:///:memory:"):
        return None
    return Path(url.removeprefix("duckdb:///").split("?", 1)[0])


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

    Without --config, $ESN_CONFIG or --warehouse-url, and no warehouse at the default place
    (data/warehouse.duckdb), it reads the one `esn demo` wrote (output/demo/warehouse.duckdb) with the demo's
    audiences. Never creates a warehouse: a DuckDB file that does not exist is an error."""
    from pipelines.config import CONFIG_ENV, Settings

    overrides: dict[str, Any] = {"warehouse_url": warehouse_url}
    default_file = _duckdb_file(Settings.model_fields["warehouse_url"].default)
    demo_file = DEMO_OUTPUT / "warehouse.duckdb"
    if (config is None and not os.environ.get(CONFIG_ENV) and warehouse_url is None and default_file is not None
            and not default_file.exists() and demo_file.exists()):
        overrides["warehouse_url"] = f"duckdb:///{demo_file.as_posix()}"
        demo_audiences = True
        _say("report", f"no warehouse at {default_file} (the default): reading the demo's {demo_file} with the "
                       "demo's audiences (give --config or --warehouse-url for another)", style="yellow")
    if demo_audiences:
        overrides["reports"] = {**DEMO_AUDIENCES, "output_dir": output}
    settings = _settings(config, **overrides)
    from pipelines.warehouse import warehouse_url_of

    url = warehouse_url_of(settings)
    file = _duckdb_file(url)
    if file is not None and not file.exists():
        hint = (f"run `esn demo` (it writes {demo_file}) or `esn run`, or pass --warehouse-url duckdb:///FILE or "
                "--config FILE") if not demo_file.exists() else f"pass --warehouse-url duckdb:///{demo_file}"
        _fail(f"no warehouse at {file} ({'--warehouse-url' if warehouse_url else 'warehouse_url'}): {hint}")
    from pipelines import reports, warehouse

    if as_of is None:
        engine = warehouse.engine_for(settings)
        try:
            latest = warehouse.read_frame(engine, "select max(activity_date) as d from mart_engagement_daily")
        finally:
            engine.dispose()
        if latest.empty or latest.loc[0, "d"] is None:
            _fail(f"nothing published yet in {_warehouse_url()}: run `esn demo` or `esn run` first")
        day = latest.loc[0, "d"]
    else:
        day = _date(as_of, "--as-of")
    if send:
        result = reports.send_reports(settings, day, audiences=audience)
        _out().print_json(json.dumps(result, default=str))
        if result.get("failed"):
            raise typer.Exit(code=1)
        return
    paths = reports.render_reports(settings, day, output, audiences=audience)
    for p in paths:
        _out().print(str(p), markup=False, highlight=False)


@app.command()
def experts(
    topic: Annotated[str, typer.Argument(help="a taxonomy topic (id or name), a tag or #hashtag, or container:<id>")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    warehouse_url: Annotated[str | None, typer.Option(help="override the configured warehouse")] = None,
    limit: Annotated[int, typer.Option(help="how many people to list", min=1, max=1000)] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON rows instead of a table")] = False,
) -> None:
    """Who knows about TOPIC: the people to ask, best first, each with why (answers given on the topic in
    the last year, accepted or reacted to, askers helped, the last answer). Internal and person-level
    (pseudonymous keys with their department), from fct_person_topic_expertise of the last run."""
    from pipelines.expertise import find_experts

    settings = _settings(config, warehouse_url=warehouse_url)
    try:
        found = find_experts(settings, topic, limit=limit)
    except ValueError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a warehouse without the table: say what to run
        if "fct_person_topic_expertise" in str(exc):
            _fail(f"no expertise table in {_warehouse_url()}: run `esn run` (or `esn demo`) first")
        raise
    cols = ["rank", "person_key", "department", "score", "explanation"]
    if as_json:
        _out().print_json(json.dumps({"query": found.query, "topic_ids": found.topic_ids,
                                      "as_of": str(found.as_of) if found.as_of else None,
                                      "people": [{c: r[c] for c in cols} for r in found.rows]}, default=str))
        return
    if not found.rows:
        _say("experts", f"nobody has posted or answered on {', '.join(found.topic_ids)} in the last year",
             style="yellow")
        return
    from rich.table import Table

    table = Table(title=f"who knows about {topic} ({', '.join(found.topic_ids)}), as of {found.as_of}")
    for col in cols:
        table.add_column(col)
    for r in found.rows:
        table.add_row(*(str(r[c]) for c in cols))
    _out().print(table)


@app.command()
def answerers(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (default: $ESN_CONFIG)")] = None,
    warehouse_url: Annotated[str | None, typer.Option(help="override the configured warehouse")] = None,
    at: Annotated[str | None, typer.Option("--at", help="the moment to look from (ISO date or time, UTC); "
                                           "default: the end of the last day in the warehouse")] = None,
    send: Annotated[bool, typer.Option("--send", help="deliver the lists (answer_suggestions.deliver_to), "
                                       "each question once")] = False,
    people_file: Annotated[Path | None, typer.Option(help="CSV with an `email` column (default: "
                                                     "answer_suggestions.people_file)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Who could answer the open questions: for each question nobody but its asker has replied to (after
    answer_suggestions.open_after_hours), the people most likely to answer it, each with why. Person-level
    and internal (pseudonymous keys with their department); `--send` delivers each list to the people
    allowed to see it, with the emails of the people file."""
    from pipelines.answer_suggestions import deliver, suggest

    settings = _settings(config, warehouse_url=warehouse_url)
    try:
        moment = None if at is None else pd_timestamp(at)
        found = suggest(settings, moment)
    except ValueError as exc:
        _fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - a warehouse without the tables: say what to run
        if "stg_activities" in str(exc):
            _fail(f"no activities in {_warehouse_url()}: run `esn run` (or `esn demo`) first")
        raise
    if send:
        try:
            report = deliver(settings, found, people_file=people_file)
        except ValueError as exc:
            _fail(str(exc))
        _say("answerers", f"{report.open_questions} open questions: {report.delivered_questions} delivered in "
             f"{report.messages} messages, {report.already_delivered} delivered before, "
             f"{report.without_recipient} without a recipient; not in the people file: "
             f"{report.unresolved['candidates']} suggested people, {report.unresolved['askers']} askers"
             + (f"; failed: {', '.join(report.failed_recipients)}" if report.failed_recipients else ""),
             style="red" if report.failed_recipients else "green")
        if report.failed_recipients:
            raise typer.Exit(1)
        return
    if as_json:
        _out().print_json(json.dumps([q.as_dict() for q in found], default=str))
        return
    if not found:
        _say("answerers", "no open question", style="green")
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} open questions and who could answer them")
    for col in ("asked", "container", "topics", "rank", "person_key", "department", "why"):
        table.add_column(col)
    for q in found:
        for i, c in enumerate(q.candidates or [None], start=1):
            table.add_row(f"{q.asked_at:%Y-%m-%d %H:%M}" if i == 1 else "", (q.container_id or "") if i == 1 else "",
                          " ".join(q.topics) if i == 1 else "", str(i) if c else "",
                          c.person_key if c else "(nobody yet)", (c.department or "") if c else "",
                          c.why if c else "")
    _out().print(table)


def pd_timestamp(value: str) -> Any:
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except ValueError:
        raise ValueError(f"--at {value!r} is not an ISO date or time") from None
    if len(value) == 10:  # a date: its end
        ts = ts + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    return ts


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
    from pipelines import jobs, transform

    settings = _settings(config, warehouse_url=warehouse_url)
    day = dt.datetime.now(dt.UTC).date()  # the vars only render the SQL shown; no model runs
    index = transform.docs(settings, settings.schemas(), output, jobs.model_params(settings, jobs.Interval(day, day)))
    _out().print(str(index), markup=False, highlight=False)


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
    except ValueError as exc:
        _fail(str(exc))
        return
    _out().print_json(json.dumps(result, default=str))
    if result.get("remaining"):
        _say("erasure incomplete", f"still found in {len(result['remaining'])} place(s)")
        raise typer.Exit(code=1)
    _console().print(f"erased {result['people']} person(s); a scan of the lake, the report archive and every "
                     "warehouse table finds them nowhere", markup=False, highlight=False)


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
    from pipelines.privacy import check_key_length, resolve_key
    from pipelines.rotation import rotate

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
    except OSError as exc:
        _fail(str(exc))
        return
    _out().print_json(json.dumps(result, default=str))
    if result.get("remaining"):
        _say("rotation incomplete", f"old keys still found in {len(result['remaining'])} place(s)")
        raise typer.Exit(code=1)
    _console().print(f"rotated to the key in {new_key_env} (fingerprint {result['to']}). Now set "
                     f"{settings.privacy.pseudonym_key_env} / the Airflow connection "
                     f"'{settings.privacy.pseudonym_key_conn_id}' to it: runs with the old key are refused.",
                     markup=False, highlight=False)


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Argument(help="YAML configuration file")],
    impact_config: Annotated[Path | None, typer.Option(
        help="business-impact YAML (default: $ESN_IMPACT_CONFIG, else the built-in defaults)")] = None,
) -> None:
    """Validate a configuration file and what a run reads besides it: each source's kind and options and the
    files and folders they name, the opt-out file, alert thresholds, business-outcome files, the reports'
    catalogue and names file, and the pseudonymisation key when it is set here (length, demo key, the lake's
    fingerprint; nothing is written). Errors name the bad field; prints the resolved settings, passwords
    redacted."""
    from pipelines.config import redacted
    from pipelines.privacy import check_key, key_origin, resolve_key

    settings = _settings(config)
    warnings = settings.check_runtime(impact_config=impact_config)
    privacy = settings.privacy
    if os.environ.get(privacy.pseudonym_key_env):
        secret = resolve_key(None, env_var=privacy.pseudonym_key_env, conn_id=privacy.pseudonym_key_conn_id)
        for kind in sorted({s.kind for s in settings.sources if s.enabled}):
            check_key(settings.lake_dir, secret, source_kind=kind, record=False,
                      where=key_origin(privacy.pseudonym_key_env, privacy.pseudonym_key_conn_id, explicit=False))
    else:
        warnings.append(f"pseudonymisation key not checked: ${privacy.pseudonym_key_env} is not set here (runs "
                        f"read the Airflow connection '{privacy.pseudonym_key_conn_id}' or that variable)")
    for warning in warnings:
        _say("warning", warning, style="yellow")
    _out().print_json(json.dumps(redacted(settings.model_dump(mode="json"))))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
