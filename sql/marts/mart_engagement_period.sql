-- model: mart_engagement_period
-- grain: one row per day (as_of_date), period type and segment
-- key: as_of_date, period_type, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: fct_person_daily_activity, int_segment_membership, int_segment_headcount_daily
-- owner: esn-metrics
-- description: adoption and engagement by period. period_type: day, rolling_7d, rolling_28d (windows
--   ending on as_of_date), week (ISO week to date) and month (calendar month to date); the complete ISO
--   week / month is the row whose as_of_date is the period's last day (is_complete). Segments are
--   point-in-time (tenure band as of as_of_date). Published: every metric is NULL and suppressed is true
--   when the segment's headcount is below :min_group_size.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
windows as (
    select as_of_date, 'day' as period_type, as_of_date as period_start, as_of_date as period_end from calendar
    union all
    select as_of_date, 'rolling_7d', as_of_date - 6, as_of_date from calendar
    union all
    select as_of_date, 'rolling_28d', as_of_date - 27, as_of_date from calendar
    union all
    select as_of_date, 'week', cast(date_trunc('week', as_of_date) as date),
           cast(date_trunc('week', as_of_date) as date) + 6 from calendar
    union all
    select as_of_date, 'month', cast(date_trunc('month', as_of_date) as date),
           cast(cast(date_trunc('month', as_of_date) as date) + 31 - cast(extract(day from cast(date_trunc('month', as_of_date) as date) + 31) as integer) as date)
    from calendar
),
activity as (
    select *
    from fct_person_daily_activity
    where activity_date between cast(:start_date as date) - 30 and :end_date
),
per_person as (
    select
        w.as_of_date,
        w.period_type,
        a.person_key,
        sum(a.actions) as actions,
        sum(a.contributions) as contributions,
        sum(a.posts) as posts,
        sum(a.replies) as replies,
        sum(a.reactions) as reactions,
        count(*) as active_days
    from windows w
    join activity a on a.activity_date between w.period_start and w.as_of_date
    group by w.as_of_date, w.period_type, a.person_key
),
usage as (
    select
        p.as_of_date,
        p.period_type,
        m.segment_type,
        m.segment_value,
        count(*) as active_users,
        sum(case when p.contributions > 0 then 1 else 0 end) as posting_users,
        sum(p.actions) as actions,
        sum(p.contributions) as contributions,
        sum(p.posts) as posts,
        sum(p.replies) as replies,
        sum(p.reactions) as reactions,
        sum(p.active_days) as person_days
    from per_person p
    join int_segment_membership m
      on m.person_key = p.person_key
     and p.as_of_date between m.valid_from and m.valid_to
    group by p.as_of_date, p.period_type, m.segment_type, m.segment_value
),
joined as (
    select
        w.as_of_date,
        w.period_type,
        w.period_start,
        w.period_end,
        h.segment_type,
        h.segment_value,
        h.headcount,
        cast(coalesce(u.active_users, 0) as bigint) as active_users,
        cast(coalesce(u.posting_users, 0) as bigint) as posting_users,
        cast(coalesce(u.actions, 0) as bigint) as actions,
        cast(coalesce(u.contributions, 0) as bigint) as contributions,
        cast(coalesce(u.posts, 0) as bigint) as posts,
        cast(coalesce(u.replies, 0) as bigint) as replies,
        cast(coalesce(u.reactions, 0) as bigint) as reactions,
        cast(coalesce(u.person_days, 0) as bigint) as person_days,
        w.as_of_date - w.period_start + 1 as days_in_window,
        h.headcount < :min_group_size as suppressed
    from windows w
    join int_segment_headcount_daily h on h.as_of_date = w.as_of_date
    left join usage u
      on u.as_of_date = w.as_of_date
     and u.period_type = w.period_type
     and u.segment_type = h.segment_type
     and u.segment_value = h.segment_value
)
select
    as_of_date,
    period_type,
    period_start,
    period_end,
    as_of_date = period_end as is_complete,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else headcount end as headcount,
    case when suppressed then null else active_users end as active_users,
    case when suppressed then null else posting_users end as posting_users,
    case when suppressed then null else actions end as actions,
    case when suppressed then null else contributions end as contributions,
    case when suppressed then null else posts end as posts,
    case when suppressed then null else replies end as replies,
    case when suppressed then null else reactions end as reactions,
    case when suppressed or headcount = 0 then null
         else cast(active_users as double precision) / headcount end as participation_rate,
    case when suppressed or headcount = 0 then null
         else cast(posting_users as double precision) / headcount end as contributor_rate,
    case when suppressed or active_users = 0 then null
         else cast(actions as double precision) / active_users end as activity_per_active_user,
    case when suppressed or active_users = 0 then null
         else cast(person_days as double precision) / (days_in_window * active_users) end as stickiness,
    case when suppressed or posts = 0 then null
         else cast(replies as double precision) / posts end as reply_post_ratio,
    case when suppressed or active_users = 0 then null
         else cast(posts as double precision) / active_users end as threads_per_user
from joined
