with calendar as (
    {{ esn_interval_days() }}
),
windows as (
    {{- esn_period_windows(['rolling_7d', 'rolling_28d', 'week', 'month']) }}
),
interactions as (
    select i.activity_date, i.source_key,
           case when ps.department is not null and pt.department is not null then 1 else 0 end as departments_known,
           case when ps.department <> pt.department then 1 else 0 end as cross_department
    from {{ ref('int_interactions') }} i
    -- both departments as of the interaction's day: a reorganisation changes the share from the day it
    -- takes effect and never rewrites the days before (a person not listed that day has none)
    left join {{ ref('int_people_history') }} ps
      on {{ esn_valid_on('ps', 'i.source_key', 'i.activity_date') }}
    left join {{ ref('int_people_history') }} pt
      on {{ esn_valid_on('pt', 'i.target_key', 'i.activity_date') }}
    where i.activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
interactions_daily as (
    -- additive over days, so aggregated per day and segment (as of the event) before the windows
    select i.activity_date, m.segment_type, m.segment_value,
           count(*) as interactions, sum(i.departments_known) as known_department_interactions,
           sum(i.cross_department) as cross_department_interactions
    from interactions i
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'i.source_key', 'i.activity_date') }}
    group by i.activity_date, m.segment_type, m.segment_value
),
interaction_segments as (
    select w.as_of_date, w.period_type, d.segment_type, d.segment_value,
           sum(d.interactions) as interactions, sum(d.known_department_interactions) as known_department_interactions,
           sum(d.cross_department_interactions) as cross_department_interactions
    from windows w
    join interactions_daily d on d.activity_date between w.period_start and w.as_of_date
    group by w.as_of_date, w.period_type, d.segment_type, d.segment_value
),
posts_daily as (
    select p.activity_date, p.first_response_date, m.segment_type, m.segment_value, count(*) as posts
    from {{ ref('fct_posts') }} p
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'p.author_key', 'p.activity_date') }}
    where p.activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
    group by p.activity_date, p.first_response_date, m.segment_type, m.segment_value
),
post_segments as (
    select w.as_of_date, w.period_type, d.segment_type, d.segment_value,
           sum(d.posts) as posts,
           sum(case when d.first_response_date <= w.as_of_date then d.posts else 0 end) as posts_responded
    from windows w
    join posts_daily d on d.activity_date between w.period_start and w.as_of_date
    group by w.as_of_date, w.period_type, d.segment_type, d.segment_value
),
joined as (
    select
        w.as_of_date,
        w.period_type,
        h.segment_type,
        h.segment_value,
        coalesce(i.interactions, 0) as interactions,
        coalesce(i.known_department_interactions, 0) as known_department_interactions,
        coalesce(i.cross_department_interactions, 0) as cross_department_interactions,
        coalesce(p.posts, 0) as posts,
        coalesce(p.posts_responded, 0) as posts_responded,
        h.headcount < {{ esn_number('min_group_size') }} as suppressed
    from windows w
    join {{ ref('int_segment_headcount_daily') }} h on h.as_of_date = w.as_of_date
    left join interaction_segments i
      on i.as_of_date = w.as_of_date and i.period_type = w.period_type
     and i.segment_type = h.segment_type and i.segment_value = h.segment_value
    left join post_segments p
      on p.as_of_date = w.as_of_date and p.period_type = w.period_type
     and p.segment_type = h.segment_type and p.segment_value = h.segment_value
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(interactions as bigint) end as interactions,
    case when suppressed then null else cast(cross_department_interactions as bigint) end as cross_department_interactions,
    case when suppressed or known_department_interactions = 0 then null
         else cast(cross_department_interactions as double precision) / known_department_interactions
    end as cross_department_interaction_share,
    case when suppressed then null else cast(posts as bigint) end as posts,
    case when suppressed then null else cast(posts_responded as bigint) end as posts_responded,
    case when suppressed or posts = 0 then null
         else cast(posts_responded as double precision) / posts end as response_rate,
    case when suppressed then null else cast(known_department_interactions as bigint) end as known_department_interactions
from joined
