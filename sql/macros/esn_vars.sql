{#- The parameters of the models (jobs.model_params) as dbt vars, rendered as typed SQL literals. Each macro
    checks the var's type and refuses anything else with a compiler error naming the var: a value is never
    formatted raw into SQL. At parse time (execute is false) a missing var renders a placeholder. -#}

{%- macro _esn_var(name) -%}
    {%- set value = var(name, none) -%}
    {%- if value is none and execute -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " is not set (pass it with --vars)") }}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro -%}

{#- A date var as a date (none when unset at parse time), or a compiler error naming the var -#}
{%- macro _esn_day(name) -%}
    {%- set value = _esn_var(name) -%}
    {%- if value is none -%}
        {{ return(none) }}
    {%- elif value is string -%}
        {%- set text = value -%}
    {%- elif value.isoformat is defined and value.year is defined -%}
        {%- set text = value.isoformat() -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a date 'YYYY-MM-DD', got " ~ value) }}
    {%- endif -%}
    {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a date 'YYYY-MM-DD', got '" ~ text ~ "'") }}
    {%- endif -%}
    {{ return(modules.datetime.date.fromisoformat(text)) }}
{%- endmacro -%}

{#- A date: 'YYYY-MM-DD' (or a date YAML parsed) -> cast('YYYY-MM-DD' as date); with `days`, that many days
    later (earlier when negative), computed here: the date arithmetic of the vars is portable SQL -#}
{% macro esn_date(name, days=0) -%}
    {%- if days is not integer or days is boolean -%}
        {{ exceptions.raise_compiler_error("esn_date(" ~ name ~ "): days must be an integer, got " ~ days) }}
    {%- endif -%}
    {%- set day = _esn_day(name) -%}
    {%- if day is none -%}
        cast('1970-01-01' as date)
    {%- else -%}
        cast('{{ (day + modules.datetime.timedelta(days=days)).isoformat() }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- The days from the date var `start` to the date var `end` (end - start), an integer literal -#}
{% macro esn_days_between(start, end) -%}
    {%- set a = _esn_day(start) -%}
    {%- set b = _esn_day(end) -%}
    {{ 0 if a is none or b is none else (b - a).days }}
{%- endmacro %}

{#- A number: an integer renders as itself, a float as cast('<repr>' as double precision), the type a bound
    Python float had (not dbt.type_float(): `float` is a 4-byte REAL on DuckDB; and a bare 0.5 would be
    a DECIMAL on DuckDB); booleans, strings, NaN and infinities are refused -#}
{% macro esn_number(name) -%}
    {%- set value = _esn_var(name) -%}
    {%- if value is none -%}
        0
    {%- elif value is boolean or value is not number -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a number, got " ~ value) }}
    {%- elif value is integer -%}
        {{ value }}
    {%- else -%}
        {%- set text = value | string -%}
        {%- if not modules.re.fullmatch('-?[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?', text) -%}
            {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a finite number, got " ~ text) }}
        {%- endif -%}
        cast('{{ text }}' as double precision)
    {%- endif -%}
{%- endmacro %}

{#- A boolean: true or false (not 'true', not 1) -#}
{% macro esn_bool(name) -%}
    {%- set value = _esn_var(name) -%}
    {%- if value is none -%}
        false
    {%- elif value is not boolean -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be true or false, got " ~ value) }}
    {%- else -%}
        {{ 'true' if value else 'false' }}
    {%- endif -%}
{%- endmacro %}

{#- A string, quoted with its quotes doubled (no model takes one today) -#}
{% macro esn_string(name) -%}
    {%- set value = _esn_var(name) -%}
    {%- if value is none -%}
        ''
    {%- elif value is not string -%}
        {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a string, got " ~ value) }}
    {%- else -%}
        '{{ value | replace("'", "''") }}'
    {%- endif -%}
{%- endmacro %}

{#- on-run-start: the session time zone must be UTC (an event's activity_date and every cast of a timestamp
    with time zone to a date depend on it). DuckDB: the profile's settings {TimeZone: UTC}; PostgreSQL:
    PGTZ=UTC in dbt's environment (dbt-postgres has no session options). -#}
{% macro esn_require_utc() -%}
    {%- if execute -%}
        {%- set tz = run_query("select current_setting('TimeZone')").columns[0].values()[0] -%}
        {%- if tz not in ('UTC', 'Etc/UTC', 'utc', 'Etc/UCT', 'UCT', 'GMT', 'Etc/GMT') -%}
            {{ exceptions.raise_compiler_error("the session time zone is " ~ tz ~ ", not UTC: set TimeZone: UTC in the DuckDB profile's settings, or PGTZ=UTC for PostgreSQL") }}
        {%- endif -%}
    {%- endif -%}
    select 1
{%- endmacro %}
