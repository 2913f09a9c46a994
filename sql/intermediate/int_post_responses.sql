-- model: int_post_responses
-- grain: one row per reply, reaction or share made by someone other than the author of the post it answers
-- key: source, event_id
-- materialized: incremental
-- partition_by: activity_date
-- depends_on: stg_activities
-- owner: esn-metrics
-- description: response events joined to the post (thread root) they respond to. Responses to one's own
--   post are dropped: a response is always from someone else. Dated by the response, so a day's run only
--   writes that day's responses.
with responses as (
    select *
    from stg_activities
    where activity_date between :start_date and :end_date
      and verb in ('reply', 'reaction', 'share')
      and not is_deleted
      and parent_id is not null
),
posts as (
    select source, event_id, actor_key, activity_date, container_id, is_question
    from stg_activities
    where verb = 'post'
)
select
    r.source,
    r.event_id,
    r.activity_date,
    r.occurred_at,
    r.actor_key as responder_key,
    r.verb,
    p.event_id as post_id,
    p.actor_key as post_author_key,
    p.activity_date as post_date,
    p.container_id,
    p.is_question as post_is_question
from responses r
join posts p on p.source = r.source and p.event_id = r.parent_id
where r.actor_key <> p.actor_key
