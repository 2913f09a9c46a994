with calendar as (
    {{ esn_interval_days() }}
),
windows as (
    {{- esn_period_windows(['day', 'rolling_7d', 'rolling_28d', 'week', 'month'], with_end=true) }}
),
activity as (
    select *
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
{{ esn_person_day_grid('days', ['actions', 'contributions', 'posts', 'replies', 'reactions']) }},
{{ esn_person_period_totals(['days', 'actions', 'contributions', 'posts', 'replies', 'reactions'],
                            ['day', 'rolling_7d', 'rolling_28d', 'week', 'month']) }},
in_range as (
    select * from rolled
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and r28_days + mo_days > 0
),
usage_wide as (
    select
        p.as_of_date,
        m.segment_type,
        m.segment_value,
        sum(case when p.d_days > 0 then 1 else 0 end) as d_users,
        sum(case when p.d_contributions > 0 then 1 else 0 end) as d_posting,
        sum(p.d_actions) as d_actions, sum(p.d_contributions) as d_contributions, sum(p.d_posts) as d_posts,
        sum(p.d_replies) as d_replies, sum(p.d_reactions) as d_reactions, sum(p.d_days) as d_days,
        sum(case when p.r7_days > 0 then 1 else 0 end) as r7_users,
        sum(case when p.r7_contributions > 0 then 1 else 0 end) as r7_posting,
        sum(p.r7_actions) as r7_actions, sum(p.r7_contributions) as r7_contributions, sum(p.r7_posts) as r7_posts,
        sum(p.r7_replies) as r7_replies, sum(p.r7_reactions) as r7_reactions, sum(p.r7_days) as r7_days,
        sum(case when p.r28_days > 0 then 1 else 0 end) as r28_users,
        sum(case when p.r28_contributions > 0 then 1 else 0 end) as r28_posting,
        sum(p.r28_actions) as r28_actions, sum(p.r28_contributions) as r28_contributions,
        sum(p.r28_posts) as r28_posts, sum(p.r28_replies) as r28_replies, sum(p.r28_reactions) as r28_reactions,
        sum(p.r28_days) as r28_days,
        sum(case when p.wk_days > 0 then 1 else 0 end) as wk_users,
        sum(case when p.wk_contributions > 0 then 1 else 0 end) as wk_posting,
        sum(p.wk_actions) as wk_actions, sum(p.wk_contributions) as wk_contributions, sum(p.wk_posts) as wk_posts,
        sum(p.wk_replies) as wk_replies, sum(p.wk_reactions) as wk_reactions, sum(p.wk_days) as wk_days,
        sum(case when p.mo_days > 0 then 1 else 0 end) as mo_users,
        sum(case when p.mo_contributions > 0 then 1 else 0 end) as mo_posting,
        sum(p.mo_actions) as mo_actions, sum(p.mo_contributions) as mo_contributions, sum(p.mo_posts) as mo_posts,
        sum(p.mo_replies) as mo_replies, sum(p.mo_reactions) as mo_reactions, sum(p.mo_days) as mo_days
    from in_range p
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'p.person_key', 'p.as_of_date') }}
    group by p.as_of_date, m.segment_type, m.segment_value
),
usage as (
    select as_of_date, 'day' as period_type, segment_type, segment_value, d_users as active_users,
           d_posting as posting_users, d_actions as actions, d_contributions as contributions, d_posts as posts,
           d_replies as replies, d_reactions as reactions, d_days as person_days
    from usage_wide
    union all
    select as_of_date, 'rolling_7d', segment_type, segment_value, r7_users, r7_posting, r7_actions,
           r7_contributions, r7_posts, r7_replies, r7_reactions, r7_days
    from usage_wide
    union all
    select as_of_date, 'rolling_28d', segment_type, segment_value, r28_users, r28_posting, r28_actions,
           r28_contributions, r28_posts, r28_replies, r28_reactions, r28_days
    from usage_wide
    union all
    select as_of_date, 'week', segment_type, segment_value, wk_users, wk_posting, wk_actions,
           wk_contributions, wk_posts, wk_replies, wk_reactions, wk_days
    from usage_wide
    union all
    select as_of_date, 'month', segment_type, segment_value, mo_users, mo_posting, mo_actions,
           mo_contributions, mo_posts, mo_replies, mo_reactions, mo_days
    from usage_wide
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
        h.headcount < {{ esn_number('min_group_size') }} as suppressed
    from windows w
    join {{ ref('int_segment_headcount_daily') }} h on h.as_of_date = w.as_of_date
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
