"""Scheduled stakeholder emails and the static organisation report (issue 7).

  render_reports(settings, as_of, out_dir)   write <audience>.eml / <audience>.html and report.html; send nothing
  send_reports(settings, as_of)              render the audiences due on `as_of`, write the same files, send them

Both are plain functions for the CLI and an Airflow task alike: explicit inputs, a small return value.
The audiences come from the `reports` section of the settings (or a separate YAML file until `Settings`
has that field, see `pipelines.reports_config`). Nothing here reads the wall clock for its logic: the
period always ends on the given `as_of`.

This package must never publish a figure about a group smaller than `privacy.min_group_size`, never take
recipients from anywhere but the configuration, and never write to the warehouse.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipelines.config import Settings
from pipelines.reports.content import Report, build_report
from pipelines.reports.render import RenderedEmail, render_email, render_static
from pipelines.reports_config import (
    Audience,
    OnIncomplete,
    ReportsConfig,
    Section,
    load_reports_config,
)
from pipelines.warehouse import with_engine

__all__ = ["render_reports", "send_reports", "ReportsConfig", "load_reports_config", "build_reports"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Built:
    report: Report
    email: RenderedEmail


def _organisation_audience(config: ReportsConfig) -> Audience:
    # never sent: it only frames the static report, so it needs no recipients
    return Audience.model_construct(name="organisation", title=config.organisation_name,
                                    recipients=[], frequency=config.static_report_frequency, scope=None,
                                    sections=list(Section))


def _docs_url(config: ReportsConfig) -> str:
    """The footer's link to the catalogue: the docs site when an absolute URL is configured, else the
    definitions inlined at the end of the email itself."""
    from pipelines.reports.content import is_absolute_url

    url = config.docs_base_url
    return url.split("#")[0] if url and is_absolute_url(url) else "#definitions"


def build_reports(settings: Settings, as_of: dt.date, audiences: Sequence[Audience], config: ReportsConfig,
                  engine: sa.Engine) -> tuple[dict[str, Built], str]:
    """Reports and rendered emails of the audiences, plus the static organisation page, in one read pass."""
    built, static_html, _ = _build_all(settings, as_of, audiences, config, engine)
    return built, static_html


def _build_all(settings: Settings, as_of: dt.date, audiences: Sequence[Audience], config: ReportsConfig,
               engine: sa.Engine) -> tuple[dict[str, Built], str, Report]:
    built: dict[str, Built] = {}
    with engine.connect() as conn:
        for audience in audiences:
            report = build_report(conn, settings, config, audience, as_of)
            built[audience.name] = Built(report, render_email(report, _docs_url(config)))
            if report.missing_from_catalogue:
                log.warning("metrics not in the catalogue (links use derived anchors): %s",
                            report.missing_from_catalogue)
        org = build_report(conn, settings, config, _organisation_audience(config), as_of)
    return built, render_static(org, _docs_url(config)), org


def _write(out_dir: Path, built: dict[str, Built], static_html: str | None, config: ReportsConfig,
           held: Sequence[str] = ()) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    if static_html is not None:
        report_html = out_dir / "report.html"
        _atomic_write(report_html, static_html.encode("utf-8"))
        paths.append(report_html)
    for name, b in built.items():
        if b.report.is_empty:
            continue
        html_path = out_dir / f"{name}.html"
        _atomic_write(html_path, b.email.preview_html().encode("utf-8"))
        paths.append(html_path)
        if name in held:  # no .eml: nothing that looks like a sent email
            continue
        eml = out_dir / f"{name}.eml"
        _atomic_write(eml, b.email.message(config.delivery.sender, list(b.report.audience.recipients),
                                                config.delivery.reply_to).as_bytes())
        paths.append(eml)
    return paths


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _select(config: ReportsConfig, names: Sequence[str] | None) -> list[Audience]:
    if names is None:
        return list(config.audiences)
    return [config.audience(n) for n in names]


@with_engine
def render_reports(settings: Settings, as_of: dt.date, out_dir: Path, audiences: Sequence[str] | None = None, *,
                   config: ReportsConfig | None = None, config_path: Path | None = None,
                   engine: sa.Engine | None = None) -> list[Path]:
    """Write report.html (whole organisation) and, per audience, <name>.eml and <name>.html. Sends nothing.

    Every configured audience is rendered whatever its frequency (a preview); an audience whose report
    has nothing to say gets no files.
    """
    from pipelines.warehouse import engine_for

    config = config or load_reports_config(settings, config_path)
    engine = engine or engine_for(settings)
    built, static_html = build_reports(settings, as_of, _select(config, audiences), config, engine)
    return _write(Path(out_dir), built, static_html, config)


HELD_FILE = "held.json"


def _load_held(config: ReportsConfig) -> dict[str, str]:
    """audience -> the last day of its held period, from `<output_dir>/held.json`."""
    import json

    path = config.output_dir / HELD_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _save_held(config: ReportsConfig, pending: dict[str, str]) -> None:
    import json

    config.output_dir.mkdir(parents=True, exist_ok=True)
    _atomic_write(config.output_dir / HELD_FILE, json.dumps(pending, indent=2, sort_keys=True).encode())


def _retry_held(settings: Settings, as_of: dt.date, config: ReportsConfig, engine: sa.Engine,
                pending: dict[str, str], candidates: set[str]) -> tuple[dict[str, dict[str, str]], dict[str, Built]]:
    """The held emails of earlier periods (`pending`, updated in place): each is built again as of its
    period's last day; sent once its data is complete, or with the banner `hold_max_days` after it; the
    others stay held. An audience due today is not retried (today's email supersedes the held one)."""
    late: dict[str, dict[str, str]] = {}
    send: dict[str, Built] = {}
    for name, day in sorted(pending.items()):
        period_end = dt.date.fromisoformat(day)
        waited = (as_of - period_end).days
        if name not in candidates or waited <= 0:
            continue
        try:
            audience = config.audience(name)
        except Exception:  # noqa: BLE001 - an audience removed from the configuration meanwhile
            pending.pop(name)
            continue
        built, _, _ = _build_all(settings, period_end, [audience], config, engine)
        b = built[name]
        if b.report.data_complete or waited >= config.freshness.hold_max_days:
            status = "sent: data complete now" if b.report.data_complete else \
                f"sent with the banner: still incomplete {waited} day(s) after its period"
            _write(config.output_dir / day, {name: b}, None, config)
            send[name] = b
            pending.pop(name)
        else:
            status = f"still held ({waited} of {config.freshness.hold_max_days} day(s))"
        late[name] = {"period_end": day, "status": status}
        log.warning("held report %s of the period ending %s: %s", name, day, status)
    return late, send


@with_engine
def send_reports(settings: Settings, as_of: dt.date, smtp_conn_id: str = "smtp_default", *,
                 audiences: Sequence[str] | None = None, config: ReportsConfig | None = None,
                 config_path: Path | None = None, engine: sa.Engine | None = None, only_due: bool = True,
                 out_dir: Path | None = None, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Render and send the audiences due on `as_of` (all given ones when only_due is False).

    Returns {"as_of", "transport", "out_dir", "delivered": n, "failed": [...], "results": [...],
    "skipped": {audience: reason}, "held": {audience: why}, "coverage": {audience: {...}}}. A failed
    recipient never stops the others and never raises. An audience whose period the data does not cover
    completely is sent with the "data incomplete" banner, or held when `reports.freshness.on_incomplete`
    (or its own `on_incomplete`) is `hold`: held, it gets its .html preview but no .eml and no email.
    """
    from pipelines.reports.deliver import Deliverer, choose_transport
    from pipelines.warehouse import engine_for

    config = config or load_reports_config(settings, config_path)
    engine = engine or engine_for(settings)
    selected = _select(config, audiences)
    skipped: dict[str, str] = {}
    due = []
    for a in selected:
        if only_due and not config.is_due(a, as_of):
            skipped[a.name] = f"not due ({a.frequency.value}) on {as_of}"
        else:
            due.append(a)
    scheduled = out_dir is None and only_due
    pending = _load_held(config) if scheduled else {}
    late, late_send = _retry_held(settings, as_of, config, engine, pending,
                                  {a.name for a in selected} - {a.name for a in due})
    built, static_html, org = _build_all(settings, as_of, due, config, engine)
    held: dict[str, str] = {}
    to_send = {}
    for name, b in built.items():
        if b.report.is_empty:
            skipped[name] = "nothing to say: no section has data"
        elif not b.report.data_complete and config.on_incomplete(b.report.audience) is OnIncomplete.hold:
            held[name] = (b.report.coverage.headline if b.report.coverage else "no coverage recorded")
            skipped[name] = f"held (reports.freshness.on_incomplete: hold): {held[name]}"
            log.warning("report %s held: %s", name, held[name])
            if scheduled and config.freshness.hold_max_days > 0:
                pending[name] = as_of.isoformat()
        else:
            to_send[name] = b
            pending.pop(name, None)
    target = Path(out_dir) if out_dir else config.output_dir / as_of.isoformat()
    _write(target, built, static_html, config, held=list(held))
    archive: dict[str, str] = {}
    if out_dir is None:  # the scheduled layout <output_dir>/<as_of>/: kept, indexed, its period in the history
        from pipelines.reports.archive import HISTORY_TABLE, archive_run, record_history
        from pipelines.reports_config import is_due

        closed = is_due(config.static_report_frequency, as_of, config.weekly_on)
        archive = {k: str(v) for k, v in archive_run(config.output_dir, target, org, period_closed=closed).items()}
        if closed:  # before any email goes: a failure here fails the run, whose retry sends once
            added = record_history(settings, engine, org)
            archive[HISTORY_TABLE] = f"{added} row(s) added"
    if scheduled:
        _save_held(config, pending)
    sending = list(to_send.values()) + list(late_send.values())
    transport = choose_transport(config.delivery, smtp_conn_id) if sending else None
    results = []
    if transport is not None:
        deliverer = Deliverer(transport, config.delivery, sleep=sleep)
        for b in sending:
            results += [r.as_dict() for r in deliverer.send(b.email, b.report.audience.recipients)]
    failed = [r for r in results if not r["delivered"]]
    for r in failed:
        log.error("report %s not delivered to %s after %d attempt(s): %s %s", r["audience"], r["recipient"],
                  r["attempts"], r.get("code"), r.get("error"))
    return {"as_of": as_of.isoformat(), "transport": transport.name if transport else None,
            "out_dir": str(target), "delivered": sum(r["delivered"] for r in results), "failed": failed,
            "results": results, "skipped": skipped, "held": held, "late": late, "archive": archive,
            "coverage": {name: b.report.coverage.as_dict() for name, b in built.items() if b.report.coverage}}
