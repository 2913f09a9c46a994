{#- INTERNAL, person-level: the evidence that a person knows about a topic, as of end_date, over the last
    365 days (`esn experts TOPIC` ranks and explains from it; never published). An answer is a reply to
    someone else's question; its topics are the reply's own, its thread's (the question's) and its
    container (int_activity_topics). Accepted: the asker or the platform marked it; reacted: someone other
    than the answerer reacted to it. Counts only (integers): the ranking's weights and its recency are
    applied where it is read, so a rerun gives the same bytes. -#}
with answers as (
    select r.source, r.event_id, r.activity_date, r.responder_key as person_key, r.post_author_key as asker_key
    from {{ ref('int_post_responses') }} r
    where r.verb = 'reply' and r.post_is_question
      and r.activity_date > {{ esn_date('end_date', -365) }} and r.activity_date <= {{ esn_date('end_date') }}
),
accepted as (
    select distinct source, parent_id as answer_id
    from {{ ref('stg_activities') }}
    where verb = 'answer_accepted' and activity_date <= {{ esn_date('end_date') }}
),
reacted as (
    select distinct a.source, a.parent_id as answer_id, a.actor_key
    from {{ ref('stg_activities') }} a
    where a.verb = 'reaction' and not a.is_deleted and a.activity_date <= {{ esn_date('end_date') }}
),
answer_topics as (
    select a.person_key, t.topic_id, a.source, a.event_id, a.activity_date, a.asker_key,
           case when acc.answer_id is not null then 1 else 0 end as is_accepted,
           case when exists (select 1 from reacted x where x.source = a.source and x.answer_id = a.event_id
                                                     and x.actor_key <> a.person_key) then 1 else 0 end as is_reacted
    from answers a
    join {{ ref('int_activity_topics') }} t on t.source = a.source and t.event_id = a.event_id
    left join accepted acc on acc.source = a.source and acc.answer_id = a.event_id
),
answered as (
    select person_key, topic_id,
           count(*) as answers,
           sum(case when activity_date > {{ esn_date('end_date', -90) }} then 1 else 0 end) as answers_90d,
           sum(is_accepted) as answers_accepted,
           sum(is_reacted) as answers_reacted,
           count(distinct asker_key) as askers_helped,
           max(activity_date) as last_answer_date
    from answer_topics
    group by person_key, topic_id
),
contributed as (
    select t.actor_key as person_key, t.topic_id,
           count(*) as contributions,
           sum(case when q.is_question then 1 else 0 end) as questions_asked,
           max(t.activity_date) as last_contribution_date
    from {{ ref('int_activity_topics') }} t
    left join {{ ref('stg_activities') }} q
      on q.source = t.source and q.event_id = t.event_id and q.verb = 'post'
    group by t.actor_key, t.topic_id
)
select
    c.person_key,
    c.topic_id,
    cast({{ esn_date('end_date') }} as date) as as_of_date,
    cast(coalesce(a.answers, 0) as bigint) as answers,
    cast(coalesce(a.answers_90d, 0) as bigint) as answers_90d,
    cast(coalesce(a.answers_accepted, 0) as bigint) as answers_accepted,
    cast(coalesce(a.answers_reacted, 0) as bigint) as answers_reacted,
    cast(coalesce(a.askers_helped, 0) as bigint) as askers_helped,
    cast(c.contributions as bigint) as contributions,
    cast(coalesce(c.questions_asked, 0) as bigint) as questions_asked,
    a.last_answer_date,
    c.last_contribution_date
from contributed c
left join answered a on a.person_key = c.person_key and a.topic_id = c.topic_id
