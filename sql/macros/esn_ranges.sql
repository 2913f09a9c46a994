{#- Counting over date ranges, written once: the union of a person's ranges (islands) and the daily totals
    of counts that hold over ranges (a sweep). Portable SQL (window functions with rows frames, date +
    integer), the same on PostgreSQL and DuckDB. -#}

{#- The body of a CTE: the islands of the date ranges [range_from, range_to] of `source` (a CTE name or a
    parenthesised subquery with an alias) per `keys` (a list of columns), as (keys, covered_from,
    covered_to): the union of each key's ranges, one row per maximal run of overlapping ranges (ranges
    sorted by their start; a range starting after every earlier range has ended opens a new island).
    Ranges that merely touch (one ends on day d, the next starts on d + 1) stay two islands: a day-count
    of the covered days is the same either way. `where`: an optional condition on the source rows. Used by
    mart_knowledge_sharing (an asker's questions' window ranges, with and without the container),
    mart_unanswered_backlog (an asker's open ranges, with and without the container) and
    mart_container_health (a member's active or contributing days, each covering the 28 days or the 12
    months from it). -#}
{% macro esn_range_islands(source, keys, range_from, range_to, where=none) -%}
    {%- set k = keys | join(', ') -%}
    select {{ k }}, min({{ range_from }}) as covered_from, max({{ range_to }}) as covered_to
    from (
        select
            {{ k }},
            {{ range_from }},
            {{ range_to }},
            sum(new_island) over (partition by {{ k }} order by {{ range_from }}, {{ range_to }}
                                  rows between unbounded preceding and current row) as island
        from (
            select
                {{ k }},
                {{ range_from }},
                {{ range_to }},
                case when max({{ range_to }}) over (partition by {{ k }} order by {{ range_from }}, {{ range_to }}
                                                    rows between unbounded preceding and 1 preceding)
                          >= {{ range_from }} then 0 else 1 end as new_island
            from {{ source }}
            {%- if where %}
            where {{ where }}
            {%- endif %}
        ) g
    ) n
    group by {{ k }}, island
{%- endmacro %}

{#- CTEs (range_counts, deltas, daily_deltas, groups and `name`, comma-separated, to be placed in a WITH
    list after `ranges` and `calendar`): the daily totals of counts that hold over date ranges. Each row of
    `ranges` (keys, range_from, range_to, measures) adds its measures to every day of [range_from,
    range_to] (empty ranges, range_from > range_to, add nothing). `name` has one row per group of `keys`
    with any range and per day of `calendar` (as_of_date), the totals as bigint: a sweep (+measures on
    range_from, -measures the day after range_to when it is in the interval) and running sums over the
    calendar, instead of a join of every range with every day. Used by mart_knowledge_sharing (askers,
    questions, answers per period type and segment), mart_unanswered_backlog (askers, open questions by
    age per segment) and mart_container_health (members, contributors, posts... per container; its
    ranges clipped to the interval first). -#}
{% macro esn_range_daily_totals(name, keys, measures, ranges='ranges', calendar='calendar') -%}
    {%- set k = keys | join(', ') -%}
range_counts as (
    select {{ k }}, range_from, range_to,
           {% for m in measures %}sum({{ m }}) as {{ m }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ ranges }}
    where range_from <= range_to
    group by {{ k }}, range_from, range_to
),
deltas as (
    select {{ k }}, range_from as day,
           {{ measures | join(', ') }}
    from range_counts
    union all
    select {{ k }}, range_to + 1,
           {% for m in measures %}-{{ m }}{{ ', ' if not loop.last }}{% endfor %}
    from range_counts
    where range_to < {{ esn_date('end_date') }}
),
daily_deltas as (
    select {{ k }}, day,
           {% for m in measures %}sum({{ m }}) as {{ m }}{{ ', ' if not loop.last }}{% endfor %}
    from deltas
    group by {{ k }}, day
),
groups as (
    select distinct {{ k }} from daily_deltas
),
{{ name }} as (
    select
        c.as_of_date,
        {%- for key in keys %}
        g.{{ key }},
        {%- endfor %}
        {%- for m in measures %}
        cast(sum(coalesce(d.{{ m }}, 0)) over w as bigint) as {{ m }}{{ ',' if not loop.last }}
        {%- endfor %}
    from groups g
    cross join {{ calendar }} c
    left join daily_deltas d
      on {% for key in keys %}d.{{ key }} = g.{{ key }} and {% endfor %}d.day = c.as_of_date
    window w as (partition by {% for key in keys %}g.{{ key }}{{ ', ' if not loop.last }}{% endfor %} order by c.as_of_date
                 rows between unbounded preceding and current row)
)
{%- endmacro %}

