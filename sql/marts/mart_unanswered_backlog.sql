-- model: mart_unanswered_backlog
-- grain: one row per day and segment (asker's segments, or segment_type 'container')
-- key: as_of_date, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: fct_posts, int_segment_membership
-- owner: esn-metrics
-- description: questions still open at the end of the day (no reply from anyone but the asker yet) by age
--   band: 0-1 days (asked that day), 1-7, 7-30 and over 30 days. Suppressed when the open questions come
--   from fewer than :min_group_size distinct askers.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
questions as (
    select author_key, container_id, activity_date, first_reply_date
    from fct_posts
    where is_question and activity_date <= :end_date
      and (first_reply_date is null or first_reply_date >= :start_date)
),
open_questions as (
    select c.as_of_date, q.author_key, q.container_id, c.as_of_date - q.activity_date as age_days
    from calendar c
    join questions q
      on q.activity_date <= c.as_of_date
     and (q.first_reply_date is null or q.first_reply_date > c.as_of_date)
),
segmented as (
    select o.*, m.segment_type, m.segment_value
    from open_questions o
    join int_segment_membership m
      on m.person_key = o.author_key
     and o.as_of_date between m.valid_from and m.valid_to
    union all
    select o.*, 'container', o.container_id
    from open_questions o
    where o.container_id is not null
),
aggregated as (
    select
        as_of_date,
        segment_type,
        segment_value,
        count(distinct author_key) as askers,
        count(*) as open_questions,
        sum(case when age_days < 1 then 1 else 0 end) as open_0_1d,
        sum(case when age_days >= 1 and age_days < 7 then 1 else 0 end) as open_1_7d,
        sum(case when age_days >= 7 and age_days < 30 then 1 else 0 end) as open_7_30d,
        sum(case when age_days >= 30 then 1 else 0 end) as open_over_30d
    from segmented
    group by as_of_date, segment_type, segment_value
),
flagged as (
    select *, askers < :min_group_size as suppressed from aggregated
)
select
    as_of_date,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(open_questions as bigint) end as open_questions,
    case when suppressed then null else cast(open_0_1d as bigint) end as open_0_1d,
    case when suppressed then null else cast(open_1_7d as bigint) end as open_1_7d,
    case when suppressed then null else cast(open_7_30d as bigint) end as open_7_30d,
    case when suppressed then null else cast(open_over_30d as bigint) end as open_over_30d
from flagged
