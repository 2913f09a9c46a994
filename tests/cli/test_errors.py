"""Every error a user meets ends in a short message naming what to fix, a non-zero exit code and no
traceback (`--debug` shows it); messages keep their brackets (no rich markup); passwords are redacted."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import duckdb
import pytest

from pipelines import runlock
from pipelines.privacy import check_key
from tests.cli.conftest import TEST_KEY, assert_short_error, esn

SMALL = "{people: 60, days: 14, start: 2026-05-01}"
ACTIVITIES = ("event_id,occurred_at,actor_email,verb,container_id,thread_id,parent_id,target_email,"
              "content_length,is_question\n")


def _config(folder: Path, body: str, name: str = "esn.yaml") -> Path:
    path = folder / name
    path.write_text(f"lake_dir: {folder / 'lake'}\nwarehouse_url: duckdb:///{folder / 'wh.duckdb'}\n" + body)
    return path


def test_a_bad_field_keeps_its_brackets(workdir: Path) -> None:
    cfg = _config(workdir, "sources:\n  - {name: Bad-Name, kind: demo}\n")
    err = assert_short_error(esn("check-config", str(cfg), cwd=workdir), "sources.0.name", "^[a-z][a-z0-9_]*$",
                             max_lines=3)
    assert str(cfg) in err


def test_check_config_names_an_unknown_kind_a_misspelled_option_and_missing_paths(workdir: Path) -> None:
    cfg = _config(workdir, f"""sources:
  - {{name: chat, kind: slak}}
  - {{name: demo, kind: demo, options: {{peple: 100}}}}
  - {{name: files, kind: file, options: {{format: csv, path: {workdir / 'nope.csv'}, directory: hr.csv}}}}
  - {{name: export, kind: slack_export, options: {{path: {workdir / 'export.zip'}}}}}
  - {{name: old, kind: file, enabled: false, options: {{format: csv, path: {workdir / 'gone.csv'}}}}}
privacy:
  opt_out_file: {workdir / 'opt-out.txt'}
reports:
  catalogue_path: {workdir / 'catalogue.yaml'}
