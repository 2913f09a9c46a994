with responses as (
    select *
    from {{ ref('stg_activities') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and verb in ('reply', 'reaction', 'share')
      and not is_deleted
      and parent_id is not null
),
posts as (
    select source, event_id, actor_key, activity_date, container_id, is_question
    from {{ ref('stg_activities') }}
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
