{#- The schema of a model is its layer's (dbt_project.yml: +schema staging, internal or build), named by the
    vars schema_staging, schema_internal and schema_build (defaults: the warehouse's Schemas), never
    prefixed with the target's schema. A model without a layer schema goes to the target's schema; the failures a test stores go to its own
    schema (dbt_test__audit), unprefixed too. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set defaults = {'staging': 'esn_staging', 'internal': 'esn_internal', 'build': 'esn_build'} -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name in defaults -%}
        {{ esn_schema(custom_schema_name, defaults[custom_schema_name]) }}
    {%- elif node.resource_type == 'test' -%}
        {{ custom_schema_name }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("unknown layer schema " ~ custom_schema_name ~ " of " ~ node.name) }}
    {%- endif -%}
{%- endmacro %}

{#- A schema var: an identifier (lower-case letters, digits, underscore), else a compiler error. -#}
{% macro esn_schema(layer, default) -%}
    {%- set name = var('schema_' ~ layer, default) -%}
    {%- if name is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
        {{ exceptions.raise_compiler_error("var schema_" ~ layer ~ " must be a lower-case SQL identifier, got " ~ name) }}
    {%- endif -%}
    {{ name }}
{%- endmacro %}
