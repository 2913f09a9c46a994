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

{#- A date: 'YYYY-MM-DD' (or a date YAML parsed) -> cast('YYYY-MM-DD' as date) -#}
{% macro esn_date(name) -%}
    {%- set value = _esn_var(name) -%}
    {%- if value is none -%}
        cast('1970-01-01' as date)
    {%- else -%}
        {%- if value is string -%}
            {%- set text = value -%}
        {%- elif value.isoformat is defined and value.year is defined -%}
            {%- set text = value.isoformat() -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a date 'YYYY-MM-DD', got " ~ value) }}
        {%- endif -%}
        {%- if not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', text) -%}
            {{ exceptions.raise_compiler_error("var " ~ name ~ " must be a date 'YYYY-MM-DD', got '" ~ text ~ "'") }}
        {%- endif -%}
        {%- do modules.datetime.date.fromisoformat(text) -%}
        cast('{{ text }}' as date)
    {%- endif -%}
{%- endmacro %}

{#- A number: an integer renders as itself, a float as cast('<repr>' as double precision) (a bare 0.5 would be
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
        cast('{{ text }}' as {{ dbt.type_float() }})
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
