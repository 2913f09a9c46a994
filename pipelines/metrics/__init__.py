"""Metrics that SQL is the wrong tool for (METRICS.md section 4): bootstrap intervals, Spearman
correlations, interrupted time series and the ESN health scorecard.

`compute_python_metrics(conn, settings, interval)` reads the published marts and internal fct_ tables of the
warehouse, loads the organisation's outcome files, and publishes mart_impact_engaged_vs_not,
mart_impact_correlation, mart_impact_its and mart_esn_scorecard with `warehouse.publish_frame`, inside the
caller's transaction (jobs.publish, and again after complementary suppression). It must never commit, read
the wall clock, or keep a clear identifier: outcome emails are pseudonymised with the same keyed hash as the
sources.

The influence measure of a person-month is the person's pagerank in the network snapshot of that calendar
month (fct_person_network, window_name 'month'), which the network stage computes after the publication:
`impact_after_network` is its hook (`network_stage.run_network`, same transaction as the network tables)
and publishes mart_impact_correlation again with the snapshot the run just wrote. Months without a
snapshot (the current month until its last day has been through the network stage) have no influence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.metrics import impact, scorecard
from pipelines.metrics.config import ImpactConfig, load_impact_config
from pipelines.metrics.outcomes import ingest_outcomes, lake_outcome_files, load_outcomes
from pipelines.privacy import Pseudonymiser, check_key, resolve_key

__all__ = ["compute_python_metrics", "impact_after_network", "PYTHON_TABLES"]

PYTHON_TABLES = ("mart_impact_engaged_vs_not", "mart_impact_correlation", "mart_impact_its", "mart_esn_scorecard")


def _demo_only(settings: Any) -> bool:
    enabled = [s for s in settings.sources if s.enabled]
    return bool(enabled) and all(s.kind == "demo" for s in enabled)


def _demo(settings: Any, cfg: ImpactConfig) -> Any:
    """The demo source's options when the demo's own outcomes and intervention are used (no outcome file
    configured, and every enabled source is the demo unless `generate_demo_outcomes` says otherwise)."""
    generate = cfg.generate_demo_outcomes if cfg.generate_demo_outcomes is not None else _demo_only(settings)
    source = next((s for s in settings.sources if s.kind == "demo"), None)
    if cfg.outcome_files or not generate or source is None:
        return None
    from pipelines.sources.demo import DemoOptions

    return DemoOptions.model_validate(source.options)


def _interventions(settings: Any, cfg: ImpactConfig) -> list[tuple[str, dt.date, str]]:
    """The configured interventions; none configured, the demo organisation's (and only the demo's)."""
    chosen = list(cfg.interventions)
    demo = _demo(settings, cfg) if not chosen else None
    if demo is not None:
        from pipelines.metrics.demo_outcomes import demo_interventions

        chosen = demo_interventions(demo.start, demo.days)
    return [(i.name, i.date, i.metric) for i in chosen]


def _outcomes(settings: Any, cfg: ImpactConfig, key: str | None) -> pd.DataFrame:
    """The outcome rows: the configured drops pseudonymised into the lake (`outcomes.ingest_outcomes`),
    else the lake's pseudonymised outcome files (the demo's generated when there are none)."""
    from pipelines.rotation import OUTCOMES_VAULT, record_identities

    demo = _demo(settings, cfg)
    secret = resolve_key(key, env_var=settings.privacy.pseudonym_key_env, allow_demo=_demo_only(settings))
    # the lake's key only (a publication during a key rotation, or with a stale key, would split people)
    check_key(settings.lake_dir, secret, source_kind="outcomes", allow_demo=True, record=False,
              where="the pseudonymisation key of the outcome ingestion")
    ps = Pseudonymiser(secret)
    files = ingest_outcomes(settings, list(cfg.outcome_files), ps, demo=demo)
    record_identities(settings, OUTCOMES_VAULT, ps)  # the key rotation needs them
    return load_outcomes(files, ps)


def _person_months(conn: sa.Connection, end: dt.date) -> pd.DataFrame:
    """Person-months with activity or a usage segment up to `end`: actions, active days, the usage segment
    at the month's end, the department as of the month (`_departments`) and, when the network stage has
    run, the month's influence (`_influence`)."""
    sql = """
        with monthly as (
            select person_key, cast(date_trunc('month', activity_date) as date) as period,
                   cast(sum(actions) as bigint) as actions, count(*) as active_days
            from fct_person_daily_activity where activity_date <= :end
            group by person_key, cast(date_trunc('month', activity_date) as date)
        ),
        usage as (
            select person_key, as_of_date, cast(date_trunc('month', as_of_date) as date) as period, usage_segment
            from fct_person_usage_daily where as_of_date <= :end
        ),
        -- the segment on the person's last day of the month: a grouped max joined back (the table has one row
        -- per person and day), not a row_number() over every person-day, which sorts them all (3x slower)
        last_day as (
            select person_key, max(as_of_date) as as_of_date from usage group by person_key, period
        ),
        month_end as (
            select u.person_key, u.period, u.usage_segment
            from usage u join last_day l on l.person_key = u.person_key and l.as_of_date = u.as_of_date
        )
        select coalesce(m.person_key, u.person_key) as person_key, coalesce(m.period, u.period) as period,
               coalesce(m.actions, 0) as actions, coalesce(m.active_days, 0) as active_days,
               u.usage_segment
        from monthly m
        full outer join month_end u
          on u.person_key = m.person_key and u.period = m.period
    """
    df = warehouse.read_frame(conn, sql, {"end": end})
    df["period"] = pd.to_datetime(df["period"]).dt.date
    for c in ("actions", "active_days"):
        df[c] = df[c].astype(float)
    df = df.merge(_departments(conn, df[["person_key", "period"]], end), on=["person_key", "period"], how="left")
    influence = _influence(conn)
    if influence is not None:
        df = df.merge(influence, on=["person_key", "period"], how="left")
    return df


