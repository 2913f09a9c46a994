-- model: fct_knowledge_brokers
-- grain: one row per calendar month and person who answered a question
-- key: month_start, person_key
-- materialized: table
-- depends_on: int_post_responses, stg_people
-- owner: esn-metrics
-- description: INTERNAL knowledge brokers: people whose answers (replies to someone else's question)
--   reach askers outside their own department. Ranked by answers to other departments, then by the
--   number of other departments reached. An answer to or from someone without a department (outside the
--   HR directory) reaches no other department: it counts in answers, not in the cross-department figures.
with answers as (
    select
        cast(date_trunc('month', r.activity_date) as date) as month_start,
        r.responder_key as person_key,
        r.post_author_key as asker_key
    from int_post_responses r
    where r.verb = 'reply' and r.post_is_question
),
with_departments as (
    select a.*, pa.department as department, pq.department as asker_department
    from answers a
    left join stg_people pa on pa.person_key = a.person_key
    left join stg_people pq on pq.person_key = a.asker_key
),
per_person as (
    select
        month_start,
        person_key,
        max(department) as department,
        count(*) as answers,
        count(distinct asker_key) as askers_reached,
        cast(sum(case when asker_department <> department then 1 else 0 end) as bigint)
            as answers_to_other_departments,
        count(distinct case when asker_department <> department then asker_department end)
            as other_departments_reached
    from with_departments
    group by month_start, person_key
)
select
    month_start,
    person_key,
    department,
    answers,
    askers_reached,
    answers_to_other_departments,
    other_departments_reached,
    cast(answers_to_other_departments as double precision) / answers as cross_department_answer_share,
    cast(rank() over (partition by month_start
                      order by answers_to_other_departments desc, other_departments_reached desc) as bigint)
        as broker_rank
from per_person
