"""`esn rotate-key` moves the lake and the warehouse to a new key: no old key remains anywhere (oracle scan of
every file and table), a Slack + Teams run with the new key still yields one person per email and joins
with the rotated history, erasure by email still works, and a rotation interrupted midway blocks every
run until the same command finishes it."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines import erasure, jobs, lake, rotation, warehouse
from pipelines.cli import app
from pipelines.config import SourceConfig, load_settings
from pipelines.emulators.msgraph import GraphEmulator
from pipelines.emulators.slack import SlackEmulator
from pipelines.network_stage import run_network
from pipelines.privacy import KeyMismatchError, Pseudonymiser, check_key, key_fingerprint
from pipelines.sources.demo_org import build_org
from tests.privacy.test_erasure import _file_source, oracle

OLD, NEW = b"rotation-test-old-key", b"rotation-test-new-key!"
START = dt.date(2026, 3, 2)
A = jobs.Interval(START, START + dt.timedelta(days=6))
B = jobs.Interval(START + dt.timedelta(days=7), START + dt.timedelta(days=9))
PEOPLE, SEED, DAYS = 60, 5, 14
SLACK_TOKEN = "xoxb-rotation"
GRAPH = {"RT_GRAPH_TENANT": "tenant", "RT_GRAPH_CLIENT": "emu-client", "RT_GRAPH_SECRET": "emu-secret"}


def _old_keys(settings: Any) -> set[str]:
    """Every person key of the lake, by the vault (checked against the key columns)."""
    return set(rotation.vault_identities(settings.lake_dir, Pseudonymiser(OLD)))


def _actors(settings: Any, source: str) -> set[str]:
    base = lake.canonical_dir(settings.lake_dir, "activities") / f"source={source}"
    frames = [pq.read_table(f).to_pandas() for f in lake.partition_files(base, lake.partition_days(base))]
    acts = pd.concat(frames, ignore_index=True)
    return set(acts["actor_key"]) | set(acts["target_key"].dropna())


@pytest.fixture(scope="module")
def platforms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """HR directory + Slack + Teams (emulators) run with the old key, rotated, then run with the new key."""
    root = tmp_path_factory.mktemp("rotation")
    mp = pytest.MonkeyPatch()
    mp.setenv("RT_SLACK_TOKEN", SLACK_TOKEN)
    for name, value in GRAPH.items():
        mp.setenv(name, value)
    mp.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    org = build_org(PEOPLE, DAYS, START, SEED, 1.0)
    settings = load_settings(None, lake_dir=root / "lake", warehouse_url=f"duckdb:///{root / 'w.duckdb'}",
                             quality={"volume_drift": "warning"})
    settings = settings.model_copy(update={"reports": settings.reports.model_copy(
        update={"output_dir": root / "reports"})})
    directory = {"people": PEOPLE, "days": DAYS, "start": START, "seed": SEED,
                 "directory_only": True}
    engine = warehouse.make_engine(settings.warehouse_url)
    try:
        with SlackEmulator(org, token=SLACK_TOKEN, period_s=0.02) as s_emu, GraphEmulator(org) as g_emu:
            fast = {"backoff_base_s": 0.01}
            settings.sources = [
                SourceConfig(name="hr", kind="demo", options=directory),
                SourceConfig(name="slack", kind="slack", options={
                    **fast, "base_url": s_emu.url, "token_env": "RT_SLACK_TOKEN", "rate_period_s": 0.02,
                    "auto_join": True, "include_private": True}),
                SourceConfig(name="teams", kind="msgraph", options={
                    **fast, "base_url": g_emu.url, "token_url": g_emu.token_url, "rate_period_s": 0.002,
                    "include_chats": True, "tenant_id_env": "RT_GRAPH_TENANT", "client_id_env": "RT_GRAPH_CLIENT",
                    "client_secret_env": "RT_GRAPH_SECRET"}),
            ]
            for emu in (s_emu, g_emu):
                emu.advance_to(A.end)
            jobs.run(settings, A, engine=engine)
            run_network(settings, A.end, engine=engine)
            old_keys = _old_keys(settings)
            before = {"actors": {s: _actors(settings, s) for s in ("slack", "teams")},
                      "history": warehouse.read_frame(engine, "select count(distinct actor_key) as n from "
                                                              "lake_activities").iloc[0, 0]}
            assert before["actors"]["slack"] and before["actors"]["slack"] <= old_keys
            report = rotation.rotate(settings, OLD, NEW, engine=engine)
            mp.setenv("ESN_PSEUDONYM_KEY", NEW.decode())
            after_rotation = oracle(settings, engine, old_keys)
            for emu in (s_emu, g_emu):
                emu.advance_to(B.end)
            second = jobs.run(settings, B, engine=engine)
            run_network(settings, B.end, engine=engine)
        yield {"settings": settings, "engine": engine, "org": org, "old_keys": old_keys, "report": report,
               "after_rotation": after_rotation, "second": second, "before": before}
    finally:
        engine.dispose()
        mp.undo()


def test_no_old_key_remains_anywhere_after_the_rotation(platforms) -> None:
    report, old_keys = platforms["report"], platforms["old_keys"]
    assert report["mapping"]["people"] >= PEOPLE and report["remaining"] == []
    assert platforms["after_rotation"] == []  # the oracle, before the next run
    assert oracle(platforms["settings"], platforms["engine"], old_keys) == []
    stored = json.loads((platforms["settings"].lake_dir / "_state" / "key_fingerprint.json").read_text())
    assert stored["fingerprint"] == key_fingerprint(NEW)
    assert not (platforms["settings"].lake_dir / rotation.PLAN).exists()


def test_a_slack_and_teams_run_with_the_new_key_still_yields_one_person_per_email(platforms) -> None:
    settings, engine, org = platforms["settings"], platforms["engine"], platforms["org"]
    ps = Pseudonymiser(NEW)
    for name, steps in platforms["second"]["sources"].items():
        assert steps["validate"]["blocking_failures"] == 0, name
    people = warehouse.read_frame(engine, "select person_key from stg_people")
    directory = {ps.email(e) for e in org.people["email"]}
    emailed = people[people["person_key"].isin(directory)]
    assert set(emailed["person_key"]) == directory and emailed["person_key"].is_unique
    # the rotated history and the new days carry the same keys: the platforms' actors are the directory's
    for source in ("slack", "teams"):
        actors = _actors(settings, source)
        assert (actors & directory) and len(actors - directory) <= 1, source  # at most the Slack bot account
    daily = warehouse.read_frame(engine, "select activity_date, person_key, count(*) as n from "
                                         "fct_person_daily_activity group by activity_date, person_key "
                                         "having count(*) > 1")
    assert daily.empty
    mau = warehouse.read_frame(engine, "select mau from mart_engagement_daily where segment_type = 'org' "
                                       "and activity_date = :d", {"d": B.end})
    assert 0 < int(mau["mau"].iloc[0]) <= PEOPLE
    history = warehouse.read_frame(engine, "select count(distinct actor_key) as n from lake_activities "
                                           "where activity_date <= :d and actor_key in :k",
                                   {"d": A.end, "k": tuple(sorted(directory))})
    # the days of the old key, now under the new one: every actor of the first run is a person of the directory
    assert int(history["n"].iloc[0]) == int(platforms["before"]["history"]) > 0


def test_runs_with_the_old_key_are_refused_after_the_rotation(platforms) -> None:
    with pytest.raises(KeyMismatchError):
        check_key(platforms["settings"].lake_dir, OLD, source_kind="slack", record=False)


def _slack_raw(settings: Any) -> pd.DataFrame:
    base = lake.raw_dir(settings.lake_dir, "slack", "messages")
    return pd.concat([pq.read_table(f).to_pandas() for f in lake.partition_files(base, lake.partition_days(base))],
                     ignore_index=True)


def test_erasure_by_email_still_works_after_the_rotation_and_a_replay_keeps_them_out(platforms) -> None:
    settings, engine, org = platforms["settings"], platforms["engine"], platforms["org"]
    ps = Pseudonymiser(NEW)
    raw = _slack_raw(settings)
    # someone who is in every kind of raw Slack column: author, reply parent, mentioned, reacting
    lists = {c: {k for ks in raw[c] for k in ks} for c in ("mention_keys", "reaction_user_keys")}
    candidates = [e for e in org.people["email"] if (k := ps.email(e)) in set(raw["actor_key"])
                  and k in set(raw["parent_actor_key"]) and all(k in v for v in lists.values())]
    assert candidates
    mail = candidates[0]
    key = ps.email(mail)
    assert oracle(settings, engine, {key})
    report = erasure.erase(settings, [mail], NEW, engine=engine)
    assert report["remaining"] == []
    assert oracle(settings, engine, {key, mail, Pseudonymiser(OLD).email(mail)}) == []
    assert report["lake"]["list_elements_removed"] > 0 and report["lake"]["values_nulled"] > 0
    # a replay of the raw lake of every source: staged, validated, landed and published again
    everything = jobs.Interval(A.start, B.end)
    for source in ("hr", "slack", "teams"):
        days = sorted({d for p in (settings.raw_dir / f"source={source}").glob("stream=*")
                       for d in lake.partition_days(p)})
        lake.pending(settings.lake_dir, source, "raw").add(days)
        jobs.stage(settings, source, everything)
        jobs.validate(settings, source, everything, engine=engine)
        jobs.land(settings, source, everything)
    jobs.publish(settings, everything, engine=engine)
    run_network(settings, B.end, engine=engine)
    assert oracle(settings, engine, {key, mail}) == []
    assert warehouse.read_frame(engine, "select count(*) from lake_activities").iloc[0, 0] > 0


# --------------------------------------------------------------------------- interrupted, refused
DEMO = {"people": 60, "days": 14, "start": START, "seed": 3}


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rotation-demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    try:
        settings = _demo_settings(root)
        engine = warehouse.make_engine(settings.warehouse_url)
        jobs.run(settings, jobs.Interval(START, START + dt.timedelta(days=13)), engine=engine)
        run_network(settings, START + dt.timedelta(days=13), engine=engine)
        engine.dispose()
    finally:
        mp.undo()
    return root


def _demo_settings(root: Path) -> Any:
    settings = load_settings(None, lake_dir=root / "lake", warehouse_url=f"duckdb:///{root / 'w.duckdb'}",
                             sources=[SourceConfig(name="demo", kind="demo", options=DEMO)])
    return settings.model_copy(update={"reports": settings.reports.model_copy(update={"output_dir": root / "reports"})})


def _copy(src: Path, dst: Path) -> Any:
    shutil.copytree(src, dst)
    return _demo_settings(dst)


def _tables(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    out = {}
    with engine.connect() as conn:
        for t in warehouse.base_tables(conn):  # every schema: marts, internal, staging, build
            if t.rsplit(".", 1)[-1] in ("dq_validation_results", "dq_source_days", "etl_run_log"):
                continue
            df = warehouse.read_frame(conn, f"select * from {t}")
            out[t] = df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)
    return out


def _lake_values(settings: Any) -> dict[str, list[Any]]:
    return {str(p.relative_to(settings.lake_dir)): sorted(json.dumps(r, default=str) for r in pq.read_table(p).to_pylist())
            for p in sorted(settings.lake_dir.rglob("*.parquet")) if "_state" not in p.parts}


def test_an_interrupted_rotation_blocks_every_run_and_the_same_command_finishes_it(
        demo_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    clean = _copy(demo_lake, tmp_path / "clean")
    rotation.rotate(clean, OLD, NEW)
    crashed = _copy(demo_lake, tmp_path / "crashed")
    old_keys = set(rotation.vault_identities(crashed.lake_dir, Pseudonymiser(OLD)))

    def crash() -> None:
        raise RuntimeError("killed after the lake was rewritten")

    monkeypatch.setattr(rotation, "_after_lake", crash)
    with pytest.raises(RuntimeError, match="killed"):
        rotation.rotate(crashed, OLD, NEW)
    for key in (OLD, NEW):  # half rotated: refused whatever the key, the publication included
        with pytest.raises(KeyMismatchError, match="rotating"):
            check_key(crashed.lake_dir, key, source_kind="demo", record=False)
    with pytest.raises(KeyMismatchError, match="rotating"):
        jobs.publish(crashed, jobs.Interval(START, START + dt.timedelta(days=13)))
    monkeypatch.setattr(rotation, "_after_lake", None)
    with pytest.raises(rotation.RotationError, match="interrupted rotation"):
        rotation.rotate(crashed, OLD, b"a-third-key-entirely")
    # the command again, from the command line, finishes it
    monkeypatch.setenv("RT_NEW_KEY", NEW.decode())
    result = CliRunner().invoke(app, ["rotate-key", "--new-key-env", "RT_NEW_KEY"],
                                env={"ESN_CONFIG": _config(tmp_path / "crashed", crashed)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout[:result.stdout.rindex("}") + 1])["resumed"] is True
    check_key(crashed.lake_dir, NEW, source_kind="demo", record=False)
    engine = warehouse.make_engine(crashed.warehouse_url)
    assert oracle(crashed, engine, old_keys) == []
    clean_engine = warehouse.make_engine(clean.warehouse_url)
    assert _tables(engine).keys() == _tables(clean_engine).keys()
    for name, df in _tables(engine).items():
        pd.testing.assert_frame_equal(df, _tables(clean_engine)[name], obj=name)
    assert _lake_values(crashed) == _lake_values(clean)
    engine.dispose()
    clean_engine.dispose()


def _config(root: Path, settings: Any) -> str:
    path = root / "config.yaml"
    path.write_text(f"lake_dir: {settings.lake_dir}\nwarehouse_url: {settings.warehouse_url}\n"
                    f"sources:\n  - {{name: demo, kind: demo, options: {{people: 60, days: 14, start: {START}, "
                    f"seed: 3}}}}\nreports:\n  output_dir: {root / 'reports'}\n")
    return str(path)


def test_keys_the_vault_does_not_know_refuse_the_rotation_unless_identities_are_given(
        demo_lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _copy(demo_lake, tmp_path / "lake")
    for path in rotation.vault_files(settings.lake_dir):
        if "demo" in path.name:
            path.unlink()  # a lake written before the vault existed
    before = (settings.lake_dir / "_state" / "key_fingerprint.json").read_text()
    with pytest.raises(rotation.RotationError, match="no known identity"):
        rotation.rotate(settings, OLD, NEW)
    assert (settings.lake_dir / "_state" / "key_fingerprint.json").read_text() == before
    org = build_org(DEMO["people"], DEMO["days"], START, DEMO["seed"])
    hr = tmp_path / "hr.txt"
    hr.write_text("\n".join(org.people["email"]) + "\n")
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    report = rotation.rotate(settings, OLD, NEW, identities_file=hr)
    assert report["remaining"] == [] and report["mapping"]["identities_file"] == DEMO["people"]


def test_people_keyed_by_a_native_id_keep_their_key_across_a_rotation(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    settings = _file_source(tmp_path)
    interval = jobs.Interval(dt.date(2026, 3, 2), dt.date(2026, 3, 8))
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, interval, engine=engine)
    old_keys = set(rotation.vault_identities(settings.lake_dir, Pseudonymiser(OLD)))
    assert Pseudonymiser(OLD).native("imp", "E07") in old_keys
    report = rotation.rotate(settings, OLD, NEW, engine=engine)
    assert report["remaining"] == [] and oracle(settings, engine, old_keys) == []
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", NEW.decode())
    jobs.run(settings, interval, engine=engine)  # the file imported again, under the new key
    people = warehouse.read_frame(engine, "select person_key from stg_people")
    actors = warehouse.read_frame(engine, "select distinct actor_key from lake_activities")
    new = {Pseudonymiser(NEW).native("imp", f"E{i:02d}") for i in range(1, 31)}
    assert set(people["person_key"]) == new and set(actors["actor_key"]) <= new
    engine.dispose()


@pytest.mark.postgres
def test_rotation_on_postgresql(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESN_PSEUDONYM_KEY", OLD.decode())
    settings = _demo_settings(tmp_path).model_copy(update={"warehouse_url": pg_url})
    engine = warehouse.make_engine(pg_url)
    jobs.run(settings, jobs.Interval(START, START + dt.timedelta(days=13)), engine=engine)
    run_network(settings, START + dt.timedelta(days=13), engine=engine)
    old_keys = set(rotation.vault_identities(settings.lake_dir, Pseudonymiser(OLD)))
    report = rotation.rotate(settings, OLD, NEW, engine=engine)
    assert report["remaining"] == [] and report["warehouse"]["values"] > 0
    assert oracle(settings, engine, old_keys) == []
    org = build_org(DEMO["people"], DEMO["days"], START, DEMO["seed"])
    people = warehouse.read_frame(engine, "select person_key from stg_people")
    assert set(people["person_key"]) == {Pseudonymiser(NEW).email(e) for e in org.people["email"]}
    engine.dispose()
