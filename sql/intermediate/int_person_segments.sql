-- model: int_person_segments
-- grain: one row per person and segment they belong to (as of :end_date)
-- key: person_key, segment_type
-- materialized: table
-- depends_on: stg_people
-- owner: esn-metrics
-- description: unpivots the directory into (segment_type, segment_value) so that every aggregate is
--   computed once for org, department, location, level, leader flag and tenure band (a NULL department,
--   location or level is the cell 'unknown', as in int_segment_membership)
with people as (
    select * from stg_people
),
tenure as (
    select
        person_key,
        case
            when hire_date is null then 'unknown'
            when cast(:end_date as date) - hire_date < 365 then '0-1y'
            when cast(:end_date as date) - hire_date < 3 * 365 then '1-3y'
            when cast(:end_date as date) - hire_date < 5 * 365 then '3-5y'
            else '5y+'
        end as tenure_band
    from people
)
select person_key, 'org' as segment_type, 'all' as segment_value from people
union all
select person_key, 'department', coalesce(department, 'unknown') from people
union all
select person_key, 'location', coalesce(location, 'unknown') from people
union all
select person_key, 'level', coalesce(level, 'unknown') from people
union all
select person_key, 'leader', case when is_leader then 'leader' else 'non-leader' end from people
union all
select person_key, 'tenure_band', tenure_band from tenure
