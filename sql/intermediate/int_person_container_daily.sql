-- model: int_person_container_daily
-- grain: one row per person, container and UTC day with any activity in that container
-- key: activity_date, person_key, container_id
-- materialized: incremental
-- partition_by: activity_date
-- depends_on: stg_activities
-- owner: esn-metrics
-- description: INTERNAL person-level table: actions and contributions per person, container and day
--   (feeds the community health index and container-level knowledge metrics).
with events as (
    select *
    from stg_activities
    where activity_date between :start_date and :end_date
      and not is_deleted
      and container_id is not null
)
select
    activity_date,
    actor_key as person_key,
    container_id,
    count(*) as actions,
    cast(sum(case when verb in ('post', 'reply') then 1 else 0 end) as bigint) as contributions
from events
group by activity_date, actor_key, container_id
