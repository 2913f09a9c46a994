-- model: int_people_history
-- grain: one row per person (of stg_people) and range of constant directory attributes
-- key: person_key, valid_from
-- not_null: valid_to, is_leader, listed
-- materialized: table
-- depends_on: stg_people
-- owner: esn-metrics
-- description: point-in-time (effective-dated) directory attributes: the department, location, level and
--   leader flag of each person from valid_from to valid_to (inclusive), as the people snapshots of the
--   lake said on those days (lake_people_history, built by pipelines.canonical.people_over_time). The
--   ranges of a person are contiguous from 1900-01-01 to 9999-12-31, so a join on
--   `day between valid_from and valid_to` finds exactly one row for any day. Rules: a snapshot's
--   values hold until a later snapshot changes them; the days before the lake's first snapshot get the
--   first snapshot's values; a person first listed by a later snapshot, and a person a snapshot no
--   longer lists, are not listed (`listed` false: NULL attributes, the cell 'unknown') on those days.
--   People without any history (seen only in activity, or a warehouse loaded without history) have one
--   range over all time with their stg_people values. Every model that segments people by these
--   attributes joins this table (or int_segment_membership) as of its event or as-of date, so a
--   reorganisation changes the figures from the day it takes effect and never rewrites the past.
with people as (
    select * from stg_people
),
history as (
    select h.person_key, h.department, h.location, h.level, h.is_leader, h.listed, h.valid_from, h.valid_to
    from lake_people_history h
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
    where not exists (select 1 from lake_people_history h where h.person_key = p.person_key)
)
select person_key, department, location, level, is_leader, listed,
       cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to
from history
union all
select person_key, department, location, level, is_leader, listed,
       cast(valid_from as date) as valid_from, cast(valid_to as date) as valid_to
from without_history
