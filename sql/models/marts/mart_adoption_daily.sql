-- depends_on: {{ ref('int_segment_headcount_daily') }}
with calendar as (
    {{ esn_interval_days() }}
),
employed as (
    -- the people int_segment_headcount_daily counts (the same headcount as every other mart): outside the
    -- HR directory, a person whose every platform account is deactivated is not counted
    select c.as_of_date, p.person_key
    from calendar c
    join {{ ref('stg_people') }} p
      on {{ esn_in_headcount_on('p', 'c.as_of_date') }}
),
first_activity as (
    -- claimed: the first action, counted like the usage segments' (events, and the usage reports' counts of
    -- the products no per-event source loads)
    select person_key, min(activity_date) as first_active_date
    from (
        select person_key, activity_date from {{ ref('fct_person_daily_activity') }} where activity_date <= {{ esn_date('end_date') }}
        union all
        select person_key, activity_date from {{ ref('int_person_report_actions_daily') }} where activity_date <= {{ esn_date('end_date') }}
    ) a
    group by person_key
),
first_habitual as (
    select person_key, min(as_of_date) as first_habitual_date
    from {{ ref('fct_person_usage_daily') }}
    where as_of_date <= {{ esn_date('end_date') }} and usage_segment in ('power', 'habitual')
    group by person_key
),
usage as (
    select as_of_date, person_key, usage_segment
    from {{ ref('fct_person_usage_daily') }}
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
people_day as (
    select
        e.as_of_date,
        e.person_key,
        coalesce(u.usage_segment, 'non-user') as usage_segment,
        case when f.first_active_date <= e.as_of_date then 1 else 0 end as claimed,
        case when h.first_habitual_date <= e.as_of_date then 1 else 0 end as ever_habitual
    from employed e
    left join usage u on u.as_of_date = e.as_of_date and u.person_key = e.person_key
    left join first_activity f on f.person_key = e.person_key
    left join first_habitual h on h.person_key = e.person_key
),
aggregated as (
    select
        d.as_of_date,
        m.segment_type,
        m.segment_value,
        count(*) as headcount,
        sum(d.claimed) as claimed,
        sum(case when d.usage_segment = 'power' then 1 else 0 end) as power_users,
        sum(case when d.usage_segment = 'habitual' then 1 else 0 end) as habitual_users,
        sum(case when d.usage_segment = 'novice' then 1 else 0 end) as novice_users,
        sum(case when d.usage_segment = 'low' then 1 else 0 end) as low_users,
        sum(case when d.usage_segment = 'non-user' then 1 else 0 end) as non_users,
        sum(d.ever_habitual) as ever_habitual
    from people_day d
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'd.person_key', 'd.as_of_date') }}
    group by d.as_of_date, m.segment_type, m.segment_value
),
flagged as (
    select *, headcount < {{ esn_number('min_group_size') }} as suppressed from aggregated
)
select
    as_of_date,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(headcount as bigint) end as headcount,
    case when suppressed then null else cast(headcount as bigint) end as registered,
    case when suppressed then null else cast(claimed as bigint) end as claimed,
    case when suppressed then null else cast(claimed as double precision) / headcount end as claimed_rate,
    case when suppressed then null else cast(power_users as bigint) end as power_users,
    case when suppressed then null else cast(habitual_users as bigint) end as habitual_users,
    case when suppressed then null else cast(novice_users as bigint) end as novice_users,
    case when suppressed then null else cast(low_users as bigint) end as low_users,
    case when suppressed then null else cast(non_users as bigint) end as non_users,
    case when suppressed then null else cast(power_users + habitual_users as double precision) / headcount end
        as habitual_or_power_share,
    case when suppressed then null else cast(ever_habitual as bigint) end as ever_habitual,
    case when suppressed then null else cast(ever_habitual as double precision) / headcount end as adoption_curve_share
from flagged
