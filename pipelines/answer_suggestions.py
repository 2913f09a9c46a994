"""Who could answer this open question: a short list of likely answerers for each question left unanswered,
delivered to the people allowed to see it, never published (issue 18).

A question is **open** when it is a question post (not deleted) asked at least `open_after_hours` and at
most `open_within_days` days before the moment of the run, and nobody but its asker has replied to it. For
each, `pipelines.answerers.AnswererModel` ranks candidates from the replies of the last `history_days`
(topic expertise, the container's history, ties with the asker and answers to askers of the same
department), and each suggestion says why in counts ("answered 4 questions in this channel in the last
year, 2 of them on VPN; has answered this person before").

Delivery (`answer_suggestions.deliver_to`): `container_managers` (each container's managers, from
`container_managers`: container id -> emails; containers without managers get nothing), `asker` (the
asker, so that they can ask the people directly), or `none` (the lists are only shown by `esn answerers`).
People are pseudonymous keys in the warehouse: a message can only name people whose email is in
`people_file` (a CSV with an `email` column, typically the HR directory's file), hashed with the
pseudonymisation key as the pipeline keyed them; a suggested person who is not there is left out of the
message, an asker who is not there cannot be written to (counted). Each question is delivered once: the
questions already delivered are recorded (source and event id, the asker's key, the day) in
`<lake>/_state/answer_suggestions.jsonl`, dropped from it when they stop being open, and by an erasure of
the asker (a line-oriented file of the lake: `pipelines.erasure` removes the lines naming the person).

Nothing is written to the warehouse or the lake beyond that record: the lists are person-level.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.answerers import AnswererModel, Weights, questions_and_answers
from pipelines.config import Settings

STATE_FILE = "answer_suggestions.jsonl"


@dataclass
class Candidate:
    person_key: str
    department: str | None
    score: float
    why: str
    email: str | None = None


@dataclass
class OpenQuestion:
    source: str
    question_id: str
    container_id: str | None
    asker_key: str
    asker_department: str | None
    asked_at: pd.Timestamp
    topics: tuple[str, ...]
    hours_open: float
    candidates: list[Candidate] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "question_id": self.question_id, "container_id": self.container_id,
                "asker_key": self.asker_key, "asker_department": self.asker_department,
                "asked_at": self.asked_at.isoformat(), "topics": list(self.topics),
                "hours_open": round(self.hours_open, 1), "recipients": self.recipients,
                "candidates": [c.__dict__ for c in self.candidates]}


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def explain(counts: Mapping[str, float], topic_label: str | None, where: str) -> str:
    """Why a candidate is on the list, from the plain counts of the last `history_days` (no age weights)."""
    parts = []
    answers_here = int(round(counts.get("container", 0)))
    on_topic = int(round(counts.get("topic", 0)))
    if answers_here:
        parts.append(f"answered {_plural(answers_here, 'question')} in {where}"
                     + (f", {on_topic} of them on {topic_label}" if topic_label and on_topic else ""))
    elif topic_label and on_topic:
        parts.append(f"answered {_plural(on_topic, 'question')} on {topic_label} elsewhere")
    if counts.get("asker", 0) > 0:
        parts.append("has talked with this person before")
    if counts.get("similar", 0) > 0 and not parts:
        parts.append(f"answered {_plural(int(round(counts['similar'])), 'question')} of people like this asker")
    if not parts and counts.get("activity", 0) > 0:
        parts.append(f"{_plural(int(round(counts['activity'])), 'reply', 'replies')} in {where}")
    return "; ".join(parts) or "active nearby"


def open_questions(questions: pd.DataFrame, replies: pd.DataFrame, now: pd.Timestamp, *, after_hours: float,
                   within_days: float) -> pd.DataFrame:
    """The questions asked in [now - within_days, now - after_hours] that nobody but the asker replied to
    by `now`."""
    asked = pd.to_datetime(questions["asked_at"], utc=True)
    window = questions[(asked <= now - pd.Timedelta(hours=after_hours)) & (asked >= now - pd.Timedelta(days=within_days))]
    answered = replies[replies["is_answer"] & (pd.to_datetime(replies["answered_at"], utc=True) <= now)]
    done = set(zip(answered["source"], answered["question_id"], strict=True))
    keep = [(s, q) not in done for s, q in zip(window["source"], window["question_id"], strict=True)]
    return window[keep].sort_values(["asked_at", "source", "question_id"], kind="stable").reset_index(drop=True)


def _read(settings: Settings, engine: sa.Engine, since: dt.date, until: dt.date) -> tuple[pd.DataFrame, pd.DataFrame]:
    staging = warehouse.schemas_of(engine).staging
    with engine.connect() as conn:
        acts = warehouse.read_frame(conn, f"""
            select source, event_id, occurred_at, actor_key, verb, container_id, thread_id, parent_id,
                   is_question, is_deleted, topic_ids
            from {staging}.stg_activities
            where verb in ('post', 'reply') and activity_date >= :since and activity_date <= :until""",
            {"since": since, "until": until})
        people = warehouse.read_frame(conn, f"select person_key, department from {staging}.stg_people", {})
    return acts, people


def suggest(settings: Settings, now: dt.datetime | pd.Timestamp | None = None, *, engine: sa.Engine | None = None,
            weights: Weights | None = None) -> list[OpenQuestion]:
    """The open questions as of `now` (default: the end of the last day in the warehouse) with their
    candidates and recipients (emails not resolved: `resolve_emails`)."""
    cfg = settings.answer_suggestions
    own = engine is None
    engine = engine or warehouse.engine_for(settings)
    try:
        if now is None:
            staging = warehouse.schemas_of(engine).staging
            with engine.connect() as conn:
                last = conn.execute(sa.text(f"select max(activity_date) from {staging}.stg_activities")).scalar()
            if last is None:
                return []
            now = pd.Timestamp(pd.Timestamp(last).date(), tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        moment = pd.Timestamp(now)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        since = (moment - pd.Timedelta(days=cfg.history_days)).date()
        acts, people = _read(settings, engine, since, moment.date())
    finally:
        if own:
            engine.dispose()
    if acts.empty:
        return []
    now = moment
    acts = acts[pd.to_datetime(acts["occurred_at"], utc=True) <= now]
    questions, replies = questions_and_answers(acts)
    pending = open_questions(questions, replies, now, after_hours=cfg.open_after_hours, within_days=cfg.open_within_days)
    if pending.empty:
        return []
    departments = dict(zip(people["person_key"], people["department"], strict=True))
    groups = {k: v for k, v in departments.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    weights = weights or Weights()
    model = AnswererModel(replies, now, weights=weights, groups=groups)
    counts = AnswererModel(replies, now, weights=Weights(half_life_days=math.inf), groups=groups)
    names = settings.topics.names()
    out = []
    for q in pending.itertuples(index=False):
        topic_label = " / ".join(names.get(t, "a tag") for t in q.topics) if q.topics else None
        where = f"{q.container_id}" if q.container_id else "this place"
        plain = counts.evidence(q.asker, q.container_id, q.topics, q.asked_at)
        cands = [Candidate(s.person, s.group, s.score, explain(plain.loc[s.person].to_dict() if s.person in plain.index
                                                                else {}, topic_label, where))
                 for s in model.rank(q.asker, q.container_id, q.topics, cfg.suggestions, at=q.asked_at)]
        out.append(OpenQuestion(q.source, q.question_id, q.container_id, q.asker, departments.get(q.asker),
                                pd.Timestamp(q.asked_at), tuple(q.topics),
                                (now - pd.Timestamp(q.asked_at)).total_seconds() / 3600.0, cands,
                                _recipients(settings, q.container_id)))
    return out


def _recipients(settings: Settings, container_id: str | None) -> list[str]:
    cfg = settings.answer_suggestions
    if cfg.deliver_to == "container_managers":
        return list(cfg.container_managers.get(container_id or "", []))
    return []


def people_emails(path: Path, key_of: Callable[[str], str]) -> dict[str, str]:
    """key -> email for the emails of a CSV file with an `email` column."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "email" not in reader.fieldnames:
                raise ValueError(f"{path}: no `email` column (columns: {reader.fieldnames})")
            return {key_of(row["email"]): row["email"].strip().lower() for row in reader if (row.get("email") or "").strip()}
    except OSError as exc:
        raise ValueError(f"cannot read the people file {path}: {exc}") from None


