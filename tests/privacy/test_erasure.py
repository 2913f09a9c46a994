"""`esn erase` really erases: after it, nothing written (lake, quarantine, validation evidence, warehouse with
its network tables and month snapshots, report archive) holds the person's key or email, and neither the
next daily run nor a replay of the raw lake brings them back. Checked with an oracle scan of this file
(every value of every Parquet file as JSON, every other file's bytes and decoded e-mail parts, every row
of every warehouse table), independent of `erasure.scan`."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import erasure, jobs, lake, warehouse
from pipelines.config import Settings, SourceConfig, load_settings
from pipelines.connectors.slack_messages import MESSAGES_SCHEMA, canonical_activities
from pipelines.network_stage import run_network_range
from pipelines.privacy import Pseudonymiser, resolve_key
from pipelines.reports import render_reports
from pipelines.sources.demo_org import build_org

REPO = Path(__file__).resolve().parents[2]
DEMO = {"people": 150, "days": 35, "start": dt.date(2026, 5, 1), "seed": 11}
FIRST = jobs.Interval(dt.date(2026, 5, 1), dt.date(2026, 5, 31))  # a month end: a month snapshot
NEXT = jobs.Interval(dt.date(2026, 6, 1), dt.date(2026, 6, 4))
ERIN = "Erin Erased-Person"


# ------------------------------------------------------------------------------------------- oracle
def _texts(path: Path) -> str:
    if path.suffix == ".parquet":
        return json.dumps(pq.read_table(path).to_pylist(), default=str)
    data = path.read_bytes()
    text = data.decode("latin-1")
    if path.suffix == ".eml":
        msg = email.message_from_bytes(data, policy=email.policy.default)
        for part in msg.walk():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                text += payload.decode("utf-8", errors="replace")
    return text


def _needles_in(text: str, needles: set[str]) -> set[str]:
    low = text.lower()
    if len(needles) <= 20:
        return {n for n in needles if n in low}
    tokens = {run[i:i + 24] for run in re.findall(r"[0-9a-f]{24,}", low) for i in range(len(run) - 23)}
    tokens |= {t.strip(".") for t in re.findall(r"[a-z0-9._%+'-]+@[a-z0-9.-]+", low)}
    return tokens & needles


def oracle(settings: Settings, engine: sa.Engine, needles: set[str]) -> list[str]:
    """Every place (file, warehouse table) holding one of `needles` (keys, emails, names: lower-cased)."""
    needles = {n.lower() for n in needles}
    found = []
    for root in (settings.lake_dir, Path(settings.reports.output_dir)):
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and _needles_in(_texts(path), needles):
                found.append(str(path.relative_to(root.parent)))
    with engine.connect() as conn:
        for table in warehouse.base_tables(conn):  # every schema: marts, internal, staging, build
            rows = conn.execute(sa.text(f"select * from {table}")).fetchall()
            if _needles_in(json.dumps([list(r) for r in rows], default=str), needles):
                found.append(f"warehouse {table}")
    return found


# ----------------------------------------------------------------------------------------- the demo
def _key() -> bytes:
    return resolve_key(None, allow_demo=True)


def _settings(root: Path, names: dict[str, str] | None = None) -> Settings:
    settings = load_settings(None, lake_dir=root / "lake", warehouse_url=f"duckdb:///{root / 'warehouse.duckdb'}",
                             sources=[SourceConfig(name="demo", kind="demo", options=DEMO)],
                             privacy={"allow_named_leaderboards": True})
    names_file = root / "names.yaml"
    if names is not None:
        names_file.write_text("".join(f"{k}: {v}\n" for k, v in names.items()))
    return settings.model_copy(update={"reports": settings.reports.model_copy(
        update={"output_dir": root / "reports", "names_file": names_file})})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A demo month with the network (month snapshot and rolling windows) and the reports, the most
    influential person named in the leaderboard."""
    root = tmp_path_factory.mktemp("erasure-demo")
    settings = _settings(root)
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, FIRST, engine=engine)
    run_network_range(settings, FIRST.start, FIRST.end, engine=engine)
    top = warehouse.read_frame(engine, "select person_key from fct_person_network where window_name = 'rolling_28d' "
                                       "and window_end = :d order by influence_rank limit 3", {"d": FIRST.end})
    keys = list(top["person_key"])
    settings = _settings(root, {keys[0]: ERIN, keys[1]: "Second Person", keys[2]: "Third Person"})
    render_reports(settings, FIRST.end, settings.reports.output_dir, engine=engine)
    engine.dispose()
    ps = Pseudonymiser(_key())
    org = build_org(DEMO["people"], DEMO["days"], DEMO["start"], DEMO["seed"])
    emails = {ps.email(e): e for e in org.people["email"]}
    return {"root": root, "key": keys[0], "email": emails[keys[0]], "emails": emails}


