"""Who could answer the open questions (pipelines/answer_suggestions.py): which questions are open, who is
suggested and why, and the delivery through a real SMTP server on loopback, each question once, naming only
people of the people file; nothing goes to a mart."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.answer_suggestions import deliver, load_delivered, open_questions, suggest
from pipelines.answerers import questions_and_answers
from pipelines.config import Settings
from pipelines.privacy import Pseudonymiser

KEY = b"answer-suggestions-test-key-0123456789"
P = Pseudonymiser(KEY)
EMAILS = {name: f"{name}@corp.example" for name in ("ann", "bob", "cat", "dan", "eve", "fay")}
K = {name: P.email(e) for name, e in EMAILS.items()}
DEPT = {"ann": "Sales", "bob": "IT", "cat": "IT", "dan": "Sales", "eve": "Finance", "fay": "IT"}
NOW = pd.Timestamp("2026-03-20T23:59:59Z")


def _row(eid: str, when: str, who: str, verb: str, container: str, thread: str, question: bool = False,
         topics: str | None = None, deleted: bool = False) -> dict:
    ts = pd.Timestamp(when, tz="UTC")
    return {"source": "slack", "event_id": eid, "occurred_at": ts, "activity_date": ts.date(), "actor_key": K[who],
            "verb": verb, "container_id": container, "thread_id": thread,
            "parent_id": thread if verb == "reply" else None, "is_question": question, "is_deleted": deleted,
            "topic_ids": topics}


ROWS = [
    # history: bob answers VPN questions in ask-it, cat answers everything a little, eve once on VPN elsewhere
    _row("h1", "2026-02-01 10:00", "ann", "post", "C-ask-it", "h1", True, "tx:vpn"),
    _row("h1a", "2026-02-01 11:00", "bob", "reply", "C-ask-it", "h1"),
    _row("h2", "2026-02-05 10:00", "dan", "post", "C-ask-it", "h2", True, "tx:vpn"),
    _row("h2a", "2026-02-05 10:30", "bob", "reply", "C-ask-it", "h2"),
    _row("h2b", "2026-02-05 12:00", "cat", "reply", "C-ask-it", "h2"),
    _row("h3", "2026-02-10 10:00", "fay", "post", "C-ask-it", "h3", True, "tx:printer"),
    _row("h3a", "2026-02-10 10:30", "cat", "reply", "C-ask-it", "h3"),
    _row("h4", "2026-02-12 10:00", "dan", "post", "C-finance", "h4", True, "tx:vpn"),
    _row("h4a", "2026-02-12 11:00", "eve", "reply", "C-finance", "h4"),
    # open: ann's VPN question of the 18th, nobody replied (ann's own follow-up is no answer)
    _row("o1", "2026-03-18 09:00", "ann", "post", "C-ask-it", "o1", True, "tx:vpn"),
    _row("o1x", "2026-03-18 09:05", "ann", "reply", "C-ask-it", "o1"),
    # not open: answered; too recent (under 24 h); too old (over 14 days); deleted; not a question
    _row("n1", "2026-03-17 09:00", "dan", "post", "C-ask-it", "n1", True, "tx:vpn"),
    _row("n1a", "2026-03-17 10:00", "bob", "reply", "C-ask-it", "n1"),
    _row("n2", "2026-03-20 12:00", "dan", "post", "C-ask-it", "n2", True),
    _row("n3", "2026-03-01 12:00", "dan", "post", "C-ask-it", "n3", True),
    _row("n4", "2026-03-18 12:00", "dan", "post", "C-ask-it", "n4", True, deleted=True),
    _row("n5", "2026-03-18 12:00", "dan", "post", "C-ask-it", "n5", False),
    # open in a container without managers
    _row("o2", "2026-03-19 09:00", "dan", "post", "C-random", "o2", True),
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    s = Settings.model_validate({
        "lake_dir": str(tmp_path / "lake"), "warehouse_url": url,
        "topics": {"taxonomy": [{"id": "vpn", "name": "VPN", "terms": ["vpn"]},
                                {"id": "printer", "name": "Printers", "terms": ["printer"]}]},
        "answer_suggestions": {"deliver_to": "container_managers",
                               "container_managers": {"C-ask-it": ["it-lead@corp.example"]},
                               "suggestions": 3}})
    engine = warehouse.engine_for(s)
    staging = warehouse.schemas_of(engine).staging
    with engine.begin() as conn:
        conn.execute(sa.text(f"create schema if not exists {staging}"))
    acts = pd.DataFrame(ROWS)
    people = pd.DataFrame({"person_key": [K[n] for n in DEPT], "department": list(DEPT.values())})
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.register("acts_df", acts)
        cur.register("people_df", people)
        cur.execute(f"create table {staging}.stg_activities as select * from acts_df")
        cur.execute(f"create table {staging}.stg_people as select * from people_df")
        raw.commit()
    finally:
        raw.close()
    engine.dispose()
    return s


def test_open_questions_are_the_unanswered_ones_in_the_window() -> None:
    questions, replies = questions_and_answers(pd.DataFrame(ROWS))
    found = open_questions(questions, replies, NOW, after_hours=24, within_days=14)
    assert list(found["question_id"]) == ["o1", "o2"]


def test_suggestions_rank_the_topic_answerers_first_and_say_why(settings: Settings) -> None:
    found = suggest(settings)  # as of the end of the last day in the warehouse: NOW
    assert [q.question_id for q in found] == ["o1", "o2"]
    o1 = found[0]
    assert o1.asker_key == K["ann"] and o1.topics == ("tx:vpn",) and o1.hours_open == pytest.approx(63.0, abs=0.01)
    people = [c.person_key for c in o1.candidates]
    # bob: three VPN answers in ask-it (one recent) and ann's helper before; cat: one VPN answer of two there
    assert people[:2] == [K["bob"], K["cat"]] and K["ann"] not in people
    assert o1.candidates[0].why == ("answered 3 questions in C-ask-it, 3 of them on VPN; "
                                    "has talked with this person before")
    assert o1.candidates[0].department == "IT"
    assert o1.recipients == ["it-lead@corp.example"]
    assert found[1].recipients == []  # C-random has no managers
    # as of an earlier moment, o1 is too recent to be open
    assert [q.question_id for q in suggest(settings, pd.Timestamp("2026-03-18T20:00Z"))] == []


def test_delivery_goes_once_to_the_managers_and_names_only_people_of_the_file(
        settings: Settings, smtp_server, tmp_path: Path) -> None:
    controller, handler = smtp_server
    settings = settings.model_copy(update={"reports": settings.reports.model_copy(update={
        "delivery": settings.reports.delivery.model_validate(
            {"transport": "smtp", "max_attempts": 1, "smtp": {"host": "127.0.0.1", "port": controller.port}})})})
    people = tmp_path / "people.csv"
    people.write_text("email,name\n" + "".join(f"{EMAILS[n]},{n}\n" for n in ("ann", "bob", "dan", "eve")),
                      encoding="utf-8")  # cat is not in the file
    found = suggest(settings)
    report = deliver(settings, found, people_file=people, smtp_conn_id=None, key=KEY)
    assert (report.open_questions, report.delivered_questions, report.messages, report.without_recipient) == (2, 1, 1, 1)
    assert report.unresolved["candidates"] >= 1 and report.failed_recipients == []
    assert len(handler.messages) == 1
    _, rcpts, raw = handler.messages[0]
    assert rcpts == ["it-lead@corp.example"]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "bob@corp.example (IT): answered 3 questions in C-ask-it, 3 of them on VPN" in text
    assert "cat@" not in text and K["cat"] not in text and K["bob"] not in text  # no keys in a message
    assert set(load_delivered(settings)) == {"slack:o1"}
    # the next run sends nothing new
    again = deliver(settings, suggest(settings), people_file=people, smtp_conn_id=None, key=KEY)
    assert (again.delivered_questions, again.already_delivered, again.messages) == (0, 1, 0)
    assert len(handler.messages) == 1
    # the record names the asker by key only, so that erasing ann drops her question's line
    from pipelines.erasure import Matcher, erase_lake

    record = Path(settings.lake_dir) / "_state" / "answer_suggestions.jsonl"
    assert K["ann"] in record.read_text() and EMAILS["ann"] not in record.read_text()
    erase_lake(Path(settings.lake_dir), Matcher(keys=[K["ann"]]))
    assert load_delivered(settings) == {} and K["ann"] not in record.read_text()


def test_to_the_asker_and_never_to_a_mart(settings: Settings, tmp_path: Path) -> None:
    settings.answer_suggestions.deliver_to = "asker"
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"{EMAILS[n]}\n" for n in EMAILS if n != "dan"), encoding="utf-8")
    sent: list[tuple[str, str]] = []
    report = deliver(settings, suggest(settings), people_file=people, key=KEY,
                     send=lambda rcpt, subject, html, text: sent.append((rcpt, text)) is None)
    assert [r for r, _ in sent] == ["ann@corp.example"]  # dan (o2) is not in the file: counted, not sent
    assert report.unresolved["askers"] == 1 and report.delivered_questions == 1
    engine = warehouse.engine_for(settings)
    try:
        with engine.connect() as conn:
            tables = {r[0] for r in conn.execute(sa.text("select table_name from information_schema.tables"))}
    finally:
        engine.dispose()
    assert tables == {"stg_activities", "stg_people"}


def test_without_a_people_file_or_recipients_delivery_refuses(settings: Settings) -> None:
    with pytest.raises(ValueError, match="people_file is not set"):
        deliver(settings, suggest(settings), people_file=None, key=KEY)
    settings.answer_suggestions.deliver_to = "none"
    with pytest.raises(ValueError, match="deliver_to is 'none'"):
        deliver(settings, [], people_file=None, key=KEY)


def test_the_daily_task_sends_as_of_the_end_of_the_day_and_says_counts_only(
        settings: Settings, smtp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from pipelines.answer_suggestions import run_daily

    monkeypatch.setenv(settings.privacy.pseudonym_key_env, KEY.decode())
    controller, handler = smtp_server
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"{e}\n" for e in EMAILS.values()), encoding="utf-8")
    off = settings.model_copy(update={"answer_suggestions": settings.answer_suggestions.model_copy(
        update={"deliver_to": "none"})})
    assert run_daily(off, dt.date(2026, 3, 20))["skipped"]
    on = settings.model_copy(update={
        "answer_suggestions": settings.answer_suggestions.model_copy(update={"people_file": people}),
        "reports": settings.reports.model_copy(update={"delivery": settings.reports.delivery.model_validate(
            {"transport": "smtp", "max_attempts": 1, "smtp": {"host": "127.0.0.1", "port": controller.port}})})})
    summary = run_daily(on, dt.date(2026, 3, 18), smtp_conn_id=None)  # o1 asked at 09:00: not yet 24 h
    assert summary["open_questions"] == 0 and not handler.messages
    summary = run_daily(on, dt.date(2026, 3, 20), smtp_conn_id=None)
    assert {k: summary[k] for k in ("open_questions", "delivered_questions", "messages", "failed")} == {
        "open_questions": 2, "delivered_questions": 1, "messages": 1, "failed": 0}
    assert not any(v in str(summary) for v in list(K.values()) + list(EMAILS.values()))
    assert len(handler.messages) == 1