#: the segment cell where int_segment_membership counts people without a department: not a department
NO_DEPARTMENT = "unknown"


def _departments(conn: sa.Connection, pairs: pd.DataFrame, end: dt.date) -> pd.DataFrame:
    """The department of each (person_key, period) as of the month: the point-in-time segment membership
    (int_segment_membership) on the month's last day (on `end` for the month `end` falls in), else the last
    department the person had during the month (a leaver keeps the department they left from). NULL for
    people without a department in the month (the membership's cell 'unknown', or no membership at all):
    they count in the organisation's figures only, never as a department."""
    pairs = pairs[["person_key", "period"]].drop_duplicates()
    out = pairs.assign(department=pd.Series([None] * len(pairs), index=pairs.index, dtype=object))
    if pairs.empty or not warehouse.table_exists(conn, "int_segment_membership"):
        return out
    members = warehouse.read_frame(conn, "select person_key, segment_value as department, valid_from, valid_to "
                                         "from int_segment_membership where segment_type = 'department'")
    if members.empty:
        return out
    as_of = pd.to_datetime(pd.Series(pairs["period"].to_numpy())) + pd.offsets.MonthEnd(0)
    pairs = pairs.assign(_as_of=as_of.clip(upper=pd.Timestamp(end)).to_numpy())
    members["valid_from"] = pd.to_datetime(members["valid_from"])
    members["valid_to"] = pd.to_datetime(members["valid_to"])
    m = pairs.merge(members, on="person_key", how="inner")
    start = pd.to_datetime(m["period"])
    m = m[(m["valid_from"] <= m["_as_of"]) & (m["valid_to"] >= start)]  # in force during the month
    m = m[m["department"].notna() & (m["department"] != NO_DEPARTMENT)]
    m = m.sort_values(["person_key", "period", "valid_from"]).drop_duplicates(["person_key", "period"], keep="last")
    return pairs.drop(columns="_as_of").merge(m[["person_key", "period", "department"]],
                                              on=["person_key", "period"], how="left")


def _influence(conn: sa.Connection) -> pd.DataFrame | None:
    """Person-month influence: pagerank in the network snapshot of the calendar month (fct_person_network,
    window_name 'month', window_start = the month's first day), the person-month figure beside the month's
    actions and active days. None before the network stage has written a month snapshot (no influence
    measure then, rather than rows of n = 0: a republication must publish the same rows)."""
    if not warehouse.table_exists(conn, "fct_person_network"):
        return None
    if not {"person_key", "pagerank", "window_name", "window_start"} <= set(warehouse.columns(conn, "fct_person_network")):
        return None
    df = warehouse.read_frame(conn, "select person_key, window_start as period, pagerank as influence "
                                    "from fct_person_network where window_name = 'month'")
    if df.empty:
        return None
    df["period"] = pd.to_datetime(df["period"]).dt.date
    df["influence"] = df["influence"].astype(float)
    return df.drop_duplicates(["person_key", "period"])


