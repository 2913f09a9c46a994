"""Opt-out and erasure are honoured everywhere: lake files, warehouse tables and published aggregates."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.erasure import erase
from pipelines.privacy import Pseudonymiser, resolve_key
from tests.conftest import demo_settings
from tests.pipeline.test_end_to_end import FULL

KEY_COLUMNS = ("actor_key", "person_key", "target_key", "manager_key", "source_key")


def _busiest_person(engine) -> tuple[str, int]:
    row = warehouse.read_frame(engine, "select actor_key, count(*) as n from lake_activities "
                                       "group by actor_key order by n desc, actor_key limit 1")
    return row.loc[0, "actor_key"], int(row.loc[0, "n"])


def _email_of(settings, key: str) -> str:
    from pipelines.sources import SourceContext
    from pipelines.sources.demo import org_for

    ctx = SourceContext(settings=settings, source=settings.sources[0], pseudonymiser=Pseudonymiser(_key()))
    ps = ctx.pseudonymiser
    for email in org_for(ctx).people["email"]:
        if ps.email(email) == key:
            return email
    raise AssertionError("key not in the demo directory")


def _key() -> bytes:
    """The key the demo source uses here: the environment's when set (as in CI), else the demo key."""
    return resolve_key(None, allow_demo=True)


def _key_everywhere(settings, engine, key: str) -> list[str]:
    found = []
    for path in settings.lake_dir.rglob("*.parquet"):
        table = pq.read_table(path)
        for col in KEY_COLUMNS:
            if col in table.column_names and key in set(table.column(col).to_pylist()):
                found.append(f"{path.relative_to(settings.lake_dir)}:{col}")
    with engine.connect() as conn:
        columns = conn.execute(sa.text(
            "select table_schema || '.' || table_name, column_name from information_schema.columns "
            "where table_schema in :s").bindparams(sa.bindparam("s", expanding=True)),
            {"s": list(warehouse.schemas_of(conn).all)}).fetchall()
        assert columns, "the warehouse's schemas have no columns: the search looks in the wrong place"
        for table, col in columns:
            if col in KEY_COLUMNS:
                n = conn.execute(sa.text(f"select count(*) from {table} where {col} = :k"), {"k": key}).scalar()
                if n:
                    found.append(f"warehouse {table}.{col}")
    return found


def test_erasure_removes_a_person_everywhere_and_rebuilds_the_aggregates(tmp_path):
    settings = demo_settings(tmp_path)
    engine = warehouse.make_engine(settings.warehouse_url)
    jobs.run(settings, FULL, engine=engine)
    key, _ = _busiest_person(engine)
    mau_before = warehouse.read_frame(engine, "select mau from mart_engagement_daily where segment_type = 'org' "
                                              "and activity_date = :d", {"d": FULL.end}).loc[0, "mau"]
    active = warehouse.read_frame(engine, "select count(*) as n from fct_person_daily_activity where person_key = :k "
                                          "and activity_date > :d", {"k": key, "d": FULL.end - dt.timedelta(days=28)})
    assert _key_everywhere(settings, engine, key)  # the person is there before
    report = erase(settings, [_email_of(settings, key)], _key(), engine=engine)
    assert report["lake"]["files_rewritten"] > 0 and report["warehouse_rows_removed"] > 0
    assert _key_everywhere(settings, engine, key) == []
    mau_after = warehouse.read_frame(engine, "select mau from mart_engagement_daily where segment_type = 'org' "
                                             "and activity_date = :d", {"d": FULL.end}).loc[0, "mau"]
    assert mau_after == mau_before - (1 if active.loc[0, "n"] else 0)
    engine.dispose()


