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
