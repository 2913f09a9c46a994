"""The usage reports' batches are validated like every other batch (expectations/usage.json): a corrupt
report row (a negative count, a person twice for one product and day) rejects the batch with the
expectation, the column and the offending values, quarantines it and publishes nothing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from pipelines import jobs, warehouse
from pipelines.sources import usage_reports
from tests.vendors.msgraph.usage_hand import D1, D2, INTERVAL, hand_settings, transport


def _staged(tmp: Path):
    settings = hand_settings(tmp)
    ctx = jobs._context(settings, "m365", None, False)
    usage_reports.extract(ctx, D1, D2, access_token="hand-token", transport=transport())
    jobs.stage(settings, "m365", INTERVAL)
    staged = next((settings.lake_dir).rglob("usage.parquet"))
    return settings, staged


def test_a_valid_usage_batch_passes_its_suite(tmp_path: Path) -> None:
    settings, _ = _staged(tmp_path)
    engine = warehouse.make_engine(settings.warehouse_url)
    summary = jobs.validate(settings, "m365", INTERVAL, engine=engine)
    assert summary["blocking_failures"] == 0
    dq = warehouse.read_frame(engine, "select * from dq_validation_results where suite = 'usage'")
    assert len(dq) == 13 and dq["success"].all()
    engine.dispose()


@pytest.mark.parametrize("corrupt, expectation, column", [
    ("negative", "expect_column_values_to_be_between", "chat_messages"),
    ("duplicate", "expect_compound_columns_to_be_unique", "source,usage_date,person_key,product"),
])
def test_a_corrupt_usage_batch_is_rejected_naming_what_and_where(tmp_path: Path, corrupt: str, expectation: str,
                                                                  column: str) -> None:
    settings, staged = _staged(tmp_path)
    table = pq.read_table(staged)
    if corrupt == "negative":
        chats = table.column("chat_messages").to_pylist()
        chats[0] = -4
        table = table.set_column(table.schema.get_field_index("chat_messages"), "chat_messages",
                                 pa.array(chats, pa.int64()))
    else:
        table = pa.concat_tables([table, table.filter(pc.equal(table.column("product"), "teams")).slice(0, 1)])
    pq.write_table(table, staged)
    engine = warehouse.make_engine(settings.warehouse_url)
    with pytest.raises(jobs.BatchRejected) as err:
        jobs.validate(settings, "m365", INTERVAL, engine=engine)
    message = str(err.value)
    assert "m365/" in message and "usage" in message and expectation in message and column in message
    assert "-4" in message if corrupt == "negative" else True
    rejected = list((settings.quarantine_dir / "batches" / "source=m365").rglob("REJECTED.txt"))
    assert len(rejected) == 1 and column in rejected[0].read_text()
    # nothing published: the batch is gone from staging, landing has nothing to land
    assert not staged.exists()
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("lake_usage_daily") or not conn.execute(
            sa.text("select count(*) from lake_usage_daily")).scalar()
    engine.dispose()
