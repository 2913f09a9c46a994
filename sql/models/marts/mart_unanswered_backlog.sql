with calendar as (
    select cast({{ esn_date('start_date') }} + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, {{ esn_days_between('start_date', 'end_date') }}) as g(i)
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
        greatest(q.activity_date, m.valid_from, {{ esn_date('start_date') }}) as open_from,
        least(q.open_to, m.valid_to, {{ esn_date('end_date') }}) as open_to
    from questions q
    join {{ ref('int_segment_membership') }} m
      on m.person_key = q.author_key
     and m.valid_from <= q.open_to
     and m.valid_to >= q.activity_date
    union all
    select
        'container',
        container_id,
        activity_date,
        greatest(activity_date, {{ esn_date('start_date') }}),
        least(open_to, {{ esn_date('end_date') }})
    from questions
    where container_id is not null
),
person_islands as (
    -- per asker, the union of the open ranges of their questions (a range starting after every earlier
    -- range has ended opens a new island)
    select author_key, min(activity_date) as covered_from, max(open_to) as covered_to
    from (
        select
            author_key,
            activity_date,
            open_to,
            sum(new_island) over (partition by author_key order by activity_date, open_to
                                  rows between unbounded preceding and current row) as island
        from (
            select
                author_key,
                activity_date,
                open_to,
                case when max(open_to) over (partition by author_key order by activity_date, open_to
                                             rows between unbounded preceding and 1 preceding)
                          >= activity_date then 0 else 1 end as new_island
            from questions
            where activity_date <= open_to
        ) g
    ) n
    group by author_key, island
),
container_islands as (
    select author_key, container_id, min(activity_date) as covered_from, max(open_to) as covered_to
    from (
        select
            author_key,
            container_id,
            activity_date,
            open_to,
            sum(new_island) over (partition by author_key, container_id order by activity_date, open_to
                                  rows between unbounded preceding and current row) as island
        from (
            select
                author_key,
                container_id,
                activity_date,
                open_to,
                case when max(open_to) over (partition by author_key, container_id order by activity_date, open_to
                                             rows between unbounded preceding and 1 preceding)
                          >= activity_date then 0 else 1 end as new_island
            from questions
            where activity_date <= open_to and container_id is not null
        ) g
    ) n
    group by author_key, container_id, island
),
ranges as (
    -- (group, first day, last day, what the range counts)
    select m.segment_type, m.segment_value,
           greatest(i.covered_from, m.valid_from, {{ esn_date('start_date') }}) as range_from,
           least(i.covered_to, m.valid_to, {{ esn_date('end_date') }}) as range_to,
           1 as askers, 0 as open_questions, 0 as open_0_1d, 0 as open_1_7d, 0 as open_7_30d, 0 as open_over_30d
    from person_islands i
    join {{ ref('int_segment_membership') }} m
      on m.person_key = i.author_key
     and m.valid_from <= i.covered_to
     and m.valid_to >= i.covered_from
    union all
    select 'container', container_id, greatest(covered_from, {{ esn_date('start_date') }}),
           least(covered_to, {{ esn_date('end_date') }}), 1, 0, 0, 0, 0, 0
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
range_counts as (
    select segment_type, segment_value, range_from, range_to,
           sum(askers) as askers, sum(open_questions) as open_questions, sum(open_0_1d) as open_0_1d,
           sum(open_1_7d) as open_1_7d, sum(open_7_30d) as open_7_30d, sum(open_over_30d) as open_over_30d
    from ranges
    where range_from <= range_to
    group by segment_type, segment_value, range_from, range_to
),
deltas as (
    select segment_type, segment_value, range_from as day,
           askers, open_questions, open_0_1d, open_1_7d, open_7_30d, open_over_30d
    from range_counts
    union all
    select segment_type, segment_value, range_to + 1,
           -askers, -open_questions, -open_0_1d, -open_1_7d, -open_7_30d, -open_over_30d
    from range_counts
    where range_to < {{ esn_date('end_date') }}
),
daily_deltas as (
    select segment_type, segment_value, day,
           sum(askers) as askers, sum(open_questions) as open_questions, sum(open_0_1d) as open_0_1d,
           sum(open_1_7d) as open_1_7d, sum(open_7_30d) as open_7_30d, sum(open_over_30d) as open_over_30d
    from deltas
    group by segment_type, segment_value, day
),
groups as (
    select distinct segment_type, segment_value from daily_deltas
),
aggregated as (
    select
        c.as_of_date,
        g.segment_type,
        g.segment_value,
        cast(sum(coalesce(d.askers, 0)) over w as bigint) as askers,
        cast(sum(coalesce(d.open_questions, 0)) over w as bigint) as open_questions,
        cast(sum(coalesce(d.open_0_1d, 0)) over w as bigint) as open_0_1d,
        cast(sum(coalesce(d.open_1_7d, 0)) over w as bigint) as open_1_7d,
        cast(sum(coalesce(d.open_7_30d, 0)) over w as bigint) as open_7_30d,
        cast(sum(coalesce(d.open_over_30d, 0)) over w as bigint) as open_over_30d
    from groups g
    cross join calendar c
    left join daily_deltas d
      on d.segment_type = g.segment_type and d.segment_value = g.segment_value and d.day = c.as_of_date
    window w as (partition by g.segment_type, g.segment_value order by c.as_of_date
                 rows between unbounded preceding and current row)
),
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
    select
        coalesce(f.as_of_date, d.as_of_date) as as_of_date,
        coalesce(f.segment_type, d.segment_type) as segment_type,
        coalesce(f.segment_value, d.segment_value) as segment_value,
        coalesce(f.suppressed, true) as suppressed,
        f.askers,
        f.open_questions,
        f.open_0_1d,
        f.open_1_7d,
        f.open_7_30d,
        f.open_over_30d
    from flagged f
    full outer join day_segments d
      on d.as_of_date = f.as_of_date
     and d.segment_type = f.segment_type and d.segment_value = f.segment_value
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
