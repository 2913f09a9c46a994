{#- The statuses each idea went through, as of end_date: one row per idea and spell, from the idea
    (open) and from each status_change to the next one; the current spell has ended_at NULL and is
    counted up to the end of end_date. Rebuilt in full on each run (see fct_ideas). -#}
with ideas as (
    select source, event_id, occurred_at from {{ ref('fct_ideas') }}
),
marks as (
    select i.source, i.event_id as idea_id, 'open' as status, i.occurred_at as started_at, '' as mark_id
    from ideas i
    union all
    select a.source, a.parent_id, a.idea_status, a.occurred_at, a.event_id
    from {{ ref('stg_activities') }} a
    join ideas i on i.source = a.source and i.event_id = a.parent_id
    where a.verb = 'status_change' and a.activity_date <= {{ esn_date('end_date') }}
),
ordered as (
    select m.*,
           row_number() over (partition by source, idea_id order by started_at, mark_id) as spell,
           lead(started_at) over (partition by source, idea_id order by started_at, mark_id) as ended_at
    from marks m
)
select
    source,
    idea_id,
    cast(spell as bigint) as spell,
    status,
    started_at,
    ended_at,
    cast({{ esn_seconds_between('started_at',
          'coalesce(ended_at, cast(' ~ esn_date('end_date', 1) ~ ' as timestamp with time zone))') }} / 86400.0
         as double precision) as days_in_status
from ordered
