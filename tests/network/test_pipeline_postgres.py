"""The network stage on PostgreSQL (issue 12): a first publish from windows without any interaction creates
tables that later windows fill (the column types of no rows are the usual ones), the same data read in
another row order gives identical tables, and a rerun publishes identical tables."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from pipelines import jobs, warehouse
from pipelines.network_stage import KEYS, compute_windows, run_network
from tests.network import pipeline_data as pdata
from tests.network.test_pipeline_real_networks import _shuffled

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

QUIET = dt.date(2023, 12, 31)  # a month end before the only day of e-mail: every window is empty


def _published(engine) -> dict[str, pd.DataFrame]:
    return {name: pdata.frame(engine, f"select * from {name} order by {', '.join(key or ['window_end'])}")
            for name, key in KEYS.items()}


def test_network_stage_on_postgres_from_an_empty_first_window(tmp_path, pg_url):
    _, _, labels = pdata.eu_core_half_labels(tmp_path)
    settings = pdata.eu_core_settings(tmp_path, labels).model_copy(update={"warehouse_url": pg_url})
    engine = warehouse.make_engine(pg_url)
    try:
        jobs.run(settings, pdata.EU_INTERVAL, key=pdata.KEY, engine=engine)
        run_network(settings, QUIET, engine=engine)  # the network tables are created by an empty window
        run_network(settings, pdata.EU_DAY, engine=engine)
        org = pdata.frame(engine, "select window_end, edges from mart_network_org order by window_end, window_name")
        assert (org.loc[org["window_end"] == QUIET, "edges"] == 0).all()
        assert (org.loc[org["window_end"] == pdata.EU_DAY, "edges"] > 0).all()
        ties = pdata.frame(engine, "select crosses_department, is_reciprocated from fct_network_ties")
        assert len(ties) > 0 and ties["crosses_department"].isna().any()  # half the people have no department
        first = _published(engine)
        with engine.connect() as conn:
            before, _ = compute_windows(conn, settings, pdata.EU_DAY)
        with engine.begin() as conn:
            _shuffled(conn, "stg_people", 3)
            _shuffled(conn, "int_interactions", 4)
        with engine.connect() as conn:
            after, _ = compute_windows(conn, settings, pdata.EU_DAY)
        for name in before:
            pd.testing.assert_frame_equal(before[name], after[name], check_exact=True, obj=name)
        run_network(settings, pdata.EU_DAY, engine=engine)
        second = _published(engine)
        for name in first:
            pd.testing.assert_frame_equal(first[name], second[name], check_exact=True, obj=name)
    finally:
        engine.dispose()
