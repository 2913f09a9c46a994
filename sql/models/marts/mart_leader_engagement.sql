with calendar as (
    {{ esn_interval_days() }}
),
windows as (
    {{- esn_period_windows(['rolling_28d', 'week', 'month']) }}
),
leader_ranges as (
    -- who is a leader on which days (int_people_history: the leader flag as the snapshots gave it then)
    select h.person_key, h.valid_from, h.valid_to, p.hire_date, p.termination_date
    from {{ ref('int_people_history') }} h
    join {{ ref('stg_people') }} p on p.person_key = h.person_key
    where h.is_leader
      and h.valid_from <= {{ esn_date('end_date') }}
      and h.valid_to >= {{ esn_date('start_date', -30) }}
),
leader_days as (
    select w.as_of_date, w.period_type, w.period_start, l.person_key
    from windows w
    join leader_ranges l
      on w.as_of_date between l.valid_from and l.valid_to
     and {{ esn_employed_on('l', 'w.as_of_date') }}
),
leader_activity as (
    select
        d.as_of_date,
        d.period_type,
        d.person_key,
        max(case when a.person_key is not null then 1 else 0 end) as active,
        max(case when a.contributions > 0 then 1 else 0 end) as posting,
        coalesce(sum(a.posts), 0) as posts
    from leader_days d
    left join {{ ref('fct_person_daily_activity') }} a
      on a.person_key = d.person_key
     and a.activity_date between d.period_start and d.as_of_date
    group by d.as_of_date, d.period_type, d.person_key
),
responses as (
    -- responses to the posts of people who were leaders on the day of the response
    select r.activity_date, r.responder_key, r.post_author_key, r.verb
    from {{ ref('int_post_responses') }} r
    join leader_ranges l
      on {{ esn_valid_on('l', 'r.post_author_key', 'r.activity_date') }}
    where r.activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
received as (
    select w.as_of_date, w.period_type, r.post_author_key as person_key,
           sum(case when r.verb in ('reply', 'reaction') then 1 else 0 end) as responses_received
    from windows w
    join responses r on r.activity_date between w.period_start and w.as_of_date
    group by w.as_of_date, w.period_type, r.post_author_key
),
reached as (
    select distinct w.as_of_date, w.period_type, r.responder_key as person_key
    from windows w
    join responses r on r.activity_date between w.period_start and w.as_of_date
),
leader_segments as (
    select
        la.as_of_date,
        la.period_type,
        m.segment_type,
        m.segment_value,
        count(*) as leaders,
        sum(la.active) as leaders_active,
        sum(la.posting) as leaders_posting,
        sum(la.posts) as leader_posts,
        sum(coalesce(rc.responses_received, 0)) as responses_received
    from leader_activity la
    left join received rc
      on rc.as_of_date = la.as_of_date and rc.period_type = la.period_type and rc.person_key = la.person_key
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'la.person_key', 'la.as_of_date') }}
     and m.segment_type <> 'leader'
    group by la.as_of_date, la.period_type, m.segment_type, m.segment_value
),
reach_segments as (
    select r.as_of_date, r.period_type, m.segment_type, m.segment_value, count(*) as people_reached
    from reached r
    join {{ ref('stg_people') }} p
      on p.person_key = r.person_key
     and {{ esn_employed_on('p', 'r.as_of_date') }}
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'r.person_key', 'r.as_of_date') }}
    group by r.as_of_date, r.period_type, m.segment_type, m.segment_value
),
org_leaders as (
    -- reach counts responses to any leader of the organisation: it says what they drew, so it needs as
    -- many of them as any other group
    select as_of_date, period_type, leaders from leader_segments where segment_type = 'org'
),
joined as (
    select
        w.as_of_date,
        w.period_type,
        h.segment_type,
        h.segment_value,
        h.headcount,
        coalesce(ls.leaders, 0) as leaders,
        coalesce(ls.leaders_active, 0) as leaders_active,
        coalesce(ls.leaders_posting, 0) as leaders_posting,
        coalesce(ls.leader_posts, 0) as leader_posts,
        coalesce(ls.responses_received, 0) as responses_received,
        coalesce(rs.people_reached, 0) as people_reached,
        h.headcount < {{ esn_number('min_group_size') }} as suppressed,
        coalesce(ls.leaders, 0) < {{ esn_number('min_group_size') }} as leaders_suppressed,
        coalesce(ol.leaders, 0) < {{ esn_number('min_group_size') }} as org_leaders_few
    from windows w
    join {{ ref('int_segment_headcount_daily') }} h on h.as_of_date = w.as_of_date and h.segment_type <> 'leader'
    left join leader_segments ls
      on ls.as_of_date = w.as_of_date and ls.period_type = w.period_type
     and ls.segment_type = h.segment_type and ls.segment_value = h.segment_value
    left join reach_segments rs
      on rs.as_of_date = w.as_of_date and rs.period_type = w.period_type
     and rs.segment_type = h.segment_type and rs.segment_value = h.segment_value
    left join org_leaders ol on ol.as_of_date = w.as_of_date and ol.period_type = w.period_type
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    leaders_suppressed,
    case when suppressed or leaders_suppressed then null else cast(leaders as bigint) end as leaders,
    case when suppressed or leaders_suppressed then null
         else cast(leaders_active as double precision) / leaders end as leader_active_share,
    case when suppressed or leaders_suppressed then null
         else cast(leaders_posting as double precision) / leaders end as leader_posting_share,
    case when suppressed or leaders_suppressed then null else cast(leader_posts as bigint) end as leader_posts,
    case when suppressed or leaders_suppressed then null
         else cast(responses_received as bigint) end as leader_responses_received,
    case when suppressed or leaders_suppressed or leader_posts = 0 then null
         else cast(responses_received as double precision) / leader_posts end as responses_per_leader_post,
    case when suppressed or org_leaders_few then null else cast(people_reached as bigint) end
        as people_reached_by_leaders,
    case when suppressed or org_leaders_few then null
         else cast(people_reached as double precision) / headcount end as leader_reach
from joined
