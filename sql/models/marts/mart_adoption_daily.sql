-- depends_on: {{ ref('int_segment_headcount_daily') }}
with calendar as (
    {{ esn_interval_days() }}
),
people as (
    select * from {{ ref('stg_people') }}
),
membership as (
    select * from {{ ref('int_segment_membership') }}
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
ranges as (
    -- a person's days in the headcount and a segment; claimed and ever habitual from the first such day
    select
        r.*,
        r.r_from as headcount_from,
        case when f.first_active_date is not null then greatest(r.r_from, f.first_active_date) end as claimed_from,
        case when h.first_habitual_date is not null then greatest(r.r_from, h.first_habitual_date) end
            as ever_habitual_from
    from ({{ esn_headcount_ranges('people', 'membership') }}) r
    left join first_activity f on f.person_key = r.person_key
    left join first_habitual h on h.person_key = r.person_key
),
{{ esn_range_counts('ranges', ['headcount', 'claimed', 'ever_habitual']) }},
usage_counts as (
    -- the people of the headcount by usage segment: the person-days of fct_person_usage_daily (a person
    -- without a row on the day is a non-user)
    select
        u.as_of_date,
        m.segment_type,
        m.segment_value,
        sum(case when u.usage_segment = 'power' then 1 else 0 end) as power_users,
        sum(case when u.usage_segment = 'habitual' then 1 else 0 end) as habitual_users,
        sum(case when u.usage_segment = 'novice' then 1 else 0 end) as novice_users,
        sum(case when u.usage_segment = 'low' then 1 else 0 end) as low_users
    from {{ ref('fct_person_usage_daily') }} u
    join people p on p.person_key = u.person_key and {{ esn_in_headcount_on('p', 'u.as_of_date') }}
    join membership m on {{ esn_valid_on('m', 'u.person_key', 'u.as_of_date') }}
    where u.as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    group by u.as_of_date, m.segment_type, m.segment_value
),
aggregated as (
    select
        c.as_of_date,
        c.segment_type,
        c.segment_value,
        c.headcount,
        c.claimed,
        coalesce(u.power_users, 0) as power_users,
        coalesce(u.habitual_users, 0) as habitual_users,
        coalesce(u.novice_users, 0) as novice_users,
        coalesce(u.low_users, 0) as low_users,
        c.headcount - coalesce(u.power_users + u.habitual_users + u.novice_users + u.low_users, 0) as non_users,
        c.ever_habitual
    from range_counts c
    left join usage_counts u
      on u.as_of_date = c.as_of_date and u.segment_type = c.segment_type and u.segment_value = c.segment_value
    where c.headcount > 0
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
