with calendar as (
    {{ esn_interval_days() }}
),
windows as (
    {{- esn_period_windows(['day', 'rolling_7d', 'rolling_28d', 'week', 'month'], with_end=true) }}
),
activity as (
    select person_key, activity_date, actions, contributions, posts, replies, reactions
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
membership as (
    select * from {{ ref('int_segment_membership') }}
),
{{ esn_person_profiles() }},
day_totals as (
    -- the day's figures of the people of each profile (an active day counts in the as-of days of its
    -- profiles from the day itself to at most 30 days later: [activity_date, activity_date + 30]); an
    -- epoch ending before that stops the day's ranges there (clip_to), else they run to the period's end
    select
        e.profile_id,
        a.activity_date,
        greatest(a.activity_date, e.epoch_from, {{ esn_date('start_date') }}) as clip_from,
        case when e.epoch_to < a.activity_date + 30 then e.epoch_to end as clip_to,
        count(*) as users,
        sum(case when a.contributions > 0 then 1 else 0 end) as posting,
        sum(a.actions) as actions, sum(a.contributions) as contributions, sum(a.posts) as posts,
        sum(a.replies) as replies, sum(a.reactions) as reactions
    from activity a
    join person_epochs e
      on e.person_key = a.person_key and e.epoch_from <= a.activity_date + 30 and e.epoch_to >= a.activity_date
    group by e.profile_id, a.activity_date, greatest(a.activity_date, e.epoch_from, {{ esn_date('start_date') }}),
             case when e.epoch_to < a.activity_date + 30 then e.epoch_to end
),
{{ esn_activity_islands({'users': none, 'posting': 'contributions > 0'}) }},
ranges as (
    -- counted in the person's profile of each as-of day: the totals of each day over its periods, and
    -- the islands clipped to each epoch; all within the interval
    select 'day' as period_type, profile_id, clip_from as range_from,
           least(activity_date, coalesce(clip_to, activity_date), {{ esn_date('end_date') }}) as range_to,
           users, posting, actions, contributions, posts, replies, reactions, users as person_days
    from day_totals
    {%- for period in ['rolling_7d', 'rolling_28d', 'week', 'month'] %}
    union all
    select '{{ period }}', profile_id, clip_from,
           least({{ esn_period_last_holding(period, 'activity_date') }},
                 coalesce(clip_to, {{ esn_period_last_holding(period, 'activity_date') }}), {{ esn_date('end_date') }}),
           0, 0, actions, contributions, posts, replies, reactions, users
    from day_totals
    {%- endfor %}
    union all
    select
        i.period_type,
        e.profile_id,
        greatest(i.island_from, e.epoch_from, {{ esn_date('start_date') }}),
        least(i.island_to, e.epoch_to, {{ esn_date('end_date') }}),
        case when i.kind = 'users' then 1 else 0 end,
        case when i.kind = 'posting' then 1 else 0 end,
        0, 0, 0, 0, 0, 0
    from islands i
    join person_epochs e
      on e.person_key = i.person_key and e.epoch_from <= i.island_to and e.epoch_to >= i.island_from
),
{{ esn_range_daily_totals('profile_totals', ['period_type', 'profile_id'],
                          ['users', 'posting', 'actions', 'contributions', 'posts', 'replies', 'reactions',
                           'person_days']) }},
usage as (
    select
        t.as_of_date,
        t.period_type,
        g.segment_type,
        g.segment_value,
        sum(t.users) as active_users,
        sum(t.posting) as posting_users,
        sum(t.actions) as actions,
        sum(t.contributions) as contributions,
        sum(t.posts) as posts,
        sum(t.replies) as replies,
        sum(t.reactions) as reactions,
        sum(t.person_days) as person_days
    from profile_totals t
    join profile_segments g on g.profile_id = t.profile_id
    group by t.as_of_date, t.period_type, g.segment_type, g.segment_value
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
