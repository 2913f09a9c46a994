with activity as (
    select person_key, activity_date
    from {{ ref('fct_person_daily_activity') }}
    where activity_date <= {{ esn_date('end_date') }}
),
first_activity as (
    select person_key, min(activity_date) as first_active_date
    from activity
    group by person_key
),
monthly as (
    select distinct person_key, cast({{ dbt.date_trunc('month', 'activity_date') }} as date) as activity_month
    from activity
),
cohorts as (
    select
        f.person_key,
        cast({{ dbt.date_trunc('month', 'f.first_active_date') }} as date) as cohort_month,
        m.segment_type,
        m.segment_value
    from first_activity f
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'f.person_key', 'f.first_active_date') }}
),
cohort_sizes as (
    select cohort_month, segment_type, segment_value, count(*) as cohort_size
    from cohorts
    group by cohort_month, segment_type, segment_value
),
retained as (
    select c.cohort_month, mo.activity_month, c.segment_type, c.segment_value, count(*) as retained
    from cohorts c
    join monthly mo on mo.person_key = c.person_key and mo.activity_month >= c.cohort_month
    group by c.cohort_month, mo.activity_month, c.segment_type, c.segment_value
),
months as (
    select distinct activity_month from monthly
),
grid as (
    select s.cohort_month, mo.activity_month, s.segment_type, s.segment_value, s.cohort_size,
           coalesce(r.retained, 0) as retained,
           s.cohort_size < {{ esn_number('min_group_size') }} as suppressed
    from cohort_sizes s
    join months mo on mo.activity_month >= s.cohort_month
    left join retained r
      on r.cohort_month = s.cohort_month and r.activity_month = mo.activity_month
     and r.segment_type = s.segment_type and r.segment_value = s.segment_value
)
select
    cohort_month,
    activity_month,
    cast((extract(year from activity_month) - extract(year from cohort_month)) * 12
         + extract(month from activity_month) - extract(month from cohort_month) as bigint) as months_since,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(cohort_size as bigint) end as cohort_size,
    case when suppressed then null else cast(retained as bigint) end as retained,
    case when suppressed then null else cast(retained as double precision) / cohort_size end as retention_rate
from grid
