-- model: mart_interactions_period
-- grain: one row per day (as_of_date), period type (rolling_7d, rolling_28d, week, month) and segment
-- key: as_of_date, period_type, segment_type, segment_value
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: int_interactions, fct_posts, int_segment_membership, int_segment_headcount_daily, int_people_history
-- owner: esn-metrics
-- families: as_of_date, period_type, segment_type
-- family_total: segment_type = org
-- group_size: int_segment_headcount_daily.headcount
-- description: interactions (replies, reactions, mentions, shares to another person) made by the segment's
--   people in the window and the cross-department interaction share: of the interactions between two
--   people whose departments are both known, the share between different departments (Yang et al. 2022);
--   a person without a department (outside the HR directory) is no department, so those interactions are
--   in `interactions` but in neither part of the share. Not named cross_department_share: that is the
--   network's measure on the window's graph (mart_network_org, mart_network_department); posts of the window and the response rate: share of them that received at least
--   one reply or reaction from someone else by the end of as_of_date (SWOOP). Segment of the person who
--   acts (interactions) or posts (response rate), as of the event's day (these counts add up over days).
--   Suppressed below :min_group_size headcount.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
windows as (
    select as_of_date, 'rolling_7d' as period_type, as_of_date - 6 as period_start from calendar
    union all
    select as_of_date, 'rolling_28d', as_of_date - 27 from calendar
    union all
    select as_of_date, 'week', cast(date_trunc('week', as_of_date) as date) from calendar
    union all
    select as_of_date, 'month', cast(date_trunc('month', as_of_date) as date) from calendar
),
interactions as (
    select i.activity_date, i.source_key,
           case when ps.department is not null and pt.department is not null then 1 else 0 end as departments_known,
           case when ps.department <> pt.department then 1 else 0 end as cross_department
    from int_interactions i
    -- both departments as of the interaction's day: a reorganisation changes the share from the day it
    -- takes effect and never rewrites the days before (a person not listed that day has none)
    left join int_people_history ps
      on ps.person_key = i.source_key and i.activity_date between ps.valid_from and ps.valid_to
    left join int_people_history pt
      on pt.person_key = i.target_key and i.activity_date between pt.valid_from and pt.valid_to
    where i.activity_date between cast(:start_date as date) - 30 and :end_date
),
interactions_daily as (
    -- additive over days, so aggregated per day and segment (as of the event) before the windows
    select i.activity_date, m.segment_type, m.segment_value,
           count(*) as interactions, sum(i.departments_known) as known_department_interactions,
           sum(i.cross_department) as cross_department_interactions
    from interactions i
    join int_segment_membership m
      on m.person_key = i.source_key
     and i.activity_date between m.valid_from and m.valid_to
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
    from fct_posts p
    join int_segment_membership m
      on m.person_key = p.author_key
     and p.activity_date between m.valid_from and m.valid_to
    where p.activity_date between cast(:start_date as date) - 30 and :end_date
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
        h.headcount < :min_group_size as suppressed
    from windows w
    join int_segment_headcount_daily h on h.as_of_date = w.as_of_date
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