@pytest.fixture
def demo(built: dict[str, Any], tmp_path: Path) -> Any:
    root = tmp_path / "copy"
    shutil.copytree(built["root"], root)
    settings = _settings(root)
    engine = warehouse.make_engine(settings.warehouse_url)
    yield settings, engine, built
    engine.dispose()


def _count(engine: sa.Engine, sql: str, **params: Any) -> int:
    return int(warehouse.read_frame(engine, sql, params).iloc[0, 0])


def test_erasure_by_email_leaves_no_trace_anywhere_and_recomputes_the_network(demo) -> None:
    settings, engine, built = demo
    key, mail = built["key"], built["email"]
    # before: everywhere, network tables and month snapshot included, and named in the reports
    before = oracle(settings, engine, {key})
    for table in ("esn_internal.fct_person_network", "esn_internal.fct_network_ties", "esn_staging.lake_activities",
                  "esn_internal.fct_person_daily_activity"):
        assert f"warehouse {table}" in before
    assert any(p.startswith("lake/raw/") for p in before) and any(p.startswith("lake/canonical/") for p in before)
    assert _count(engine, "select count(*) from fct_person_network where person_key = :k and window_name = 'month'",
                  k=key) == 1
    assert oracle(settings, engine, {ERIN.lower()})  # the leaderboard names them
    mau = _count(engine, "select mau from mart_engagement_daily where segment_type = 'org' and activity_date = :d",
                 d=FIRST.end)

    report = erasure.erase(settings, [mail], _key(), engine=engine)

    assert report["remaining"] == []
    assert oracle(settings, engine, {key, mail, ERIN}) == []
    assert {"month 2026-05-31", "rolling_28d 2026-05-31", "rolling_90d 2026-05-31"} <= set(report["network_windows"])
    assert report["reports_deleted"] and report["names_file_lines_removed"] == 1
    # the aggregates no longer count them, the network windows were recomputed without them
    assert _count(engine, "select mau from mart_engagement_daily where segment_type = 'org' and activity_date = :d",
                  d=FIRST.end) == mau - 1
    for window in ("month", "rolling_28d", "rolling_90d"):
        nodes = _count(engine, "select count(*) from fct_person_network where window_name = :w and window_end = :d",
                       w=window, d=FIRST.end)
        org = warehouse.read_frame(engine, "select * from mart_network_org where window_name = :w and window_end = :d",
                                   {"w": window, "d": FIRST.end})
        assert nodes > 100 and len(org) == 1, window
    # the erasure is recorded, without the identifier
    record = settings.lake_dir / report["record"]
    assert record.exists() and key not in record.read_text() and mail not in record.read_text()
    # the command-line scan agrees
    assert erasure.scan(settings, [key], [mail], engine=engine) == []