""")
    err = assert_short_error(esn("check-config", str(cfg), cwd=workdir), max_lines=9)
    lines = err.splitlines()
    assert lines[0] == f"error: invalid configuration in {cfg}:"
    assert "  sources.0.kind: unknown source kind 'slak' (known: ['bitrix24', 'demo', 'file'," in lines[1]
    assert lines[2:] == [
        "  sources.1.options.peple: Extra inputs are not permitted",
        f"  sources.2.options.path: {workdir / 'nope.csv'} does not exist",
        f"  sources.2.options.directory: hr.csv does not exist (relative to the current folder {workdir})",
        f"  sources.3.options.path: {workdir / 'export.zip'} does not exist",
        f"  privacy.opt_out_file: {workdir / 'opt-out.txt'} does not exist",
        f"  reports.catalogue_path: {workdir / 'catalogue.yaml'} does not exist",
    ]  # the disabled source's file is not needed


def test_check_config_prints_the_settings_without_the_password(workdir: Path) -> None:
    cfg = workdir / "pg.yaml"
    cfg.write_text(f"lake_dir: {workdir / 'lake'}\n"
                   "warehouse_url: postgresql+psycopg://esn:s3cret-pw@db.example:5432/esn\n")
    result = esn("check-config", str(cfg), cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["warehouse_url"] == "postgresql+psycopg://esn:***@db.example:5432/esn"


def test_report_in_an_empty_folder_says_what_to_pass_and_creates_nothing(workdir: Path) -> None:
    assert_short_error(esn("report", cwd=workdir), "no warehouse at data/warehouse.duckdb", "esn demo",
                       "--warehouse-url")
    assert list(workdir.iterdir()) == []
    missing = workdir / "elsewhere.duckdb"
    assert_short_error(esn("report", "--warehouse-url", f"duckdb:///{missing}", cwd=workdir),
                       f"no warehouse at {missing} (--warehouse-url)")
    assert not missing.exists()


def test_report_reads_the_demo_warehouse_and_says_it_has_no_marts_yet(workdir: Path) -> None:
    demo = workdir / "output" / "demo"
    demo.mkdir(parents=True)
    duckdb.connect(str(demo / "warehouse.duckdb")).close()  # a warehouse nothing was published to
    err = assert_short_error(esn("report", cwd=workdir), "the warehouse duckdb:///output/demo/warehouse.duckdb "
                             "has no published marts yet: run `esn run` or `esn demo` first")
    assert err.startswith("report: no warehouse at data/warehouse.duckdb (the default): reading the demo's "
                          "output/demo/warehouse.duckdb")
    assert not (workdir / "data").exists()


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(workdir: Path) -> None:
    folder = workdir / "a-folder.yaml"
    folder.mkdir()
    assert_short_error(esn("check-config", str(folder), cwd=workdir), "IsADirectoryError",
                       "(run with --debug for the traceback)", max_lines=1)
    result = esn("--debug", "check-config", str(folder), cwd=workdir)
    assert result.returncode != 0 and "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("IsADirectoryError")


def test_a_bad_date_is_named(workdir: Path) -> None:
    assert_short_error(esn("run", "--date", "2026-13-01", cwd=workdir), "--date must be a date YYYY-MM-DD",
                       "'2026-13-01'")
    assert_short_error(esn("network", "--start", "2026-05-02", "--end", "2026-05-01", cwd=workdir),
                       "--end 2026-05-01 is before --start 2026-05-02")
    assert list(workdir.iterdir()) == []


def test_a_missing_key(workdir: Path) -> None:
    acts = workdir / "acts.csv"
    acts.write_text(ACTIVITIES + "e1,2026-05-01T09:00:00Z,ann@corp.example,post,c1,,,,10,false\n")
    cfg = _config(workdir, f"sources:\n  - {{name: files, kind: file, options: {{format: csv, path: {acts}}}}}\n")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir, ESN_PSEUDONYM_KEY=""),
                       "ESN_PSEUDONYM_KEY", max_lines=3)


def test_a_key_that_is_not_the_lakes(workdir: Path) -> None:
    cfg = _config(workdir, "sources:\n  - {name: chat, kind: slack}\n")
    check_key(workdir / "lake", b"another-key-of-the-lake-0123456789", source_kind="slack")
    assert_short_error(esn("check-config", str(cfg), cwd=workdir), "is not the key the lake", max_lines=3)


def test_a_run_while_another_holds_the_lake(workdir: Path) -> None:
    cfg = _config(workdir, f"sources:\n  - {{name: demo, kind: demo, options: {SMALL}}}\n")
    with runlock.hold(workdir / "lake", "run", interval="2026-05-01_2026-05-01"):
        assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                           "the run lock of the lake", "Wait for that run to finish", max_lines=1)
        # in a range, the day it stopped at and how to resume
        err = assert_short_error(esn("run", "-c", str(cfg), "--start", "2026-05-01", "--end", "2026-05-03",
                                     cwd=workdir), "the run lock of the lake")
        assert err.splitlines()[-2] == ("run: stopped at 2026-05-01_2026-05-01 (the days before it are published; "
                                        "resume with --start 2026-05-01 --end 2026-05-03)")


def test_an_opt_out_file_with_a_bad_line(workdir: Path) -> None:
    opt_out = workdir / "opt-out.txt"
    opt_out.write_text("ada@example.com\nnot an address\n")
    cfg = _config(workdir, f"sources:\n  - {{name: demo, kind: demo, options: {SMALL}}}\n"
                           f"privacy:\n  opt_out_file: {opt_out}\n")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                       "privacy.opt_out_file", str(opt_out), "line 2", max_lines=3)


def test_an_import_file_that_is_rejected(workdir: Path) -> None:
    bad = workdir / "bad.csv"
    bad.write_text("event_id,occurred_at,verb\ne1,2026-05-01T09:00:00Z,post\n")
    cfg = _config(workdir, f"sources:\n  - {{name: files, kind: file, options: {{format: csv, path: {bad}}}}}\n")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                       "missing column(s): actor_id or actor_email", max_lines=4)


def test_an_export_that_is_not_one_and_an_archive_that_is_not_a_zip(workdir: Path) -> None:
    folder = workdir / "export"
    folder.mkdir()
    (folder / "readme.txt").write_text("not an export")
    cfg = _config(workdir, f"sources:\n  - {{name: export, kind: slack_export, options: {{path: {folder}}}}}\n")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir), str(folder),
                       "neither a Slack export", max_lines=3)
    archive = workdir / "export.zip"
    archive.write_bytes(b"PK\x03\x04 this is no zip archive")
    cfg = _config(workdir, f"sources:\n  - {{name: export, kind: slack_export, options: {{path: {archive}}}}}\n",
                  name="zip.yaml")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir), str(archive),
                       max_lines=3)
    assert not zipfile.is_zipfile(archive)


def test_a_batch_rejected_by_its_expectations(workdir: Path) -> None:
    # an HR directory that knows one of the four people acting: most actors are outside it
    acts = workdir / "acts.csv"
    acts.write_text(ACTIVITIES + "".join(f"e{i},2026-05-01T09:0{i}:00Z,p{i % 4}@corp.example,post,c1,,,,10,false\n"
                                         for i in range(8)))
    hr = workdir / "hr.csv"
    hr.write_text("email,department\np0@corp.example,Sales\n")
    cfg = _config(workdir, "sources:\n  - {name: files, kind: file, options: "
                           f"{{format: csv, path: {acts}, directory: {hr}}}}}\n")
    err = assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                             "rejected by", "unknown_actor_share", "nothing was published", max_lines=8)
    assert err.startswith("error: batch 2026-05-01_2026-05-01") or "error: batch" in err


def test_a_warehouse_dbt_cannot_build(workdir: Path) -> None:
    assert_short_error(esn("docs", "--warehouse-url", f"sqlite:///{workdir / 'x.db'}", cwd=workdir),
                       "no dbt profile for a warehouse of URL scheme 'sqlite'", max_lines=3)


def test_a_warehouse_server_that_does_not_answer(workdir: Path) -> None:
    cfg = workdir / "pg.yaml"
    cfg.write_text(f"lake_dir: {workdir / 'lake'}\n"
                   "warehouse_url: postgresql+psycopg://esn:s3cret-pw@127.0.0.1:9/esn?connect_timeout=3\n")
    err = assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                             "cannot connect to the warehouse postgresql+psycopg://esn:***@127.0.0.1:9/esn",
                             "(fix warehouse_url or create the database)")
    assert "s3cret-pw" not in err
    assert not (workdir / "lake").exists()  # refused before anything was extracted


@pytest.mark.postgres
def test_a_warehouse_database_that_does_not_exist(workdir: Path, pg_server: str) -> None:
    url = pg_server.rsplit("/", 1)[0] + "/esn_no_such_database"
    cfg = workdir / "pg.yaml"
    cfg.write_text(f"lake_dir: {workdir / 'lake'}\nwarehouse_url: {url}\n")
    assert_short_error(esn("run", "-c", str(cfg), "--date", "2026-05-01", cwd=workdir),
                       "cannot connect to the warehouse", 'database "esn_no_such_database" does not exist',
                       "(fix warehouse_url or create the database)")
    assert TEST_KEY  # the key was there: the warehouse is what stopped the run
