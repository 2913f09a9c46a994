with usage as (
    select
        usage_date,
        person_key,
        case
            when product = 'teams' then
                (case when {{ esn_bool('usage_report_teams_channels') }} then coalesce(channel_messages, 0) else 0 end)
                + (case when {{ esn_bool('usage_report_teams_chat') }} then coalesce(chat_messages, 0) else 0 end)
            when product = 'engage' and {{ esn_bool('usage_report_engage') }} then
                coalesce(channel_messages, 0) + coalesce(reactions, 0)
                + (case when reads_are_actions then coalesce(reads, 0) else 0 end)
            else 0
        end as actions
    from {{ ref('stg_usage_daily') }}
)
select
    usage_date as activity_date,
    person_key,
    cast(sum(actions) as bigint) as actions
from usage
group by usage_date, person_key
having sum(actions) > 0
