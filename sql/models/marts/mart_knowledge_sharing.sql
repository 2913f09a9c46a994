with calendar as (
    {{ esn_interval_days() }}
),
questions as (
    select author_key, container_id, activity_date, first_reply_date, hours_to_first_reply, accepted_date
    from {{ ref('fct_posts') }}
    where is_question and activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
spans as (
    -- the window of (as_of_date, period_type) holds the question for as_of_date in [activity_date, window_end]
    select q.*, 'rolling_7d' as period_type, q.activity_date + 6 as window_end from questions q
    union all
    select q.*, 'rolling_28d', q.activity_date + 27 from questions q
    union all
    select q.*, 'week', {{ esn_week_end('q.activity_date') }} from questions q
    union all
    select q.*, 'month', {{ esn_month_end('q.activity_date') }} from questions q
),
segmented as (
    -- the asker's segments as of each as_of_date (membership validity), or the question's container
    select
        s.period_type,
        m.segment_type,
        m.segment_value,
        s.activity_date,
        s.first_reply_date,
        s.hours_to_first_reply,
        s.accepted_date,
        {{ esn_clip_from('s.activity_date', 'm') }} as span_from,
        {{ esn_clip_to('s.window_end', 'm') }} as span_to
    from spans s
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_during('m', 's.author_key', 's.activity_date', 's.window_end') }}
    union all
    select
        s.period_type,
        'container',
        s.container_id,
        s.activity_date,
        s.first_reply_date,
        s.hours_to_first_reply,
        s.accepted_date,
        {{ esn_clip_from('s.activity_date') }},
        {{ esn_clip_to('s.window_end') }}
    from spans s
    where s.container_id is not null
),
asker_islands as (
    -- per asker and period type, the union of the ranges of their questions in a container
    {{ esn_range_islands('(select distinct author_key, container_id, period_type, activity_date, window_end'
                         ~ ' from spans where container_id is not null) d',
                         ['author_key', 'container_id', 'period_type'], 'activity_date', 'window_end') }}
),
person_islands as (
    -- the same without the container (ranges of every container merged)
    {{ esn_range_islands('(select distinct author_key, period_type, activity_date, window_end from spans) d',
                         ['author_key', 'period_type'], 'activity_date', 'window_end') }}
),
asker_ranges as (
    select
        i.period_type,
        m.segment_type,
        m.segment_value,
        {{ esn_clip_from('i.covered_from', 'm') }} as range_from,
        {{ esn_clip_to('i.covered_to', 'm') }} as range_to
    from person_islands i
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_during('m', 'i.author_key', 'i.covered_from', 'i.covered_to') }}
    union all
    select
        period_type,
        'container',
        container_id,
        {{ esn_clip_from('covered_from') }},
        {{ esn_clip_to('covered_to') }}
    from asker_islands
),
ranges as (
    -- (group, first day, last day, what the range counts)
    select period_type, segment_type, segment_value, range_from, range_to,
           1 as askers, 0 as questions, 0 as answered, 0 as eligible_24h, 0 as answered_24h, 0 as accepted
    from asker_ranges
    union all
    select period_type, segment_type, segment_value, span_from, span_to, 0, 1, 0, 0, 0, 0
    from segmented
    union all
    select period_type, segment_type, segment_value,
           case when first_reply_date > span_from then first_reply_date else span_from end, span_to,
           0, 0, 1, 0, 0, 0
    from segmented
    where first_reply_date is not null
    union all
    select period_type, segment_type, segment_value,
           case when activity_date + 1 > span_from then activity_date + 1 else span_from end, span_to,
           0, 0, 0, 1, case when hours_to_first_reply <= 24 then 1 else 0 end, 0
    from segmented
    union all
    select period_type, segment_type, segment_value,
           case when accepted_date > span_from then accepted_date else span_from end, span_to,
           0, 0, 0, 0, 0, 1
    from segmented
    where accepted_date is not null
),
{{ esn_range_daily_totals('aggregated_counts', ['period_type', 'segment_type', 'segment_value'],
                          ['askers', 'questions', 'answered', 'eligible_24h', 'answered_24h', 'accepted']) }},
counted as (
    select * from aggregated_counts where questions > 0
),
published_groups as (
    -- groups that reach the suppression size on some day: only they publish percentiles
    select period_type, segment_type, segment_value
    from counted
    group by period_type, segment_type, segment_value
    having max(askers) >= {{ esn_number('min_group_size') }}
),
answered_spans as (
    select
        s.period_type,
        s.segment_type,
        s.segment_value,
        case when s.first_reply_date > s.span_from then s.first_reply_date else s.span_from end as span_from,
        s.span_to,
        s.hours_to_first_reply
    from segmented s
    join published_groups g
      on g.period_type = s.period_type and g.segment_type = s.segment_type and g.segment_value = s.segment_value
    where s.first_reply_date is not null and s.hours_to_first_reply is not null
),
percentiles as (
    {{ esn_range_percentiles('answered_spans', ['period_type', 'segment_type', 'segment_value'],
                             'hours_to_first_reply', {'median_hours': 0.5, 'p90_hours': 0.9},
                             range_from='span_from', range_to='span_to') }}
),
flagged as (
    select k.*, p.median_hours, p.p90_hours, k.askers < {{ esn_number('min_group_size') }} as suppressed
    from counted k
    left join percentiles p
      on p.as_of_date = k.as_of_date and p.period_type = k.period_type
     and p.segment_type = k.segment_type and p.segment_value = k.segment_value
),
day_segments as (
    -- every segment of the day has a row, active or not: a missing row would say that nobody in it asked
    -- (for a small segment, a figure about fewer than :min_group_size people); withheld like any small group
    select h.as_of_date, p.period_type, h.segment_type, h.segment_value
    from {{ ref('int_segment_headcount_daily') }} h
    cross join (values ('rolling_7d'), ('rolling_28d'), ('week'), ('month')) as p(period_type)
    where h.as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
completed as (
    {{ esn_complete_day_segments(['askers', 'questions', 'answered', 'eligible_24h', 'answered_24h', 'median_hours', 'p90_hours', 'accepted']) }}
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(askers as bigint) end as askers,
    case when suppressed then null else cast(questions as bigint) end as questions,
    case when suppressed then null else cast(answered as bigint) end as questions_answered,
    case when suppressed then null else cast(answered as double precision) / questions end as answered_rate,
    case when suppressed or eligible_24h = 0 then null
         else cast(answered_24h as double precision) / eligible_24h end as answered_24h_rate,
    case when suppressed then null else cast(questions - answered as double precision) / questions end as unanswered_rate,
    case when suppressed then null else cast(median_hours as double precision) end as median_hours_to_first_response,
    case when suppressed then null else cast(p90_hours as double precision) end as p90_hours_to_first_response,
    case when suppressed then null else cast(accepted as bigint) end as accepted_answers,
    case when suppressed then null else cast(accepted as double precision) / questions end as accepted_rate
from completed
