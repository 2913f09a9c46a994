-- model: int_segment_headcount_daily
-- grain: one row per day and segment with at least one employed person
-- key: as_of_date, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: stg_people, int_segment_membership
-- owner: esn-metrics
-- description: headcount per segment, the denominator of every rate and the basis of min_group_size
--   suppression: the people of the HR directory employed on the day (hired on or before it, not yet
--   terminated; a person the snapshots stopped listing is terminated on the day they were delisted, see
--   stg_people), each in their cells of that day (int_segment_membership, point in time), and the people outside it (in_directory false: guests, contractors, people only a
--   platform lists, in the cells 'unknown') unless every platform account of theirs is deactivated (a
--   platform gives no dates: a deactivated account leaves every day's headcount, an active one is in it).
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
employed as (
    select c.as_of_date, p.person_key
    from calendar c
    join stg_people p
      on (p.hire_date is null or p.hire_date <= c.as_of_date)
     and (p.termination_date is null or p.termination_date > c.as_of_date)
     and (p.in_directory or not p.is_deactivated)
)
select
    e.as_of_date,
    m.segment_type,
    m.segment_value,
    count(*) as headcount
from employed e
join int_segment_membership m
  on m.person_key = e.person_key
 and e.as_of_date between m.valid_from and m.valid_to
group by e.as_of_date, m.segment_type, m.segment_value
