with per_actor as (  -- one row per source, day and actor first: then a small join, no distinct counts
    select source, activity_date, actor_key, count(*) as activities
    from {{ source('lake', 'lake_activities') }}
    group by source, activity_date, actor_key
),
acts as (
    select a.source, a.activity_date, a.activities, not coalesce(p.in_directory, false) as unknown, p.account_type
    from per_actor a
    left join {{ ref('stg_people') }} p on p.person_key = a.actor_key
),
per_day as (
    select
        source,
        activity_date,
        count(*) as actors,
        sum(case when unknown then 1 else 0 end) as unknown_actors,
        sum(activities) as activities,
        sum(case when unknown then activities else 0 end) as unknown_actor_activities,
        sum(case when unknown and account_type = 'guest' then 1 else 0 end) as guest_actors,
        sum(case when unknown and account_type = 'external' then 1 else 0 end) as external_actors,
        sum(case when unknown and account_type = 'bot' then 1 else 0 end) as bot_actors,
        sum(case when account_type = 'unknown' then 1 else 0 end) as unlisted_actors
    from acts
    group by source, activity_date
)
select
    source,
    activity_date,
    cast(actors as bigint) as actors,
    cast(unknown_actors as bigint) as unknown_actors,
    cast(unknown_actors as double precision) / nullif(actors, 0) as unknown_actor_share,
    cast(activities as bigint) as activities,
    cast(unknown_actor_activities as bigint) as unknown_actor_activities,
    cast(unknown_actor_activities as double precision) / nullif(activities, 0) as unknown_activity_share,
    cast(guest_actors as bigint) as guest_actors,
    cast(external_actors as bigint) as external_actors,
    cast(bot_actors as bigint) as bot_actors,
    cast(unlisted_actors as bigint) as unlisted_actors
from per_day
