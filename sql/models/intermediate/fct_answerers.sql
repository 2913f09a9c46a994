{#- A run rewrites whole months (a month's ranks depend on all its answers; meta partition_grain: month): the
    months of its interval, and the older months of the answers accepted or reacted to in it (meta
    replace_keys: month_start); on the first build every month. An acceptance or reaction is counted whether
    or not it was deleted since, so a redelivered day that deleted one still rewrites its answer's month. -#}
with
{%- if is_incremental() %}
months as (
    select distinct cast({{ dbt.date_trunc('month', 'r.activity_date') }} as date) as month_start
    from {{ ref('stg_activities') }} a
    join {{ ref('int_post_responses') }} r on r.source = a.source and r.event_id = a.parent_id
    where a.verb in ('answer_accepted', 'reaction')
      and a.activity_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
      and r.verb = 'reply' and r.post_is_question
),
{%- endif %}
answers as (
    select source, event_id, responder_key, container_id, cast({{ dbt.date_trunc('month', 'activity_date') }} as date) as month_start
    from {{ ref('int_post_responses') }}
    where verb = 'reply' and post_is_question
    {%- if is_incremental() %}
      and (activity_date >= {{ esn_interval_start('month') }}
           or cast({{ dbt.date_trunc('month', 'activity_date') }} as date) in (select month_start from months))
    {%- endif %}
),
accepted as (
    select distinct source, parent_id as answer_id
    from {{ ref('stg_activities') }}
    where verb = 'answer_accepted'
),
reacted as (
    select distinct source, parent_id as answer_id
    from {{ ref('stg_activities') }}
    where verb = 'reaction' and not is_deleted
),
scored as (
    select
        a.month_start,
        coalesce(a.container_id, '(none)') as container_id,
        a.responder_key as person_key,
        case when acc.answer_id is not null then 1 else 0 end as is_accepted,
        case when acc.answer_id is not null or r.answer_id is not null then 1 else 0 end as is_accepted_or_reacted
    from answers a
    left join accepted acc on acc.source = a.source and acc.answer_id = a.event_id
    left join reacted r on r.source = a.source and r.answer_id = a.event_id
),
by_container as (
    select month_start, container_id, person_key, count(*) as answers,
           cast(sum(is_accepted) as bigint) as answers_accepted,
           cast(sum(is_accepted_or_reacted) as bigint) as answers_accepted_or_reacted
    from scored
    group by month_start, container_id, person_key
    union all
    select month_start, '(all)', person_key, count(*),
           cast(sum(is_accepted) as bigint), cast(sum(is_accepted_or_reacted) as bigint)
    from scored
    group by month_start, person_key
)
select
    month_start,
    container_id,
    person_key,
    answers,
    answers_accepted,
    answers_accepted_or_reacted,
    cast(answers_accepted_or_reacted as double precision) / answers as accepted_or_reacted_share,
    cast(rank() over (partition by month_start, container_id
                      order by answers desc, answers_accepted desc) as bigint) as answerer_rank
from by_container
