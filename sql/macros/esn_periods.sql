{#- The days and the reporting periods of the marts, written once. Portable: generate_series, date
    arithmetic (date + integer) and dbt.date_trunc render the same on PostgreSQL and DuckDB. A period
    is one of day, rolling_7d, rolling_28d, week (ISO, Monday first) and month, as of a day d:
    day = [d, d], rolling_7d = [d - 6, d], rolling_28d = [d - 27, d], week = [its Monday, d] and
    month = [its first day, d] (to date; the whole week or month ends on its last day). -#}

{#- The days of the run's interval as one column: `select ... as <column> from generate_series(...)`,
    [start_date - days_before, end_date], one row a day. days_before: the history a model reads before
    the interval (30: the longest period, 28 days, and some). Used by (days_before 0, column as_of_date,
    the CTE `calendar`) int_segment_headcount_daily, mart_adoption_daily, mart_alerts, mart_container_health,
    mart_engagement_daily, mart_engagement_period, mart_interactions_period, mart_knowledge_sharing,
    mart_leader_engagement, mart_unanswered_backlog; (days_before 30, column day, the person x day grid)
    mart_participation_inequality, mart_department_concentration; (83) fct_person_usage_daily. -#}
{% macro esn_interval_days(column='as_of_date', days_before=0) -%}
    {%- if days_before is not integer or days_before is boolean or days_before < 0 -%}
        {{ exceptions.raise_compiler_error("esn_interval_days: days_before must be an integer >= 0, got " ~ days_before) }}
    {%- endif -%}
    select cast({{ esn_date('start_date', -days_before) }} + cast(g.i as integer) as date) as {{ column }}
    from generate_series(0, {{ esn_days_between('start_date', 'end_date') }}{{ ' + ' ~ days_before if days_before else '' }}) as g(i)
{%- endmacro %}

{#- The Monday of the week of the date `day` (an SQL expression), a date -#}
{% macro esn_week_start(day) -%}
    cast({{ dbt.date_trunc('week', day) }} as date)
{%- endmacro %}

{#- The Sunday of the week of the date `day`, a date -#}
{% macro esn_week_end(day) -%}
    {{ esn_week_start(day) }} + 6
{%- endmacro %}

{#- The first day of the month of the date `day`, a date -#}
{% macro esn_month_start(day) -%}
    cast({{ dbt.date_trunc('month', day) }} as date)
{%- endmacro %}

{#- The last day of the month of the date `day`, a date: 31 days after the first day of the month is in
    the next month, on its day n; n days before it is the month's last day (date arithmetic in days only,
    the same on every database). Used by mart_engagement_period (period_end) and mart_knowledge_sharing
    (the last day whose month window holds a question). -#}
{% macro esn_month_end(day) -%}
    cast({{ esn_month_start(day) }} + 31 - cast(extract(day from {{ esn_month_start(day) }} + 31) as integer) as date)
{%- endmacro %}

{#- The first day of the period `period` as of the date `as_of` -#}
{% macro esn_period_start(period, as_of) -%}
    {%- if period == 'day' -%} {{ as_of }}
    {%- elif period == 'rolling_7d' -%} {{ as_of }} - 6
    {%- elif period == 'rolling_28d' -%} {{ as_of }} - 27
    {%- elif period == 'week' -%} {{ esn_week_start(as_of) }}
    {%- elif period == 'month' -%} {{ esn_month_start(as_of) }}
    {%- else -%} {{ exceptions.raise_compiler_error("unknown period type " ~ period) }}
    {%- endif -%}
{%- endmacro %}

{#- The last day of the whole period `period` as of the date `as_of` (as_of itself for day and the rolling
    periods; the week's Sunday, the month's last day) -#}
{% macro esn_period_end(period, as_of) -%}
    {%- if period in ('day', 'rolling_7d', 'rolling_28d') -%} {{ as_of }}
    {%- elif period == 'week' -%} {{ esn_week_end(as_of) }}
    {%- elif period == 'month' -%} {{ esn_month_end(as_of) }}
    {%- else -%} {{ exceptions.raise_compiler_error("unknown period type " ~ period) }}
    {%- endif -%}
{%- endmacro %}

{#- The last as-of date whose period `period` holds the date `day` (the first is `day` itself): day: day;
    rolling_7d: day + 6; rolling_28d: day + 27; week: its Sunday; month: its last day. A day's figures
    count in a period's totals as of [day, this]. Used by esn_activity_islands and
    mart_engagement_period. -#}
{% macro esn_period_last_holding(period, day) -%}
    {%- if period == 'day' -%} {{ day }}
    {%- elif period == 'rolling_7d' -%} {{ day }} + 6
    {%- elif period == 'rolling_28d' -%} {{ day }} + 27
    {%- elif period == 'week' -%} {{ esn_week_end(day) }}
    {%- elif period == 'month' -%} {{ esn_month_end(day) }}
    {%- else -%} {{ exceptions.raise_compiler_error("unknown period type " ~ period) }}
    {%- endif -%}
{%- endmacro %}

{#- The body of the CTE `windows`: one row per day of `calendar` (a CTE with as_of_date) and period type
    of `periods` (in that order), with period_type and period_start (with_end: period_end too). Used by
    mart_engagement_period (every period, with its end), mart_interactions_period (rolling_7d, rolling_28d,
    week, month) and mart_leader_engagement (rolling_28d, week, month). -#}
{% macro esn_period_windows(periods, with_end=false, calendar='calendar') -%}
    {%- for period in periods %}
    {% if not loop.first %}union all
    {% endif -%}
    select as_of_date, '{{ period }}' as period_type, {{ esn_period_start(period, 'as_of_date') }} as period_start
        {%- if with_end %}, {{ esn_period_end(period, 'as_of_date') }} as period_end{% endif %} from {{ calendar }}
    {%- endfor %}
{%- endmacro %}

{#- A person's total of the period `period` as of the row's day, from the running total `running` (a
    column summed over the person's days, one row a day with no gap): the running total minus the one
    the day before the period starts (0 before the first row). The select needs the columns day,
    week_start and month_start (esn_week_start/esn_month_start of day) and the window
    `w as (partition by <person> order by day)`. Used by esn_person_period_totals (the
    CTE `rolled` of mart_participation_inequality and mart_department_concentration). -#}
{% macro esn_period_total(running, period) -%}
    {%- if period == 'rolling_7d' -%}
        {{ running }} - lag({{ running }}, 7, cast(0 as bigint)) over w
    {%- elif period == 'rolling_28d' -%}
        {{ running }} - lag({{ running }}, 28, cast(0 as bigint)) over w
    {%- elif period == 'week' -%}
        {{ running }} - lag({{ running }}, cast(day - week_start as integer) + 1, cast(0 as bigint)) over w
    {%- elif period == 'month' -%}
        {{ running }} - lag({{ running }}, cast(day - month_start as integer) + 1, cast(0 as bigint)) over w
    {%- else -%}
        {{ exceptions.raise_compiler_error("esn_period_total: no running total for period type " ~ period) }}
    {%- endif -%}
{%- endmacro %}

{#- CTEs (people, days and grid, comma-separated, to be placed in a WITH list after `activity`): a dense
    person x day grid, one row per person of `activity` (a CTE of activity_date, person_key and the
    measures, one row per person and day at most) and per day of [start_date - days_before, end_date],
    so that a period's total is a window over rows (lag by a number of days, esn_period_total). The grid
    has person_key, day, `flag` (1 on a day with a row in `activity`, else 0), each of `measures`
    (0 on a day without a row) and, with with_periods, week_start and month_start of the day. Used by
    mart_participation_inequality, mart_department_concentration (days_before 30) and
    fct_person_usage_daily (83, without the periods, for intervals of 7 days or more). -#}
{% macro esn_person_day_grid(flag, measures=[], days_before=30, with_periods=true, activity='activity') -%}
people as (
    select distinct person_key from {{ activity }}
),
days as (
    {{ esn_interval_days('day', days_before=days_before) }}
),
grid as (
    select
        p.person_key,
        d.day,
        {%- if with_periods %}
        {{ esn_week_start('d.day') }} as week_start,
        {{ esn_month_start('d.day') }} as month_start,
        {%- endif %}
        case when a.person_key is null then 0 else 1 end as {{ flag }}
        {%- for m in measures %},
        coalesce(a.{{ m }}, 0) as {{ m }}
        {%- endfor %}
    from people p
    cross join days d
    left join {{ activity }} a on a.person_key = p.person_key and a.activity_date = d.day
)
{%- endmacro %}

{#- CTEs (cumulative and rolled, comma-separated, after esn_person_day_grid's `grid`): each person's totals
    of the grid's columns `measures` over every period of `periods` ending (or to date) on each day.
    rolled has person_key, as_of_date (every day of the grid) and, per measure m and period, the column
    <prefix>_m with prefix d (day: the day's own value), r7 (rolling_7d), r28 (rolling_28d), wk (week) or
    mo (month): running totals per person (cumulative.c_m, bigint) minus the one the day before the
    period starts (esn_period_total). Used by mart_participation_inequality and
    mart_department_concentration. -#}
{% macro esn_person_period_totals(measures, periods) -%}
    {%- set prefixes = _esn_period_prefixes(periods) -%}
cumulative as (
    -- running totals per person; a period's total is the running total minus the one the day before it starts
    select
        person_key,
        day,
        week_start,
        month_start,
        {%- if 'day' in periods %}
        {%- for m in measures %}
        {{ m }} as d_{{ m }},
        {%- endfor %}
        {%- endif %}
        {%- for m in measures %}
        cast(sum({{ m }}) over w as bigint) as c_{{ m }}{{ ',' if not loop.last }}
        {%- endfor %}
    from grid
    window w as (partition by person_key order by day rows between unbounded preceding and current row)
),
rolled as (
    -- one row per person and day with the totals of every period ending (or to date) on the day
    select
        person_key,
        day as as_of_date
        {%- for period in periods %}
        {%- for m in measures %},
        {% if period == 'day' %}d_{{ m }}{% else %}{{ esn_period_total('c_' ~ m, period) }} as {{ prefixes[period] }}_{{ m }}{% endif %}
        {%- endfor %}
        {%- endfor %}
    from cumulative
    window w as (partition by person_key order by day)
)
{%- endmacro %}

{#- The column prefixes of esn_person_period_totals' periods ({period: prefix}), or a compiler error -#}
{% macro _esn_period_prefixes(periods) -%}
    {%- set prefixes = {'day': 'd', 'rolling_7d': 'r7', 'rolling_28d': 'r28', 'week': 'wk', 'month': 'mo'} -%}
    {%- for period in periods if period not in prefixes -%}
        {{ exceptions.raise_compiler_error("unknown period type " ~ period) }}
    {%- endfor -%}
    {{ return(prefixes) }}
{%- endmacro %}

{#- The body of a CTE: the people active in each period of `periods` as of each day of the interval, from
    esn_person_period_totals' `rolled`: (as_of_date, period_type, person_key, the period's totals of
    `measures` named as the measures), a row when the person's total of `flag` over the period is > 0.
    Used by mart_participation_inequality (active: any action; with contributions) and
    mart_department_concentration (days with a contribution). -#}
{% macro esn_person_periods(periods, flag, measures=[]) -%}
    {%- set prefixes = _esn_period_prefixes(periods) -%}
    {%- for period in periods %}
    {% if not loop.first %}union all
    {% endif -%}
    select as_of_date, '{{ period }}' as period_type, person_key
        {%- for m in measures %}, {{ prefixes[period] }}_{{ m }} as {{ m }}{% endfor %}
    from rolled
    where as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }} and {{ prefixes[period] }}_{{ flag }} > 0
    {%- endfor %}
{%- endmacro %}

{#- CTEs (<kind>_days per kind and islands, comma-separated, after `activity`, a CTE with person_key and
    activity_date, one row per person and day at most): the as-of days on which each person is active in
    each period of `periods` (rolling_7d, rolling_28d, week, month), as islands. `kinds` maps a kind's name
    to the condition on activity's rows that count for it (none: every row), e.g. {'users': none,
    'posting': 'contributions > 0'}. A day x of a person counts them in a period as of the days
    [x, the period's last as-of day holding x: esn_period_last_holding]. In the order of x, those ranges merge while the
    next one starts at most a day after one ends (the period's end only grows with x): an island of
    as-of days starts on a day whose previous day's range ended before it, and ends with a day whose range
    the next day does not continue. `islands` has person_key, period_type, kind, island_from and
    island_to (both days included), islands of one person, period and kind never overlapping: a count of
    the islands holding a day is a count of people. One lag and lead over each kind's days, no running
    window. Used by mart_engagement_period (users, posting). -#}
{% macro esn_activity_islands(kinds, periods=['rolling_7d', 'rolling_28d', 'week', 'month']) -%}
    {%- for kind, condition in kinds.items() %}
{{ kind }}_days as (
    select
        person_key,
        activity_date
        {%- for period in periods %},
        prev_day is null or activity_date > {{ esn_period_last_holding(period, 'prev_day') }} + 1 as {{ period }}_starts,
        next_day is null or next_day > {{ esn_period_last_holding(period, 'activity_date') }} + 1 as {{ period }}_ends
        {%- endfor %}
    from (
        select person_key, activity_date,
               lag(activity_date) over (partition by person_key order by activity_date) as prev_day,
               lead(activity_date) over (partition by person_key order by activity_date) as next_day
        from activity
        {%- if condition %}
        where {{ condition }}
        {%- endif %}
    ) a
),
    {%- endfor %}
islands as (
    -- among the days that start or end an island, its last as-of day is its first day's range end when
    -- that day also ends it, else the range end of the next such day (the one ending it)
    {%- for kind in kinds %}
    {%- set outer = loop %}
    {%- for period in periods %}
    {{ 'union all' if not (outer.first and loop.first) }}
    select person_key, '{{ period }}' as period_type, '{{ kind }}' as kind, island_from, island_to
    from (
        select
            person_key,
            activity_date as island_from,
            case when {{ period }}_ends then {{ esn_period_last_holding(period, 'activity_date') }}
                 else lead({{ esn_period_last_holding(period, 'activity_date') }}) over (partition by person_key order by activity_date)
            end as island_to,
            {{ period }}_starts as starts
        from {{ kind }}_days
        where {{ period }}_starts or {{ period }}_ends
    ) i
    where starts
    {%- endfor %}
    {%- endfor %}
)
{%- endmacro %}
