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
