with calendar as (
    {{ esn_interval_days() }}
),
activity as (
    select person_key, activity_date, contributions, actions
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
),
window_ranges as (
    -- an active day counts its person active (posting: with a contribution) on the as-of days whose
    -- 7- or 28-day window holds it: [activity_date, activity_date + 6 or + 27]
    select person_key, 'mau' as kind, activity_date as r_from, activity_date + 27 as r_to from activity
    union all
    select person_key, 'wau', activity_date, activity_date + 6 from activity
    union all
    select person_key, 'posting_28d', activity_date, activity_date + 27 from activity where contributions > 0
    union all
    select person_key, 'posting_7d', activity_date, activity_date + 6 from activity where contributions > 0
),
window_islands as (
    -- a person counts once a day: the union of their ranges of each kind
    {{ esn_range_islands('window_ranges', ['person_key', 'kind'], 'r_from', 'r_to') }}
),
person_ranges as (
    -- (person, first and last as-of day, what the range counts)
    select person_key, covered_from as r_from, covered_to as r_to,
           0 as dau, case when kind = 'wau' then 1 else 0 end as wau, case when kind = 'mau' then 1 else 0 end as mau,
           0 as posting_users_1d, case when kind = 'posting_7d' then 1 else 0 end as posting_users_7d,
           case when kind = 'posting_28d' then 1 else 0 end as posting_users_28d, 0 as actions_28d
    from window_islands
    union all
    select person_key, activity_date, activity_date, 1, 0, 0, case when contributions > 0 then 1 else 0 end, 0, 0, 0
    from activity
    union all
    select person_key, activity_date, activity_date + 27, 0, 0, 0, 0, 0, 0, actions
    from activity
),
membership as (
    select * from {{ ref('int_segment_membership') }}
),
{{ esn_person_profiles() }},
ranges as (
    -- counted in the person's profile of each as-of day (their set of segments: esn_person_profiles): the
    -- range clipped to each epoch of the person (epochs lie within the interval)
    select
        e.profile_id,
        greatest(r.r_from, e.epoch_from) as range_from,
        least(r.r_to, e.epoch_to) as range_to,
        r.dau, r.wau, r.mau, r.posting_users_1d, r.posting_users_7d, r.posting_users_28d, r.actions_28d
    from person_ranges r
    join person_epochs e
      on e.person_key = r.person_key and e.epoch_from <= r.r_to and e.epoch_to >= r.r_from
),
{{ esn_range_daily_totals('profile_totals', ['profile_id'],
                          ['dau', 'wau', 'mau', 'posting_users_1d', 'posting_users_7d', 'posting_users_28d',
                           'actions_28d']) }},
usage as (
    -- each profile's totals in each of its segments
    select t.as_of_date as activity_date, g.segment_type, g.segment_value,
           sum(t.dau) as dau, sum(t.wau) as wau, sum(t.mau) as mau, sum(t.posting_users_1d) as posting_users_1d,
           sum(t.posting_users_7d) as posting_users_7d, sum(t.posting_users_28d) as posting_users_28d,
           sum(t.actions_28d) as actions_28d
    from profile_totals t
    join profile_segments g on g.profile_id = t.profile_id
    group by t.as_of_date, g.segment_type, g.segment_value
),
headcount as (
    select as_of_date as activity_date, segment_type, segment_value, headcount
    from {{ ref('int_segment_headcount_daily') }}
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
joined as (
    select
        h.activity_date,
        h.segment_type,
        h.segment_value,
        h.headcount,
        cast(coalesce(u.dau, 0) as bigint) as dau,
        cast(coalesce(u.wau, 0) as bigint) as wau,
        cast(coalesce(u.mau, 0) as bigint) as mau,
        cast(coalesce(u.posting_users_1d, 0) as bigint) as posting_users_1d,
        cast(coalesce(u.posting_users_7d, 0) as bigint) as posting_users_7d,
        cast(coalesce(u.posting_users_28d, 0) as bigint) as posting_users_28d,
        cast(coalesce(u.actions_28d, 0) as bigint) as actions_28d,
        h.headcount < {{ esn_number('min_group_size') }} as suppressed
    from headcount h
    left join usage u
      on u.activity_date = h.activity_date
     and u.segment_type = h.segment_type
     and u.segment_value = h.segment_value
)
select
    activity_date,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(headcount as bigint) end as headcount,
    case when suppressed then null else dau end as dau,
    case when suppressed then null else wau end as wau,
    case when suppressed then null else mau end as mau,
    case when suppressed then null else posting_users_1d end as posting_users_1d,
    case when suppressed then null else posting_users_7d end as posting_users_7d,
    case when suppressed then null else posting_users_28d end as posting_users_28d,
    case when suppressed or headcount = 0 then null else cast(mau as double precision) / headcount end as participation_rate,
    case when suppressed or headcount = 0 then null else cast(posting_users_28d as double precision) / headcount end as contributor_rate,
    case when suppressed or mau = 0 then null else cast(dau as double precision) / mau end as stickiness,
    case when suppressed or mau = 0 then null else cast(actions_28d as double precision) / mau end as activity_per_active_user
from joined
