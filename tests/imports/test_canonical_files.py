"""The documented generic formats: canonical activities as CSV / JSONL / Parquet and the HR directory.

Also what must never happen: a clear identifier landed, a malformed file half-loaded.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.sources import file_import
from pipelines.sources.file_import_formats import ImportRejected
from tests.imports.conftest import EVER, KEY, file_ctx, lake_files, landed

HEADER = "event_id,occurred_at,actor_email,verb,container_id,thread_id,parent_id,target_email,content_length,is_question"
ROWS = [
    "e1,2026-03-02T09:00:00Z,ann@corp.example,post,c1,e1,,,120,true",
    "e2,2026-03-02T10:30:00+01:00,bob@corp.example,reply,c1,e1,e1,,40,false",
    "e3,2026-03-03T08:00:00,Carol@Corp.example,mention,c2,,,ann@corp.example,,",
    "e4,1772528400,ann@corp.example,reaction,c1,e1,e2,,,0",
]


def _write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def _records() -> list[dict]:
    cols = HEADER.split(",")
    return [dict(zip(cols, r.split(","), strict=True)) for r in ROWS]


def test_csv_lands_pseudonymised_activities_by_day(tmp_path: Path) -> None:
    ctx = file_ctx(tmp_path, format="csv", path=str(_write_csv(tmp_path / "a.csv", ROWS)))
    report = file_import.extract(ctx, *EVER)
    acts = landed(ctx, "activities")
    assert report.days == [dt.date(2026, 3, 2), dt.date(2026, 3, 3)]
    assert sorted(acts["event_id"]) == ["e1", "e2", "e3", "e4"]
    by = acts.set_index("event_id")
    ps = ctx.pseudonymiser
    # emails are keyed case-insensitively: carol's capitals do not make a second person
    assert by.loc["e3", "actor_key"] == ps.email("carol@corp.example")
    assert by.loc["e3", "target_key"] == ps.email("ann@corp.example")
    assert by.loc["e2", "occurred_at"] == pd.Timestamp("2026-03-02T09:30:00Z")  # +01:00 converted to UTC
    assert by.loc["e3", "occurred_at"] == pd.Timestamp("2026-03-03T08:00:00Z")  # naive is UTC
    assert by.loc["e4", "occurred_at"] == pd.Timestamp(1772528400, unit="s", tz="UTC")  # Unix seconds
    assert bool(by.loc["e1", "is_question"]) and not bool(by.loc["e2", "is_question"])
    assert by.loc["e1", "content_length"] == 120 and pd.isna(by.loc["e3", "content_length"])
    for f in lake_files(ctx):
        if f.suffix != ".parquet":  # the lake's own bookkeeping (journals, locks)
            assert "corp.example" not in f.read_bytes().decode("utf-8", "replace").lower(), f
            continue
        for column in pq.read_table(f).to_pylist():
            for value in column.values():
                assert "corp.example" not in str(value).lower(), f"a clear identifier reached {f}"
    people = landed(ctx, "people")
    assert set(people["person_key"]) == {ps.email(e) for e in ("ann@corp.example", "bob@corp.example",
                                                                "carol@corp.example")}
    containers = landed(ctx, "containers")
    assert sorted(containers["container_id"]) == ["c1", "c2"]


def test_jsonl_and_parquet_give_the_same_landing_as_csv(tmp_path: Path) -> None:
    recs = _records()
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "a.parquet")
    _write_csv(tmp_path / "a.csv", ROWS)
    out = {}
    for name in ("a.csv", "a.jsonl", "a.parquet"):
        ctx = file_ctx(tmp_path / name.replace(".", "_"), format="canonical", path=str(tmp_path / name))
        file_import.extract(ctx, *EVER)
        out[name] = landed(ctx, "activities").sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(out["a.csv"], out["a.jsonl"])
    pd.testing.assert_frame_equal(out["a.csv"], out["a.parquet"])


def test_native_ids_are_keyed_by_the_directory_email_so_platforms_match(tmp_path: Path) -> None:
    acts = tmp_path / "acts.csv"
    acts.write_text("event_id,occurred_at,actor_id,verb,target_id\n"
                    "x1,2026-03-02T09:00:00Z,E1,mention,E2\n"
                    "x2,2026-03-02T09:05:00Z,E3,post,\n")
    hr = tmp_path / "hr.csv"
    hr.write_text("\ufeffEmployee ID,Email,Department,Location,Level,Manager,Hire Date\n"
                  "E1,ann@corp.example,Sales,Paris,Senior,E2,2020-01-01\n"
                  "E2,bob@corp.example,Sales,Paris,Director,,2019-05-01\n")
    ctx = file_ctx(tmp_path, format="csv", path=str(acts), directory=str(hr))
    report = file_import.extract(ctx, *EVER)
    landed_acts = landed(ctx, "activities").set_index("event_id")
    ps = ctx.pseudonymiser
    assert landed_acts.loc["x1", "actor_key"] == ps.email("ann@corp.example")
    assert landed_acts.loc["x1", "target_key"] == ps.email("bob@corp.example")
    # E3 is not in the directory: keyed by its native id in the source's namespace, given a bare row
    assert landed_acts.loc["x2", "actor_key"] == ps.native("imp", "E3")
    people = landed(ctx, "people").set_index("person_key")
    ann = people.loc[ps.email("ann@corp.example")]
    assert (ann["department"], ann["location"], ann["level"]) == ("Sales", "Paris", "Senior")
    assert ann["manager_key"] == ps.email("bob@corp.example")
    assert ann["hire_date"] == dt.date(2020, 1, 1)
    assert pd.isna(people.loc[ps.native("imp", "E3"), "department"])
    assert report.details["participants_without_directory_row"] == 1


def test_directory_history_gives_the_snapshot_in_force_at_the_end_of_the_run(tmp_path: Path) -> None:
    acts = _write_csv(tmp_path / "a.csv", ROWS[:1])
    hr = tmp_path / "hr.csv"
    hr.write_text("email,department,level,effective_date\n"
                  "ann@corp.example,Sales,Associate,2025-01-01\n"
                  "ann@corp.example,Marketing,Senior,2026-02-01\n"
                  "ann@corp.example,Product,Manager,2026-06-01\n"
                  "dan@corp.example,Legal,Senior,2026-05-01\n")
    ctx = file_ctx(tmp_path, format="csv", path=str(acts), directory=str(hr))
    file_import.extract(ctx, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    people = landed(ctx, "people").set_index("person_key")
    ps = ctx.pseudonymiser
    assert people.loc[ps.email("ann@corp.example"), "department"] == "Marketing"
    assert ps.email("dan@corp.example") not in people.index  # not hired yet on 2026-03-31


def test_rerun_of_an_interval_replaces_exactly_its_days(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "a.csv", ROWS)
    file_import.extract(file_ctx(tmp_path, format="csv", path=str(path)), *EVER)
    _write_csv(path, [ROWS[2]])  # the file now has only e3 (2026-03-03)
    # emptying 2026-03-02 is only allowed when the import says it replaces its days (tests/badinput)
    ctx = file_ctx(tmp_path, format="csv", path=str(path), replace_days=True)
    report = file_import.extract(ctx, dt.date(2026, 3, 2), dt.date(2026, 3, 3))
    assert report.details["events_in_interval"] == 1
    assert sorted(landed(ctx, "activities")["event_id"]) == ["e3"]
    canon = file_import.canonicalise(ctx, dt.date(2026, 3, 3))
    assert list(canon["activities"]["event_id"]) == ["e3"]


def test_events_outside_the_interval_are_counted_not_landed(tmp_path: Path) -> None:
    ctx = file_ctx(tmp_path, format="csv", path=str(_write_csv(tmp_path / "a.csv", ROWS)))
    report = file_import.extract(ctx, dt.date(2026, 3, 3), dt.date(2026, 3, 3))
    assert report.details["events_in_interval"] == 2 and report.details["events_outside_interval"] == 2


# ------------------------------------------------------------------------------------ rejections
BAD_CASES = [
    ("bad timestamp", ROWS[:2] + ["e3,yesterday,ann@corp.example,post,c1,,,,,"], 4,
     "occurred_at 'yesterday' is not an ISO-8601 timestamp or a Unix time (number)"),
    ("unknown verb", ROWS[:1] + ["e2,2026-03-02T09:00:00Z,ann@corp.example,like,c1,,,,,"], 3,
     "verb 'like' is not one of"),
    ("duplicate id", ROWS[:2] + ["e1,2026-03-02T09:00:00Z,ann@corp.example,post,c1,,,,,"], 4,
     "duplicate event_id (first on line 2)"),
    ("no actor", ROWS[:1] + ["e2,2026-03-02T09:00:00Z,,post,c1,,,,,"], 3, "actor_id and actor_email are both empty"),
    ("short row", ROWS[:3] + ["e9,2026-03-02T09:00:00Z,ann@corp.example,post"], 5, "4 fields where the header has 10"),
    ("negative length", ROWS[:1] + ["e2,2026-03-02T09:00:00Z,ann@corp.example,post,c1,,,,-3,"], 3,
     "content_length '-3' is not a non-negative integer"),
    ("bad boolean", ROWS[:1] + ["e2,2026-03-02T09:00:00Z,ann@corp.example,post,c1,,,,,maybe"], 3,
     "is_question 'maybe' is not a boolean"),
    ("not an email", ROWS[:1] + ["e2,2026-03-02T09:00:00Z,ann,post,c1,,,,,"], 3, "actor_email is not an email"),
]


@pytest.mark.parametrize(("case", "rows", "line", "reason"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_malformed_csv_is_rejected_with_line_and_reason_and_nothing_lands(
        tmp_path: Path, case: str, rows: list[str], line: int, reason: str) -> None:
    path = _write_csv(tmp_path / "bad.csv", rows)
    ctx = file_ctx(tmp_path, format="csv", path=str(path))
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, *EVER)
    assert f"{path}:line {line}: {reason}" in str(err.value)
    assert "nothing was loaded" in str(err.value)
    assert lake_files(ctx) == []


def test_missing_required_column_is_rejected_on_the_header(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "bad.csv", ["e1,2026-03-02T09:00:00Z,post"], header="event_id,occurred_at,verb")
    with pytest.raises(ImportRejected, match=r"line 2: missing column\(s\): actor_id or actor_email"):
        file_import.extract(file_ctx(tmp_path, format="csv", path=str(path)), *EVER)


def test_every_bad_line_is_listed_not_only_the_first(tmp_path: Path) -> None:
    rows = ROWS + [f"z{i},never,ann@corp.example,post,c1,,,,," for i in range(30)]
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(ImportRejected) as err:
        file_import.extract(file_ctx(tmp_path, format="csv", path=str(path)), *EVER)
    assert len(err.value.problems) == 30
    assert [p.line for p in err.value.problems[:2]] == [6, 7]
    assert "and 10 more" in str(err.value)


def test_malformed_jsonl_line_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(_records()[0]) + "\n" + '{"event_id": "e2", "occurred_at": \n')
    with pytest.raises(ImportRejected, match=r"bad.jsonl:line 2: not valid JSON"):
        file_import.extract(file_ctx(tmp_path, format="jsonl", path=str(path)), *EVER)


def test_bad_parquet_row_is_reported_by_row_number(tmp_path: Path) -> None:
    recs = _records()
    recs[2]["verb"] = "VIEWED"
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "bad.parquet")
    with pytest.raises(ImportRejected, match=r"bad.parquet:row 3: verb 'viewed' is not one of"):
        file_import.extract(file_ctx(tmp_path, format="parquet", path=str(tmp_path / "bad.parquet")), *EVER)


def test_a_bad_directory_rejects_the_whole_import_even_with_good_activities(tmp_path: Path) -> None:
    acts = _write_csv(tmp_path / "a.csv", ROWS)
    hr = tmp_path / "hr.csv"
    hr.write_text("email,department,hire_date\nann@corp.example,Sales,2020-01-01\nbob@corp.example,Sales,01/02/2020\n")
    ctx = file_ctx(tmp_path, format="csv", path=str(acts), directory=str(hr))
    with pytest.raises(ImportRejected, match=r"hr.csv:line 3: hire_date '01/02/2020' is not a date"):
        file_import.extract(ctx, *EVER)
    assert lake_files(ctx) == []


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ImportRejected, match=r"nope.csv: option path: file does not exist"):
        file_import.extract(file_ctx(tmp_path, format="csv", path=str(tmp_path / "nope.csv")), *EVER)


def test_options_name_the_bad_field() -> None:
    with pytest.raises(ValueError, match="option recipients is not used by format snap_edges"):
        file_import.FileImportOptions.model_validate({"format": "snap_edges", "path": "x", "recipients": "y"})
    with pytest.raises(ValueError, match="enron_tsv needs the option recipients"):
        file_import.FileImportOptions.model_validate({"format": "enron_tsv", "path": "x"})


def test_different_keys_give_unlinkable_pseudonyms(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "a.csv", ROWS)
    a = file_ctx(tmp_path / "a", format="csv", path=str(path))
    b = file_ctx(tmp_path / "b", format="csv", path=str(path), key=KEY + b"-other")
    file_import.extract(a, *EVER)
    file_import.extract(b, *EVER)
    assert not set(landed(a, "activities")["actor_key"]) & set(landed(b, "activities")["actor_key"])


# ------------------------------------------------------------------------------ identity (issue 4.6)
def test_identity_map_keys_native_ids_by_email_and_reports_the_matched_share(tmp_path: Path) -> None:
    acts = tmp_path / "acts.csv"
    acts.write_text("event_id,occurred_at,actor_id,verb,target_id\n"
                    "x1,2026-03-02T09:00:00Z,U1,mention,U2\n"
                    "x2,2026-03-02T09:05:00Z,U3,mention,U4\n")
    mapping = tmp_path / "map.csv"
    mapping.write_text("native_id,email\nU1,Ann@Corp.example\nU2,bob@corp.example\nU9,zed@corp.example\n")
    ctx = file_ctx(tmp_path, format="csv", path=str(acts), identity_map=str(mapping))
    report = file_import.extract(ctx, *EVER)
    by = landed(ctx, "activities").set_index("event_id")
    ps = ctx.pseudonymiser
    # the same key as the person's activity on any other platform keyed by email
    assert by.loc["x1", "actor_key"] == ps.email("ann@corp.example")
    assert by.loc["x1", "target_key"] == ps.email("bob@corp.example")
    assert by.loc["x2", "actor_key"] == ps.native("imp", "U3")
    assert report.details["participants_keyed_by_email"] == 2
    assert report.details["identity_matched_share"] == 0.5
    # mapping rows are not directory people: only the 4 participants are landed, U9 is not
    assert len(landed(ctx, "people")) == 4


def test_identity_map_with_one_id_mapped_to_two_emails_is_rejected(tmp_path: Path) -> None:
    acts = _write_csv(tmp_path / "a.csv", ROWS)
    mapping = tmp_path / "map.csv"
    mapping.write_text("id,email\nU1,ann@corp.example\nU1,other@corp.example\n")
    ctx = file_ctx(tmp_path, format="csv", path=str(acts), identity_map=str(mapping))
    with pytest.raises(ImportRejected, match=r"map.csv:line 3: native_id mapped to a different email on line 2"):
        file_import.extract(ctx, *EVER)
    assert lake_files(ctx) == []