def resolve_emails(found: Sequence[OpenQuestion], emails: Mapping[str, str], deliver_to: str) -> dict[str, int]:
    """Fill in the candidates' emails and, when the asker is the recipient, the asker's; count who could not
    be resolved."""
    missing = {"candidates": 0, "askers": 0}
    for q in found:
        for c in q.candidates:
            c.email = emails.get(c.person_key)
            missing["candidates"] += c.email is None
        if deliver_to == "asker":
            email = emails.get(q.asker_key)
            q.recipients = [email] if email else []
            missing["askers"] += email is None
    return missing


def _state_path(settings: Settings) -> Path:
    return Path(settings.lake_dir) / "_state" / STATE_FILE


def load_delivered(settings: Settings) -> dict[str, dict[str, str]]:
    """The questions delivered before: `source:question_id` -> {asker_key, delivered_on}."""
    path = _state_path(settings)
    if not path.exists():
        return {}
    out: dict[str, dict[str, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["question"])] = {"asker_key": str(row["asker_key"]), "delivered_on": str(row["delivered_on"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}, line {number}: not a record of delivered questions ({exc}); "
                             "move the file away to start afresh") from None
    return out


def save_delivered(settings: Settings, delivered: Mapping[str, Mapping[str, str]]) -> None:
    """One JSON line a question (with its asker's key, so that an erasure drops the person's lines like
    those of any line-oriented file of the lake), replaced atomically."""
    path = _state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps({"question": q, **dict(v)}, sort_keys=True) + "\n"
                           for q, v in sorted(delivered.items())), encoding="utf-8")
    os.replace(tmp, path)


