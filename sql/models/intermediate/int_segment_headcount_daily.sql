-- the headcount of every segment and day of the interval (esn_in_headcount_on): each person's ranges of days
-- in the headcount and in a segment, counted by day (a difference array, not people x days x segments)
with calendar as (
    {{ esn_interval_days() }}
),
people as (
    select * from {{ ref('stg_people') }}
),
membership as (
    select * from {{ ref('int_segment_membership') }}
),
ranges as (
    select r.*, r.r_from as headcount_from
    from ({{ esn_headcount_ranges('people', 'membership') }}) r
),
{{ esn_range_counts('ranges', ['headcount']) }}
select as_of_date, segment_type, segment_value, headcount
from range_counts
where headcount > 0
