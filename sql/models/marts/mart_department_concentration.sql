with activity as (
    select activity_date, person_key
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
      and contributions > 0
),
people as (
    select distinct person_key from activity
),
days as (
    select cast({{ esn_date('start_date', -30) }} + cast(g.i as integer) as date) as day
    from generate_series(0, {{ esn_days_between('start_date', 'end_date') }} + 30) as g(i)
),
grid as (
    -- a dense contributor x day grid: whether the person contributed in a period is a window sum over rows
    select
        p.person_key,
        d.day,
        cast({{ dbt.date_trunc('week', 'd.day') }} as date) as week_start,
        cast({{ dbt.date_trunc('month', 'd.day') }} as date) as month_start,
        case when a.person_key is null then 0 else 1 end as contributed
    from people p
    cross join days d
    left join activity a on a.person_key = p.person_key and a.activity_date = d.day
),
cumulative as (
    select person_key, day, week_start, month_start,
           cast(sum(contributed) over w as bigint) as c_days
    from grid
    window w as (partition by person_key order by day rows between unbounded preceding and current row)
),
rolled as (
    -- days with a contribution in each period: the running total minus the one the day before it starts
    select
        person_key,
        day as as_of_date,
        c_days - lag(c_days, 28, cast(0 as bigint)) over w as r28_days,
        c_days - lag(c_days, cast(day - week_start as integer) + 1, cast(0 as bigint)) over w as wk_days,
        c_days - lag(c_days, cast(day - month_start as integer) + 1, cast(0 as bigint)) over w as mo_days
    from cumulative
    window w as (partition by person_key order by day)
),
contributors as (
    select as_of_date, 'rolling_28d' as period_type, person_key
    from rolled
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }} and r28_days > 0
    union all
    select as_of_date, 'week', person_key
    from rolled
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }} and wk_days > 0
    union all
    select as_of_date, 'month', person_key
    from rolled
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }} and mo_days > 0
),
by_department as (
    select c.as_of_date, c.period_type, m.segment_type, m.segment_value, p.department, count(*) as contributors
    from contributors c
    join {{ ref('int_people_history') }} p  -- the contributor's department on the day, not today's
      on p.person_key = c.person_key
     and c.as_of_date between p.valid_from and p.valid_to
    join {{ ref('int_segment_membership') }} m
      on m.person_key = c.person_key
     and c.as_of_date between m.valid_from and m.valid_to
     and m.segment_type <> 'department'
    where p.department is not null  -- people without a department (outside the directory) are no department
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
    select *, contributors < {{ esn_number('min_group_size') }} as suppressed from aggregated
),
day_segments as (
    -- every segment of the day has a row, active or not: a missing row would say that nobody in it contributed
    -- (for a small segment, a figure about fewer than :min_group_size people); withheld like any small group
    select h.as_of_date, p.period_type, h.segment_type, h.segment_value
    from {{ ref('int_segment_headcount_daily') }} h
    cross join (values ('rolling_28d'), ('week'), ('month')) as p(period_type)
    where h.as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }} and h.segment_type <> 'department'
),
completed as (
    select
        coalesce(f.as_of_date, d.as_of_date) as as_of_date,
        coalesce(f.period_type, d.period_type) as period_type,
        coalesce(f.segment_type, d.segment_type) as segment_type,
        coalesce(f.segment_value, d.segment_value) as segment_value,
        coalesce(f.suppressed, true) as suppressed,
        f.contributors,
        f.departments_contributing,
        f.largest_department,
        f.largest_department_share,
        f.hhi
    from flagged f
    full outer join day_segments d
      on d.as_of_date = f.as_of_date and d.period_type = f.period_type
     and d.segment_type = f.segment_type and d.segment_value = f.segment_value
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
from completed
