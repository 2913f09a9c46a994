with calendar as (
    {{ esn_interval_days('activity_date') }}
),
activity as (
    select *
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
),
windowed as (
    select
        c.activity_date,
        a.person_key,
        max(case when a.activity_date = c.activity_date then 1 else 0 end) as active_1d,
        max(case when a.activity_date > c.activity_date - 7 then 1 else 0 end) as active_7d,
        max(case when a.activity_date = c.activity_date and a.contributions > 0 then 1 else 0 end) as posting_1d,
        max(case when a.activity_date > c.activity_date - 7 and a.contributions > 0 then 1 else 0 end) as posting_7d,
        max(case when a.contributions > 0 then 1 else 0 end) as posting_28d,
        sum(a.actions) as actions_28d
    from calendar c
    join activity a on a.activity_date between c.activity_date - 27 and c.activity_date
    group by c.activity_date, a.person_key
),
usage as (
    select
        w.activity_date,
        s.segment_type,
        s.segment_value,
        sum(w.active_1d) as dau,
        sum(w.active_7d) as wau,
        count(*) as mau,
        sum(w.posting_1d) as posting_users_1d,
        sum(w.posting_7d) as posting_users_7d,
        sum(w.posting_28d) as posting_users_28d,
        sum(w.actions_28d) as actions_28d
    from windowed w
    join {{ ref('int_segment_membership') }} s
      on {{ esn_valid_on('s', 'w.person_key', 'w.activity_date') }}
    group by w.activity_date, s.segment_type, s.segment_value
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
