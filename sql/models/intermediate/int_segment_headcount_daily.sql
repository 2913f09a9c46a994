with calendar as (
    {{ esn_interval_days() }}
),
employed as (
    select c.as_of_date, p.person_key
    from calendar c
    join {{ ref('stg_people') }} p
      on {{ esn_in_headcount_on('p', 'c.as_of_date') }}
)
select
    e.as_of_date,
    m.segment_type,
    m.segment_value,
    count(*) as headcount
from employed e
join {{ ref('int_segment_membership') }} m
  on {{ esn_valid_on('m', 'e.person_key', 'e.as_of_date') }}
group by e.as_of_date, m.segment_type, m.segment_value
