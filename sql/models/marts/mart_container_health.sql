with calendar as (
    {{ esn_interval_days() }}
),
person_days as (
    -- the days of the interval, and per person and container only the last active day before it: on and
    -- after :start_date that day covers whatever the earlier ones covered
    select container_id, person_key, activity_date
    from {{ ref('int_person_container_daily') }}
    where activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
    union all
    select container_id, person_key, max(activity_date)
    from {{ ref('int_person_container_daily') }}
    where activity_date between {{ esn_date('start_date', -364) }} and {{ esn_date('start_date', -1) }}
    group by container_id, person_key
),
year_islands as (
    -- per container and person, the days on which they were active in the last 12 months (a day covers
    -- itself and the 364 days after it), as islands
    {{ esn_range_islands('(select container_id, person_key, activity_date, activity_date + 364 as active_to'
                         ~ ' from person_days) d', ['container_id', 'person_key'], 'activity_date', 'active_to') }}
),
month_islands as (
    -- the same in the last 28 days
    {{ esn_range_islands('(select container_id, person_key, activity_date, activity_date + 27 as active_to'
                         ~ ' from person_days) d', ['container_id', 'person_key'], 'activity_date', 'active_to') }}
),
contribution_days as (
    select container_id, person_key, activity_date, activity_date + 27 as active_to
    from {{ ref('int_person_container_daily') }}
    where contributions > 0 and activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
),
contribution_islands as (
    -- the days on which they contributed in the last 28 days, as islands
    {{ esn_range_islands('contribution_days', ['container_id', 'person_key'], 'activity_date', 'active_to') }}
),
posts_daily as (
    select container_id, activity_date, first_response_date, count(*) as posts
    from {{ ref('fct_posts') }}
    where container_id is not null and activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
    group by container_id, activity_date, first_response_date
),
replies_daily as (
    select container_id, activity_date, count(*) as replies
    from {{ ref('int_post_responses') }}
    where verb = 'reply' and container_id is not null
      and activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
    group by container_id, activity_date
),
interactions_daily as (
    select
        i.container_id,
        i.activity_date,
        -- the denominator of the share: interactions between two people whose departments are known
        sum(case when ps.department is not null and pt.department is not null then 1 else 0 end) as interactions,
        sum(case when ps.department <> pt.department then 1 else 0 end) as cross_department
    from {{ ref('int_interactions') }} i
    -- both departments as of the interaction's day: a reorganisation changes the share from the day it
    -- takes effect and never rewrites the days before (a person not listed that day has none)
    left join {{ ref('int_people_history') }} ps
      on {{ esn_valid_on('ps', 'i.source_key', 'i.activity_date') }}
    left join {{ ref('int_people_history') }} pt
      on {{ esn_valid_on('pt', 'i.target_key', 'i.activity_date') }}
    where i.container_id is not null
      and i.activity_date between {{ esn_date('start_date', -27) }} and {{ esn_date('end_date') }}
    group by i.container_id, i.activity_date
),
ranges as (
    -- (container, first day, last day, what the range counts): the day ranges each count covers
    select container_id, covered_from as range_from, covered_to as range_to,
           1 as active_12m, 0 as active_28d, 0 as contributors, 0 as posts, 0 as posts_responded,
           0 as replies, 0 as interactions, 0 as cross_department
    from year_islands
    union all
    select container_id, covered_from, covered_to, 0, 1, 0, 0, 0, 0, 0, 0 from month_islands
    union all
    select container_id, covered_from, covered_to, 0, 0, 1, 0, 0, 0, 0, 0 from contribution_islands
    union all
    select container_id, activity_date, activity_date + 27, 0, 0, 0, posts, 0, 0, 0, 0 from posts_daily
    union all
    select container_id, case when first_response_date > activity_date then first_response_date else activity_date end,
           activity_date + 27, 0, 0, 0, 0, posts, 0, 0, 0
    from posts_daily
    where first_response_date is not null
    union all
    select container_id, activity_date, activity_date + 27, 0, 0, 0, 0, 0, replies, 0, 0 from replies_daily
    union all
    select container_id, activity_date, activity_date + 27, 0, 0, 0, 0, 0, 0, interactions, cross_department
    from interactions_daily
),
clipped as (
    select
        container_id,
        case when range_from < {{ esn_date('start_date') }} then {{ esn_date('start_date') }} else range_from end as range_from,
        range_to,
        active_12m, active_28d, contributors, posts, posts_responded, replies, interactions, cross_department
    from ranges
    where range_to >= {{ esn_date('start_date') }} and range_from <= {{ esn_date('end_date') }} and range_from <= range_to
),
{{ esn_range_daily_totals('running', ['container_id'],
                          ['active_12m', 'active_28d', 'contributors', 'posts', 'posts_responded', 'replies',
                           'interactions', 'cross_department'], ranges='clipped') }},
joined as (
    select
        as_of_date,
        container_id,
        active_12m as active_users_12m,
        active_28d as active_users_28d,
        contributors as contributors_28d,
        posts as posts_28d,
        posts_responded as posts_responded_28d,
        replies as replies_28d,
        interactions as interactions_28d,
        cross_department as cross_department_28d,
        active_12m < {{ esn_number('min_group_size') }} as suppressed
    from running
    where active_12m > 0
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
left join {{ ref('stg_containers') }} c on c.container_id = j.container_id
group by j.as_of_date, j.container_id, j.suppressed, j.active_users_28d, j.active_users_12m, j.contributors_28d,
         j.posts_28d, j.posts_responded_28d, j.replies_28d, j.interactions_28d, j.cross_department_28d
