-- model: stg_activities
-- grain: one row per event (source, event_id)
-- key: source, event_id
-- materialized: view
-- owner: esn-metrics
-- description: canonical activities as loaded from the lake; deleted messages are kept as tombstones
with source as (
    select * from lake_activities
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
    is_deleted
from source
