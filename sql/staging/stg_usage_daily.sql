-- model: stg_usage_daily
-- grain: one row per source, day, person and product of an aggregate usage report
-- key: source, usage_date, person_key, product
-- materialized: view
-- depends_on: lake_usage_daily
-- owner: esn-metrics
-- description: INTERNAL aggregate usage counts as loaded from the lake (canonical `usage`: the Microsoft 365
--   usage reports, kind m365_usage), per person, product (teams, engage) and report date. Counts, not events:
--   nothing here is an activity, so no post, response, container or network metric reads it.
with source as (
    select * from lake_usage_daily
)
select
    source,
    usage_date,
    person_key,
    product,
    channel_messages,
    posts,
    replies,
    chat_messages,
    urgent_messages,
    meetings,
    calls,
    reactions,
    reads,
    reads_are_actions,
    refresh_date
from source
