with calendar as (
    {{ esn_interval_days() }}
),
questions as (
    select
        author_key,
        container_id,
        activity_date,
        coalesce(first_reply_date - 1, date '9999-12-30') as open_to
    from {{ ref('fct_posts') }}
    where is_question and activity_date <= {{ esn_date('end_date') }}
      and (first_reply_date is null or first_reply_date >= {{ esn_date('start_date') }})
),
open_ranges as (
    -- the asker's segments as of each day (membership validity), or the question's container
    select
        m.segment_type,
        m.segment_value,
        q.activity_date,
        {{ esn_clip_from('q.activity_date', 'm') }} as open_from,
        {{ esn_clip_to('q.open_to', 'm') }} as open_to
    from questions q
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_during('m', 'q.author_key', 'q.activity_date', 'q.open_to') }}
    union all
    select
        'container',
        container_id,
        activity_date,
        {{ esn_clip_from('activity_date') }},
        {{ esn_clip_to('open_to') }}
    from questions
    where container_id is not null
),
person_islands as (
    -- per asker, the union of the open ranges of their questions
    {{ esn_range_islands('questions', ['author_key'], 'activity_date', 'open_to', where='activity_date <= open_to') }}
),
container_islands as (
    {{ esn_range_islands('questions', ['author_key', 'container_id'], 'activity_date', 'open_to',
                         where='activity_date <= open_to and container_id is not null') }}
),
ranges as (
    -- (group, first day, last day, what the range counts)
    select m.segment_type, m.segment_value,
           {{ esn_clip_from('i.covered_from', 'm') }} as range_from,
           {{ esn_clip_to('i.covered_to', 'm') }} as range_to,
           1 as askers, 0 as open_questions, 0 as open_0_1d, 0 as open_1_7d, 0 as open_7_30d, 0 as open_over_30d
    from person_islands i
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_during('m', 'i.author_key', 'i.covered_from', 'i.covered_to') }}
    union all
    select 'container', container_id, {{ esn_clip_from('covered_from') }},
           {{ esn_clip_to('covered_to') }}, 1, 0, 0, 0, 0, 0
    from container_islands
    union all
    select segment_type, segment_value, open_from, open_to, 0, 1, 0, 0, 0, 0
    from open_ranges
    union all
    select segment_type, segment_value, open_from,
           case when activity_date < open_to then activity_date else open_to end, 0, 0, 1, 0, 0, 0
    from open_ranges
    union all
    select segment_type, segment_value,
           case when activity_date + 1 > open_from then activity_date + 1 else open_from end,
           case when activity_date + 6 < open_to then activity_date + 6 else open_to end, 0, 0, 0, 1, 0, 0
    from open_ranges
    union all
    select segment_type, segment_value,
           case when activity_date + 7 > open_from then activity_date + 7 else open_from end,
           case when activity_date + 29 < open_to then activity_date + 29 else open_to end, 0, 0, 0, 0, 1, 0
    from open_ranges
    union all
    select segment_type, segment_value,
           case when activity_date + 30 > open_from then activity_date + 30 else open_from end,
           open_to, 0, 0, 0, 0, 0, 1
    from open_ranges
),
{{ esn_range_daily_totals('aggregated', ['segment_type', 'segment_value'],
                          ['askers', 'open_questions', 'open_0_1d', 'open_1_7d', 'open_7_30d', 'open_over_30d']) }},
flagged as (
    select *, askers < {{ esn_number('min_group_size') }} as suppressed from aggregated where open_questions > 0
),
day_segments as (
    -- every segment of the day has a row, active or not: a missing row would say that nobody in it has an open question
    -- (for a small segment, a figure about fewer than :min_group_size people); withheld like any small group
    select h.as_of_date, h.segment_type, h.segment_value
    from {{ ref('int_segment_headcount_daily') }} h
    where h.as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
completed as (
    {{ esn_complete_day_segments(['askers', 'open_questions', 'open_0_1d', 'open_1_7d', 'open_7_30d', 'open_over_30d'], by_period=false) }}
)
select
    as_of_date,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(askers as bigint) end as askers,
    case when suppressed then null else cast(open_questions as bigint) end as open_questions,
    case when suppressed then null else cast(open_0_1d as bigint) end as open_0_1d,
    case when suppressed then null else cast(open_1_7d as bigint) end as open_1_7d,
    case when suppressed then null else cast(open_7_30d as bigint) end as open_7_30d,
    case when suppressed then null else cast(open_over_30d as bigint) end as open_over_30d
from completed
