-- model: int_person_segments
-- grain: one row per person and segment they belong to (as of :end_date)
-- key: person_key, segment_type
-- materialized: table
-- depends_on: int_segment_membership
-- owner: esn-metrics
-- description: the segments of every person on :end_date, one (segment_type, segment_value) per type: the
--   row of int_segment_membership in force that day (org, department, location, level, leader flag and
--   tenure band; a NULL department, location or level is the cell 'unknown'). A figure about another
--   day joins int_segment_membership as of that day instead.
select person_key, segment_type, segment_value
from int_segment_membership
where cast(:end_date as date) between valid_from and valid_to