def _qkey(q: OpenQuestion) -> str:
    return f"{q.source}:{q.question_id}"


def render(recipient: str, questions: Sequence[OpenQuestion], names: Mapping[str, str]) -> tuple[str, str, str]:
    """Subject, HTML and plain text of the message to one recipient."""
    n = len(questions)
    subject = f"{_plural(n, 'question')} waiting for an answer: people who could help"
    rows_html, rows_text = [], []
    for q in questions:
        topics = ", ".join(names.get(t, "a tag") for t in q.topics) or "no known topic"
        who = [c for c in q.candidates if c.email]
        items = "".join(f"<li><a href=\"mailto:{html.escape(c.email or '')}\">{html.escape(c.email or '')}</a>"
                        f" ({html.escape(c.department or 'department unknown')}): {html.escape(c.why)}</li>"
                        for c in who) or "<li>nobody with a record of answering like this yet</li>"
        head = (f"Asked in {html.escape(q.container_id or 'a place')} on {q.asked_at:%Y-%m-%d %H:%M} UTC, "
                f"open for {q.hours_open:.0f} h; topics: {html.escape(topics)}")
        rows_html.append(f"<h3 style=\"font-size:15px;margin:16px 0 4px\">{head}</h3><ul>{items}</ul>")
        rows_text.append(f"- {head.replace('&amp;', '&')}\n" + "".join(
            f"    {c.email} ({c.department or 'department unknown'}): {c.why}\n" for c in who))
    intro = ("These questions have had no answer yet. The people below have answered similar questions; "
             "a mention or a message may get the question answered. This list is sent only to you.")
    body = (f"<!doctype html><html><body style=\"font-family:Arial,sans-serif;max-width:640px\">"
            f"<p>{html.escape(intro)}</p>{''.join(rows_html)}</body></html>")
    return subject, body, intro + "\n\n" + "\n".join(rows_text)


@dataclass
class DeliveryReport:
    open_questions: int
    delivered_questions: int
    already_delivered: int
    messages: int
    failed_recipients: list[str]
    unresolved: dict[str, int]
    without_recipient: int


