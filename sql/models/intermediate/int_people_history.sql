with people as (
    select * from {{ ref('stg_people') }}
),
history as (
    select h.person_key, h.department, h.location, h.level, h.is_leader, h.listed, h.valid_from, h.valid_to
    from {{ source('lake', 'lake_people_history') }} h
    where exists (select 1 from people p where p.person_key = h.person_key)
),
without_history as (
    select
        p.person_key,
        p.department,
        p.location,
        p.level,
        coalesce(p.is_leader, false) as is_leader,
        p.delisted_on is null and p.account_type <> 'unknown' as listed,  -- 'unknown': seen only in activity
        date '1900-01-01' as valid_from,
        date '9999-12-31' as valid_to
    from people p
    where not exists (select 1 from {{ source('lake', 'lake_people_history') }} h where h.person_key = p.person_key)
)
select person_key, department, location, level, is_leader, listed,
       cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to
from history
union all
select person_key, department, location, level, is_leader, listed,
       cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to
from without_history
