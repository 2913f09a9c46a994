{#- The incremental strategy of the partitioned models (config incremental_strategy: esn_partitions, meta
    partition_column: <column>): each run recomputes exactly the partitions [start_date, end_date] of the
    partition column: those partitions are deleted, then the new rows inserted by column name (a day that
    now has no rows loses its old rows). The model's SQL selects only the interval's partitions; the first
    build (dbt's create table as) holds the interval's rows. Columns follow the model with
    on_schema_change: sync_all_columns, and full_refresh: false (a full refresh would rebuild the table
    with the interval's partitions only). The same SQL on dbt-duckdb and dbt-postgres.

    Two options in the meta, for the models whose interval reaches rows outside its own days:
    - partition_grain: month: the partition column holds the first day of a calendar month (month_start)
      and the interval's partitions are its months, [the first day of start_date's month, end_date]: the
      model's SQL then selects whole months (a month's rows, e.g. its ranks, depend on all its days).
    - replace_keys: <columns>: the rows of the target whose key (these columns) one of the new rows has are
      replaced too: the model's SQL selects, besides the interval's partitions, the rows of older
      partitions the interval changed (a post answered today, the month of an answer accepted today),
      recomputed whole. A row of an older partition never disappears this way (only the interval's
      partitions can lose rows), so selecting the changed rows is enough. -#}
{% macro get_incremental_esn_partitions_sql(arg_dict) -%}
    {%- set meta = config.get('meta') or {} -%}
    {%- set column = meta.get('partition_column') -%}
    {%- if not column or not modules.re.fullmatch('[a-z_][a-z0-9_]*', column) -%}
        {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": incremental_strategy esn_partitions needs meta.partition_column, a column name, got " ~ column) }}
    {%- endif -%}
    {%- set grain = meta.get('partition_grain', 'day') -%}
    {%- if grain not in ('day', 'month') -%}
        {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": meta.partition_grain must be day or month, got " ~ grain) }}
    {%- endif -%}
    {%- set keys = meta.get('replace_keys') or [] -%}
    {%- if keys is string -%}
        {%- set keys = keys.split(',') | map('trim') | list -%}
    {%- endif -%}
    {%- for k in keys -%}
        {%- if not modules.re.fullmatch('[a-z_][a-z0-9_]*', k) -%}
            {{ exceptions.raise_compiler_error("model " ~ model.name ~ ": meta.replace_keys must be column names, got " ~ k) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set cols = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ column }} between {{ esn_interval_start(grain) }} and {{ esn_date('end_date') }}
    {%- if keys %}
       or exists (select 1 from {{ source }} s
                  where {% for k in keys %}{{ 'and ' if not loop.first }}s.{{ k }} = {{ target }}.{{ k }}{{ ' ' if not loop.last }}{% endfor %})
    {%- endif %};
    insert into {{ target }} ({{ cols }})
    select {{ cols }} from {{ source }}
{%- endmacro %}

{#- The first partition of the run's interval at the grain `grain` (esn_partitions' partition_grain): the
    date start_date (day), or the first day of its month (month), as a date literal computed here. -#}
{% macro esn_interval_start(grain='day') -%}
    {%- if grain == 'day' -%}
        {{ esn_date('start_date') }}
    {%- elif grain == 'month' -%}
        {%- set day = _esn_day('start_date') -%}
        {%- if day is none -%}
            cast('1970-01-01' as date)
        {%- else -%}
            cast('{{ day.replace(day=1).isoformat() }}' as date)
        {%- endif -%}
    {%- else -%}
        {{ exceptions.raise_compiler_error("esn_interval_start: grain must be day or month, got " ~ grain) }}
    {%- endif -%}
{%- endmacro %}
