with calendar as (
    select cast({{ esn_date('start_date') }} + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, {{ esn_days_between('start_date', 'end_date') }}) as g(i)
),
employed as (
    select c.as_of_date, p.person_key
    from calendar c
    join {{ ref('stg_people') }} p
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
join {{ ref('int_segment_membership') }} m
  on m.person_key = e.person_key
 and e.as_of_date between m.valid_from and m.valid_to
group by e.as_of_date, m.segment_type, m.segment_value
