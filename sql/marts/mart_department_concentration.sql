-- model: mart_department_concentration
-- grain: one row per day (as_of_date), period type (rolling_28d, week, month) and segment (not department)
-- key: as_of_date, period_type, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: fct_person_daily_activity, int_segment_membership, stg_people
-- owner: esn-metrics
-- description: how concentrated contribution is in one department ("only one department adopts"):
--   contributors (people with a post or reply in the window), the largest department's share of them and
--   the Herfindahl index over departments (sum of squared shares; 1 = a single department). Suppressed when
--   fewer than :min_group_size people contributed.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
windows as (
    select as_of_date, 'rolling_28d' as period_type, as_of_date - 27 as period_start from calendar
    union all
    select as_of_date, 'week', cast(date_trunc('week', as_of_date) as date) from calendar
    union all
    select as_of_date, 'month', cast(date_trunc('month', as_of_date) as date) from calendar
),
contributors as (
    select distinct w.as_of_date, w.period_type, a.person_key
    from windows w
    join fct_person_daily_activity a
      on a.activity_date between w.period_start and w.as_of_date
     and a.contributions > 0
    where a.activity_date between cast(:start_date as date) - 30 and :end_date
),
by_department as (
    select c.as_of_date, c.period_type, m.segment_type, m.segment_value, p.department, count(*) as contributors
    from contributors c
    join stg_people p on p.person_key = c.person_key
    join int_segment_membership m
      on m.person_key = c.person_key
     and c.as_of_date between m.valid_from and m.valid_to
     and m.segment_type <> 'department'
    group by c.as_of_date, c.period_type, m.segment_type, m.segment_value, p.department
),
shares as (
    select
        *,
        sum(contributors) over (partition by as_of_date, period_type, segment_type, segment_value) as total,
        row_number() over (partition by as_of_date, period_type, segment_type, segment_value
                           order by contributors desc, department) as dept_rank
    from by_department
),
aggregated as (
    select
        as_of_date,
        period_type,
        segment_type,
        segment_value,
        max(total) as contributors,
        count(*) as departments_contributing,
        max(case when dept_rank = 1 then department end) as largest_department,
        max(case when dept_rank = 1 then cast(contributors as double precision) / total end) as largest_department_share,
        sum((cast(contributors as double precision) / total) * (cast(contributors as double precision) / total)) as hhi
    from shares
    group by as_of_date, period_type, segment_type, segment_value
),
flagged as (
    select *, contributors < :min_group_size as suppressed from aggregated
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(contributors as bigint) end as contributors,
    case when suppressed then null else cast(departments_contributing as bigint) end as departments_contributing,
    case when suppressed then null else largest_department end as largest_department,
    case when suppressed then null else largest_department_share end as largest_department_share,
    case when suppressed then null else hhi end as department_hhi
from flagged
