{#- The audit of a model's rows, one query for all its checks: its key is unique, and neither its key columns
    nor the `not_null` columns hold NULL. An incremental model (`partition_by`) is audited on the partitions the
    run rebuilt, [start_date, end_date], as the rows it wrote: the others were audited when they were written;
    so are the staging views over the lake (stg_activities, stg_usage_daily: the days the run loaded; an event's
    day is its occurred_at's, so it is in one partition only), whose full audit read the whole lake every day.
    Fails with one row per broken check: the check and the number of offending keys or rows. -#}
{% test esn_audit(model, key=[], not_null=[], partition_by=none) %}
with audited as (
    select * from {{ model }}
    {%- if partition_by %}
    where {{ partition_by }} between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    {%- endif %}
)
{%- set ns = namespace(first=true) %}
{%- if key %}
select 'duplicated key ({{ key | join(", ") }})' as problem, count(*) as failing
from (select {{ key | join(', ') }} from audited group by {{ key | join(', ') }} having count(*) > 1) duplicated
having count(*) > 0
{%- set ns.first = false %}
{%- endif %}
{%- for col in (key + not_null) | unique %}
{% if not ns.first %}union all{% endif %}
select 'null {{ col }}' as problem, count(*) as failing from audited where {{ col }} is null having count(*) > 0
{%- set ns.first = false %}
{%- endfor %}
{%- if ns.first %}
select 'nothing to audit' as problem, 0 as failing where 1 = 0
{%- endif %}
{% endtest %}
