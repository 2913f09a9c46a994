-- depends_on: {{ ref('int_interactions') }}
with events as (
    select *
    from {{ ref('stg_activities') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and not is_deleted
)
select
    activity_date,
    actor_key as person_key,
    count(*) as actions,
    sum(case when verb in ('post', 'reply', 'idea') then 1 else 0 end) as contributions,
    sum(case when verb = 'post' then 1 else 0 end) as posts,
    sum(case when verb = 'reply' then 1 else 0 end) as replies,
    sum(case when verb = 'reaction' then 1 else 0 end) as reactions,
    sum(case when verb = 'mention' then 1 else 0 end) as mentions,
    sum(case when verb = 'share' then 1 else 0 end) as shares,
    sum(case when verb = 'view' then 1 else 0 end) as views,
    sum(case when verb = 'post' and is_question then 1 else 0 end) as questions
from events
group by activity_date, actor_key
