{#- Expertise by topic for community managers (issue 18): per topic and segment (the organisation, and each
    department), over the 365 days up to end_date (int_activity_topics), who answers on the topic and who asks.
    Container topics (container:<id>) are kept: a container is a community, and what a community answers is
    what its managers look after. An answer is a reply to someone else's question (on the question's, the
    reply's own and the container's topics, as in fct_person_topic_expertise); answers count in the answerer's
    segment as of the answer's day, questions in the asker's as of the question's day. Suppressed (every
    figure) when fewer than min_group_size people answered or were helped; the askers' figures also when fewer
    than min_group_size people of the segment asked (askers_suppressed); then complementary suppression on
    both (pipelines/suppression.py, the meta of _marts.yml). No person key. Rebuilt in full on each run. -#}
with membership as (
    select person_key, segment_type, segment_value, valid_from, valid_to
    from {{ ref('int_segment_membership') }}
    where segment_type in ('org', 'department')
),
posts as (
    select source, event_id, actor_key, activity_date, is_question
    from {{ ref('stg_activities') }}
    where verb = 'post'
),
answers as (
    -- one row per answer and topic: a reply (of the window) to a question by someone else
    select t.topic_id, t.source, t.event_id, t.activity_date, t.actor_key as answerer_key,
           q.actor_key as asker_key, q.activity_date as question_date
    from {{ ref('int_activity_topics') }} t
    join {{ ref('stg_activities') }} r on r.source = t.source and r.event_id = t.event_id
    join posts q on q.source = r.source and q.event_id = r.parent_id
    where t.verb = 'reply' and q.is_question and t.actor_key <> q.actor_key
),
answer_departments as (
    select a.*,
           coalesce(ad.segment_value, 'unknown') as answerer_department,
           coalesce(qd.segment_value, 'unknown') as asker_department
    from answers a
    left join membership ad
      on ad.segment_type = 'department' and {{ esn_valid_on('ad', 'a.answerer_key', 'a.activity_date') }}
    left join membership qd
      on qd.segment_type = 'department' and {{ esn_valid_on('qd', 'a.asker_key', 'a.question_date') }}
),
answer_cells as (
    select
        a.topic_id,
        m.segment_type,
        m.segment_value,
        count(distinct a.answerer_key) as answerers,
        count(*) as answers,
        count(distinct a.asker_key) as askers_helped,
        sum(case when a.answerer_department <> 'unknown' and a.asker_department <> 'unknown'
                 then 1 else 0 end) as known_department_answers,
        sum(case when a.answerer_department <> 'unknown' and a.asker_department <> 'unknown'
                  and a.answerer_department <> a.asker_department then 1 else 0 end) as cross_department_answers
    from answer_departments a
    join membership m on {{ esn_valid_on('m', 'a.answerer_key', 'a.activity_date') }}
    group by a.topic_id, m.segment_type, m.segment_value
),
questions as (
    -- one row per question (of the window, not deleted) and topic; answered: a reply by someone else by end_date
    select t.topic_id, t.source, t.event_id, t.activity_date, t.actor_key as asker_key,
           case when exists (
               select 1 from {{ ref('stg_activities') }} r
               where r.source = t.source and r.parent_id = t.event_id and r.verb = 'reply' and not r.is_deleted
                 and r.actor_key <> t.actor_key and r.activity_date <= {{ esn_date('end_date') }}
           ) then 1 else 0 end as is_answered
    from {{ ref('int_activity_topics') }} t
    join posts q on q.source = t.source and q.event_id = t.event_id
    where t.verb = 'post' and q.is_question
),
question_cells as (
    select
        q.topic_id,
        m.segment_type,
        m.segment_value,
        count(distinct q.asker_key) as askers,
        count(*) as questions_asked,
        sum(q.is_answered) as questions_answered
    from questions q
    join membership m on {{ esn_valid_on('m', 'q.asker_key', 'q.activity_date') }}
    group by q.topic_id, m.segment_type, m.segment_value
),
cells as (
    select
        coalesce(a.topic_id, q.topic_id) as topic_id,
        coalesce(a.segment_type, q.segment_type) as segment_type,
        coalesce(a.segment_value, q.segment_value) as segment_value,
        coalesce(a.answerers, 0) as answerers,
        coalesce(a.answers, 0) as answers,
        coalesce(a.askers_helped, 0) as askers_helped,
        coalesce(a.known_department_answers, 0) as known_department_answers,
        coalesce(a.cross_department_answers, 0) as cross_department_answers,
        coalesce(q.askers, 0) as askers,
        coalesce(q.questions_asked, 0) as questions_asked,
        coalesce(q.questions_answered, 0) as questions_answered
    from answer_cells a
    full outer join question_cells q
      on q.topic_id = a.topic_id and q.segment_type = a.segment_type and q.segment_value = a.segment_value
),
flagged as (
    select c.*,
           (c.answerers < {{ esn_number('min_group_size') }}
            or c.askers_helped < {{ esn_number('min_group_size') }}) as suppressed
    from cells c
),
layered as (
    select f.*, (f.suppressed or f.askers < {{ esn_number('min_group_size') }}) as askers_suppressed
    from flagged f
)
select
    topic_id,
    segment_type,
    segment_value,
    cast({{ esn_date('end_date') }} as date) as measured_through,
    suppressed,
    askers_suppressed,
    case when suppressed then null else cast(answerers as bigint) end as answerers,
    case when suppressed then null else cast(answers as bigint) end as answers,
    case when suppressed then null else cast(askers_helped as bigint) end as askers_helped,
    case when suppressed then null else cast(cross_department_answers as bigint) end as cross_department_answers,
    case when suppressed then null
         else cast(cross_department_answers as double precision) / nullif(known_department_answers, 0) end
        as cross_department_answer_share,
    case when askers_suppressed then null else cast(askers as bigint) end as askers,
    case when askers_suppressed then null else cast(questions_asked as bigint) end as questions_asked,
    case when askers_suppressed then null else cast(questions_answered as bigint) end as questions_answered,
    case when askers_suppressed then null
         else cast(questions_answered as double precision) / questions_asked end as questions_answered_share
from layered
