with events as (
    select *
    from {{ ref('stg_activities') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and not is_deleted
      and container_id is not null
)
select
    activity_date,
    actor_key as person_key,
    container_id,
    count(*) as actions,
    cast(sum(case when verb in ('post', 'reply', 'idea') then 1 else 0 end) as bigint) as contributions
from events
group by activity_date, actor_key, container_id
