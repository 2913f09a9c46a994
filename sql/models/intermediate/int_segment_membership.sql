with people as (
    select * from {{ ref('stg_people') }}
),
history as (
    select * from {{ ref('int_people_history') }}
),
dated as (
    select person_key, 'department' as segment_type, coalesce(department, 'unknown') as segment_value,
           valid_from, valid_to
    from history
    union all
    select person_key, 'location', coalesce(location, 'unknown'), valid_from, valid_to from history
    union all
    select person_key, 'level', coalesce(level, 'unknown'), valid_from, valid_to from history
    union all
    select person_key, 'leader', case when is_leader then 'leader' else 'non-leader' end, valid_from, valid_to
    from history
),
changes as (
    select
        *,
        case
            when lag(segment_value) over w = segment_value then 0 else 1
        end as starts_island
    from dated
    window w as (partition by person_key, segment_type order by valid_from)
),
islands as (
    select *, sum(starts_island) over (partition by person_key, segment_type order by valid_from
                                       rows between unbounded preceding and current row) as island
    from changes
),
dated_segments as (
    select person_key, segment_type, segment_value, min(valid_from) as valid_from, max(valid_to) as valid_to
    from islands
    group by person_key, segment_type, segment_value, island
),
tenure_bands as (
    select person_key, 'unknown' as band, date '1900-01-01' as valid_from, date '9999-12-31' as valid_to
    from people where hire_date is null
    union all
    select person_key, '0-1y', date '1900-01-01', hire_date + 364 from people where hire_date is not null
    union all
    select person_key, '1-3y', hire_date + 365, hire_date + 1094 from people where hire_date is not null
    union all
    select person_key, '3-5y', hire_date + 1095, hire_date + 1824 from people where hire_date is not null
    union all
    select person_key, '5y+', hire_date + 1825, date '9999-12-31' from people where hire_date is not null
)
select person_key, 'org' as segment_type, 'all' as segment_value, date '1900-01-01' as valid_from,
       date '9999-12-31' as valid_to
from people
union all
select person_key, segment_type, segment_value, cast(valid_from as date), cast(valid_to as date)
from dated_segments
union all
select person_key, 'tenure_band', band, cast(valid_from as date), cast(valid_to as date)
from tenure_bands
