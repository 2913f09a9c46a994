{#- The alerts' shared wording and severity rule (mart_alerts), written once. Portable SQL: round, casts to
    integer and varchar, the same on PostgreSQL and DuckDB. -#}

{#- A share (0..1, an SQL expression) as the text of a whole percentage, '12' for 0.123 (the
    database's round() of 100 times the share), no % sign. Every percentage in
    the evidence of mart_alerts. -#}
{% macro esn_percent_text(share) -%}
    cast(cast(round(100 * {{ share }}) as integer) as varchar)
{%- endmacro %}

{#- The severity of an alert whose figure `observed` fell below the threshold `threshold`: high below half
    the threshold, else medium. mart_alerts: silent_segment (participation_rate), absent_leaders (leader
    posting share, leader reach). -#}
{% macro esn_severity_below(observed, threshold) -%}
    case when {{ observed }} < {{ threshold }} / 2 then 'high' else 'medium' end
{%- endmacro %}
