-- model: int_interactions
-- grain: one row per directed person-to-person interaction event
-- key: source, event_id
-- materialized: incremental
-- partition_by: activity_date
-- depends_on: stg_activities
-- owner: esn-metrics
-- description: METRICS.md section 3 edge rules. reply -> author of the message replied to;
--   reaction -> author; mention -> mentioned person; share -> original author. The target comes from
--   the source when it knows it, else from the parent message. Self-edges are dropped by rule, events
--   on deleted messages are dropped, and each type carries its configurable weight (interactions.weights as
--   of the day's publish; the network stage applies the run's interactions.weights itself, not this column,
--   so that a change of weights applies to whole windows at once).
--   audience_id: the message the interaction belongs to, what the network's large-audience cap groups by:
--   a mention belongs to the message that mentions (its parent: the message's own event id, also for the
--   recipients of an imported e-mail), every other interaction is its own message.
with events as (
    select *
    from stg_activities
    where activity_date between :start_date and :end_date
      and verb in ('reply', 'reaction', 'mention', 'share')
      and not is_deleted
),
parents as (
    select source, event_id, actor_key from stg_activities
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
        when 'reply' then :w_reply
        when 'reaction' then :w_reaction
        when 'mention' then :w_mention
        when 'share' then :w_share
    end as double precision) as weight,
    container_id,
    -- qualified by the source: two sources may number their events alike
    source || ':' || case when interaction_type = 'mention' then coalesce(parent_id, event_id) else event_id end
        as audience_id
from resolved
where target_key is not null
  and target_key <> source_key
