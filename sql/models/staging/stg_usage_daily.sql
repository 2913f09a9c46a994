with source as (
    select * from {{ source('lake', 'lake_usage_daily') }}
)
select
    source,
    usage_date,
    person_key,
    product,
    channel_messages,
    posts,
    replies,
    chat_messages,
    urgent_messages,
    meetings,
    calls,
    reactions,
    reads,
    reads_are_actions,
    refresh_date
from source
