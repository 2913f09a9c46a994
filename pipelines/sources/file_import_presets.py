"""Adapters that turn published network datasets (edge lists, message lists) into parsed activities.

One small function per layout (`snap_edges`, `konect`, `benson_temporal`, `workfrance`, `enron_tsv`,
`chatterjee_xml`); docs/imports.md documents each mapping. The rules shared by all of them:
  - an edge list line (u -> v) is one `mention` from u to v (`edge_verb` can make it a `reply` or `share`);
    the event id is the 1-based line number, so the same file always gives the same ids;
  - a message with recipients is one `post` by the sender plus one `mention` per distinct recipient
    (parent_id = the post), so it counts as one contribution and as one interaction per recipient;
  - a thread (conversation) is a `post` followed by `reply` rows whose parent is the thread's first message;
  - without timestamps every event is dated at `synthetic_date` 00:00 UTC;
  - node ids are platform-native ids (`actor_id`), pseudonymised later by the source module.
Adapters only read and check; like `file_import_formats`, they reject a whole file on the first pass with
every bad line listed, and never write anything. Text files are read line by line in bounded blocks
(`file_import_formats.text_lines`): a line longer than `max_record_bytes` is reported, never held. Message texts are read only to measure their length,
detect questions and mentions; they are never returned.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config import QuestionRules
from pipelines.connectors.slack_messages import prose as slack_prose
from pipelines.sources.file_import_formats import (
    DEFAULT_MAX_RECORD_BYTES,
    PEOPLE_COLUMNS,
    ImportRejected,
    Problem,
    Problems,
    activity_frame,
    csv_feed,
    csv_field_limit,
    text_lines,
)
from pipelines.topics import TopicRules, as_column

#: seconds between 0000-01-00 (MATLAB datenum origin, used by Benson & Kleinberg's files) and 1970-01-01
DATENUM_UNIX_OFFSET_S = 62167305600.0
_INT = re.compile(r"^\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_MENTION = re.compile(r"<@([^>\s][^>]*)>")


@dataclass
class Parsed:
    """What an adapter read: activities and (optional) directory rows, both with clear native ids;
    `lines`: per activity, the 1-based line (or `unit`: row, message) of the main file it comes from."""

    activities: pd.DataFrame
    people: pd.DataFrame | None = None
    details: dict[str, Any] = field(default_factory=dict)
    lines: np.ndarray | None = None
    unit: str = "line"


@dataclass(frozen=True)
class PresetInput:
    path: Path
    departments: Path | None
    recipients: Path | None
    core: Path | None
    synthetic_date: dt.date
    edge_verb: str
    container_id: str | None
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    #: the configured question heuristic (`questions:` of the settings) for presets with message text
    questions: QuestionRules | None = None
    #: the configured topic rules (`topics:` of the settings) for presets with message text; None: no topics
    topics: TopicRules | None = None


# ------------------------------------------------------------------------------------------ helpers
def _lines(path: Path, problems: Problems, comments: tuple[str, ...] = ("#", "%"),
           limit: int = DEFAULT_MAX_RECORD_BYTES) -> Iterator[tuple[int, list[str]]]:
    """(line number, whitespace-split fields) of a text file, skipping blank and comment lines.
    CRLF endings (email-Eu-core's uploader) are tolerated by the split."""
    for i, line in text_lines(path, problems, limit):
        s = line.strip()
        if not s or s.startswith(comments):
            continue
        yield i, s.split()


def _tsv(path: Path, problems: Problems, width: int, limit: int = DEFAULT_MAX_RECORD_BYTES
         ) -> Iterator[tuple[int, list[str]]]:
    """Tab-separated rows of exactly `width` fields (fields may contain spaces: Enron subjects)."""
    # Enron subjects are Latin-1 in places; ids and times are ASCII, which is all we read
    for i, line in text_lines(path, problems, limit, latin1_fallback=True):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if len(fields) != width:
            problems.add(i, f"{len(fields)} tab-separated fields, expected {width}")
            continue
        yield i, fields


def _edges_frame(lines: np.ndarray, src: list[str], dst: list[str], ts: pd.Series, verb: str,
                 container_id: str | None) -> pd.DataFrame:
    return activity_frame(pd.DataFrame({
        "event_id": lines.astype(str), "occurred_at": ts, "actor_id": src, "verb": verb,
        "target_id": dst, "container_id": container_id,
    }))


def _synthetic(n: int, day: dt.date) -> pd.Series:
    return pd.Series(pd.Timestamp(day, tz="UTC"), index=range(n))


def _people(ids: dict[str, dict[str, Any]]) -> pd.DataFrame:
    rows = [{"employee_id": k, **v} for k, v in ids.items()]
    return pd.DataFrame(rows, columns=list(PEOPLE_COLUMNS)).assign(is_leader=False)


def _labels(path: Path, problems: Problems, limit: int) -> dict[str, str]:
    """`NODE LABEL` per line (SNAP department labels)."""
    out: dict[str, str] = {}
    for line, f in _lines(path, problems, limit=limit):
        if len(f) != 2:
            problems.add(line, f"{len(f)} fields, expected 2 (NODE DEPARTMENT)")
            continue
        if f[0] in out:
            problems.add(line, "node listed twice")
            continue
        out[f[0]] = f[1]
    return out


def _reject(*groups: Problems) -> None:
    items: list[Problem] = [p for g in groups for p in g.items]
    if items:
        raise ImportRejected(items)


# -------------------------------------------------------------------------------------- edge lists
def _edge_list(inp: PresetInput, *, max_fields: int, ts_field: int | None, ts_kind: str,
               name: str) -> Parsed:
    """Shared reader of `SRC DST [...]` lines; `ts_field` is the index of the timestamp if any."""
    problems = Problems(str(inp.path))
    lines: list[int] = []
    src: list[str] = []
    dst: list[str] = []
    raw_ts: list[float] = []
    has_ts: bool | None = None
    for line, f in _lines(inp.path, problems, limit=inp.max_record_bytes):
        if not 2 <= len(f) <= max_fields:
            problems.add(line, f"{len(f)} fields, expected 2 to {max_fields} for {name}")
            continue
        this_has_ts = ts_field is not None and len(f) > ts_field
        if has_ts is None:
            has_ts = this_has_ts
        elif this_has_ts != has_ts:
            problems.add(line, "a timestamp is present on some lines and missing on others")
            continue
        if len(f) > 2 and ts_field is not None and ts_field > 2 and not _FLOAT.match(f[2]):
            problems.add(line, f"weight {f[2][:20]!r} is not a number")
            continue
        if this_has_ts:
            assert ts_field is not None
            if not _FLOAT.match(f[ts_field]):
                problems.add(line, f"timestamp {f[ts_field][:30]!r} is not a number")
                continue
            raw_ts.append(float(f[ts_field]))
        lines.append(line)
        src.append(f[0])
        dst.append(f[1])
    if not lines and not problems.items:
        problems.add(None, "no edge lines found")
    extra = Problems(str(inp.departments)) if inp.departments else None
    labels = _labels(inp.departments, extra, inp.max_record_bytes) if inp.departments and extra is not None else {}
    _reject(problems, *([extra] if extra else []))
    if has_ts:
        secs = np.asarray(raw_ts, dtype="float64")
        if ts_kind == "datenum":
            secs = secs - DATENUM_UNIX_OFFSET_S
        ts = pd.Series(pd.to_datetime(np.round(secs * 1e6).astype("int64"), unit="us", utc=True))
    else:
        ts = _synthetic(len(lines), inp.synthetic_date)
    acts = _edges_frame(np.asarray(lines), src, dst, ts, inp.edge_verb, inp.container_id)
    people = None
    if labels:
        nodes = set(src) | set(dst) | set(labels)
        people = _people({n: {"department": labels.get(n)} for n in sorted(nodes)})
    details = {"edge_lines": len(lines), "timestamps": "given" if has_ts else f"synthetic {inp.synthetic_date}"}
    return Parsed(acts, people, details, lines=np.asarray(lines, dtype="int64"))


def snap_edges(inp: PresetInput) -> Parsed:
    """SNAP `SRC DST` or `SRC DST UNIXTS` (CollegeMsg); `#` comment lines; optional `NODE DEPT` labels."""
    return _edge_list(inp, max_fields=3, ts_field=2, ts_kind="unix", name="snap_edges")


def konect(inp: PresetInput) -> Parsed:
    """KONECT `out.*`: `%` header lines, then `SRC DST [WEIGHT [UNIXTS]]`. The weight is checked to be a
    number and otherwise ignored (radoslaw_email: always 1; one line is one e-mail to one recipient)."""
    return _edge_list(inp, max_fields=4, ts_field=3, ts_kind="unix", name="konect")


def benson_temporal(inp: PresetInput) -> Parsed:
    """Benson & Kleinberg `SENDER RECIPIENT TIMESTAMP` with MATLAB-datenum seconds (converted to Unix
    by subtracting 62,167,305,600 s); an optional `core` file (one id a line) marks organisation members,
    who get department "core" while every other node gets "outside"."""
    parsed = _edge_list(inp, max_fields=3, ts_field=2, ts_kind="datenum", name="benson_temporal")
    if inp.core is not None:
        problems = Problems(str(inp.core))
        core = set()
        for line, f in _lines(inp.core, problems, limit=inp.max_record_bytes):
            if len(f) != 1:
                problems.add(line, f"{len(f)} fields, expected one node id")
                continue
            core.add(f[0])
        _reject(problems)
        a = parsed.activities
        nodes = set(a["actor_id"].dropna()) | set(a["target_id"].dropna()) | core
        parsed.people = _people({n: {"department": "core" if n in core else "outside"} for n in sorted(nodes)})
        parsed.details["core_nodes"] = len(core)
    return parsed


def workfrance(inp: PresetInput) -> Parsed:
    """McNulty's workfrance: CSV `from,to,mins` of undirected co-presence edges (no timestamps) and a
    vertices CSV `id,dept`. Each edge gives one `mention` in each direction (co-presence is symmetric);
    the minutes are checked and dropped: the canonical model has no edge weight."""
    problems = Problems(str(inp.path))
    lines: list[int] = []
    src: list[str] = []
    dst: list[str] = []
    for line, rec in _csv(inp.path, problems, ("from", "to", "mins"), inp.max_record_bytes):
        if not (rec["from"] and rec["to"]):
            problems.add(line, "from or to is empty")
            continue
        if not _FLOAT.match(rec["mins"]) or float(rec["mins"]) < 0:
            problems.add(line, f"mins {rec['mins'][:20]!r} is not a non-negative number")
            continue
        lines.append(line)
        src.append(rec["from"])
        dst.append(rec["to"])
    labels: dict[str, str] = {}
    vprob = Problems(str(inp.departments)) if inp.departments else Problems("(no departments file)")
    if inp.departments is not None:
        for line, rec in _csv(inp.departments, vprob, ("id", "dept"), inp.max_record_bytes):
            if rec["id"] in labels:
                vprob.add(line, "vertex listed twice")
                continue
            labels[rec["id"]] = rec["dept"]
    _reject(problems, vprob)
    n = len(lines)
    both_lines = np.concatenate([np.asarray([f"{x}" for x in lines]), np.asarray([f"{x}r" for x in lines])])
    acts = activity_frame(pd.DataFrame({
        "event_id": both_lines, "occurred_at": _synthetic(2 * n, inp.synthetic_date),
        "actor_id": src + dst, "target_id": dst + src, "verb": inp.edge_verb, "container_id": inp.container_id,
    }))
    nodes = set(src) | set(dst) | set(labels)
    people = _people({k: {"department": labels.get(k)} for k in sorted(nodes)}) if labels else None
    return Parsed(acts, people, {"edges": n, "timestamps": f"synthetic {inp.synthetic_date}"},
                  lines=np.concatenate([np.asarray(lines, dtype="int64")] * 2))


def _csv(path: Path, problems: Problems, columns: tuple[str, ...], limit: int) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.reader(csv_feed(text_lines(path, problems, limit, stop_on_long=True)))
    with csv_field_limit(limit):
        header = [h.strip().lower() for h in next(reader, [])]
        if header != list(columns):
            if not problems.items:
                problems.add(1, f"header {header} is not {list(columns)}")
            return
        for row in reader:
            if not row:
                continue
            if len(row) != len(columns):
                problems.add(reader.line_num, f"{len(row)} fields, expected {len(columns)}")
                continue
            yield reader.line_num, dict(zip(columns, (c.strip() for c in row), strict=True))


# -------------------------------------------------------------------------------- message lists
def enron_tsv(inp: PresetInput) -> Parsed:
    """Perry & Wolfe's Enron: `messages.tsv` (id, maildir file, unix time, subject, sender id),
    `recipients.tsv` (message id, index, recipient id), `employees.tsv` (id, name, department,
    long department, title, gender, seniority). A message is a `post` plus one `mention` per distinct
    recipient; the directory keeps department and seniority (as level) only, never names or gender."""
    if inp.recipients is None:
        raise ImportRejected([Problem(str(inp.path), None, "format enron_tsv needs the option recipients")])
    mprob = Problems(str(inp.path))
    messages: dict[str, tuple[int, float, str]] = {}
    for line, f in _tsv(inp.path, mprob, 5, inp.max_record_bytes):
        mid, _, unix, _, sender = f
        if not _INT.match(mid) or not _INT.match(sender.strip()):
            mprob.add(line, "message id and sender id must be integers")
            continue
        if not _FLOAT.match(unix):
            mprob.add(line, f"unix time {unix[:20]!r} is not a number")
            continue
        if mid in messages:
            mprob.add(line, f"message id repeated (first on line {messages[mid][0]})")
            continue
        messages[mid] = (line, float(unix), sender.strip())
    rprob = Problems(str(inp.recipients))
    recipients: dict[tuple[str, str], int] = {}
    duplicates = 0
    for line, f in _tsv(inp.recipients, rprob, 3, inp.max_record_bytes):
        mid, _, rid = (x.strip() for x in f)
        if not _INT.match(mid) or not _INT.match(rid):
            rprob.add(line, "message id and recipient id must be integers")
            continue
        if mid not in messages:
            rprob.add(line, "recipient of a message id that is not in the messages file")
            continue
        if (mid, rid) in recipients:
            duplicates += 1  # the same person in To and Cc is one interaction
            continue
        recipients[(mid, rid)] = line
    eprob = Problems(str(inp.departments)) if inp.departments else Problems("(no employees file)")
    directory: dict[str, dict[str, Any]] = {}
    if inp.departments is not None:
        for line, f in _tsv(inp.departments, eprob, 7, inp.max_record_bytes):
            eid, _name, dept, _long, _title, _gender, seniority = (x.strip() for x in f)
            if not _INT.match(eid):
                eprob.add(line, "employee id must be an integer")
                continue
            directory[eid] = {"department": dept or None, "level": seniority or None}
    _reject(mprob, rprob, eprob)
    mids = list(messages)
    times = {m: pd.Timestamp(messages[m][1], unit="s", tz="UTC") for m in mids}
    posts = pd.DataFrame({"event_id": mids, "occurred_at": [times[m] for m in mids],
                          "actor_id": [messages[m][2] for m in mids], "verb": "post", "thread_id": mids})
    rec_keys = list(recipients)
    mentions = pd.DataFrame({
        "event_id": [f"{m}:to:{r}" for m, r in rec_keys], "occurred_at": [times[m] for m, _ in rec_keys],
        "actor_id": [messages[m][2] for m, _ in rec_keys], "verb": "mention",
        "parent_id": [m for m, _ in rec_keys], "thread_id": [m for m, _ in rec_keys],
        "target_id": [r for _, r in rec_keys]})
    acts = activity_frame(pd.concat([posts, mentions], ignore_index=True).assign(container_id=inp.container_id))
    people = None
    if directory:
        nodes = set(acts["actor_id"].dropna()) | set(acts["target_id"].dropna()) | set(directory)
        people = _people({n: directory.get(n, {}) for n in sorted(nodes)})
    # an event's line is its message's line in messages.tsv, which holds the time
    lines = np.asarray([messages[m][0] for m in mids] + [messages[m][0] for m, _ in rec_keys], dtype="int64")
    return Parsed(acts, people, {"messages": len(messages), "recipients": len(recipients),
                                 "duplicate_recipients_dropped": duplicates}, lines=lines)


def chatterjee_xml(inp: PresetInput) -> Parsed:
    """Chatterjee et al.'s disentangled Slack XML. Per `conversation_id`: the first message (in file
    order) is a `post` opening the thread, the others `reply` to it; each distinct `<@Name>` in a
    text is a `mention` of that user (parent = the message). A thread is a question when its first
    message matches the question rules (`inp.questions`; by default: it contains "?"). A post's and a
    reply's `topic_ids` come from its text's prose (Slack markup: `<...>` references and code blocks
    removed) with `inp.topics`; the text is dropped. Event ids are `<conversation>:<n>` (n-th message
    of the file)."""
    problems = Problems(str(inp.path), unit="message")
    try:
        root = ET.parse(inp.path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise ImportRejected([Problem(str(inp.path), line, f"XML syntax error at column {col}: "
                                      f"{str(exc).split(':')[0]}")]) from None
    channel = (root.findtext("team_domain") or "") + "/" + (root.findtext("channel_name") or "")
    container = inp.container_id or channel
    questions = inp.questions or QuestionRules.model_validate({})
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []  # the message number of each row
    first_of: dict[str, str] = {}
    # ElementTree drops line numbers; the n-th <message> is reported instead
    for n, msg in enumerate(root.iter("message"), start=1):
        conv = msg.get("conversation_id")
        ts = msg.findtext("ts")
        user = (msg.findtext("user") or "").strip()
        text = msg.findtext("text") or ""
        if not conv:
            problems.add(n, "conversation_id is missing")
            continue
        parsed_ts = pd.Timestamp(ts, tz="UTC") if ts and _iso(ts) else None
        if parsed_ts is None:
            problems.add(n, f"ts {str(ts)[:40]!r} is not an ISO-8601 timestamp")
            continue
        if not user:
            problems.add(n, "user is empty")
            continue
        event_id = f"{conv}:{n}"
        root_id = first_of.setdefault(conv, event_id)
        is_root = root_id == event_id
        rows.append({"event_id": event_id, "occurred_at": parsed_ts, "actor_id": user,
                     "verb": "post" if is_root else "reply", "thread_id": root_id,
                     "parent_id": None if is_root else root_id, "content_length": len(text),
                     "is_question": is_root and questions.matches(text), "container_id": container,
                     "topic_ids": as_column(inp.topics.topics(slack_prose(text))) if inp.topics is not None else None})
        numbers.append(n)
        for k, m in enumerate(dict.fromkeys(_MENTION.findall(text)), start=1):
            rows.append({"event_id": f"{event_id}:@{k}", "occurred_at": parsed_ts, "actor_id": user,
                         "verb": "mention", "thread_id": root_id, "parent_id": event_id,
                         "target_id": m.strip(), "container_id": container})
            numbers.append(n)
    _reject(problems)
    acts = activity_frame(rows)
    return Parsed(acts, None, {"messages": int((acts["verb"] != "mention").sum()),
                               "conversations": len(first_of), "container": container},
                  lines=np.asarray(numbers, dtype="int64"), unit="message")


def _iso(value: str) -> bool:
    try:
        pd.Timestamp(value)
    except ValueError:
        return False
    return True


PRESETS: dict[str, Callable[[PresetInput], Parsed]] = {
    "snap_edges": snap_edges,
    "konect": konect,
    "benson_temporal": benson_temporal,
    "workfrance": workfrance,
    "enron_tsv": enron_tsv,
    "chatterjee_xml": chatterjee_xml,
}
