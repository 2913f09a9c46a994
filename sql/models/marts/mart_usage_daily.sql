with usage as (
    select
        usage_date as as_of_date,
        person_key,
        max(case when product = 'teams' and (coalesce(channel_messages, 0) + coalesce(chat_messages, 0)
                 + coalesce(meetings, 0) + coalesce(calls, 0)) > 0 then 1 else 0 end) as teams_active,
        max(case when product = 'engage' and (coalesce(channel_messages, 0) + coalesce(reactions, 0)
                 + coalesce(reads, 0)) > 0 then 1 else 0 end) as engage_active,
        sum(case when product = 'teams' then channel_messages end) as teams_channel_messages,
        sum(case when product = 'teams' then posts end) as teams_posts,
        sum(case when product = 'teams' then replies end) as teams_replies,
        sum(case when product = 'teams' then chat_messages end) as teams_chat_messages,
        sum(case when product = 'teams' then meetings end) as teams_meetings,
        sum(case when product = 'teams' then calls end) as teams_calls,
        sum(case when product = 'engage' then channel_messages end) as engage_messages_posted,
        sum(case when product = 'engage' then reactions end) as engage_likes,
        sum(case when product = 'engage' then reads end) as engage_reads
    from {{ ref('stg_usage_daily') }}
    where usage_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    group by usage_date, person_key
),
by_segment as (
    select
        u.as_of_date,
        s.segment_type,
        s.segment_value,
        sum(case when u.teams_active = 1 or u.engage_active = 1 then 1 else 0 end) as report_active_users,
        sum(u.teams_active) as teams_active_users,
        sum(u.engage_active) as engage_active_users,
        sum(u.teams_channel_messages) as teams_channel_messages,
        sum(u.teams_posts) as teams_posts,
        sum(u.teams_replies) as teams_replies,
        sum(u.teams_chat_messages) as teams_chat_messages,
        sum(u.teams_meetings) as teams_meetings,
        sum(u.teams_calls) as teams_calls,
        sum(u.engage_messages_posted) as engage_messages_posted,
        sum(u.engage_likes) as engage_likes,
        sum(u.engage_reads) as engage_reads
    from usage u
    join {{ ref('int_segment_membership') }} s
      on {{ esn_valid_on('s', 'u.person_key', 'u.as_of_date') }}
    group by u.as_of_date, s.segment_type, s.segment_value
),
headcount as (
    select as_of_date, segment_type, segment_value, headcount
    from {{ ref('int_segment_headcount_daily') }}
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      -- days without any report (before the first, or beyond the 30 days the service keeps) have no rows
      and as_of_date in (select distinct usage_date from {{ ref('stg_usage_daily') }})
),
joined as (
    select h.as_of_date, h.segment_type, h.segment_value, h.headcount, b.report_active_users,
           b.teams_active_users, b.engage_active_users, b.teams_channel_messages, b.teams_posts, b.teams_replies,
           b.teams_chat_messages, b.teams_meetings, b.teams_calls, b.engage_messages_posted, b.engage_likes,
           b.engage_reads, h.headcount < {{ esn_number('min_group_size') }} as suppressed
    from headcount h
    left join by_segment b
      on b.as_of_date = h.as_of_date and b.segment_type = h.segment_type and b.segment_value = h.segment_value
)
select
    as_of_date,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(headcount as bigint) end as headcount,
    case when suppressed then null else cast(coalesce(report_active_users, 0) as bigint) end as report_active_users,
    case when suppressed or headcount = 0 then null
         else cast(coalesce(report_active_users, 0) as double precision) / headcount end as report_active_rate,
    case when suppressed then null else cast(coalesce(teams_active_users, 0) as bigint) end as teams_active_users,
    case when suppressed then null else cast(coalesce(teams_channel_messages, 0) as bigint) end as teams_channel_messages,
    case when suppressed then null else cast(teams_posts as bigint) end as teams_posts,
    case when suppressed then null else cast(teams_replies as bigint) end as teams_replies,
    case when suppressed then null else cast(coalesce(teams_chat_messages, 0) as bigint) end as teams_chat_messages,
    case when suppressed then null else cast(coalesce(teams_meetings, 0) as bigint) end as teams_meetings,
    case when suppressed then null else cast(coalesce(teams_calls, 0) as bigint) end as teams_calls,
    case when suppressed then null else cast(coalesce(engage_active_users, 0) as bigint) end as engage_active_users,
    case when suppressed then null else cast(coalesce(engage_messages_posted, 0) as bigint) end as engage_messages_posted,
    case when suppressed then null else cast(coalesce(engage_likes, 0) as bigint) end as engage_likes,
    case when suppressed then null else cast(coalesce(engage_reads, 0) as bigint) end as engage_reads
from joined