def _dept_months(conn: sa.Connection, end: dt.date, min_group_size: int) -> pd.DataFrame:
    sql = """
        select cast(date_trunc('month', activity_date) as date) as period, segment_value as department,
               avg(cast(mau as double precision) / headcount) as participation_rate
        from mart_engagement_daily
        where segment_type = 'department' and not suppressed and headcount >= :k and activity_date <= :end
        group by cast(date_trunc('month', activity_date) as date), segment_value
    """
    df = warehouse.read_frame(conn, sql, {"end": end, "k": min_group_size})
    df["period"] = pd.to_datetime(df["period"]).dt.date
    return df


def _scorecard_inputs(conn: sa.Connection, end: dt.date) -> dict[str, object]:
    one = lambda sql, **p: conn.execute(sa.text(sql), {"d": end, **p}).fetchone()  # noqa: E731
    inputs: dict[str, object] = {}
    r = one("select mau, headcount from mart_engagement_daily where activity_date = :d and segment_type = 'org' "
            "and not suppressed")
    if r:
        inputs["participation_rate"] = (float(r[0]), float(r[1]))
    acts = warehouse.read_frame(conn, "select person_key, sum(actions) as a from fct_person_daily_activity "
                                "where activity_date between :s and :d group by person_key order by person_key",
                                {"s": end - dt.timedelta(days=27), "d": end})
    inputs["activity_per_active_user"] = acts["a"].to_numpy(float)
    r = one("select questions_answered, questions from mart_knowledge_sharing where as_of_date = :d "
            "and period_type = 'rolling_28d' and segment_type = 'org' and not suppressed")
    if r:
        inputs["answered_rate"] = (float(r[0]), float(r[1]))
    hours = warehouse.read_frame(conn, "select hours_to_first_reply as h from fct_posts where is_question "
                                 "and activity_date between :s and :d and first_reply_date <= :d "
                                 "order by source, event_id",
                                 {"s": end - dt.timedelta(days=27), "d": end})
    inputs["median_hours_to_first_response"] = hours["h"].to_numpy(float)
    # the org's cross_department_interaction_share: over the interactions whose two people have a department
    r = one("select cross_department_interactions, known_department_interactions from mart_interactions_period "
            "where as_of_date = :d and period_type = 'rolling_28d' and segment_type = 'org' and not suppressed")
    if r:
        inputs["cross_department_share"] = (float(r[0]), float(r[1]))
    r = one("select leader_posting_share * leaders, leaders from mart_leader_engagement where as_of_date = :d "
            "and period_type = 'rolling_28d' and segment_type = 'org' and not leaders_suppressed")
    if r and r[1] is not None:
        inputs["leader_posting_share"] = (float(r[0]), float(r[1]))
    # retention: people active in the month before the last complete month who were active in it again
    last_complete = (end + dt.timedelta(days=1)).replace(day=1) - dt.timedelta(days=1)
    month_start = last_complete.replace(day=1)
    prev_start = (month_start - dt.timedelta(days=1)).replace(day=1)
    r = one("""select count(*), sum(case when b.person_key is not null then 1 else 0 end)
               from (select distinct person_key from fct_person_daily_activity
                     where activity_date between :ps and :pe) a
               left join (select distinct person_key from fct_person_daily_activity
                          where activity_date between :ms and :me) b on b.person_key = a.person_key""",
            ps=prev_start, pe=month_start - dt.timedelta(days=1), ms=month_start, me=last_complete)
    if r and r[0]:
        inputs["retention_next_month"] = (float(r[1] or 0), float(r[0]))
    return inputs


