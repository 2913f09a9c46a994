{#- Cross-database helpers of the models that dbt's own macros do not cover exactly. On PostgreSQL and DuckDB
    they render the SQL the models always had (so the results stay identical); on another adapter, dbt's
    portable macro. -#}

{#- Seconds from `start` to `end` (timestamps), with their fractions: extract(epoch from (end - start)). The
    default (dbt.datediff in seconds) counts whole seconds. -#}
{% macro esn_seconds_between(start, end) -%}
    {{ return(adapter.dispatch('esn_seconds_between', 'esn_metrics')(start, end)) }}
{%- endmacro %}

{% macro default__esn_seconds_between(start, end) -%}
    {{ dbt.datediff(start, end, 'second') }}
{%- endmacro %}

{% macro postgres__esn_seconds_between(start, end) -%}
    extract(epoch from ({{ end }} - {{ start }}))
{%- endmacro %}

{% macro duckdb__esn_seconds_between(start, end) -%}
    extract(epoch from ({{ end }} - {{ start }}))
{%- endmacro %}

{#- One row per blank-separated item of a string column (topic_ids), in a select list. -#}
{% macro esn_unnest_words(column) -%}
    {{ return(adapter.dispatch('esn_unnest_words', 'esn_metrics')(column)) }}
{%- endmacro %}

{% macro default__esn_unnest_words(column) -%}
    explode(split({{ column }}, ' '))
{%- endmacro %}

{% macro postgres__esn_unnest_words(column) -%}
    unnest(string_to_array({{ column }}, ' '))
{%- endmacro %}

{% macro duckdb__esn_unnest_words(column) -%}
    unnest(string_split({{ column }}, ' '))
{%- endmacro %}
