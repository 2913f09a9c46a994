{#- Ideas by the period they were submitted in (ISO week, calendar month) and the author's segment as of
    the idea's day, with what had happened to them by end_date (fct_ideas, fct_idea_status_spells).
    Rebuilt in full on each run: a later build-on or status change updates the idea's period. -#}
with ideas as (
    select i.*, s.open_ms
    from {{ ref('fct_ideas') }} i
    left join (
        -- whole milliseconds: integer sums do not depend on the order rows are added in (a rerun
        -- publishes the same bytes), where a sum of doubles may differ in its last digit
        select source, idea_id, sum(cast(round(days_in_status * 86400000) as bigint)) as open_ms
        from {{ ref('fct_idea_status_spells') }}
        where status = 'open'
        group by source, idea_id
    ) s on s.source = i.source and s.idea_id = i.event_id
),
periods as (
    select i.*, 'week' as period_type, {{ esn_week_start('i.activity_date') }} as period_start,
           {{ esn_week_end('i.activity_date') }} as period_end
    from ideas i
    union all
    select i.*, 'month', {{ esn_month_start('i.activity_date') }}, {{ esn_month_end('i.activity_date') }}
    from ideas i
),
segmented as (
    select p.*, m.segment_type, m.segment_value
    from periods p
    join {{ ref('int_segment_membership') }} m on {{ esn_valid_on('m', 'p.author_key', 'p.activity_date') }}
),
grouped as (
    select
        period_type,
        period_start,
        period_end,
        segment_type,
        segment_value,
        count(distinct author_key) as idea_authors,
        count(*) as ideas,
        sum(case when builders > 0 then 1 else 0 end) as ideas_built_on,
        sum(case when cross_department_builders > 0 then 1 else 0 end) as ideas_built_on_across_departments,
        avg(cast(departments_reached as double precision)) as mean_departments_reached,
        percentile_cont(0.5) within group (order by hours_to_first_build_on) as median_hours_to_first_build_on,
        sum(case when status = 'planned' then 1 else 0 end) as ideas_planned,
        sum(case when status = 'in_progress' then 1 else 0 end) as ideas_in_progress,
        sum(case when completed_at is not null then 1 else 0 end) as ideas_completed,
        sum(case when status = 'declined' then 1 else 0 end) as ideas_declined,
        percentile_cont(0.5) within group (order by days_to_completed) as median_days_to_completed,
        cast(sum(open_ms) as double precision) / nullif(count(open_ms), 0) / 86400000.0 as mean_days_open
    from segmented
    group by period_type, period_start, period_end, segment_type, segment_value
),
flagged as (
    select g.*, g.idea_authors < {{ esn_number('min_group_size') }} as suppressed from grouped g
)
select
    period_type,
    period_start,
    period_end,
    segment_type,
    segment_value,
    cast({{ esn_date('end_date') }} as date) as measured_through,
    suppressed,
    case when suppressed then null else cast(idea_authors as bigint) end as idea_authors,
    case when suppressed then null else cast(ideas as bigint) end as ideas,
    case when suppressed then null else cast(ideas_built_on as bigint) end as ideas_built_on,
    case when suppressed then null else cast(ideas_built_on as double precision) / ideas end as build_on_rate,
    case when suppressed then null else cast(ideas_built_on_across_departments as bigint) end
        as ideas_built_on_across_departments,
    case when suppressed then null else cast(ideas_built_on_across_departments as double precision) / ideas end
        as cross_department_build_on_rate,
    case when suppressed then null else cast(mean_departments_reached as double precision) end
        as mean_departments_reached,
    case when suppressed then null else cast(median_hours_to_first_build_on as double precision) end
        as median_hours_to_first_build_on,
    case when suppressed then null else cast(ideas_planned as bigint) end as ideas_planned,
    case when suppressed then null else cast(ideas_in_progress as bigint) end as ideas_in_progress,
    case when suppressed then null else cast(ideas_completed as bigint) end as ideas_completed,
    case when suppressed then null else cast(ideas_completed as double precision) / ideas end as implementation_rate,
    case when suppressed then null else cast(ideas_declined as bigint) end as ideas_declined,
    case when suppressed then null else cast(median_days_to_completed as double precision) end
        as median_days_to_completed,
    case when suppressed then null else cast(mean_days_open as double precision) end as mean_days_open
from flagged
