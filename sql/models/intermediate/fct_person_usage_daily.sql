with activity as (
    -- an action is an event of a per-event source, or a count of an aggregate usage report for a product
    -- whose messages no per-event source loads (int_person_report_actions_daily): never both for one product
    select activity_date, person_key, cast(sum(actions) as bigint) as actions
    from (
        select activity_date, person_key, actions
        from {{ ref('fct_person_daily_activity') }}
        where activity_date between {{ esn_date('start_date', -83) }} and {{ esn_date('end_date') }}
        union all
        select activity_date, person_key, actions
        from {{ ref('int_person_report_actions_daily') }}
        where activity_date between {{ esn_date('start_date', -83) }} and {{ esn_date('end_date') }}
    ) a
    group by activity_date, person_key
),
{%- if (esn_days_between('start_date', 'end_date') | int) < 7 %}
calendar as (
    {{ esn_interval_days() }}
),
per_person as (
    -- a short interval (a daily run): each as-of day's twelve 7-day blocks straight from the person's
    -- days, [as_of - 83, as_of] (a block per distinct (as_of - day) rounded down to a multiple of 7), instead of the person x day grid
    -- of 84 days before the interval; the same rows as the grid gives
    select
        c.as_of_date,
        a.person_key,
        cast(sum(a.actions) as bigint) as actions_12w,
        cast(count(distinct (c.as_of_date - a.activity_date) - (c.as_of_date - a.activity_date) % 7) as bigint)
            as active_weeks_12w
    from calendar c
    join activity a
      on a.activity_date between c.as_of_date - 83 and c.as_of_date
    group by c.as_of_date, a.person_key
)
{%- else %}
{{ esn_person_day_grid('active', ['actions'], days_before=83, with_periods=false) }},
weekly as (
    -- active_7d: any action in the 7-day block ending on the day
    select
        person_key,
        day,
        actions,
        active,
        max(active) over (partition by person_key order by day rows between 6 preceding and current row) as active_7d
    from grid
),
rolled as (
    select
        person_key,
        day,
        sum(actions) over w84 as actions_12w,
        sum(active) over w84 as active_days_12w,
        active_7d
            + lag(active_7d, 7, 0) over w + lag(active_7d, 14, 0) over w + lag(active_7d, 21, 0) over w
            + lag(active_7d, 28, 0) over w + lag(active_7d, 35, 0) over w + lag(active_7d, 42, 0) over w
            + lag(active_7d, 49, 0) over w + lag(active_7d, 56, 0) over w + lag(active_7d, 63, 0) over w
            + lag(active_7d, 70, 0) over w + lag(active_7d, 77, 0) over w as active_weeks_12w
    from weekly
    window w as (partition by person_key order by day),
           w84 as (partition by person_key order by day rows between 83 preceding and current row)
),
per_person as (
    select day as as_of_date, person_key, cast(actions_12w as bigint) as actions_12w,
           cast(active_weeks_12w as bigint) as active_weeks_12w
    from rolled
    where day between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and active_days_12w > 0
)
{%- endif %}
select
    as_of_date,
    person_key,
    actions_12w,
    active_weeks_12w,
    case
        when actions_12w / 12.0 >= cast({{ esn_number('usage_power_actions_per_week') }} as double precision)
         and active_weeks_12w >= cast({{ esn_number('usage_power_active_weeks') }} as integer) then 'power'
        when active_weeks_12w >= cast({{ esn_number('usage_habitual_active_weeks') }} as integer) then 'habitual'
        when actions_12w / 12.0 >= cast({{ esn_number('usage_novice_actions_per_week') }} as double precision) then 'novice'
        else 'low'
    end as usage_segment
from per_person
