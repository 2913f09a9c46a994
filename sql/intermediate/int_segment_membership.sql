-- model: int_segment_membership
-- grain: one row per person, segment type and validity range
-- key: person_key, segment_type, valid_from
-- materialized: table
-- depends_on: stg_people
-- owner: esn-metrics
-- description: point-in-time segment membership. Directory attributes (org, department, location, level,
--   leader flag) hold over the whole range of the latest directory snapshot; the tenure band changes with
--   time, so each band gets its own validity range derived from the hire date. Joining on
--   `as_of_date between valid_from and valid_to` gives the same answer whatever interval a run covers,
--   which is what makes a day-by-day run equal to a full recompute.
--   Every person is in exactly one cell of each segment type, so the cells of a type add up to the
--   organisation (complementary suppression relies on it): a person without a department, location or
--   level (NULL in stg_people: people outside the HR directory, or gaps of the directory) is counted in
--   the cell 'unknown' of that type, like the tenure band 'unknown' of people without a hire date.
--   'unknown' is where those people are counted, not a department: the network stage leaves them out
--   of department-based measures.
with people as (
    select * from stg_people
),
static_segments as (
    select person_key, 'org' as segment_type, 'all' as segment_value from people
    union all
    select person_key, 'department', coalesce(department, 'unknown') from people
    union all
    select person_key, 'location', coalesce(location, 'unknown') from people
    union all
    select person_key, 'level', coalesce(level, 'unknown') from people
    union all
    select person_key, 'leader', case when is_leader then 'leader' else 'non-leader' end from people
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
select person_key, segment_type, segment_value, date '1900-01-01' as valid_from, date '9999-12-31' as valid_to
from static_segments
union all
select person_key, 'tenure_band', band, cast(valid_from as date), cast(valid_to as date)
from tenure_bands
