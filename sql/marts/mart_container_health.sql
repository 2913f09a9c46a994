-- model: mart_container_health
-- grain: one row per day and container with anyone active in it in the last 12 months
-- key: as_of_date, container_id
-- materialized: incremental
-- partition_by: as_of_date
-- depends_on: int_person_container_daily, int_post_responses, int_interactions, fct_posts, stg_containers, stg_people
-- owner: esn-metrics
-- description: community health per container (SWOOP): community_health_index = people active in the
--   container in the 28 days ending on the day / people active in it at least once in the 365 days ending
--   on the day. Also 28-day posts, replies, response rate (posts of the window answered by a reply or
--   reaction from someone else by the day) and cross-department share of its interactions. Activity
--   "islands" (runs of days closer than the window) make both distinct counts exact without a per-day
--   scan of a year of history. Suppressed when fewer than :min_group_size people were active in 12 months.
with calendar as (
    select cast(cast(:start_date as date) + cast(g.i as integer) as date) as as_of_date
    from generate_series(0, cast(:end_date as date) - cast(:start_date as date)) as g(i)
),
person_days as (
    select container_id, person_key, activity_date, contributions
    from int_person_container_daily
    where activity_date between cast(:start_date as date) - 364 and :end_date
),
gaps as (
    select
        *,
        case when lag(activity_date) over (partition by container_id, person_key order by activity_date)
                  >= activity_date - 364 then 0 else 1 end as new_year_island,
        case when lag(activity_date) over (partition by container_id, person_key order by activity_date)
                  >= activity_date - 27 then 0 else 1 end as new_month_island
    from person_days
),
numbered as (
    select
        *,
        sum(new_year_island) over (partition by container_id, person_key order by activity_date
                                   rows between unbounded preceding and current row) as year_island,
        sum(new_month_island) over (partition by container_id, person_key order by activity_date
                                    rows between unbounded preceding and current row) as month_island
    from gaps
),
year_islands as (
    select container_id, person_key, min(activity_date) as covered_from, max(activity_date) + 364 as covered_to
    from numbered
    group by container_id, person_key, year_island
),
month_islands as (
    select container_id, person_key, min(activity_date) as covered_from, max(activity_date) + 27 as covered_to
    from numbered
    group by container_id, person_key, month_island
),
active_12m as (
    select c.as_of_date, y.container_id, count(*) as active_users_12m
    from calendar c
    join year_islands y on c.as_of_date between y.covered_from and y.covered_to
    group by c.as_of_date, y.container_id
),
active_28d as (
    select c.as_of_date, mi.container_id, count(*) as active_users_28d
    from calendar c
    join month_islands mi on c.as_of_date between mi.covered_from and mi.covered_to
    group by c.as_of_date, mi.container_id
),
contributors_28d as (
    select c.as_of_date, p.container_id, count(distinct p.person_key) as contributors_28d
    from calendar c
    join person_days p on p.activity_date between c.as_of_date - 27 and c.as_of_date and p.contributions > 0
    group by c.as_of_date, p.container_id
),
posts_28d as (
    select
        c.as_of_date,
        p.container_id,
        count(*) as posts_28d,
        sum(case when p.first_response_date <= c.as_of_date then 1 else 0 end) as posts_responded_28d
    from calendar c
    join fct_posts p on p.activity_date between c.as_of_date - 27 and c.as_of_date
    where p.container_id is not null
    group by c.as_of_date, p.container_id
),
replies_28d as (
    select c.as_of_date, r.container_id, count(*) as replies_28d
    from calendar c
    join int_post_responses r on r.activity_date between c.as_of_date - 27 and c.as_of_date
    where r.verb = 'reply' and r.container_id is not null
    group by c.as_of_date, r.container_id
),
interactions_28d as (
    select
        c.as_of_date,
        i.container_id,
        count(*) as interactions_28d,
        sum(case when ps.department <> pt.department then 1 else 0 end) as cross_department_28d
    from calendar c
    join int_interactions i on i.activity_date between c.as_of_date - 27 and c.as_of_date
    join stg_people ps on ps.person_key = i.source_key
    join stg_people pt on pt.person_key = i.target_key
    where i.container_id is not null
    group by c.as_of_date, i.container_id
),
joined as (
    select
        y.as_of_date,
        y.container_id,
        y.active_users_12m,
        coalesce(m.active_users_28d, 0) as active_users_28d,
        coalesce(k.contributors_28d, 0) as contributors_28d,
        coalesce(p.posts_28d, 0) as posts_28d,
        coalesce(p.posts_responded_28d, 0) as posts_responded_28d,
        coalesce(r.replies_28d, 0) as replies_28d,
        coalesce(i.interactions_28d, 0) as interactions_28d,
        coalesce(i.cross_department_28d, 0) as cross_department_28d,
        y.active_users_12m < :min_group_size as suppressed
    from active_12m y
    left join active_28d m on m.as_of_date = y.as_of_date and m.container_id = y.container_id
    left join contributors_28d k on k.as_of_date = y.as_of_date and k.container_id = y.container_id
    left join posts_28d p on p.as_of_date = y.as_of_date and p.container_id = y.container_id
    left join replies_28d r on r.as_of_date = y.as_of_date and r.container_id = y.container_id
    left join interactions_28d i on i.as_of_date = y.as_of_date and i.container_id = y.container_id
)
select
    j.as_of_date,
    j.container_id,
    coalesce(max(c.kind), 'unknown') as container_kind,
    j.suppressed,
    case when j.suppressed then null else cast(j.active_users_28d as bigint) end as active_users_28d,
    case when j.suppressed then null else cast(j.active_users_12m as bigint) end as active_users_12m,
    case when j.suppressed then null
         else cast(j.active_users_28d as double precision) / j.active_users_12m end as community_health_index,
    case when j.suppressed then null else cast(j.contributors_28d as bigint) end as contributors_28d,
    case when j.suppressed then null else cast(j.posts_28d as bigint) end as posts_28d,
    case when j.suppressed then null else cast(j.replies_28d as bigint) end as replies_28d,
    case when j.suppressed or j.posts_28d = 0 then null
         else cast(j.posts_responded_28d as double precision) / j.posts_28d end as response_rate_28d,
    case when j.suppressed or j.posts_28d = 0 then null
         else cast(j.replies_28d as double precision) / j.posts_28d end as reply_post_ratio_28d,
    case when j.suppressed or j.interactions_28d = 0 then null
         else cast(j.cross_department_28d as double precision) / j.interactions_28d end as cross_department_share_28d
from joined j
left join stg_containers c on c.container_id = j.container_id
group by j.as_of_date, j.container_id, j.suppressed, j.active_users_28d, j.active_users_12m, j.contributors_28d,
         j.posts_28d, j.posts_responded_28d, j.replies_28d, j.interactions_28d, j.cross_department_28d
