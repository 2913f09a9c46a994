"""What the pipeline does to the network numbers of real organisations (issue 12): the large-audience cap
on imported e-mail (perry-wolfe-enron, May 2001), people without a department (email-Eu-core with half
its labels), one definition per name for the cross-department shares, results independent of the order
rows come back in, and windows without any interaction. Expected values are computed here from the
files with pandas, independently of the pipeline."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.network import compute_network
from pipelines.network_stage import KEYS, compute_windows, run_network, run_network_range, stage_rules
from tests.network import pipeline_data as pdata

pytestmark = pytest.mark.slow


# ------------------------------------------------------------------------------ perry-wolfe-enron
@pytest.fixture(scope="module")
def enron(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("enron")
    settings = pdata.enron_settings(tmp)
    engine = pdata.run(settings, pdata.MAY_2001)
    yield settings, engine
    engine.dispose()


def _enron_may_2001() -> pd.DataFrame:
    """(message, recipient) pairs of the messages sent in May 2001 (UTC), the sender left out."""
    msg = pd.read_csv(pdata.ENRON / "messages.tsv", sep="\t", header=None, names=["mid", "unix", "sender"])
    rec = pd.read_csv(pdata.ENRON / "recipients.tsv", sep="\t", header=None, names=["mid", "i", "recipient"])
    rows = rec.merge(msg, on="mid").drop_duplicates(["mid", "recipient"])
    day = pd.to_datetime(rows["unix"], unit="s", utc=True).dt.date
    rows = rows[(day >= pdata.MAY_2001.start) & (day <= pdata.MAY_2001.end) & (rows["recipient"] != rows["sender"])]
    return rows.assign(audience=rows.groupby("mid")["recipient"].transform("nunique"))


def test_large_audience_cap_scales_the_recipients_of_one_imported_message(enron):
    settings, engine = enron
    rows = _enron_may_2001()
    cap = stage_rules(settings).edges.audience_cap
    assert cap is not None
    over = rows["audience"] > cap
    assert over.sum() > 0  # some messages of May 2001 went to more than 50 colleagues
    org = pdata.frame(engine, "select dropped_audience_scaled, interactions, total_weight from mart_network_org "
                      "where window_name = 'month' and window_end = :d", d=pdata.MAY_2001.end).iloc[0]
    assert org["interactions"] == len(rows)
    assert org["dropped_audience_scaled"] == over.sum()
    # one message never weighs more than the cap in total (mentions weigh 1 by default)
    expected = np.where(over, cap / rows["audience"], 1.0).sum()
    assert org["total_weight"] == pytest.approx(expected)
    ties = pdata.frame(engine, "select sum(weight) as w from fct_network_ties where window_name = 'month' "
                       "and window_end = :d", d=pdata.MAY_2001.end)
    assert ties["w"].iloc[0] == pytest.approx(expected)


def test_audience_id_groups_the_recipients_of_a_message(enron):
    _, engine = enron
    per = pdata.frame(engine, "select audience_id, count(distinct event_id) as events, count(distinct target_key) "
                      "as targets from int_interactions group by audience_id")
    rows = _enron_may_2001()
    assert len(per) == rows["mid"].nunique()
    assert sorted(per["targets"]) == sorted(rows.groupby("mid")["recipient"].nunique())


# ----------------------------------------------------------------------- email-Eu-core, half labelled
@pytest.fixture(scope="module")
def eu(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("eu")
    edges, labels, path = pdata.eu_core_half_labels(tmp)
    settings = pdata.eu_core_settings(tmp, path)
    engine = pdata.run(settings, pdata.EU_INTERVAL)
    yield settings, engine, edges, labels
    engine.dispose()


def _known(edges: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """The interactions (self-loops dropped) between two labelled people, with both labels."""
    dept = labels.set_index("node")["dept"]
    e = edges[edges["s"] != edges["t"]].assign(ds=lambda x: x["s"].map(dept), dt=lambda x: x["t"].map(dept))
    return e.dropna(subset=["ds", "dt"])


def test_org_ei_index_leaves_people_without_a_department_out(eu):
    _, engine, edges, labels = eu
    known = _known(edges, labels)
    pairs = known.assign(a=np.minimum(known["s"], known["t"]), b=np.maximum(known["s"], known["t"]))
    pairs = pairs.drop_duplicates(["a", "b"])
    internal = int((pairs["ds"] == pairs["dt"]).sum())
    external = len(pairs) - internal
    org = pdata.frame(engine, "select window_name, ei_index from mart_network_org where window_end = :d",
                      d=pdata.EU_DAY)
    assert len(org) == 3
    assert np.allclose(org["ei_index"], (external - internal) / (external + internal))
    # a department of the unlabelled half would pull the index down (0.340 on the data)
    dept = pdata.frame(engine, "select department from mart_network_department where window_end = :d",
                       d=pdata.EU_DAY)
    assert dept["department"].notna().all()
    assert dept["department"].nunique() == labels["dept"].nunique()


def test_interaction_marts_count_cross_department_only_between_known_departments(eu):
    _, engine, edges, labels = eu
    known = _known(edges, labels)
    share = float((known["ds"] != known["dt"]).mean())
    period = pdata.frame(engine, "select interactions, known_department_interactions, cross_department_interactions, "
                         "cross_department_interaction_share from mart_interactions_period where as_of_date = :d "
                         "and period_type = 'rolling_28d' and segment_type = 'org'", d=pdata.EU_DAY).iloc[0]
    assert period["interactions"] == int((edges["s"] != edges["t"]).sum())
    assert period["known_department_interactions"] == len(known)
    assert period["cross_department_interactions"] == int((known["ds"] != known["dt"]).sum())
    assert period["cross_department_interaction_share"] == pytest.approx(share)
    health = pdata.frame(engine, "select container_id, cross_department_share_28d from mart_container_health "
                         "where as_of_date = :d", d=pdata.EU_DAY)
    assert len(health) == 1  # every e-mail of the import is in the one container 'mail'
    assert health["cross_department_share_28d"].iloc[0] == pytest.approx(share)


def test_one_definition_per_cross_department_name(eu):
    _, engine, edges, labels = eu
    with engine.connect() as conn:
        period_cols = warehouse.columns(conn, "mart_interactions_period")
        org_cols = warehouse.columns(conn, "mart_network_org")
    # the segment mart's share is named after its counts; cross_department_share is the network's
    assert "cross_department_share" not in period_cols and "cross_department_interaction_share" in period_cols
    assert "cross_department_share" in org_cols
    # with the default rules every interaction of Eu-core is kept, so the two agree on this data
    known = _known(edges, labels)
    org = pdata.frame(engine, "select cross_department_share from mart_network_org where window_end = :d "
                      "and window_name = 'rolling_28d'", d=pdata.EU_DAY)
    assert org["cross_department_share"].iloc[0] == pytest.approx(float((known["ds"] != known["dt"]).mean()))


# -------------------------------------------------------------------------------- repeatable results
def _shuffled(conn: sa.Connection, table: str, seed: int) -> None:
    """Rewrite a table with its rows in another physical order (what a scan without order returns)."""
    df = warehouse.read_frame(conn, f"select * from {table}")
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    conn.exec_driver_sql(f"delete from {table}")
    conn.execute(sa.text(f"insert into {table} ({', '.join(df.columns)}) values "
                         f"({', '.join(':' + c for c in df.columns)})"), df.astype(object).where(df.notna(), None)
                 .to_dict("records"))


def test_network_tables_do_not_depend_on_the_order_rows_come_back_in(eu):
    settings, engine, *_ = eu
    with engine.connect() as conn:
        first, _ = compute_windows(conn, settings, pdata.EU_DAY)
    with engine.begin() as conn:
        _shuffled(conn, "stg_people", 1)
        _shuffled(conn, "int_interactions", 2)
    with engine.connect() as conn:
        second, _ = compute_windows(conn, settings, pdata.EU_DAY)
    assert set(first) == set(second)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True, obj=name)


def test_the_library_gives_the_same_tables_for_any_row_order():
    from tests.network import helpers

    edges, people = helpers.eu_core()
    a = compute_network(edges, people)
    b = compute_network(edges.sample(frac=1.0, random_state=5), people.sample(frac=1.0, random_state=6))
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def _published(engine: sa.Engine) -> dict[str, pd.DataFrame]:
    return {name: pdata.frame(engine, f"select * from {name} order by {', '.join(key or ['window_end'])}")
            for name, key in KEYS.items()}


def test_two_stage_runs_publish_identical_tables(eu):
    settings, engine, *_ = eu
    run_network(settings, pdata.EU_DAY, engine=engine)
    first = _published(engine)
    run_network(settings, pdata.EU_DAY, engine=engine)
    second = _published(engine)
    for name in first:
        pd.testing.assert_frame_equal(first[name], second[name], check_exact=True, obj=name)


# ------------------------------------------------------------------------------------- empty windows
def test_windows_without_interactions_publish_and_later_runs_still_work(eu):
    settings, engine, *_ = eu
    quiet = dt.date(2024, 6, 30)  # months after the only day of e-mail: every window is empty
    report = run_network(settings, quiet, engine=engine)
    assert set(report["windows"]) == {"rolling_28d", "rolling_90d", "month"}
    org = pdata.frame(engine, "select window_name, edges, isolated_share from mart_network_org where window_end = :d",
                      d=quiet)
    assert len(org) == 3 and (org["edges"] == 0).all() and (org["isolated_share"] == 1.0).all()
    # a range over the busy month and the quiet ones, and the busy day again, all run
    reports = run_network_range(settings, dt.date(2024, 1, 1), quiet, engine=engine)
    assert [r["end"] for r in reports][-1] == quiet.isoformat()
    run_network(settings, pdata.EU_DAY, engine=engine)
    busy = pdata.frame(engine, "select edges from mart_network_org where window_end = :d and window_name = 'month'",
                       d=pdata.EU_DAY)
    assert busy["edges"].iloc[0] > 0


# ---------------------------------------------------------------------- Slack (Chatterjee et al.)
def _slack_messages() -> pd.DataFrame:
    """Per message of May 2017: its author and the distinct people it reaches (the thread's first
    author for a reply, every person mentioned), the author left out; parsed here with ElementTree."""
    import re
    import xml.etree.ElementTree as ET

    rows, first = [], {}
    for msg in ET.parse(pdata.CHATTERJEE).getroot().iter("message"):
        conv, user = msg.get("conversation_id"), (msg.findtext("user") or "").strip()
        day = pd.Timestamp(msg.findtext("ts"), tz="UTC").date()
        root = first.setdefault(conv, user)
        mentioned = list(dict.fromkeys(m.strip() for m in re.findall(r"<@([^>\s][^>]*)>", msg.findtext("text") or "")))
        rows.append({"conv": conv, "day": day, "user": user, "root": root, "mentioned": mentioned})
    out = pd.DataFrame(rows)
    out["is_reply"] = out.duplicated("conv")
    out["interactions"] = [len([m for m in r.mentioned if m != r.user]) + int(r.is_reply and r.root != r.user)
                           for r in out.itertuples()]
    out["audience"] = [len({m for m in r.mentioned if m != r.user} | ({r.root} - {r.user} if r.is_reply else set()))
                       for r in out.itertuples()]
    return out[(out["day"] >= pdata.SLACK_MAY_2017.start) & (out["day"] <= pdata.SLACK_MAY_2017.end)]


def test_audience_cap_groups_a_slack_reply_with_its_mentions(tmp_path: Path):
    # a cap of 1: every message reaching two people or more (a reply to the thread that also mentions
    # someone, a message mentioning two people) is scaled
    settings = pdata.slack_settings(tmp_path, network={"edges": {"audience_cap": 1}})
    engine = pdata.run(settings, pdata.SLACK_MAY_2017)
    try:
        messages = _slack_messages()
        over = messages[messages["audience"] > 1]
        assert len(over) > 0
        org = pdata.frame(engine, "select interactions, dropped_audience_scaled from mart_network_org "
                          "where window_name = 'month' and window_end = :d", d=pdata.SLACK_MAY_2017.end).iloc[0]
        assert org["interactions"] == messages["interactions"].sum()
        assert org["dropped_audience_scaled"] == over["interactions"].sum()
    finally:
        engine.dispose()