def test_opt_out_list_keeps_new_data_of_the_person_out(tmp_path):
    probe = demo_settings(tmp_path / "probe")
    probe_engine = warehouse.make_engine(probe.warehouse_url)
    jobs.run(probe, FULL, engine=probe_engine)
    key, _ = _busiest_person(probe_engine)
    probe_engine.dispose()

    opt_out = tmp_path / "opt_out.txt"
    opt_out.write_text(f"# people who opted out\n{_email_of(probe, key)}\n")
    settings = demo_settings(tmp_path / "run")
    settings.privacy.opt_out_file = opt_out
    engine = warehouse.make_engine(settings.warehouse_url)
    report = jobs.run(settings, FULL, engine=engine)
    # the extraction drops them from what it lands, the staging from anything older
    assert report["sources"]["demo"]["extract"]["opted_out_raw_rows"] > 0
    assert _key_everywhere(settings, engine, key) == []  # the raw landing included
    engine.dispose()


# ------------------------------------------------------------------------- business outcomes at rest
def _outcome_settings(tmp_path, drop):
    from pipelines.metrics.config import ImpactConfig

    settings = demo_settings(tmp_path)
    return settings, ImpactConfig(outcome_files=[drop] if drop else [])


def _demo_emails(settings) -> list[str]:
    from pipelines.sources import SourceContext
    from pipelines.sources.demo import org_for

    ctx = SourceContext(settings=settings, source=settings.sources[0], pseudonymiser=Pseudonymiser(_key()))
    return list(org_for(ctx).people["email"])


def test_a_dropped_outcome_file_is_pseudonymised_into_the_lake_and_never_copied_in_clear(tmp_path):
    from pipelines.metrics.outcomes import ingest_outcomes, load_outcomes

    drop = tmp_path / "drops" / "sales.csv"
    drop.parent.mkdir()
    settings, cfg = _outcome_settings(tmp_path, drop)
    emails = _demo_emails(settings)[:5]
    drop.write_text("email,period,outcome,value\n" + "".join(f"{e},2026-05,revenue,{i}.5\n" for i, e in enumerate(emails)))
    ps = Pseudonymiser(_key())
    files = ingest_outcomes(settings, list(cfg.outcome_files), ps)
    assert files == [settings.lake_dir / "outcomes" / "sales.parquet"]
    table = pq.read_table(files[0])
    assert table.column_names == ["person_key", "period", "outcome", "value"]
    assert set(table.column("person_key").to_pylist()) == {ps.email(e) for e in emails}
    rows = load_outcomes(files, ps)
    assert sorted(rows["value"]) == [0.5, 1.5, 2.5, 3.5, 4.5] and set(rows["level"]) == {"person"}
    lake_text = b"".join(p.read_bytes() for p in settings.lake_dir.rglob("*") if p.is_file())
    assert not any(e.encode() in lake_text for e in emails)
    # an opted-out person's outcome is left out at ingestion
    opt_out = tmp_path / "opt_out.txt"
    opt_out.write_text(emails[0] + "\n")
    settings.privacy.opt_out_file = opt_out
    table = pq.read_table(ingest_outcomes(settings, list(cfg.outcome_files), ps)[0])
    assert ps.email(emails[0]) not in table.column("person_key").to_pylist() and table.num_rows == 4


def test_a_clear_outcome_file_left_in_the_lake_is_pseudonymised_and_deleted(tmp_path):
    import pytest

    from pipelines.metrics.outcomes import OutcomeFileError, ingest_outcomes

    settings, cfg = _outcome_settings(tmp_path, None)
    emails = _demo_emails(settings)[:3]
    legacy = settings.lake_dir / "outcomes" / "nps.csv"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("email,period,outcome,value\n" + "".join(f"{e},2026-05,nps,{i}\n" for i, e in enumerate(emails)))
    ps = Pseudonymiser(_key())
    assert ingest_outcomes(settings, [], ps) == [settings.lake_dir / "outcomes" / "nps.parquet"]
    assert not legacy.exists()
    # a configured drop inside the lake that holds emails is refused
    inside = settings.lake_dir / "drops" / "sales.csv"
    inside.parent.mkdir()
    inside.write_text(f"email,period,outcome,value\n{emails[0]},2026-05,revenue,1\n")
    with pytest.raises(OutcomeFileError, match="inside the lake"):
        ingest_outcomes(settings, [inside], ps)
