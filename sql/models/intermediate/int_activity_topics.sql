{#- The topics of each post and reply: its own topic ids (computed at extraction from its text), a reply
    also its thread's (a reply is about what its thread is about: "restart it" carries no term of its own),
    and its container as a topic (`container:<id>`). One row per activity and topic. Rebuilt in full on
    each run, as of end_date, over the last 365 days (what expertise looks back on). -#}
with messages as (
    select source, event_id, activity_date, actor_key, verb, container_id, thread_id, topic_ids
    from {{ ref('stg_activities') }}
    where verb in ('post', 'reply') and not is_deleted
      and activity_date > {{ esn_date('end_date', -365) }} and activity_date <= {{ esn_date('end_date') }}
),
roots as (
    select source, event_id, topic_ids
    from {{ ref('stg_activities') }}
    where verb = 'post' and topic_ids is not null
),
own as (
    select source, event_id, {{ esn_unnest_words('topic_ids') }} as topic_id
    from messages
    where topic_ids is not null
),
inherited as (
    select m.source, m.event_id, {{ esn_unnest_words('r.topic_ids') }} as topic_id
    from messages m
    join roots r on r.source = m.source and r.event_id = m.thread_id
    where m.verb = 'reply'
),
containers as (
    select source, event_id, 'container:' || container_id as topic_id
    from messages
    where container_id is not null
),
topics as (
    select source, event_id, topic_id from own
    union
    select source, event_id, topic_id from inherited
    union
    select source, event_id, topic_id from containers
)
select m.source, m.event_id, m.activity_date, m.actor_key, m.verb, t.topic_id
from topics t
join messages m on m.source = t.source and m.event_id = t.event_id
