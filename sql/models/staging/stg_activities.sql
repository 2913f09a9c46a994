with source as (
    select * from {{ source('lake', 'lake_activities') }}
)
select
    source,
    event_id,
    occurred_at,
    activity_date,
    actor_key,
    verb,
    container_id,
    thread_id,
    parent_id,
    target_key,
    content_length,
    is_question,
    is_edited,
    is_deleted,
    coalesce(is_idea, false) as is_idea,
    idea_status,
    topic_ids
from source
