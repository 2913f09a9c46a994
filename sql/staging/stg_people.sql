-- model: stg_people
-- grain: one row per person (the latest directory snapshot that mentions them)
-- key: person_key
-- materialized: view
-- owner: esn-metrics
with source as (
    select * from lake_people
),
ranked as (
    select
        *,
        row_number() over (
            partition by person_key
            order by snapshot_date desc, case when department is null then 1 else 0 end
        ) as rn
    from source
)
select
    person_key,
    coalesce(department, 'Unknown') as department,
    coalesce(location, 'Unknown') as location,
    coalesce(level, 'Unknown') as level,
    manager_key,
    is_leader,
    hire_date,
    termination_date
from ranked
where rn = 1
