with activity as (
    select activity_date, person_key
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
      and contributions > 0
),
-- a dense contributor x day grid (days: 1 on a day with a contribution): whether the person contributed in
-- a period is a window sum over rows
{{ esn_person_day_grid('days') }},
{{ esn_person_period_totals(['days'], ['rolling_28d', 'week', 'month']) }},
contributors as (
    {{- esn_person_periods(['rolling_28d', 'week', 'month'], 'days') }}
),
by_department as (
    select c.as_of_date, c.period_type, m.segment_type, m.segment_value, p.department, count(*) as contributors
    from contributors c
    join {{ ref('int_people_history') }} p  -- the contributor's department on the day, not today's
      on {{ esn_valid_on('p', 'c.person_key', 'c.as_of_date') }}
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'c.person_key', 'c.as_of_date') }}
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
    {{ esn_complete_day_segments(['contributors', 'departments_contributing', 'largest_department', 'largest_department_share', 'hhi']) }}
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
