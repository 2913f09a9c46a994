{#- One row per idea as of end_date: an idea on an idea platform (verb idea) or a post its platform marks
    as one (is_idea), with what the others built on it by end_date: comments (replies to it) and votes from
    people other than its author; the builders' departments as of the day they built on it against the
    author's as of the idea's day (int_people_history); its status as of end_date (the latest
    status_change, else open) and when it was first completed. Rebuilt in full on each run: ideas are few
    (a thousandth of the events), and an idea's build-ons and status change on any later day. -#}
with ideas as (
    select a.source, a.event_id, a.activity_date, a.occurred_at, a.actor_key as author_key, a.container_id
    from {{ ref('stg_activities') }} a
    where a.is_idea and a.verb in ('idea', 'post') and not a.is_deleted
      and a.activity_date <= {{ esn_date('end_date') }}
),
authors as (
    select i.*, h.department as author_department
    from ideas i
    left join {{ ref('int_people_history') }} h on {{ esn_valid_on('h', 'i.author_key', 'i.activity_date') }}
),
build_ons as (
    select a.source, a.parent_id as idea_id, a.actor_key, a.verb, a.occurred_at, h.department as builder_department
    from {{ ref('stg_activities') }} a
    join ideas i on i.source = a.source and i.event_id = a.parent_id
    left join {{ ref('int_people_history') }} h on {{ esn_valid_on('h', 'a.actor_key', 'a.activity_date') }}
    where a.verb in ('reply', 'vote') and not a.is_deleted and a.actor_key <> i.author_key
      and a.activity_date <= {{ esn_date('end_date') }}
),
built as (
    select
        b.source,
        b.idea_id,
        sum(case when b.verb = 'reply' then 1 else 0 end) as comments,
        sum(case when b.verb = 'vote' then 1 else 0 end) as votes,
        count(distinct b.actor_key) as builders,
        count(distinct case when b.builder_department <> a.author_department then b.actor_key end)
            as cross_department_builders,
        count(distinct case when b.builder_department <> a.author_department then b.builder_department end)
            as departments_reached,
        min(b.occurred_at) as first_build_on_at
    from build_ons b
    join authors a on a.source = b.source and a.event_id = b.idea_id
    group by b.source, b.idea_id
),
changes as (
    select a.source, a.parent_id as idea_id, a.idea_status, a.occurred_at,
           row_number() over (partition by a.source, a.parent_id order by a.occurred_at desc, a.event_id desc) as latest
    from {{ ref('stg_activities') }} a
    join ideas i on i.source = a.source and i.event_id = a.parent_id
    where a.verb = 'status_change' and a.activity_date <= {{ esn_date('end_date') }}
),
status as (
    select source, idea_id, idea_status as status from changes where latest = 1
),
completed as (
    select source, idea_id, min(occurred_at) as completed_at from changes where idea_status = 'completed'
    group by source, idea_id
)
select
    a.source,
    a.event_id,
    a.activity_date,
    a.occurred_at,
    a.author_key,
    a.container_id,
    a.author_department,
    cast(coalesce(b.comments, 0) as bigint) as comments,
    cast(coalesce(b.votes, 0) as bigint) as votes,
    cast(coalesce(b.builders, 0) as bigint) as builders,
    cast(coalesce(b.cross_department_builders, 0) as bigint) as cross_department_builders,
    cast(coalesce(b.departments_reached, 0) as bigint) as departments_reached,
    b.first_build_on_at,
    cast({{ esn_seconds_between('a.occurred_at', 'b.first_build_on_at') }} / 3600.0 as double precision)
        as hours_to_first_build_on,
    coalesce(s.status, 'open') as status,
    c.completed_at,
    cast({{ esn_seconds_between('a.occurred_at', 'c.completed_at') }} / 86400.0 as double precision)
        as days_to_completed
from authors a
left join built b on b.source = a.source and b.idea_id = a.event_id
left join status s on s.source = a.source and s.idea_id = a.event_id
left join completed c on c.source = a.source and c.idea_id = a.event_id