def test_the_next_run_and_a_replay_of_the_raw_lake_do_not_bring_them_back(demo) -> None:
    settings, engine, built = demo
    key, mail = built["key"], built["email"]
    erasure.erase(settings, [mail], _key(), engine=engine)

    # the next daily runs: the demo source lands the person again; extraction and staging drop them
    report = jobs.run(settings, NEXT, engine=engine)
    assert report["sources"]["demo"]["extract"]["opted_out_raw_rows"] > 0
    assert oracle(settings, engine, {key, mail}) == []

    # a replay of the whole raw lake (every raw day staged, validated, landed and published again)
    everything = jobs.Interval(FIRST.start, NEXT.end)
    raw_days = lake.partition_days(lake.raw_dir(settings.lake_dir, "demo", "activities"))
    lake.pending(settings.lake_dir, "demo", "raw").add(raw_days)
    jobs.stage(settings, "demo", everything)
    jobs.validate(settings, "demo", everything, engine=engine)
    landed = jobs.land(settings, "demo", everything)
    assert landed["activities"] > 0
    jobs.publish(settings, everything, engine=engine)
    run_network_range(settings, everything.start, everything.end, engine=engine)
    assert oracle(settings, engine, {key, mail}) == []
    assert _count(engine, "select count(*) from lake_activities") > 0


