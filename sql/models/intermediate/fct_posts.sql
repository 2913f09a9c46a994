with posts as (
    select source, event_id, activity_date, occurred_at, actor_key, container_id, is_question
    from {{ ref('stg_activities') }}
    where verb = 'post' and not is_deleted
),
firsts as (
    select
        source,
        post_id,
        -- a response (response rate, SWOOP) is a reply or a reaction; a share alone does not count
        min(case when verb in ('reply', 'reaction') then occurred_at end) as first_response_at,
        min(case when verb = 'reply' then occurred_at end) as first_reply_at
    from {{ ref('int_post_responses') }}
    group by source, post_id
),
accepted as (
    select r.source, r.post_id, min(a.occurred_at) as accepted_at
    from {{ ref('stg_activities') }} a
    join {{ ref('int_post_responses') }} r on r.source = a.source and r.event_id = a.parent_id
    where a.verb = 'answer_accepted' and r.verb = 'reply'
    group by r.source, r.post_id
)
select
    p.source,
    p.event_id,
    p.activity_date,
    p.occurred_at,
    p.actor_key as author_key,
    p.container_id,
    p.is_question,
    cast(f.first_response_at as date) as first_response_date,
    cast(f.first_reply_at as date) as first_reply_date,
    cast({{ esn_seconds_between('p.occurred_at', 'f.first_reply_at') }} / 3600.0 as double precision) as hours_to_first_reply,
    cast(a.accepted_at as date) as accepted_date
from posts p
left join firsts f on f.source = p.source and f.post_id = p.event_id
left join accepted a on a.source = p.source and a.post_id = p.event_id
