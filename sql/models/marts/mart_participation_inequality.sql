with activity as (
    select activity_date, person_key, contributions
    from {{ ref('fct_person_daily_activity') }}
    where activity_date between {{ esn_date('start_date', -30) }} and {{ esn_date('end_date') }}
),
-- a dense person x day grid, so that each period's totals come from running totals over rows
{{ esn_person_day_grid('active', ['contributions']) }},
{{ esn_person_period_totals(['active', 'contributions'], ['rolling_28d', 'week', 'month']) }},
per_person as (
    {{- esn_person_periods(['rolling_28d', 'week', 'month'], 'active', ['contributions']) }}
),
{%- if (esn_days_between('start_date', 'end_date') | int) < 7 %}
value_counts as (
    -- a short interval (a daily run): each person-period joined to each of its segments directly. People
    -- with the same number of contributions are interchangeable in every statistic below, so the sort
    -- runs over the few distinct values of a group instead of over its people (same results, exactly)
    select p.as_of_date, p.period_type, m.segment_type, m.segment_value,
           cast(p.contributions as double precision) as contributions, count(*) as people
    from per_person p
    join {{ ref('int_segment_membership') }} m
      on {{ esn_valid_on('m', 'p.person_key', 'p.as_of_date') }}
    group by p.as_of_date, p.period_type, m.segment_type, m.segment_value, cast(p.contributions as double precision)
),
{%- else %}
membership as (
    select * from {{ ref('int_segment_membership') }}
),
{{ esn_person_profiles() }},
per_profile as (
    -- the people of each profile (the same set of segments: esn_person_profiles) by their number of
    -- contributions: people with the same number are interchangeable in every statistic below, and so are
    -- the people of a profile in each of its segments
    select p.as_of_date, p.period_type, e.profile_id, cast(p.contributions as double precision) as contributions,
           count(*) as people
    from per_person p
    join person_epochs e
      on e.person_key = p.person_key and p.as_of_date between e.epoch_from and e.epoch_to
    group by p.as_of_date, p.period_type, e.profile_id, cast(p.contributions as double precision)
),
value_counts as (
    -- so the sort runs over the few distinct values of a group instead of over its people (same results,
    -- exactly), and each person-period is joined to its profile once instead of to each of its segments
    -- (an interval of 7 days or more: the profiles cost more than they save on a day)
    select v.as_of_date, v.period_type, g.segment_type, g.segment_value, v.contributions,
           cast(sum(v.people) as bigint) as people
    from per_profile v
    join profile_segments g on g.profile_id = v.profile_id
    group by v.as_of_date, v.period_type, g.segment_type, g.segment_value, v.contributions
),
{%- endif %}
ranked as (
    -- below: people with fewer contributions (ascending ranks 1..below are theirs), above: with more
    select
        *,
        cast(coalesce(sum(people) over (partition by as_of_date, period_type, segment_type, segment_value
                                        order by contributions rows between unbounded preceding and 1 preceding),
                      0) as bigint) as below,
        cast(sum(people) over (partition by as_of_date, period_type, segment_type, segment_value) as bigint) as n
    from value_counts
),
weighted as (
    -- the c people of a value hold ascending ranks below+1 .. below+c, so their Gini weights
    -- sum(2 * rank - n - 1) add up to c * (2 * below + c - n); the top-k people are the k highest ranks
    select
        *,
        n - below - people as above,
        people * (2 * below + people - n) as gini_weight,
        greatest(ceil(0.01 * n), 1) as top1_k,
        greatest(ceil(0.10 * n), 1) as top10_k
    from ranked
),
aggregated as (
    select
        as_of_date,
        period_type,
        segment_type,
        segment_value,
        max(n) as active_users,
        sum(case when contributions > 0 then people else 0 end) as contributors,
        sum(people * contributions) as contributions,
        sum(gini_weight * contributions) as gini_numerator,
        sum(least(people, greatest(top1_k - above, 0)) * contributions) as top1_contributions,
        sum(least(people, greatest(top10_k - above, 0)) * contributions) as top10_contributions
    from weighted
    group by as_of_date, period_type, segment_type, segment_value
),
with_heavy as (
    -- heavy contributors: the top decile of contributors (at least one when anyone contributed)
    select *, case when contributors > 0 then greatest(ceil(0.10 * contributors), 1) else 0 end as heavy_contributors
    from aggregated
),
flagged as (
    select *, active_users < {{ esn_number('min_group_size') }} as suppressed from with_heavy
),
day_segments as (
    -- every segment of the day has a row, active or not: a missing row would say that nobody in it was active
    -- (for a small segment, a figure about fewer than :min_group_size people); withheld like any small group
    select h.as_of_date, p.period_type, h.segment_type, h.segment_value
    from {{ ref('int_segment_headcount_daily') }} h
    cross join (values ('rolling_28d'), ('week'), ('month')) as p(period_type)
    where h.as_of_date between {{ esn_date('start_date') }} and {{ esn_date('end_date') }}
),
completed as (
    {{ esn_complete_day_segments(['active_users', 'contributors', 'contributions', 'gini_numerator', 'top1_contributions', 'top10_contributions', 'heavy_contributors']) }}
)
select
    as_of_date,
    period_type,
    segment_type,
    segment_value,
    suppressed,
    case when suppressed then null else cast(active_users as bigint) end as active_users,
    case when suppressed then null else cast(contributors as bigint) end as contributors,
    case when suppressed then null else cast(contributions as bigint) end as contributions,
    case when suppressed or contributions = 0 then null
         else gini_numerator / (active_users * contributions) end as gini,
    case when suppressed or contributions = 0 then null else top1_contributions / contributions end as top1_share,
    case when suppressed or contributions = 0 then null else top10_contributions / contributions end as top10_share,
    case when suppressed then null
         else cast(active_users - contributors as double precision) / active_users end as lurker_share,
    case when suppressed then null
         else cast(contributors - heavy_contributors as double precision) / active_users end as intermittent_share,
    case when suppressed then null
         else cast(heavy_contributors as double precision) / active_users end as heavy_share
from completed