def test_erasure_by_key_finds_the_email_in_the_identity_vault(demo, tmp_path: Path) -> None:
    """`esn erase --from-file` with a person key: the vault gives their email, erased too."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    settings, engine, built = demo
    key, mail = built["key"], built["email"]
    engine.dispose()  # the command opens the DuckDB file itself
    config = tmp_path / "config.yaml"
    config.write_text(f"lake_dir: {settings.lake_dir}\nwarehouse_url: {settings.warehouse_url}\n"
                      f"sources:\n  - {{name: demo, kind: demo, options: {json.dumps(DEMO, default=str)}}}\n"
                      f"reports:\n  output_dir: {settings.reports.output_dir}\n")
    request = tmp_path / "request.txt"
    request.write_text(f"# erasure request 42\n{key}\n")
    result = CliRunner().invoke(app, ["erase", "--from-file", str(request), "--config", str(config)],
                                env={"ESN_PSEUDONYM_KEY": _key().decode()})
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert report["remaining"] == [] and "registered_by_key_only" not in report
    assert oracle(settings, engine, {key, mail}) == []
    # the register holds the identifier, encrypted: the staging keeps them out under this key
    assert erasure.erased_keys(settings.lake_dir, Pseudonymiser(_key())) == {key}


def test_a_second_erasure_of_the_same_person_changes_nothing_more(demo) -> None:
    settings, engine, built = demo
    erasure.erase(settings, [built["email"]], _key(), engine=engine)
    again = erasure.erase(settings, [built["email"].upper()], _key(), engine=engine)
    assert again["register_added"] == 0 and again["lake"]["rows_removed"] == 0 and again["remaining"] == []


def test_after_a_demo_run_no_file_or_table_holds_a_demo_email(demo) -> None:
    settings, engine, built = demo
    assert oracle(settings, engine, set(built["emails"].values())) == []
    assert sorted(p.name for p in (settings.lake_dir / "outcomes").iterdir()) == [
        "demo_case_resolution.parquet", "demo_sales_attainment.parquet"]
    assert _count(engine, "select count(*) from mart_impact_engaged_vs_not where outcome = 'sales_attainment'") > 0


# --------------------------------------------------------------------------------- the scrub rules
def _source_literals() -> set[str]:
    """Every `"..._key"` / `"..._keys"` string literal of the sources and connectors: the raw schemas'
    person columns (pa.field("x_key", ...), {"x_key": ...})."""
    out: set[str] = set()
    for path in [*(REPO / "pipelines" / "sources").glob("*.py"), *(REPO / "pipelines" / "connectors").glob("*.py")]:
        out |= set(re.findall(r"[\"']([a-z_]+_keys?)[\"']", path.read_text()))
    return out


def test_every_key_column_of_every_raw_schema_has_an_erasure_rule() -> None:
    known = erasure.PERSON_KEY_COLUMNS | erasure.NOT_PERSON_COLUMNS
    literals = _source_literals()
    assert {"actor_key", "mention_keys", "reaction_user_keys", "like_keys", "item_actor_key"} <= literals
    assert literals - known == set(), "a raw column holding person keys has no erasure rule"


def _slack_rows(a: str, b: str, c: str) -> pa.Table:
    base = {"thread_ts": None, "is_reply": False, "is_broadcast": False, "kind": "person", "subtype": None,
            "parent_actor_key": None, "content_length": 5, "is_question": False, "is_edited": False,
            "is_deleted": False, "mention_keys": [], "reaction_names": [], "reaction_user_keys": [],
            "reply_count": None, "latest_reply": None}
    rows = [
        {**base, "channel": "C1", "ts": "1700000000.000100", "actor_key": a, "mention_keys": [b, c],
         "reaction_names": ["tada", "tada", "eyes"], "reaction_user_keys": [b, c, b]},
        {**base, "channel": "C1", "ts": "1700000001.000100", "thread_ts": "1700000000.000100", "is_reply": True,
         "actor_key": b, "parent_actor_key": a},
        {**base, "channel": "C1", "ts": "1700000002.000100", "actor_key": c, "mention_keys": [a]},
    ]
    return pa.Table.from_pylist(rows, schema=MESSAGES_SCHEMA)


def test_slack_raw_rows_lose_the_person_in_every_column_and_stay_canonicalisable() -> None:
    a, b, c = "a" * 24, "b" * 24, "c" * 24
    table, stats = erasure.scrub_table(_slack_rows(a, b, c), erasure.Matcher([b]))
    rows = table.to_pylist()
    assert [r["actor_key"] for r in rows] == [a, c]  # b's reply is gone
    assert rows[0]["mention_keys"] == [c]
    assert rows[0]["reaction_names"] == ["tada"] and rows[0]["reaction_user_keys"] == [c]  # parallel lists
    assert stats.rows_removed == 1 and stats.list_elements_removed == 3
    events = canonical_activities(table, "slack")
    assert b not in json.dumps(events, default=str)
    # the author of the parent: their reply pointer is nulled on others' rows, their own rows go
    table, _ = erasure.scrub_table(_slack_rows(a, b, c), erasure.Matcher([a]))
    rows = table.to_pylist()
    assert [r["actor_key"] for r in rows] == [b, c]
    assert rows[0]["parent_actor_key"] is None and rows[1]["mention_keys"] == []


def test_canonical_rows_with_an_id_derived_from_the_key_go_and_free_text_is_edited() -> None:
    k = "d" * 24
    table = pa.table({"event_id": ["C1:1.0", f"C1:1.0:mention:{k}", "C1:2.0"], "actor_key": ["e" * 24] * 3,
                      "target_key": [None, k, k], "unexpected_sample": [None, None, json.dumps([k, "f" * 24])]})
    out, stats = erasure.scrub_table(table, erasure.Matcher([k]))
    assert out.column("event_id").to_pylist() == ["C1:1.0", "C1:2.0"]
    assert out.column("target_key").to_pylist() == [None, None]
    assert out.column("unexpected_sample").to_pylist()[1] == json.dumps(["[erased]", "f" * 24])
    assert stats.rows_removed == 1 and stats.values_nulled == 1 and stats.texts_rewritten == 1


# ----------------------------------------------------------------------- people keyed by a native id
def _file_source(root: Path) -> Settings:
    """A file import whose people have no email: every key is HMAC(key, 'id:imp:<employee id>')."""
    people = [f"E{i:02d}" for i in range(1, 31)]
    depts = ["Ops", "Eng", "Sales"]
    directory = root / "directory.csv"
    directory.write_text("employee_id,department,location,level\n"
                         + "".join(f"{p},{depts[i % 3]},Paris,IC\n" for i, p in enumerate(people)))
    lines = ["event_id,occurred_at,actor_id,verb,container_id,target_id,parent_id"]
    n = 0
    for day in range(7):
        for i, p in enumerate(people):
            n += 1
            lines.append(f"p{n},2026-03-{2 + day:02d}T09:{i:02d}:00Z,{p},post,general,,")
            other = people[(i + day + 1) % len(people)]
            lines.append(f"r{n},2026-03-{2 + day:02d}T10:{i:02d}:00Z,{other},reply,general,{p},p{n}")
            lines.append(f"m{n},2026-03-{2 + day:02d}T11:{i:02d}:00Z,{p},mention,general,{other},")
    (root / "events.csv").write_text("\n".join(lines) + "\n")
    return load_settings(None, lake_dir=root / "lake", warehouse_url=f"duckdb:///{root / 'w.duckdb'}",
                         quality={"volume_drift": "warning"},
                         sources=[SourceConfig(name="imp", kind="file", options={
                             "format": "csv", "path": str(root / "events.csv"), "directory": str(directory)})])


def test_a_person_keyed_by_a_native_id_is_erased_by_key_and_stays_out(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", "native-id-erasure-key")
    settings = _file_source(tmp_path)
    settings = settings.model_copy(update={"reports": settings.reports.model_copy(
        update={"output_dir": tmp_path / "reports"})})
    interval = jobs.Interval(dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, interval, engine=engine)
    key = Pseudonymiser(b"native-id-erasure-key").native("imp", "E07")
    assert oracle(settings, engine, {key})
    report = erasure.erase(settings, [key], b"native-id-erasure-key", engine=engine)
    assert report["remaining"] == [] and "registered_by_key_only" not in report  # the vault knew them
    assert oracle(settings, engine, {key}) == []
    # the file is imported again (the next run): the person stays out, and so does a replay
    jobs.run(settings, interval, engine=engine)
    assert oracle(settings, engine, {key}) == []
    assert _count(engine, "select count(*) from lake_activities") > 0
    engine.dispose()


def test_validation_evidence_quarantine_staging_and_state_lose_the_person(demo) -> None:
    """What a rejected or interrupted batch leaves (GX results and data docs, quarantined batches and
    records, a staged batch, extraction notes) and the quality table: rewritten, still readable."""
    settings, engine, built = demo
    key, mail = built["key"], built["email"]
    lake_dir = settings.lake_dir
    results = lake_dir / "validation" / "results" / "source=demo" / "batch=2026-05-01_2026-05-31" / "r1.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps([{"expectation": "actor_in_directory", "unexpected_sample": [key, "f" * 24]}]))
    docs = lake_dir / "validation" / "source=demo" / "gx" / "uncommitted" / "data_docs" / "local_site" / "x.html"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(f"<table><tr><td>{key}</td><td>{mail}</td></tr></table>")
    canonical_day = next((lake_dir / "canonical" / "activities" / "source=demo").glob("date=*/part-0.parquet"))
    day_table = pq.read_table(canonical_day)
    mine = day_table.filter(pc.equal(day_table.column("actor_key"), key))
    rejected = lake_dir / "quarantine" / "batches" / "source=demo" / "batch=b" / "r1"
    rejected.mkdir(parents=True)
    pq.write_table(pa.concat_tables([day_table, mine]) if mine.num_rows else day_table.append_column(
        "extra", pa.array([key] * day_table.num_rows)), rejected / "activities.parquet")
    (rejected / "REJECTED.txt").write_text(f"actor_key failed: 1 unexpected value(s): ['{key}']\n")
    records = lake_dir / "quarantine" / "records" / "source=demo" / "batch=b"
    records.mkdir(parents=True)
    pq.write_table(pa.table({"event_id": [f"x:{key}", "y"], "actor_key": ["e" * 24, key],
                             "quarantine_reason": ["unknown verb", "missing verb"]}), records / "activities.parquet")
    staged = lake_dir / "staging" / "source=demo" / "batch=2026-06-01_2026-06-01"
    staged.mkdir(parents=True)
    pq.write_table(day_table, staged / "activities.parquet")
    notes = lake_dir / "_state" / "extract" / "source=demo" / "batch=2026-06-01_2026-06-01.json"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text(json.dumps({"outside_interval": {"examples": [f"event {key}"]}}))
    with engine.begin() as conn:
        conn.execute(sa.text("create table if not exists dq_validation_results (run_id varchar, unexpected_sample "
                             "varchar)"))
        conn.execute(sa.text("insert into dq_validation_results (run_id, unexpected_sample) values ('r1', :s)"),
                     {"s": json.dumps([key, "f" * 24])})
    assert len(oracle(settings, engine, {key})) > 8

    report = erasure.erase(settings, [mail], _key(), engine=engine)

    assert report["remaining"] == [] and oracle(settings, engine, {key, mail}) == []
    assert json.loads(results.read_text()) == [{"expectation": "actor_in_directory",
                                                "unexpected_sample": ["[erased]", "f" * 24]}]
    assert "[erased]" in docs.read_text() and json.loads(notes.read_text())
    assert pq.read_table(records / "activities.parquet").column("event_id").to_pylist() == []
    assert pq.read_table(staged / "activities.parquet").num_rows > 0
    left = warehouse.read_frame(engine, "select unexpected_sample from dq_validation_results where run_id = 'r1'")
    assert json.loads(left.iloc[0, 0]) == ["[erased]", "f" * 24]


@pytest.mark.postgres
def test_erasure_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=pg_url,
                             sources=[SourceConfig(name="demo", kind="demo",
                                                   options={**DEMO, "people": 60, "days": 14})])
    settings = settings.model_copy(update={"reports": settings.reports.model_copy(
        update={"output_dir": tmp_path / "reports"})})
    engine = warehouse.make_engine(pg_url)
    interval = jobs.Interval(DEMO["start"], DEMO["start"] + dt.timedelta(days=13))
    jobs.run(settings, interval, engine=engine)
    run_network_range(settings, interval.start, interval.end, engine=engine)
    key = warehouse.read_frame(engine, "select person_key from fct_person_network order by influence_rank "
                                       "limit 1").iloc[0, 0]
    assert oracle(settings, engine, {key})
    report = erasure.erase(settings, [key], _key(), engine=engine)
    assert report["remaining"] == [] and oracle(settings, engine, {key}) == []
    assert report["network_windows"]
    engine.dispose()


def test_the_matcher_finds_keys_and_emails_inside_values_with_few_or_many_needles() -> None:
    keys = [hashlib.sha256(str(i).encode()).hexdigest()[:24] for i in range(200)]
    emails = [f"p{i}@example.com" for i in range(200)]
    for m in (erasure.Matcher(keys[:3], emails[:3]), erasure.Matcher(keys, emails)):  # substring / token paths
        assert m.find(f"C1:1.0:mention:{keys[1]}") == {keys[1]}
        assert m.find(f"deadbeef{keys[2]}cafe") == {keys[2]}  # inside a longer hex run
        assert m.find("To: <P1@Example.COM>, x") == {"p1@example.com"}
        assert m.replace(f'["{keys[0]}", "P2@example.com"]') == '["[erased]", "[erased]"]'
        assert m.find("ff" * 12) == set() and m.exact(keys[0]) and not m.exact(f"x{keys[0]}")


def test_the_key_map_replaces_keys_wherever_they_are() -> None:
    from pipelines.rotation import KeyMap

    old, new = "a" * 24, "b" * 24
    km = KeyMap({old: new})
    assert km.sub(f"C1:1.0:reaction:tada:{old}") == f"C1:1.0:reaction:tada:{new}"
    assert km.sub(f"ff{old}") == f"ff{new}" and km.sub("c" * 24) == "c" * 24
    assert km.values(pa.array([old, "x", None, f"{old}:{old}"])) == {old: new, f"{old}:{old}": f"{new}:{new}"}
