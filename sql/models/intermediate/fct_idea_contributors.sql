{#- INTERNAL, person-level: who brings ideas and who builds on them, as of end_date, over the ideas of the
    last 365 days. An idea broker builds on the ideas of departments other than their own (distinct
    departments, as of the day they built on them). Never published: the marts hold counts of groups
    only. -#}
with ideas as (
    select source, event_id, author_key, author_department
    from {{ ref('fct_ideas') }}
    where activity_date > {{ esn_date('end_date', -365) }}
),
built as (
    select a.actor_key as person_key, i.source, i.event_id, i.author_key, i.author_department,
           h.department as builder_department
    from {{ ref('stg_activities') }} a
    join ideas i on i.source = a.source and i.event_id = a.parent_id
    left join {{ ref('int_people_history') }} h on {{ esn_valid_on('h', 'a.actor_key', 'a.activity_date') }}
    where a.verb in ('reply', 'vote') and not a.is_deleted and a.actor_key <> i.author_key
      and a.activity_date <= {{ esn_date('end_date') }}
),
given as (
    select person_key,
           count(distinct source || ':' || event_id) as ideas_built_on,
           count(distinct author_key) as authors_built_on,
           count(distinct case when author_department <> builder_department then author_department end)
               as other_departments_built_on
    from built
    group by person_key
),
authored as (
    select author_key as person_key, count(*) as ideas
    from ideas
    group by author_key
),
people as (
    select person_key from given union select person_key from authored
)
select
    p.person_key,
    cast({{ esn_date('end_date') }} as date) as measured_through,
    cast(coalesce(a.ideas, 0) as bigint) as ideas,
    cast(coalesce(g.ideas_built_on, 0) as bigint) as ideas_built_on,
    cast(coalesce(g.authors_built_on, 0) as bigint) as authors_built_on,
    cast(coalesce(g.other_departments_built_on, 0) as bigint) as other_departments_built_on,
    coalesce(g.other_departments_built_on, 0) >= 2 as is_idea_broker
from people p
left join authored a on a.person_key = p.person_key
left join given g on g.person_key = p.person_key
