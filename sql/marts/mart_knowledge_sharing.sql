-- model: mart_knowledge_sharing
-- grain: one row per day (as_of_date), period type and segment (asker's segments, or segment_type 'container')
-- key: as_of_date, period_type, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: fct_posts, int_segment_membership
-- owner: esn-metrics
-- description: questions asked in the window (rolling_7d, rolling_28d, ISO week to date, month to date) and
--   what had happened to them by the end of as_of_date ("as of" semantics: a row never changes once its
--   day is over). answered_rate: at least one reply from someone other than the asker; answered_24h_rate:
--   within 24 hours, over questions asked before as_of_date (their 24 hours are over); median and p90
--   hours to the first reply, over questions answered by the day; accepted answers where the platform
--   marks them. Suppressed when fewer than :min_group_size distinct people asked in the window.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
windows as (
    select as_of_date, 'rolling_7d' as period_type, as_of_date - 6 as period_start from calendar
    union all
    select as_of_date, 'rolling_28d', as_of_date - 27 from calendar
    union all
    select as_of_date, 'week', cast(date_trunc('week', as_of_date) as date) from calendar
    union all
    select as_of_date, 'month', cast(date_trunc('month', as_of_date) as date) from calendar
),
questions as (
    select *
    from fct_posts
    where is_question and activity_date between cast(:start_date as date) - 30 and :end_date
),
in_window as (
    select
        w.as_of_date,
        w.period_type,
        q.author_key,
        q.container_id,
        q.activity_date,
        case when q.first_reply_date <= w.as_of_date then 1 else 0 end as answered,
        case when q.activity_date < w.as_of_date then 1 else 0 end as eligible_24h,
        case when q.activity_date < w.as_of_date and q.hours_to_first_reply <= 24 then 1 else 0 end as answered_24h,
        case when q.first_reply_date <= w.as_of_date then q.hours_to_first_reply end as hours_to_first_reply,
        case when q.accepted_date <= w.as_of_date then 1 else 0 end as accepted
    from windows w
    join questions q on q.activity_date between w.period_start and w.as_of_date
),
segmented as (
    select i.*, m.segment_type, m.segment_value
    from in_window i
    join int_segment_membership m
      on m.person_key = i.author_key
     and i.as_of_date between m.valid_from and m.valid_to
    union all
    select i.*, 'container', i.container_id
    from in_window i
    where i.container_id is not null
),
aggregated as (
    select
        as_of_date,
        period_type,
        segment_type,
        segment_value,
        count(distinct author_key) as askers,
        count(*) as questions,
        sum(answered) as answered,
        sum(eligible_24h) as eligible_24h,
        sum(answered_24h) as answered_24h,
        sum(accepted) as accepted,
        percentile_cont(0.5) within group (order by hours_to_first_reply) as median_hours,
        percentile_cont(0.9) within group (order by hours_to_first_reply) as p90_hours
    from segmented
    group by as_of_date, period_type, segment_type, segment_value
),
flagged as (
    select *, askers < :min_group_size as suppressed from aggregated
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(askers as bigint) end as askers,
    case when suppressed then null else cast(questions as bigint) end as questions,
    case when suppressed then null else cast(answered as bigint) end as questions_answered,
    case when suppressed then null else cast(answered as double precision) / questions end as answered_rate,
    case when suppressed or eligible_24h = 0 then null
         else cast(answered_24h as double precision) / eligible_24h end as answered_24h_rate,
    case when suppressed then null else cast(questions - answered as double precision) / questions end as unanswered_rate,
    case when suppressed then null else cast(median_hours as double precision) end as median_hours_to_first_response,
    case when suppressed then null else cast(p90_hours as double precision) end as p90_hours_to_first_response,
    case when suppressed then null else cast(accepted as bigint) end as accepted_answers,
    case when suppressed then null else cast(accepted as double precision) / questions end as accepted_rate
from flagged