def deliver(settings: Settings, found: Sequence[OpenQuestion], *, people_file: Path | None,
            smtp_conn_id: str | None = "smtp_default", key: bytes | None = None,
            send: Callable[[str, str, str, str], bool] | None = None) -> DeliveryReport:
    """Send each recipient one message with its open questions not delivered before, and record them.
    `send(recipient, subject, html, text) -> delivered` replaces SMTP (tests); by default the reports'
    delivery settings and transport are used."""
    from pipelines.privacy import Pseudonymiser, resolve_key

    cfg = settings.answer_suggestions
    if cfg.deliver_to == "none":
        raise ValueError("answer_suggestions.deliver_to is 'none': nothing is delivered (esn answerers lists them)")
    path = people_file or cfg.people_file
    if path is None:
        raise ValueError("answer_suggestions.people_file is not set: without emails nobody can be named in a "
                         "message (set it to the HR directory's CSV, with an `email` column)")
    pseudo = Pseudonymiser(key or resolve_key(None, env_var=settings.privacy.pseudonym_key_env))
    unresolved = resolve_emails(found, people_emails(Path(path), pseudo.email), cfg.deliver_to)
    delivered = load_delivered(settings)
    current = {_qkey(q) for q in found}
    todo = [q for q in found if _qkey(q) not in delivered]
    by_recipient: dict[str, list[OpenQuestion]] = {}
    for q in todo:
        for r in q.recipients:
            by_recipient.setdefault(r, []).append(q)
    sender = send or _smtp_sender(settings, smtp_conn_id)
    names = settings.topics.names()
    failed: list[str] = []
    sent_questions: set[str] = set()
    for recipient, qs in sorted(by_recipient.items()):
        subject, body, text = render(recipient, qs, names)
        if sender(recipient, subject, body, text):
            sent_questions |= {_qkey(q) for q in qs}
        else:
            failed.append(recipient)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    kept = {k: v for k, v in delivered.items() if k in current}  # no longer open: forgotten
    askers = {_qkey(q): q.asker_key for q in found}
    kept |= {k: {"asker_key": askers[k], "delivered_on": today} for k in sent_questions}
    save_delivered(settings, kept)
    return DeliveryReport(len(found), len(sent_questions), len(found) - len(todo), len(by_recipient) - len(failed),
                          failed, unresolved, sum(1 for q in todo if not q.recipients))


def _smtp_sender(settings: Settings, smtp_conn_id: str | None) -> Callable[[str, str, str, str], bool]:
    from pipelines.reports.deliver import Deliverer, choose_transport
    from pipelines.reports.render import RenderedEmail

    delivery = settings.reports.delivery
    deliverer = Deliverer(choose_transport(delivery, smtp_conn_id), delivery)

    def send(recipient: str, subject: str, body: str, text: str) -> bool:
        email = RenderedEmail("answer_suggestions", subject, body, text, {})
        return all(r.delivered for r in deliverer.send(email, [recipient]))

    return send


def run_daily(settings: Settings, as_of: dt.date, smtp_conn_id: str | None = "smtp_default") -> dict[str, Any]:
    """The daily delivery (`esn_reports`' `send_answer_suggestions` task): the questions open at the end of `as_of`
    to their recipients, each once. Counts only (no person) in the return value; nothing is read when
    `deliver_to` is `none`."""
    cfg = settings.answer_suggestions
    if cfg.deliver_to == "none":
        return {"as_of": as_of.isoformat(), "skipped": "answer_suggestions.deliver_to is none"}
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    report = deliver(settings, suggest(settings, end), people_file=None, smtp_conn_id=smtp_conn_id)
    return {"as_of": as_of.isoformat(), "open_questions": report.open_questions,
            "delivered_questions": report.delivered_questions, "already_delivered": report.already_delivered,
            "messages": report.messages, "failed": len(report.failed_recipients),
            "without_recipient": report.without_recipient, "unresolved": report.unresolved}
