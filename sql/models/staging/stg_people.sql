with source as (
    select * from {{ source('lake', 'lake_people') }}
),
ranked as (
    select
        *,
        row_number() over (
            partition by person_key
            order by snapshot_date desc, case when department is null then 1 else 0 end
        ) as rn
    from source
),
listed as (
    select
        person_key,
        department,
        location,
        level,
        manager_key,
        is_leader,
        hire_date,
        case
            when delisted_on is not null and (termination_date is null or termination_date > delisted_on)
                then delisted_on
            else termination_date
        end as termination_date,
        coalesce(in_directory, true) as in_directory,
        coalesce(account_type, 'member') as account_type,
        coalesce(is_deactivated, false) as is_deactivated,
        sources,
        delisted_on
    from ranked
    where rn = 1
),
seen as (  -- anti-joins first: the few unlisted keys are deduplicated, not every activity
    select a.actor_key as person_key, a.source
    from {{ source('lake', 'lake_activities') }} a
    where not exists (select 1 from listed l where l.person_key = a.actor_key)
    union
    select a.target_key as person_key, a.source
    from {{ source('lake', 'lake_activities') }} a
    where a.target_key is not null and not exists (select 1 from listed l where l.person_key = a.target_key)
),
unlisted as (
    select person_key, string_agg(source, ',' order by source) as sources
    from seen
    group by person_key
)
select * from listed
union all
select
    person_key,
    cast(null as varchar) as department,
    cast(null as varchar) as location,
    cast(null as varchar) as level,
    cast(null as varchar) as manager_key,
    false as is_leader,
    cast(null as date) as hire_date,
    cast(null as date) as termination_date,
    false as in_directory,
    'unknown' as account_type,
    false as is_deactivated,
    sources,
    cast(null as date) as delisted_on
from unlisted
