"""Metrics that SQL is the wrong tool for (METRICS.md section 4): bootstrap intervals, Spearman
correlations, interrupted time series and the ESN health scorecard.

`compute_python_metrics(conn, settings, interval)` reads the published marts and internal fct_ tables of the
warehouse, loads the organisation's outcome files, and publishes mart_impact_engaged_vs_not,
mart_impact_correlation, mart_impact_its and mart_esn_scorecard with `warehouse.publish_frame`, inside the
caller's transaction (jobs.publish's after_models hook). It must never commit, read the wall clock, or keep
a clear identifier: outcome emails are pseudonymised with the same keyed hash as the sources.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pipelines import warehouse
from pipelines.metrics import impact, scorecard
from pipelines.metrics.config import ImpactConfig, load_impact_config
from pipelines.metrics.outcomes import ingest_outcomes, load_outcomes
from pipelines.privacy import Pseudonymiser, check_key, resolve_key

__all__ = ["compute_python_metrics", "PYTHON_TABLES"]

PYTHON_TABLES = ("mart_impact_engaged_vs_not", "mart_impact_correlation", "mart_impact_its", "mart_esn_scorecard")


def _demo_only(settings: Any) -> bool:
    enabled = [s for s in settings.sources if s.enabled]
    return bool(enabled) and all(s.kind == "demo" for s in enabled)


def _outcomes(settings: Any, cfg: ImpactConfig, key: str | None) -> pd.DataFrame:
    """The outcome rows: the configured drops pseudonymised into the lake (`outcomes.ingest_outcomes`),
    else the lake's pseudonymised outcome files (the demo's generated when there are none)."""
    from pipelines.rotation import OUTCOMES_VAULT, record_identities

    demo = None
    generate = cfg.generate_demo_outcomes if cfg.generate_demo_outcomes is not None else _demo_only(settings)
    if not cfg.outcome_files and generate:
        from pipelines.sources.demo import DemoOptions

        demo = DemoOptions.model_validate(next(s for s in settings.sources if s.kind == "demo").options)
    secret = resolve_key(key, env_var=settings.privacy.pseudonym_key_env, allow_demo=_demo_only(settings))
    # the lake's key only (a publication during a key rotation, or with a stale key, would split people)
    check_key(settings.lake_dir, secret, source_kind="outcomes", allow_demo=True, record=False,
              where="the pseudonymisation key of the outcome ingestion")
    ps = Pseudonymiser(secret)
    files = ingest_outcomes(settings, list(cfg.outcome_files), ps, demo=demo)
    record_identities(settings, OUTCOMES_VAULT, ps)  # the key rotation needs them
    return load_outcomes(files, ps)


def _person_months(conn: sa.Connection, end: dt.date) -> pd.DataFrame:
    sql = """
        with monthly as (
            select person_key, cast(date_trunc('month', activity_date) as date) as period,
                   cast(sum(actions) as bigint) as actions, count(*) as active_days
            from fct_person_daily_activity where activity_date <= :end
            group by person_key, cast(date_trunc('month', activity_date) as date)
        ),
        month_end as (
            select person_key, cast(date_trunc('month', as_of_date) as date) as period, usage_segment,
                   row_number() over (partition by person_key, cast(date_trunc('month', as_of_date) as date)
                                      order by as_of_date desc) as rn
            from fct_person_usage_daily where as_of_date <= :end
        )
        select coalesce(m.person_key, u.person_key) as person_key, coalesce(m.period, u.period) as period,
               coalesce(m.actions, 0) as actions, coalesce(m.active_days, 0) as active_days,
               u.usage_segment, p.department
        from monthly m
        full outer join (select * from month_end where rn = 1) u
          on u.person_key = m.person_key and u.period = m.period
        left join stg_people p on p.person_key = coalesce(m.person_key, u.person_key)
    """
    df = warehouse.read_frame(conn, sql, {"end": end})
    df["period"] = pd.to_datetime(df["period"]).dt.date
    for c in ("actions", "active_days"):
        df[c] = df[c].astype(float)
    return df


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
    r = one("select cross_department_interactions, interactions from mart_interactions_period where as_of_date = :d "
            "and period_type = 'rolling_28d' and segment_type = 'org' and not suppressed")
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


def compute_python_metrics(conn: sa.Connection, settings: Any, interval: Any, *, key: str | None = None,
                           config: ImpactConfig | None = None) -> dict[str, int]:
    """Compute and publish the impact tables; returns rows written per table."""
    cfg = config or load_impact_config()
    k = settings.privacy.min_group_size
    end = interval.end
    outcomes = _outcomes(settings, cfg, key)
    pm = _person_months(conn, end)
    measures = ["actions", "active_days"]
    if warehouse.table_exists(conn, "fct_person_network"):
        cols = set(warehouse.columns(conn, "fct_person_network"))
        if {"person_key", "pagerank"} <= cols:
            pr = warehouse.read_frame(conn, "select person_key, max(pagerank) as influence "
                                      "from fct_person_network group by person_key")
            pm = pm.merge(pr, on="person_key", how="left")
            measures.append("influence")
    written: dict[str, int] = {}
    ev = impact.engaged_vs_not(pm, outcomes, min_group_size=k, engaged_segments=cfg.engaged_segments,
                               samples=cfg.bootstrap_samples, seed=cfg.seed)
    written["mart_impact_engaged_vs_not"] = warehouse.publish_frame(
        conn, "mart_impact_engaged_vs_not", ev, key=["outcome", "segment_type", "segment_value"])
    corr = impact.correlations(pm, _dept_months(conn, end, k), outcomes, min_group_size=k, measures=measures)
    written["mart_impact_correlation"] = warehouse.publish_frame(
        conn, "mart_impact_correlation", corr, key=["outcome", "level", "engagement_measure", "lag_months"])
    daily = warehouse.read_frame(conn, "select * from mart_engagement_daily where segment_type = 'org' "
                                 "and activity_date <= :d", {"d": end})
    daily["activity_date"] = pd.to_datetime(daily["activity_date"]).dt.date
    its = impact.interrupted_series(daily, [(i.name, i.date, i.metric) for i in cfg.interventions],
                                    window_days=cfg.its_window_days)
    written["mart_impact_its"] = warehouse.publish_frame(conn, "mart_impact_its", its,
                                                         key=["intervention", "metric"])
    card = scorecard.scorecard(end, _scorecard_inputs(conn, end), cfg.targets, min_group_size=k,
                               samples=cfg.bootstrap_samples, seed=cfg.seed)
    # a snapshot of the run's last day (not one row set per run): a batch run and the same days run one by
    # one publish the same table; the history of every input is kept in the marts it reads
    written["mart_esn_scorecard"] = warehouse.publish_frame(conn, "mart_esn_scorecard", card,
                                                            key=["as_of_date", "metric"])
    return written
