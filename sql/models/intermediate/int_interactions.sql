with events as (
    select *
    from {{ ref('stg_activities') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and verb in ('reply', 'reaction', 'mention', 'share')
      and not is_deleted
),
parents as (
    select source, event_id, actor_key from {{ ref('stg_activities') }}
),
resolved as (
    -- the source knows the target (or the event is a mention): no look-up of the parent message
    select
        e.source,
        e.event_id,
        e.parent_id,
        e.occurred_at,
        e.activity_date,
        e.actor_key as source_key,
        e.target_key,
        e.verb as interaction_type,
        e.container_id
    from events e
    where e.target_key is not null or e.verb = 'mention'
    union all
    -- else the author of the parent message
    select
        e.source,
        e.event_id,
        e.parent_id,
        e.occurred_at,
        e.activity_date,
        e.actor_key as source_key,
        p.actor_key as target_key,
        e.verb as interaction_type,
        e.container_id
    from events e
    left join parents p on p.source = e.source and p.event_id = e.parent_id
    where e.target_key is null and e.verb <> 'mention'
)
select
    source,
    event_id,
    occurred_at,
    activity_date,
    source_key,
    target_key,
    interaction_type,
    cast(case interaction_type
        when 'reply' then {{ esn_number('w_reply') }}
        when 'reaction' then {{ esn_number('w_reaction') }}
        when 'mention' then {{ esn_number('w_mention') }}
        when 'share' then {{ esn_number('w_share') }}
    end as double precision) as weight,
    container_id,
    -- qualified by the source: two sources may number their events alike
    source || ':' || case when interaction_type = 'mention' then coalesce(parent_id, event_id) else event_id end
        as audience_id
from resolved
where target_key is not null
  and target_key <> source_key
