{#- The segments' rules shared by the models, written once (portable SQL: boolean expressions, coalesce,
    full outer join, the same on PostgreSQL and DuckDB). The models keep their `ref()`s in their own
    text (pipelines.dbt_project reads a model's dependencies from it): these macros take aliases and CTE
    names, never a relation. -#}

{#- Whether the person of the alias `p` (a row of stg_people) is employed on the date `day`: hired on or
    before it (or no hire date), not terminated on or before it. Used by int_segment_headcount_daily and
    mart_adoption_daily (through esn_in_headcount_on) and mart_leader_engagement (leaders, people
    reached). -#}
{% macro esn_employed_on(p, day) -%}
    ({{ p }}.hire_date is null or {{ p }}.hire_date <= {{ day }})
     and ({{ p }}.termination_date is null or {{ p }}.termination_date > {{ day }})
{%- endmacro %}

{#- Whether the person of the alias `p` (stg_people) counts in the headcount of the date `day`: employed,
    and in the HR directory or with a platform account not deactivated. The headcount of every mart
    (int_segment_headcount_daily) and the people of mart_adoption_daily. -#}
{% macro esn_in_headcount_on(p, day) -%}
    {{ esn_employed_on(p, day) }}
     and ({{ p }}.in_directory or not {{ p }}.is_deactivated)
{%- endmacro %}

{#- The body of the CTE `completed`: every segment of the day has a row, active or not (a missing row
    would say that nobody in it did anything: for a small segment, a figure about fewer than
    min_group_size people). The rows of `flagged` (the group's figures and `suppressed`) full outer
    joined with those of `day_segments` (as_of_date[, period_type], segment_type, segment_value: every
    segment of int_segment_headcount_daily on the day); a segment without figures is suppressed, with null
    figures. `columns`: the figures of `flagged` kept; `by_period`: whether the groups have a
    period_type. Used by mart_knowledge_sharing, mart_participation_inequality,
    mart_department_concentration (by period) and mart_unanswered_backlog (by day). -#}
{% macro esn_complete_day_segments(columns, by_period=true, flagged='flagged', day_segments='day_segments') -%}
    {%- set keys = ['as_of_date', 'period_type', 'segment_type', 'segment_value'] if by_period
                   else ['as_of_date', 'segment_type', 'segment_value'] -%}
    select
        {%- for key in keys %}
        coalesce(f.{{ key }}, d.{{ key }}) as {{ key }},
        {%- endfor %}
        coalesce(f.suppressed, true) as suppressed
        {%- for column in columns %},
        f.{{ column }}
        {%- endfor %}
    from {{ flagged }} f
    full outer join {{ day_segments }} d
      on {% for key in keys %}{{ 'and ' if not loop.first }}d.{{ key }} = f.{{ key }}{{ ' ' if not loop.last }}{% endfor %}
{%- endmacro %}

{#- Whether the row of the alias `h` of a history (person_key, valid_from, valid_to, both days included:
    int_segment_membership, int_people_history) is the person `person`'s on the date `day`. The join of
    a person's segments (or department) as of the day of an event, used by every model that counts people
    by segment as of a day. -#}
{% macro esn_valid_on(h, person, day) -%}
    {{ h }}.person_key = {{ person }}
     and {{ day }} between {{ h }}.valid_from and {{ h }}.valid_to
{%- endmacro %}

{#- Whether the row of the alias `h` of a history (as esn_valid_on) is the person `person`'s on some day of
    [range_from, range_to]: the validity and the range overlap. Used by mart_knowledge_sharing and
    mart_unanswered_backlog (the segments of an asker over a question's range). -#}
{% macro esn_valid_during(h, person, range_from, range_to) -%}
    {{ h }}.person_key = {{ person }}
     and {{ h }}.valid_from <= {{ range_to }}
     and {{ h }}.valid_to >= {{ range_from }}
{%- endmacro %}

{#- The first / last day of a person's range in a segment: the range's `day` clipped to the run's interval
    [start_date, end_date] and, with `h` (the alias of the person's int_segment_membership row), to its
    validity. The asker's segments over a question's range in mart_knowledge_sharing and
    mart_unanswered_backlog (a container segment has no validity: no `h`). -#}
{% macro esn_clip_from(day, h=none) -%}
    greatest({{ day }}, {{ h ~ '.valid_from, ' if h }}{{ esn_date('start_date') }})
{%- endmacro %}

{% macro esn_clip_to(day, h=none) -%}
    least({{ day }}, {{ h ~ '.valid_to, ' if h }}{{ esn_date('end_date') }})
{%- endmacro %}

{#- The body of a CTE of ranges: each person's days in the headcount (esn_in_headcount_on) and in a segment
    (a row of the membership history), within the run's interval: segment_type, segment_value,
    person_key, r_from, r_to (both days included; empty ranges left out). `people`: an alias of
    stg_people's rows, `membership`: of int_segment_membership's. A count of people by segment and day
    is then a count of the ranges that hold the day (esn_range_counts): it costs the ranges, not
    people x days x segments. Used by int_segment_headcount_daily and mart_adoption_daily. -#}
{% macro esn_headcount_ranges(people, membership) -%}
    select segment_type, segment_value, person_key, r_from, r_to
    from (
        select
            m.segment_type,
            m.segment_value,
            p.person_key,
            greatest(m.valid_from, coalesce(p.hire_date, m.valid_from), {{ esn_date('start_date') }}) as r_from,
            least(m.valid_to, coalesce(p.termination_date - 1, m.valid_to), {{ esn_date('end_date') }}) as r_to
        from {{ people }} p
        join {{ membership }} m on m.person_key = p.person_key
        where (p.in_directory or not p.is_deactivated)
    ) r
    where r_from <= r_to
{%- endmacro %}

{#- The CTEs `range_deltas`, `range_changes` and `range_counts` (as_of_date, segment_type, segment_value and
    one count per measure) for every day of `calendar` and every segment of `ranges`: the number of ranges
    that hold the day, per measure. `ranges`: a CTE with segment_type, segment_value, r_to and, per
    measure, its first day `<measure>_from` (a range counts in the measure from that day to r_to; null or
    after r_to: not at all). Each range adds +1 on its first day and -1 on the day after its last, and
    a running sum over the days gives the counts (a difference array): the cost is the ranges and
    days x segments, never people x days. -#}
{% macro esn_range_counts(ranges, measures, calendar='calendar') -%}
range_deltas as (
    select
        r.segment_type,
        r.segment_value,
        case when e.sign = 1 then case e.measure
            {%- for m in measures %} when {{ loop.index }} then r.{{ m }}_from{% endfor %} end
        else r.r_to + 1 end as as_of_date
        {%- for m in measures %},
        case when e.measure = {{ loop.index }} then e.sign else 0 end as {{ m }}
        {%- endfor %}
    from {{ ranges }} r
    cross join (
        {%- for m in measures %}
        {{ 'union all ' if not loop.first }}select {{ loop.index }} as measure, 1 as sign union all select {{ loop.index }}, -1
        {%- endfor %}
    ) e
    where case e.measure {%- for m in measures %} when {{ loop.index }} then r.{{ m }}_from{% endfor %} end <= r.r_to
),
range_changes as (
    select segment_type, segment_value, as_of_date
        {%- for m in measures %}, sum({{ m }}) as {{ m }}{% endfor %}
    from range_deltas
    group by segment_type, segment_value, as_of_date
),
range_segments as (
    select distinct segment_type, segment_value from {{ ranges }}
),
range_counts as (
    select
        c.as_of_date,
        s.segment_type,
        s.segment_value
        {%- for m in measures %},
        cast(sum(coalesce(ch.{{ m }}, 0)) over (
            partition by s.segment_type, s.segment_value order by c.as_of_date
            rows between unbounded preceding and current row) as bigint) as {{ m }}
        {%- endfor %}
    from {{ calendar }} c
    cross join range_segments s
    left join range_changes ch
      on ch.segment_type = s.segment_type and ch.segment_value = s.segment_value and ch.as_of_date = c.as_of_date
)
{%- endmacro %}

{#- CTEs (profile_bounds, profile_epochs, profile_rows, profile_keys, person_epochs and profile_segments,
    comma-separated, to be placed in a WITH list after `membership`, a CTE of int_segment_membership's
    rows): the people grouped by their whole set of segments. A person's segments change only where one
    of their membership rows starts or ends; between two such days (an epoch, within the interval) they are a fixed set of
    (segment_type, segment_value) rows, its `profile`. person_epochs has person_key, epoch_from, epoch_to
    (both days included) and profile_id (the same number for the same set of rows, duplicates included);
    profile_segments has profile_id, segment_type, segment_value (one row per membership row of the
    profile). A count by segment as of a day is then a count by profile (a few thousand at 100k people)
    joined to profile_segments at the end, instead of each person-day joined to each of its segment
    rows. Epochs are those of the run's interval (days outside it are in none). Used by
    mart_engagement_daily, mart_engagement_period and mart_participation_inequality. -#}
{% macro esn_person_profiles(membership='membership') -%}
profile_bounds as (
    -- the days a person's segments may change within the interval, and the day after it
    select person_key, greatest(valid_from, {{ esn_date('start_date') }}) as day from {{ membership }}
    where valid_to >= {{ esn_date('start_date') }} and valid_from <= {{ esn_date('end_date') }}
    union
    select person_key, valid_to + 1 from {{ membership }}
    where valid_to >= {{ esn_date('start_date') }} and valid_to < {{ esn_date('end_date') }}
    union
    select person_key, {{ esn_date('end_date', 1) }} from {{ membership }}
    where valid_to >= {{ esn_date('start_date') }} and valid_from <= {{ esn_date('end_date') }}
),
profile_epochs as (
    select person_key, day as epoch_from, lead(day) over (partition by person_key order by day) - 1 as epoch_to
    from profile_bounds
),
profile_rows as (
    select
        e.person_key,
        e.epoch_from,
        e.epoch_to,
        m.segment_type,
        m.segment_value,
        -- the row as an unambiguous string (lengths before the parts), the profile being their sorted concatenation
        cast(length(m.segment_type) as varchar) || ':' || m.segment_type
            || case when m.segment_value is null then '!'
                    else '=' || cast(length(m.segment_value) as varchar) || ':' || m.segment_value end as code
    from profile_epochs e
    join {{ membership }} m
      on m.person_key = e.person_key and e.epoch_from between m.valid_from and m.valid_to
    where e.epoch_to is not null
),
profile_keys as (
    select person_key, epoch_from, epoch_to, string_agg(code, ';' order by code) as profile
    from profile_rows
    group by person_key, epoch_from, epoch_to
),
person_epochs as (
    select person_key, epoch_from, epoch_to, dense_rank() over (order by profile) as profile_id
    from profile_keys
),
profile_segments as (
    -- the rows of one epoch of each profile (the first person's first): every epoch of it has the same
    select e.profile_id, r.segment_type, r.segment_value
    from (
        select person_key, epoch_from, profile_id,
               row_number() over (partition by profile_id order by person_key, epoch_from) as nth
        from person_epochs
    ) e
    join profile_rows r on r.person_key = e.person_key and r.epoch_from = e.epoch_from
    where e.nth = 1
)
{%- endmacro %}
