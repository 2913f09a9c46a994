{#- "Whom to connect" (issue 18): pairs of departments (each unordered pair once, department_a < department_b)
    with much shared topic interest and few ties, over the 365 days up to end_date. A group is a department;
    each person counts in their department on end_date (people in the headcount that day, 'unknown' left out).
    A group is active on a topic when at least min_group_size of its people posted or replied on it
    (int_activity_topics: taxonomy topics, tags and containers). Per pair: the topics both are active on,
    the cosine similarity of their per-topic people counts (over the topics each is active on), the ties (pairs
    of people, one of each group, with an interaction in either direction in the window: int_interactions),
    ties per 100 pairs of people, connection_gap = topic_similarity / (1 + ties_per_100_pairs) and its rank,
    and the bridge candidates (a count: people of either group active on a shared topic with a tie to the
    other group). Suppressed when either group has fewer than min_group_size people active on the shared
    topics (so every pair without a shared topic). No person key. Rebuilt in full on each run. -#}
with people as (
    select distinct p.person_key, m.segment_value as department
    from {{ ref('stg_people') }} p
    join {{ ref('int_segment_membership') }} m
      on m.segment_type = 'department' and {{ esn_valid_on('m', 'p.person_key', esn_date('end_date')) }}
    where {{ esn_in_headcount_on('p', esn_date('end_date')) }}
      and m.segment_value <> 'unknown'
),
group_members as (
    select department, count(*) as members from people group by department
),
topic_people as (
    select distinct t.topic_id, p.department, p.person_key
    from {{ ref('int_activity_topics') }} t
    join people p on p.person_key = t.actor_key
),
active as (
    -- the topics each group is active on, with its people on them
    select topic_id, department, count(*) as people
    from topic_people
    group by topic_id, department
    having count(*) >= {{ esn_number('min_group_size') }}
),
norms as (
    select department, sum(cast(people as bigint) * people) as norm2 from active group by department
),
shared as (
    select a.topic_id, a.department as department_a, b.department as department_b,
           cast(a.people as bigint) * b.people as product
    from active a
    join active b on b.topic_id = a.topic_id and a.department < b.department
),
shared_counts as (
    -- integer sums: the same bytes whatever order the rows are added in
    select department_a, department_b, count(*) as shared_topics, sum(product) as dot
    from shared
    group by department_a, department_b
),
shared_people as (
    select distinct s.department_a, s.department_b, tp.department, tp.person_key
    from shared s
    join topic_people tp
      on tp.topic_id = s.topic_id and (tp.department = s.department_a or tp.department = s.department_b)
),
side_counts as (
    select department_a, department_b,
           count(distinct case when department = department_a then person_key end) as people_a,
           count(distinct case when department = department_b then person_key end) as people_b
    from shared_people
    group by department_a, department_b
),
interactions as (
    select source_key, target_key
    from {{ ref('int_interactions') }}
    where activity_date > {{ esn_date('end_date', -365) }} and activity_date <= {{ esn_date('end_date') }}
),
cross_ties as (
    -- one row per tie: an unordered pair of people of two departments who interacted
    select distinct
        case when s.department < t.department then s.department else t.department end as department_a,
        case when s.department < t.department then t.department else s.department end as department_b,
        case when s.department < t.department then s.person_key else t.person_key end as person_a,
        case when s.department < t.department then t.person_key else s.person_key end as person_b
    from interactions i
    join people s on s.person_key = i.source_key
    join people t on t.person_key = i.target_key
    where s.department <> t.department
),
tie_counts as (
    select department_a, department_b, count(*) as ties from cross_ties group by department_a, department_b
),
tied_people as (
    select department_a, department_b, person_a as person_key from cross_ties
    union
    select department_a, department_b, person_b from cross_ties
),
bridges as (
    select sp.department_a, sp.department_b, count(distinct sp.person_key) as bridge_candidates
    from shared_people sp
    join tied_people tp
      on tp.department_a = sp.department_a and tp.department_b = sp.department_b and tp.person_key = sp.person_key
    group by sp.department_a, sp.department_b
),
pairs as (
    select a.department as department_a, b.department as department_b, a.members as members_a,
           b.members as members_b
    from group_members a
    join group_members b on a.department < b.department
),
joined as (
    select
        p.department_a,
        p.department_b,
        p.members_a,
        p.members_b,
        coalesce(sc.shared_topics, 0) as shared_topics,
        sc.dot,
        na.norm2 as norm2_a,
        nb.norm2 as norm2_b,
        coalesce(sd.people_a, 0) as people_a,
        coalesce(sd.people_b, 0) as people_b,
        coalesce(tc.ties, 0) as ties,
        coalesce(b.bridge_candidates, 0) as bridge_candidates
    from pairs p
    left join shared_counts sc on sc.department_a = p.department_a and sc.department_b = p.department_b
    left join norms na on na.department = p.department_a
    left join norms nb on nb.department = p.department_b
    left join side_counts sd on sd.department_a = p.department_a and sd.department_b = p.department_b
    left join tie_counts tc on tc.department_a = p.department_a and tc.department_b = p.department_b
    left join bridges b on b.department_a = p.department_a and b.department_b = p.department_b
),
scored as (
    select
        j.*,
        (j.people_a < {{ esn_number('min_group_size') }} or j.people_b < {{ esn_number('min_group_size') }})
            as suppressed,
        coalesce(cast(j.dot as double precision)
                 / sqrt(cast(j.norm2_a as double precision) * cast(j.norm2_b as double precision)), 0.0)
            as topic_similarity,
        cast(100 as double precision) * j.ties / (cast(j.members_a as double precision) * j.members_b)
            as ties_per_100_pairs
    from joined j
),
gaps as (
    select s.*, s.topic_similarity / (cast(1 as double precision) + s.ties_per_100_pairs) as connection_gap from scored s
),
ranked as (
    select g.*,
           row_number() over (partition by g.suppressed
                              order by g.connection_gap desc, g.department_a, g.department_b) as nth
    from gaps g
)
select
    department_a,
    department_b,
    cast({{ esn_date('end_date') }} as date) as measured_through,
    suppressed,
    case when suppressed then null else cast(people_a as bigint) end as people_a_on_shared_topics,
    case when suppressed then null else cast(people_b as bigint) end as people_b_on_shared_topics,
    case when suppressed then null else cast(shared_topics as bigint) end as shared_topics,
    case when suppressed then null else cast(topic_similarity as double precision) end as topic_similarity,
    case when suppressed then null else cast(ties as bigint) end as ties,
    case when suppressed then null else cast(ties_per_100_pairs as double precision) end as ties_per_100_pairs,
    case when suppressed then null else cast(connection_gap as double precision) end as connection_gap,
    case when suppressed then null else cast(nth as bigint) end as gap_rank,
    case when suppressed then null else cast(bridge_candidates as bigint) end as bridge_candidates
from ranked
