{#- A run rewrites the rows of the posts its interval can change, each recomputed from its whole history
    (meta replace_keys: source, event_id): the posts of the interval's days, the posts that received a
    response in the interval (int_post_responses' interval partitions), the posts whose reply was accepted
    in it, and the posts whose stored first response, first reply or acceptance fell in it (a redelivered
    day may have lost that response). Every other post's responses and acceptances are on days outside
    the interval, so its row is unchanged; on the first build every post is computed. -#}
with
{%- if is_incremental() %}
touched as (
    select source, post_id as event_id
    from {{ ref('int_post_responses') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    union
    select r.source, r.post_id
    from {{ ref('stg_activities') }} a
    join {{ ref('int_post_responses') }} r on r.source = a.source and r.event_id = a.parent_id
    where a.verb = 'answer_accepted'
      and a.activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    union
    select source, event_id
    from {{ this }}
    where first_response_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
       or first_reply_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
       or accepted_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
{%- endif %}
posts as (
    select a.source, a.event_id, a.activity_date, a.occurred_at, a.actor_key, a.container_id, a.is_question
    from {{ ref('stg_activities') }} a
    where a.verb = 'post' and not a.is_deleted
    {%- if is_incremental() %}
      and (a.activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
           or exists (select 1 from touched t where t.source = a.source and t.event_id = a.event_id))
    {%- endif %}
),
responses as (
    -- the responses of those posts (all of them on the first build)
    select r.source, r.event_id, r.post_id, r.verb, r.occurred_at
    from {{ ref('int_post_responses') }} r
    {%- if is_incremental() %}
    where exists (select 1 from posts p where p.source = r.source and p.event_id = r.post_id)
    {%- endif %}
),
firsts as (
    select
        source,
        post_id,
        -- a response (response rate, SWOOP) is a reply or a reaction; a share alone does not count
        min(case when verb in ('reply', 'reaction') then occurred_at end) as first_response_at,
        min(case when verb = 'reply' then occurred_at end) as first_reply_at
    from responses
    group by source, post_id
),
accepted as (
    select r.source, r.post_id, min(a.occurred_at) as accepted_at
    from {{ ref('stg_activities') }} a
    join responses r on r.source = a.source and r.event_id = a.parent_id
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
