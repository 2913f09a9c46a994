-- model: int_person_report_actions_daily
-- grain: one row per person and day with report actions that stand for activity
-- key: activity_date, person_key
-- materialized: table
-- depends_on: stg_usage_daily
-- owner: esn-metrics
-- description: INTERNAL actions counted from the aggregate usage reports for the products whose messages no
--   per-event source loads (usage_reports.report_products, bound as :usage_report_teams_channels,
--   :usage_report_teams_chat, :usage_report_engage): Teams channel messages, Teams chat messages, Viva Engage
--   messages posted and likes (and reads when the source counts them). A product whose messages are loaded
--   (msgraph for Teams, yammer for Viva Engage) counts its events in fct_person_daily_activity instead, so
--   nothing is counted twice. Feeds the usage segments and the adoption curve only; rebuilt in full each run
--   (a few rows per person and day) so that a change of sources applies to the whole history.
with usage as (
    select
        usage_date,
        person_key,
        case
            when product = 'teams' then
                (case when cast(:usage_report_teams_channels as boolean) then coalesce(channel_messages, 0) else 0 end)
                + (case when cast(:usage_report_teams_chat as boolean) then coalesce(chat_messages, 0) else 0 end)
            when product = 'engage' and cast(:usage_report_engage as boolean) then
                coalesce(channel_messages, 0) + coalesce(reactions, 0)
                + (case when reads_are_actions then coalesce(reads, 0) else 0 end)
            else 0
        end as actions
    from stg_usage_daily
)
select
    usage_date as activity_date,
    person_key,
    cast(sum(actions) as bigint) as actions
from usage
group by usage_date, person_key
having sum(actions) > 0
