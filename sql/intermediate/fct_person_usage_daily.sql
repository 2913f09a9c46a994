-- model: fct_person_usage_daily
-- grain: one row per day and person with any action in the 12 weeks (84 days) ending that day
-- key: as_of_date, person_key
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: fct_person_daily_activity
-- owner: esn-metrics
-- description: INTERNAL usage segment per person (vivainsights identify_usage_segments, 12-week version):
--   power user = at least 15 actions a week on average and active in at least 9 of the last 12 weeks;
--   habitual = active in at least 9 of 12 weeks; novice = at least 1 action a week on average;
--   low = any action in the 12 weeks. People absent from the table on a day are non-users.
--   Weeks are the twelve 7-day blocks ending on the day (not ISO weeks), so the result is the same on
--   every weekday. Thresholds are the specification's (METRICS.md section 1).
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
activity as (
    select activity_date, person_key, actions
    from fct_person_daily_activity
    where activity_date between cast(:start_date as date) - 83 and :end_date
),
per_person as (
    select
        c.as_of_date,
        a.person_key,
        cast(sum(a.actions) as bigint) as actions_12w,
        count(distinct floor(cast(c.as_of_date - a.activity_date as double precision) / 7)) as active_weeks_12w
    from calendar c
    join activity a on a.activity_date between c.as_of_date - 83 and c.as_of_date
    group by c.as_of_date, a.person_key
)
select
    as_of_date,
    person_key,
    actions_12w,
    cast(active_weeks_12w as bigint) as active_weeks_12w,
    case
        when actions_12w / 12.0 >= 15 and active_weeks_12w >= 9 then 'power'
        when active_weeks_12w >= 9 then 'habitual'
        when actions_12w / 12.0 >= 1 then 'novice'
        else 'low'
    end as usage_segment
from per_person
