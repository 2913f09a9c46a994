{#- The incremental strategy of the partitioned models (config incremental_strategy: esn_partitions, meta
    partition_column: <column>): each run recomputes exactly the partitions [start_date, end_date] of the
    partition column: those partitions are deleted, then the new rows inserted by column name (a day that
    now has no rows loses its old rows). The model's SQL selects only the interval's partitions; the first
    build (dbt's create table as) holds the interval's rows. Columns follow the model with
    on_schema_change: sync_all_columns, and full_refresh: false (a full refresh would rebuild the table
    with the interval's partitions only). The same SQL on dbt-duckdb and dbt-postgres. -#}
{% macro get_incremental_esn_partitions_sql(arg_dict) -%}
    {%- set column = (config.get('meta') or {}).get('partition_column') -%}
    {%- if not column or not modules.re.fullmatch('[a-z_][a-z0-9_]*', column) -%}
        {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": incremental_strategy esn_partitions needs meta.partition_column, a column name, got " ~ column) }}
    {%- endif -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ column }} between {{ esn_date('start_date') }} and {{ esn_date('end_date') }};
    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }}
{%- endmacro %}
