{#- A run rewrites the months of its interval, whole (a month's ranks depend on all its answers; meta
    partition_grain: month); on the first build every month. A month's rows depend on its own answers and on
    the departments in force on their days and on its last day only. -#}
with answers as (
    select
        cast({{ dbt.date_trunc('month', 'r.activity_date') }} as date) as month_start,
        r.activity_date,
        r.responder_key as person_key,
        r.post_author_key as asker_key
    from {{ ref('int_post_responses') }} r
    where r.verb = 'reply' and r.post_is_question
    {%- if is_incremental() %}
      and r.activity_date >= {{ esn_interval_start('month') }}
    {%- endif %}
),
with_departments as (
    -- both departments as of the day of the answer (int_people_history), not today's
    select a.*, pa.department as department, pq.department as asker_department
    from answers a
    left join {{ ref('int_people_history') }} pa
      on {{ esn_valid_on('pa', 'a.person_key', 'a.activity_date') }}
    left join {{ ref('int_people_history') }} pq
      on {{ esn_valid_on('pq', 'a.asker_key', 'a.activity_date') }}
),
month_departments as (
    -- the broker's department of the month: the one in force on its last day (the latest one, for a
    -- month not over yet)
    select m.month_start, m.person_key, h.department
    from (select distinct month_start, person_key from answers) m
    left join {{ ref('int_people_history') }} h
      on h.person_key = m.person_key
     and cast({{ dbt.dateadd('month', 1, 'm.month_start') }} as date) - 1 between h.valid_from and h.valid_to
),
per_person as (
    select
        w.month_start,
        w.person_key,
        max(md.department) as department,
        count(*) as answers,
        count(distinct w.asker_key) as askers_reached,
        cast(sum(case when w.asker_department <> w.department then 1 else 0 end) as bigint)
            as answers_to_other_departments,
        count(distinct case when w.asker_department <> w.department then w.asker_department end)
            as other_departments_reached
    from with_departments w
    join month_departments md on md.month_start = w.month_start and md.person_key = w.person_key
    group by w.month_start, w.person_key
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
