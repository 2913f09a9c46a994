"""Hostile file drops (source kind "file"): every bad input has one asserted outcome, never a silent one.

Either the drop is accepted correctly (epochs in ms land on the right days), or it is refused with a
clear error naming the file, the line or the day and the option to set (and the lake is left byte for
byte as it was), or what is not landed is counted in the extract report. Files are written small in
tmp_path; the source module is called directly with a SourceContext (tests/imports/conftest.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import jobs
from pipelines.config import SourceConfig, load_settings
from pipelines.sources import file_import
from pipelines.sources.file_import import ShrinkRefused
from pipelines.sources.file_import_formats import ImportRejected
from tests.imports.conftest import file_ctx, landed

DAYS = [dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)]
START, END = DAYS[0], DAYS[-1]
PER_DAY = 14  # 42 events over the three days
HEADER = "event_id,occurred_at,actor_email,verb,container_id"
#: a sub-second part that each unit can carry exactly
FRACTION_NS = {"s": 0, "ms": 123_000_000, "us": 123_456_000, "ns": 123_456_789}
NS_PER = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}


# ------------------------------------------------------------------------------------------ helpers
def _stamps(days: list[dt.date] = DAYS, per_day: int = PER_DAY, fraction_ns: int = 0) -> list[pd.Timestamp]:
    return [pd.Timestamp(d, tz="UTC") + pd.Timedelta(hours=1 + i, minutes=i) + pd.Timedelta(fraction_ns, "ns")
            for d in days for i in range(per_day)]


def _records(stamps: list[pd.Timestamp], value: Any = None) -> list[dict[str, Any]]:
    """One post per time; `value(ts)` gives the occurred_at field (default ISO-8601)."""
    return [{"event_id": f"e{i}", "occurred_at": value(ts) if value else ts.isoformat(),
             "actor_email": f"user{i % 5}@corp.example", "verb": "post", "container_id": "c1"}
            for i, ts in enumerate(stamps)]


def _csv(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text(HEADER + "\n" + "".join(",".join(str(r[c]) for c in HEADER.split(",")) + "\n"
                                            for r in records))
    return path


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _epoch(unit: str) -> Any:
    return lambda ts: ts.value // NS_PER[unit]


def _lake_bytes(ctx: Any) -> dict[str, bytes]:
    root = ctx.lake_dir
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()} \
        if root.exists() else {}


def _raw_days(ctx: Any) -> dict[dt.date, int]:
    acts = landed(ctx, "activities")
    return {} if acts.empty else {d: int(n) for d, n in acts["occurred_at"].dt.date.value_counts().items()}


def _good_import(tmp_path: Path, **options: Any) -> tuple[Any, Path]:
    """42 events landed for START..END from a good CSV; the context and the file (to be replaced)."""
    path = _csv(tmp_path / "drop.csv", _records(_stamps()))
    ctx = file_ctx(tmp_path, format="csv", path=str(path), **options)
    report = file_import.extract(ctx, START, END)
    assert report.rows["activities"] == 42 and _raw_days(ctx) == dict.fromkeys(DAYS, PER_DAY)
    return ctx, path


def _again(tmp_path: Path, path: Path, **options: Any) -> Any:
    """The same source (same lake) configured again, e.g. with other options."""
    return file_ctx(tmp_path, format="csv", path=str(path), **options)


# ------------------------------------------------------------------------------------------ 1. epochs
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_numeric_epochs_in_any_unit_are_detected_and_land_on_the_right_days(tmp_path: Path, unit: str,
                                                                           fmt: str) -> None:
    stamps = _stamps(fraction_ns=FRACTION_NS[unit])
    write = _csv if fmt == "csv" else _jsonl  # CSV: numeric strings; JSONL: JSON numbers
    path = write(tmp_path / f"drop.{fmt}", _records(stamps, _epoch(unit)))
    ctx = file_ctx(tmp_path, format=fmt, path=str(path))
    report = file_import.extract(ctx, START, END)
    assert report.rows["activities"] == 42
    assert report.days == DAYS
    assert report.details["outside_interval"]["before"] == report.details["outside_interval"]["after"] == 0
    acts = landed(ctx, "activities").sort_values("occurred_at")
    assert list(acts["occurred_at"]) == stamps  # exact, sub-second part included
    assert report.details["first_event"] == stamps[0].isoformat()


def test_parquet_integer_ms_column_is_detected(tmp_path: Path) -> None:
    stamps = _stamps(fraction_ns=FRACTION_NS["ms"])
    pq.write_table(pa.Table.from_pylist(_records(stamps, _epoch("ms"))), tmp_path / "drop.parquet")
    ctx = file_ctx(tmp_path, format="parquet", path=str(tmp_path / "drop.parquet"))
    assert file_import.extract(ctx, START, END).rows["activities"] == 42
    assert sorted(landed(ctx, "activities")["occurred_at"]) == stamps


def test_declared_epoch_unit_is_used(tmp_path: Path) -> None:
    stamps = _stamps(fraction_ns=FRACTION_NS["us"])
    path = _csv(tmp_path / "drop.csv", _records(stamps, _epoch("us")))
    ctx = file_ctx(tmp_path, format="csv", path=str(path), epoch_unit="us")
    assert file_import.extract(ctx, START, END).rows["activities"] == 42
    assert sorted(landed(ctx, "activities")["occurred_at"]) == stamps


def test_declared_unit_that_gives_implausible_dates_is_rejected(tmp_path: Path) -> None:
    # epoch milliseconds declared as seconds: year ~58000, which used to land nowhere, silently
    path = _csv(tmp_path / "drop.csv", _records(_stamps(), _epoch("ms")))
    ctx = file_ctx(tmp_path, format="csv", path=str(path), epoch_unit="s")
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    msg = str(err.value)
    first = _stamps()[0].value // NS_PER["ms"]
    assert f"{path}:line 2: occurred_at {first} read with epoch_unit s is year ~" in msg
    assert "outside epoch_range 1990-01-01..2100-01-01; as ms it would be 2026-03-02: check epoch_unit" in msg
    assert "11 problem(s)" in msg  # ten values named, then the 32 others counted
    assert f"{path}:line 12: and 32 more value(s) with the same problem from this line on" in msg
    assert "nothing was loaded" in msg and _lake_bytes(ctx) == {}


@pytest.mark.parametrize(("value", "seconds_reading"), [("12345", "1970-01-01"), ("20260302", "1970-08-23"),
                                                        ("-1772528400", "1913-10-31")])
def test_implausible_epoch_is_rejected_with_line_value_and_what_to_set(tmp_path: Path, value: str,
                                                                       seconds_reading: str) -> None:
    records = _records(_stamps(), _epoch("s"))
    records[3]["occurred_at"] = value
    path = _csv(tmp_path / "drop.csv", records)
    ctx = file_ctx(tmp_path, format="csv", path=str(path))
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    assert (f"{path}:line 5: occurred_at {value} is not a plausible Unix time in any unit: as s, ms, us or ns it "
            f"falls outside epoch_range 1990-01-01..2100-01-01 (as seconds: {seconds_reading}); write ISO-8601, or "
            "set epoch_unit (and epoch_range) if the value is right") in str(err.value)
    assert _lake_bytes(ctx) == {}


def test_mixed_epoch_units_in_one_file_are_rejected(tmp_path: Path) -> None:
    records = _records(_stamps(), _epoch("s"))
    records[7]["occurred_at"] = _stamps()[7].value // NS_PER["ms"]
    path = _jsonl(tmp_path / "drop.jsonl", records)
    ctx = file_ctx(tmp_path, format="jsonl", path=str(path))
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    assert (f"{path}:line 8: occurred_at {records[7]['occurred_at']} reads as Unix ms (2026-03-02) but 41 of the "
            "file's 42 numeric timestamps read as s (e.g. line 1): one file must use one unit (option epoch_unit)"
            ) in str(err.value)
    assert len(err.value.problems) == 1 and _lake_bytes(ctx) == {}


def test_widened_epoch_range_that_makes_units_ambiguous_is_rejected(tmp_path: Path) -> None:
    # with a range starting in 1970 a value can be seconds in 2026 or milliseconds in January 1970
    path = _csv(tmp_path / "drop.csv", _records(_stamps(), _epoch("s")))
    ctx = file_ctx(tmp_path, format="csv", path=str(path), epoch_range=["1970-01-01", "2100-01-01"])
    with pytest.raises(ImportRejected, match=r"drop.csv:line 2: occurred_at \d+: the numeric timestamps give "
                       r"plausible dates in several units \(s: 2026-03-02, ms: 1970-01-21, us: 1970-01-01, ns: 1970-01-01\); "
                       r"set epoch_unit"):
        file_import.extract(ctx, START, END)
    ctx = file_ctx(tmp_path, format="csv", path=str(path), epoch_range=["1970-01-01", "2100-01-01"],
                   epoch_unit="s")
    assert file_import.extract(ctx, START, END).rows["activities"] == 42


def test_iso_strings_still_land_and_numbers_beside_them_keep_their_unit(tmp_path: Path) -> None:
    stamps = _stamps()
    records = _records(stamps)
    records[0]["occurred_at"] = "2026-03-02T02:00:00+01:00"  # an offset: 01:00 UTC
    records[1]["occurred_at"] = "2026-03-02 02:01:00"  # naive: UTC
    records[2]["occurred_at"] = stamps[2].value // NS_PER["ms"]  # one ms epoch among ISO strings
    path = _csv(tmp_path / "drop.csv", records)
    ctx = file_ctx(tmp_path, format="csv", path=str(path))
    assert file_import.extract(ctx, START, END).rows["activities"] == 42
    assert sorted(landed(ctx, "activities")["occurred_at"]) == stamps


def test_a_boolean_is_not_a_time(tmp_path: Path) -> None:
    records = _records(_stamps())
    records[4]["occurred_at"] = True
    path = _jsonl(tmp_path / "drop.jsonl", records)
    with pytest.raises(ImportRejected, match=r"drop.jsonl:line 5: occurred_at 'True' is not an ISO-8601 timestamp"):
        file_import.extract(file_ctx(tmp_path, format="jsonl", path=str(path)), START, END)


def test_epoch_options_are_refused_for_presets() -> None:
    with pytest.raises(ValueError, match="option epoch_unit is not used by format snap_edges"):
        file_import.FileImportOptions.model_validate({"format": "snap_edges", "path": "x", "epoch_unit": "ms"})
    with pytest.raises(ValueError, match="epoch_range must be"):
        file_import.FileImportOptions.model_validate({"format": "csv", "path": "x",
                                                      "epoch_range": ["2100-01-01", "1990-01-01"]})


def test_same_drop_gives_byte_identical_partitions(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "drop.jsonl", _records(_stamps(fraction_ns=FRACTION_NS["ns"]), _epoch("ns")))
    a, b = (file_ctx(tmp_path / x, format="jsonl", path=str(path)) for x in "ab")
    file_import.extract(a, START, END)
    file_import.extract(b, START, END)
    raw = {k: v for k, v in _lake_bytes(a).items() if k.startswith("raw/")}
    assert raw and raw == {k: v for k, v in _lake_bytes(b).items() if k.startswith("raw/")}


# ------------------------------------------------------------------------------- 2. outside the interval
def test_events_outside_the_interval_are_counted_with_times_and_locations(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    records = _records(_stamps())
    records[5]["occurred_at"] = "2099-06-01T12:00:00Z"
    records[9]["occurred_at"] = "2026-02-27T23:59:59Z"
    records[30]["occurred_at"] = "2026-03-05T00:00:00Z"  # the day after the end
    path = _csv(tmp_path / "drop.csv", records)
    os.utime(path, (1772600000, 1772600000))  # written 2026-03-04T04:53:20Z
    ctx = file_ctx(tmp_path, format="csv", path=str(path))
    with caplog.at_level(logging.WARNING, logger="pipelines.sources.file_import"):
        report = file_import.extract(ctx, START, END)
    assert report.rows["activities"] == 39 == len(landed(ctx, "activities"))
    assert report.details["events_outside_interval"] == 3
    assert report.details["outside_interval"] == {
        "before": 1, "after": 2, "first": "2026-02-27T23:59:59+00:00", "last": "2099-06-01T12:00:00+00:00",
        "examples": [f"{path}:line 11", f"{path}:line 7", f"{path}:line 32"]}
    # the 2099 event is later than the file itself: future-dated (2026-03-05 is within the day of slack)
    assert report.details["future_dated"] == {
        "count": 1, "first": "2099-06-01T12:00:00+00:00", "last": "2099-06-01T12:00:00+00:00",
        "file_modified": "2026-03-04T04:53:20+00:00", "examples": [f"{path}:line 7"]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("3 of 42 event(s)" in w and "outside the interval 2026-03-02..2026-03-04" in w
               and "1 before, 2 after" in w for w in warnings), warnings
    assert any("1 event(s)" in w and "dated after the file was last modified" in w for w in warnings), warnings
    assert not any("corp.example" in w for w in warnings)  # no identifier in the log


def test_no_event_outside_gives_zero_counts_of_the_same_shape(tmp_path: Path) -> None:
    path = _csv(tmp_path / "drop.csv", _records(_stamps()))
    report = file_import.extract(file_ctx(tmp_path, format="csv", path=str(path)), START, END)
    assert report.details["outside_interval"] == {"before": 0, "after": 0, "first": None, "last": None,
                                                  "examples": []}
    assert report.details["future_dated"]["count"] == 0


def test_outside_interval_reaches_the_extract_step_result(tmp_path: Path) -> None:
    records = _records(_stamps())
    records[0]["occurred_at"] = "2099-01-01T00:00:00Z"
    path = _csv(tmp_path / "drop.csv", records)
    settings = load_settings(None, lake_dir=tmp_path / "lake", warehouse_url=f"duckdb:///{tmp_path / 'w.duckdb'}",
                             sources=[SourceConfig(name="drop", kind="file", options={"format": "csv",
                                                                                       "path": str(path)})])
    step = jobs.extract(settings, "drop", jobs.Interval(START, END), key="test-key-not-a-secret")
    assert step["details"]["outside_interval"]["after"] == 1
    assert step["details"]["outside_interval"]["examples"] == [f"{path}:line 2"]


# ------------------------------------------------------------------------------------- 3. shrink guard
@pytest.mark.parametrize("allow_empty", [False, True])
def test_header_only_file_after_a_good_one_is_refused_and_the_lake_is_unchanged(tmp_path: Path,
                                                                                allow_empty: bool) -> None:
    ctx, path = _good_import(tmp_path)
    before = _lake_bytes(ctx)
    path.write_text(HEADER + "\n")
    with pytest.raises(ShrinkRefused) as err:
        file_import.extract(_again(tmp_path, path, allow_empty=allow_empty), START, END)
    msg = str(err.value)
    assert f"import refused, nothing was loaded: {path} has fewer events than the raw lake already holds " \
           "for source 'imp' on 3 day(s)" in msg
    for d in DAYS:
        assert f"{d}: 14 -> 0 event(s) (the day would be emptied)" in msg
    assert ("set replace_days: true and allow_empty: true for this run" if not allow_empty else
            "set replace_days: true for this run") in msg
    assert err.value.days == [(d, 14, 0) for d in DAYS]
    assert str(pickle.loads(pickle.dumps(err.value))) == msg
    assert _lake_bytes(ctx) == before  # raw partitions (and everything else) byte for byte


def test_empty_file_after_a_good_one_is_refused(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    before = _lake_bytes(ctx)
    path.write_bytes(b"")
    with pytest.raises(ShrinkRefused, match=r"2026-03-03: 14 -> 0 event\(s\)"):
        file_import.extract(ctx, START, END)
    assert _lake_bytes(ctx) == before


def test_file_whose_events_all_fall_outside_the_interval_counts_as_shrinking(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    before = _lake_bytes(ctx)
    # epoch ms read as seconds used to do exactly this: every event in another year, 42 -> 0
    _csv(path, _records(_stamps(days=[dt.date(2027, 3, 2)], per_day=42)))
    with pytest.raises(ShrinkRefused, match=r"on 3 day\(s\)"):
        file_import.extract(ctx, START, END)
    assert _lake_bytes(ctx) == before


def test_truncated_file_is_refused_with_the_days_and_counts(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    before = _lake_bytes(ctx)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:25]))  # cut at a line boundary: the header and 24 events
    with pytest.raises(ShrinkRefused) as err:
        file_import.extract(ctx, START, END)
    msg = str(err.value)
    assert "2026-03-03: 14 -> 10 event(s) (-28.6%, more than max_shrink 10%)" in msg
    assert "2026-03-04: 14 -> 0 event(s) (the day would be emptied)" in msg
    assert "2026-03-02" not in msg  # unchanged day
    assert "set replace_days: true for this run" in msg
    assert _lake_bytes(ctx) == before


def test_replace_days_lets_a_smaller_file_through(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:25]))
    report = file_import.extract(_again(tmp_path, path, replace_days=True), START, END)
    assert report.rows["activities"] == 24
    assert _raw_days(ctx) == {DAYS[0]: 14, DAYS[1]: 10}
    assert report.details["days_shrunk"] == [{"day": "2026-03-03", "before": 14, "after": 10},
                                             {"day": "2026-03-04", "before": 14, "after": 0}]


def test_a_shrink_within_max_shrink_is_accepted_and_reported(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    records = _records(_stamps())
    del records[20]  # one event deleted at the source: 14 -> 13 on 2026-03-03 (7%)
    _csv(path, records)
    report = file_import.extract(ctx, START, END)
    assert report.rows["activities"] == 41
    assert report.details["days_shrunk"] == [{"day": "2026-03-03", "before": 14, "after": 13}]
    _csv(path, records[:-1])  # and one more on 2026-03-04: 14 -> 13 is more than max_shrink 5%
    with pytest.raises(ShrinkRefused, match=r"2026-03-04: 14 -> 13 event\(s\) \(-7.1%, more than max_shrink 5%\)"):
        file_import.extract(_again(tmp_path, path, max_shrink=0.05), START, END)


def test_a_new_day_without_previous_data_is_accepted(tmp_path: Path) -> None:
    ctx, path = _good_import(tmp_path)
    day4 = dt.date(2026, 3, 5)
    old = {k: v for k, v in _lake_bytes(ctx).items() if "stream=activities" in k}
    _csv(path, _records(_stamps(days=[day4], per_day=5)))
    report = file_import.extract(ctx, day4, day4)
    assert report.rows["activities"] == 5 and report.details["days_shrunk"] == []
    assert _raw_days(ctx) == {**dict.fromkeys(DAYS, PER_DAY), day4: 5}
    new = _lake_bytes(ctx)
    assert all(new[k] == v for k, v in old.items())  # earlier days untouched
    # and a bigger file over the landed days only grows them
    _csv(path, _records(_stamps(per_day=PER_DAY + 2)))
    assert file_import.extract(ctx, START, END).rows["activities"] == 48


@pytest.mark.parametrize(("content", "what"), [(b"", "is empty (0 bytes)"),
                                               (HEADER.encode() + b"\n", "has no data records (a header at most)"),
                                               (b"\n\n", "has no data records (a header at most)")])
def test_empty_drop_for_a_fresh_interval_is_rejected_unless_allow_empty(tmp_path: Path, content: bytes,
                                                                       what: str) -> None:
    path = tmp_path / "drop.csv"
    path.write_bytes(content)
    ctx = file_ctx(tmp_path, format="csv", path=str(path))
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    assert f"{path}: the file {what}: no event to import. If an empty drop is expected, set allow_empty: true" \
        in str(err.value)
    assert _lake_bytes(ctx) == {}
    report = file_import.extract(file_ctx(tmp_path, format="csv", path=str(path), allow_empty=True), START, END)
    assert report.rows["activities"] == 0 and report.days == []


def test_empty_jsonl_and_parquet_drops_are_rejected_too(tmp_path: Path) -> None:
    (tmp_path / "e.jsonl").write_bytes(b"")
    pq.write_table(pa.Table.from_pylist(_records(_stamps())).slice(0, 0), tmp_path / "e.parquet")
    for name in ("e.jsonl", "e.parquet"):
        with pytest.raises(ImportRejected, match=r"no event to import"):
            file_import.extract(file_ctx(tmp_path / name, format="canonical", path=str(tmp_path / name)), START, END)


# ------------------------------------------------------------------------------------- 4. huge records
def test_huge_jsonl_line_is_rejected_with_its_line_number_in_bounded_memory(tmp_path: Path) -> None:
    records = _records(_stamps())
    path = tmp_path / "drop.jsonl"
    with path.open("w") as f:
        for i, r in enumerate(records):
            if i == 3:
                r = {**r, "padding": "x" * (20 << 20)}  # a 20 MiB record on line 4
            f.write(json.dumps(r) + "\n")
    size = len(json.dumps({**records[3], "padding": "x" * (20 << 20)}).encode())
    ctx = file_ctx(tmp_path, format="jsonl", path=str(path))
    tracemalloc.start()
    try:
        with pytest.raises(ImportRejected) as err:
            file_import.extract(ctx, START, END)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (f"{path}:line 4: record of {size:,} bytes is larger than max_record_bytes (1,048,576); it was not "
            "read (raise max_record_bytes if such records are expected)") in str(err.value)
    assert len(err.value.problems) == 1  # the lines after it were read normally
    assert peak < 16 << 20, f"reading used {peak:,} bytes: the long line was held in memory"
    assert _lake_bytes(ctx) == {}


def test_huge_csv_line_is_rejected_with_its_line_number(tmp_path: Path) -> None:
    records = _records(_stamps())
    records[1]["container_id"] = "c" * 5000
    path = _csv(tmp_path / "drop.csv", records)
    ctx = file_ctx(tmp_path, format="csv", path=str(path), max_record_bytes=4096)
    with pytest.raises(ImportRejected, match=r"drop.csv:line 3: record of 5,\d{3} bytes is larger than "
                       r"max_record_bytes \(4,096\)"):
        file_import.extract(ctx, START, END)
    assert _lake_bytes(ctx) == {}


def test_unclosed_csv_quote_stops_at_max_record_bytes(tmp_path: Path) -> None:
    path = tmp_path / "drop.csv"
    path.write_text(HEADER + "\ne1,2026-03-02T01:00:00Z,a@corp.example,post,\"c1\n" + "x,y,z\n" * 2000)
    with pytest.raises(ImportRejected, match=r"drop.csv:line 2: a field of this record spans more than "
                       r"max_record_bytes \(4,096 bytes\)"):
        file_import.extract(file_ctx(tmp_path, format="csv", path=str(path), max_record_bytes=4096), START, END)


def test_file_larger_than_max_file_bytes_is_rejected_before_reading(tmp_path: Path) -> None:
    path = _csv(tmp_path / "drop.csv", _records(_stamps()))
    hr = tmp_path / "hr.csv"
    hr.write_text("email,department\n" + "".join(f"user{i}@corp.example,Sales\n" for i in range(100)))
    size, hr_size = path.stat().st_size, hr.stat().st_size
    ctx = file_ctx(tmp_path, format="csv", path=str(path), directory=str(hr), max_file_bytes=1000)
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    msg = str(err.value)
    assert (f"{path}: option path: the file is {size:,} bytes, larger than max_file_bytes (1,000); nothing was "
            "read (raise max_file_bytes if the file is right)") in msg
    assert f"{hr}: option directory: the file is {hr_size:,} bytes" in msg
    assert _lake_bytes(ctx) == {}


def test_huge_line_in_a_preset_edge_list_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "edges.txt"
    path.write_text("1 2 1772528400\n" + "3 " * 3000 + "\n4 5 1772528460\n")
    with pytest.raises(ImportRejected, match=r"edges.txt:line 2: record of 6,000 bytes is larger than "
                       r"max_record_bytes \(4,096\)"):
        file_import.extract(file_ctx(tmp_path, format="snap_edges", path=str(path), max_record_bytes=4096),
                            START, END)


def test_malformed_json_lines_are_each_named(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in _records(_stamps())]
    lines[2] = lines[2][:-1]  # the closing brace lost
    lines[6] = "[1, 2]"
    lines[9] = '{"event_id": "e9", "occurred_at": 2026-03-02}'
    path = tmp_path / "drop.jsonl"
    path.write_text("\n".join(lines) + "\n")
    ctx = file_ctx(tmp_path, format="jsonl", path=str(path))
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, START, END)
    msg = str(err.value)
    assert f"{path}:line 3: not valid JSON (Expecting ',' delimiter at column" in msg
    assert f"{path}:line 7: a JSON object is required, got list" in msg
    assert f"{path}:line 10: not valid JSON (Expecting ',' delimiter at column 39)" in msg
    assert [p.line for p in err.value.problems] == [3, 7, 10]
    assert _lake_bytes(ctx) == {}


def test_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = _csv(tmp_path / "drop.csv", _records(_stamps()))
    data = path.read_bytes().split(b"\n")
    data[5] = data[5].replace(b"post", b"p\xe9st")
    path.write_bytes(b"\n".join(data))
    with pytest.raises(ImportRejected, match=r"drop.csv:line 6: not UTF-8 \(byte 0xe9\)"):
        file_import.extract(file_ctx(tmp_path, format="csv", path=str(path)), START, END)