{#- The body of a CTE: exact percentiles by day of values that hold over date ranges. Each row of `source`
    (keys, range_from, range_to, `value`) puts its value in the multiset of every day of [range_from,
    range_to] within the run's interval; the result has one row per group of `keys` and day with any value
    (as_of_date, keys, one column per entry of `quantiles`, a mapping of column name to fraction, as
    percentile_cont computes it: linear interpolation between the two nearest values).

    A percentile is not a running sum: every (range, day) pair is a row to order. PostgreSQL sorts them
    (percentile_cont spills to work files). DuckDB keeps a holistic aggregate's values in memory, which at
    100k people (mart_knowledge_sharing: ~100M pairs) exceeded its memory limit: there the groups are coded
    as integers, one quantile_cont keeps each group's values once for every fraction, and the interval is
    cut into blocks of `block_days` days, each aggregated on its own, so the memory is that of a block. The
    block size is measured: on the M lake (7.3M answered spans, 90.7M pairs, 4 GB limit) the percentiles took
    50.6 s in blocks of 14 days, 7.4 s of 7, 4.1 s of 4 and 4.9 s of 2 (a large block's aggregate spills). -#}
{% macro esn_range_percentiles(source, keys, value, quantiles, range_from='range_from', range_to='range_to',
                               block_days=4) -%}
    {{ return(adapter.dispatch('esn_range_percentiles')(source, keys, value, quantiles, range_from, range_to,
                                                         block_days)) }}
{%- endmacro %}

{% macro default__esn_range_percentiles(source, keys, value, quantiles, range_from, range_to, block_days) -%}
    select
        c.as_of_date,
        {% for key in keys %}s.{{ key }},{% endfor %}
        {%- for name, fraction in quantiles.items() %}
        percentile_cont({{ fraction }}) within group (order by s.{{ value }}) as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ source }} s
    join ({{ esn_interval_days() }}) c on c.as_of_date between s.{{ range_from }} and s.{{ range_to }}
    group by c.as_of_date, {% for key in keys %}s.{{ key }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}

{% macro duckdb__esn_range_percentiles(source, keys, value, quantiles, range_from, range_to, block_days) -%}
    {%- set k = keys | join(', ') -%}
    {%- set first = _esn_day('start_date') -%}
    {%- set last = _esn_day('end_date') -%}
    {%- set n_days = 1 if first is none or last is none else (last - first).days + 1 -%}
    {%- set fractions = quantiles.values() | list -%}
    with pct_groups as (
        -- an integer per group, from its keys (deterministic: the CTE may be evaluated more than once)
        select {{ k }}, dense_rank() over (order by {{ k }}) as group_id
        from (select distinct {{ k }} from {{ source }}) d
    ),
    pct_values as (
        select g.group_id, s.{{ range_from }} as range_from, s.{{ range_to }} as range_to, s.{{ value }} as v
        from {{ source }} s
        join pct_groups g on {% for key in keys %}g.{{ key }} = s.{{ key }}{{ ' and ' if not loop.last }}{% endfor %}
        where s.{{ value }} is not null
    ),
    pct_blocks as (
        {%- for lo in range(0, n_days, block_days) %}
        {%- set hi = [lo + block_days, n_days] | min - 1 %}
        select c.as_of_date, p.group_id, quantile_cont(p.v, [{{ fractions | join(', ') }}]) as qs
        from pct_values p
        join (select cast({{ esn_date('start_date', lo) }} + cast(g.i as integer) as date) as as_of_date
              from generate_series(0, {{ hi - lo }}) as g(i)) c
          on c.as_of_date between p.range_from and p.range_to
        where p.range_from <= {{ esn_date('start_date', hi) }} and p.range_to >= {{ esn_date('start_date', lo) }}
        group by c.as_of_date, p.group_id
        {{ 'union all' if not loop.last }}
        {%- endfor %}
    )
    select
        b.as_of_date,
        {% for key in keys %}g.{{ key }},{% endfor %}
        {%- for name in quantiles %}
        b.qs[{{ loop.index }}] as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from pct_blocks b
    join pct_groups g on g.group_id = b.group_id
{%- endmacro %}
