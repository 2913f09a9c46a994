import contextlib
import datetime as dt

import pyarrow as pa

from pipelines import lake

D1, D2 = dt.date(2026, 5, 1), dt.date(2026, 5, 2)


def test_rewrite_of_a_date_replaces_exactly_that_date(tmp_path):
    base = tmp_path / "t"
    lake.write_partition(base, D1, pa.table({"x": [1, 2]}))
    lake.write_partition(base, D2, pa.table({"x": [3]}))
    lake.write_partition(base, D1, pa.table({"x": [9]}))
    assert lake.read_partition(base, D1).column("x").to_pylist() == [9]
    assert lake.read_partition(base, D2).column("x").to_pylist() == [3]
    assert lake.partition_days(base) == [D1, D2]


def test_no_temporary_directories_are_left_behind(tmp_path):
    base = tmp_path / "t"
    for _ in range(3):
        lake.write_partition(base, D1, pa.table({"x": [1]}))
    assert sorted(p.name for p in base.iterdir()) == ["date=2026-05-01"]


def test_failed_write_keeps_the_old_partition(tmp_path, monkeypatch):
    base = tmp_path / "t"
    lake.write_partition(base, D1, pa.table({"x": [1]}))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(lake.pq, "write_table", boom)
    with contextlib.suppress(OSError):
        lake.write_partition(base, D1, pa.table({"x": [2]}))
    monkeypatch.undo()
    assert lake.read_partition(base, D1).column("x").to_pylist() == [1]
    assert sorted(p.name for p in base.iterdir()) == ["date=2026-05-01"]