def _publish_impact(conn: sa.Connection, settings: Any, end: dt.date, cfg: ImpactConfig,
                    outcomes: pd.DataFrame, tables: tuple[str, ...] = PYTHON_TABLES[:3]) -> dict[str, int]:
    """Compute and publish the impact tables named in `tables` for the person-months up to `end`."""
    k = settings.privacy.min_group_size
    pm = _person_months(conn, end)
    measures = ["actions", "active_days"] + (["influence"] if "influence" in pm.columns else [])
    written: dict[str, int] = {}
    if "mart_impact_engaged_vs_not" in tables:
        person = outcomes[outcomes["level"] == "person"]
        departments = _departments(conn, person[["person_key", "period"]], end)
        ev = impact.engaged_vs_not(pm, outcomes, min_group_size=k, engaged_segments=cfg.engaged_segments,
                                   samples=cfg.bootstrap_samples, seed=cfg.seed, departments=departments)
        written["mart_impact_engaged_vs_not"] = warehouse.publish_frame(
            conn, "mart_impact_engaged_vs_not", ev, key=["outcome", "segment_type", "segment_value"])
    if "mart_impact_correlation" in tables:
        corr = impact.correlations(pm, _dept_months(conn, end, k), outcomes, min_group_size=k, measures=measures)
        written["mart_impact_correlation"] = warehouse.publish_frame(
            conn, "mart_impact_correlation", corr, key=["outcome", "level", "engagement_measure", "lag_months"])
    if "mart_impact_its" in tables:
        daily = warehouse.read_frame(conn, "select * from mart_engagement_daily where segment_type = 'org' "
                                     "and activity_date <= :d", {"d": end})
        daily["activity_date"] = pd.to_datetime(daily["activity_date"]).dt.date
        its = impact.interrupted_series(daily, _interventions(settings, cfg), window_days=cfg.its_window_days)
        written["mart_impact_its"] = warehouse.publish_frame(conn, "mart_impact_its", its,
                                                             key=["intervention", "metric"])
    return written


def compute_python_metrics(conn: sa.Connection, settings: Any, interval: Any, *, key: str | None = None,
                           config: ImpactConfig | None = None) -> dict[str, int]:
    """Compute and publish the impact tables and the scorecard; returns rows written per table."""
    cfg = config or load_impact_config()
    end = interval.end
    written = _publish_impact(conn, settings, end, cfg, _outcomes(settings, cfg, key))
    card = scorecard.scorecard(end, _scorecard_inputs(conn, end), cfg.targets,
                               min_group_size=settings.privacy.min_group_size,
                               samples=cfg.bootstrap_samples, seed=cfg.seed)
    # a snapshot of the run's last day (not one row set per run): a batch run and the same days run one by
    # one publish the same table; the history of every input is kept in the marts it reads
    written["mart_esn_scorecard"] = warehouse.publish_frame(conn, "mart_esn_scorecard", card,
                                                            key=["as_of_date", "metric"])
    return written


def impact_after_network(conn: sa.Connection, settings: Any, end: dt.date, *, windows: Any = (),
                         config: ImpactConfig | None = None) -> dict[str, int]:
    """The network stage's hook, inside its transaction once the network tables of `end` are published:
    when the run wrote a month snapshot (`windows` names the windows computed), mart_impact_correlation is
    published again so that the influence of that month is the snapshot of this run (the publication
    before it could only read the snapshots of earlier runs). The other impact tables and the scorecard
    do not read the network and stay as the publication left them.

    It recomputes at the horizon of the last publication (the scorecard's as_of_date, else `end`), from
    the outcome files that publication ingested (pseudonymised in the lake: no key is needed, the
    esn_network DAG has none). The correlations are organisation-wide (no complementary family), computed
    from the published, already suppressed marts, as in the publication."""
    if "month" not in windows or not warehouse.table_exists(conn, "mart_engagement_daily"):
        return {}
    cfg = config or load_impact_config()
    horizon = end
    if warehouse.table_exists(conn, "mart_esn_scorecard"):
        last = conn.execute(sa.text("select max(as_of_date) from mart_esn_scorecard")).scalar()
        if last is not None:
            horizon = pd.Timestamp(last).date()
    outcomes = load_outcomes(lake_outcome_files(settings, list(cfg.outcome_files)), None)
    return _publish_impact(conn, settings, horizon, cfg, outcomes, tables=("mart_impact_correlation",))
