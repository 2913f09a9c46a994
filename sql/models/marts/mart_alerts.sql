with calendar as (
    {{ esn_interval_days('alert_date') }}
),
data_start as (
    select min(activity_date) as first_day from {{ ref('fct_person_daily_activity') }}
),
eligible_days as (
    -- a day is eligible once its 28-day window lies entirely within the data
    select c.alert_date
    from calendar c
    cross join data_start s
    where c.alert_date >= s.first_day + 27
),
weeks as (
    select cast(g.i as integer) as k
    from generate_series(0, cast({{ esn_number('decline_lookback_weeks') }} as integer)) as g(i)
),
snapshots as (
    select d.alert_date, w.k, e.activity_date as snapshot_date, e.segment_type, e.segment_value, e.mau
    from eligible_days d
    cross join weeks w
    cross join data_start s
    join {{ ref('mart_engagement_daily') }} e on e.activity_date = d.alert_date - 7 * w.k
    where not e.suppressed
      and e.segment_type in ('org', 'department', 'location')
      and e.activity_date >= s.first_day + 27
),
peaks as (
    select *
    from (
        select
            *,
            row_number() over (partition by alert_date, segment_type, segment_value order by mau desc, k) as peak_rank
        from snapshots
    ) ranked
    where peak_rank = 1
),
decline as (
    select
        p.alert_date,
        p.segment_type,
        p.segment_value,
        p.snapshot_date as peak_date,
        p.k as weeks_since_peak,
        p.mau as peak_mau,
        now_.mau as current_mau,
        before_.mau as mau_n_weeks_ago,
        1.0 - cast(now_.mau as double precision) / p.mau as drop_share,
        (select count(*)
         from snapshots a
         join snapshots b
           on b.alert_date = a.alert_date and b.segment_type = a.segment_type
          and b.segment_value = a.segment_value and b.k = a.k + 1
         where a.alert_date = p.alert_date and a.segment_type = p.segment_type
           and a.segment_value = p.segment_value and a.k < p.k and a.mau < b.mau) as weeks_down
    from peaks p
    join snapshots now_
      on now_.alert_date = p.alert_date and now_.segment_type = p.segment_type
     and now_.segment_value = p.segment_value and now_.k = 0
    join snapshots before_
      on before_.alert_date = p.alert_date and before_.segment_type = p.segment_type
     and before_.segment_value = p.segment_value and before_.k = cast({{ esn_number('decline_weeks') }} as integer)
    where p.mau > 0
      and p.k >= cast({{ esn_number('decline_weeks') }} as integer)
      and now_.mau < before_.mau
      and 1.0 - cast(now_.mau as double precision) / p.mau >= {{ esn_number('decline_min_drop') }}
),
decline_alerts as (
    select
        alert_date,
        'decline_after_enthusiasm' as alert_type,
        case when drop_share >= 2 * {{ esn_number('decline_min_drop') }} then 'high'
             when drop_share >= 1.5 * {{ esn_number('decline_min_drop') }} then 'medium'
             else 'low' end as severity,
        segment_type,
        segment_value,
        'mau_drop_from_peak' as metric,
        cast(drop_share as double precision) as observed,
        cast({{ esn_number('decline_min_drop') }} as double precision) as threshold,
        'MAU below its peak for ' || cast(weeks_since_peak as varchar) || ' consecutive weeks (down in '
            || cast(weeks_down as varchar) || ' of them), ' || cast(peak_mau as varchar) || ' -> '
            || cast(current_mau as varchar) || ' (-' || {{ esn_percent_text('drop_share') }}
            || '%) since its peak on ' || cast(peak_date as varchar) as evidence
    from decline
),
silent as (
    -- segments that never took the network up: low participation now, while the organisation uses it
    select e.activity_date as alert_date, e.segment_type, e.segment_value, e.headcount, e.mau,
           e.participation_rate, org.participation_rate as org_rate
    from {{ ref('mart_engagement_daily') }} e
    join eligible_days d on d.alert_date = e.activity_date
    join {{ ref('mart_engagement_daily') }} org
      on org.activity_date = e.activity_date and org.segment_type = 'org' and not org.suppressed
    where not e.suppressed
      and e.segment_type in ('department', 'location')
      and e.participation_rate < {{ esn_number('silent_max_participation') }}
      and org.participation_rate >= {{ esn_number('silent_min_org_ratio') }} * {{ esn_number('silent_max_participation') }}
),
silent_alerts as (
    select
        alert_date,
        'silent_segment' as alert_type,
        {{ esn_severity_below('participation_rate', esn_number('silent_max_participation')) }} as severity,
        segment_type,
        segment_value,
        'participation_rate' as metric,
        cast(participation_rate as double precision) as observed,
        cast({{ esn_number('silent_max_participation') }} as double precision) as threshold,
        cast(mau as varchar) || ' of ' || cast(headcount as varchar) || ' people ('
            || {{ esn_percent_text('participation_rate') }}
            || '%) active in the last 28 days, against '
            || {{ esn_percent_text('org_rate') }} || '% for the organisation (threshold '
            || {{ esn_percent_text(esn_number('silent_max_participation')) }} || '%)' as evidence
    from silent
),
concentration as (
    select c.*
    from {{ ref('mart_department_concentration') }} c
    join eligible_days d on d.alert_date = c.as_of_date
    where c.period_type = 'rolling_28d' and c.segment_type = 'org' and not c.suppressed
      and c.largest_department_share > {{ esn_number('single_department_max_share') }}
),
single_department_alerts as (
    select
        as_of_date as alert_date,
        'single_department_adoption' as alert_type,
        case when largest_department_share >= {{ esn_number('single_department_max_share') }} + 0.25 then 'high'
             when largest_department_share >= {{ esn_number('single_department_max_share') }} + 0.10 then 'medium'
             else 'low' end as severity,
        'department' as segment_type,
        largest_department as segment_value,
        'largest_department_share' as metric,
        cast(largest_department_share as double precision) as observed,
        cast({{ esn_number('single_department_max_share') }} as double precision) as threshold,
        largest_department || ' makes up ' || {{ esn_percent_text('largest_department_share') }}
            || '% of the ' || cast(contributors as varchar) || ' contributors of the last 28 days (threshold '
            || {{ esn_percent_text(esn_number('single_department_max_share')) }} || '%), '
            || cast(departments_contributing as varchar) || ' departments contributing' as evidence
    from concentration
),
leaders as (
    select l.*
    from {{ ref('mart_leader_engagement') }} l
    join eligible_days d on d.alert_date = l.as_of_date
    where l.period_type = 'rolling_28d' and not l.suppressed
      and l.segment_type in ('org', 'department', 'location')
),
reach_history as (
    -- every published 28-day reach of a segment next to the org-wide reach of the same window
    select seg.as_of_date, seg.segment_type, seg.segment_value, seg.leader_reach, org.leader_reach as org_reach
    from {{ ref('mart_leader_engagement') }} seg
    join {{ ref('mart_leader_engagement') }} org
      on org.as_of_date = seg.as_of_date and org.period_type = seg.period_type and org.segment_type = 'org'
    where seg.period_type = 'rolling_28d' and not seg.suppressed and not org.suppressed
),
reach_persistent as (
    -- low reach now, and already low (absolutely, or against the org) in the previous 28-day window
    select
        l.*,
        cast(cast(floor(round(1000 * l.leader_reach) / 10) as integer) as varchar) || '.'
            || cast(mod(cast(round(1000 * l.leader_reach) as integer), 10) as varchar) as reach_pct,
        cast(cast(floor(round(1000 * {{ esn_number('absent_leaders_min_reach') }}) / 10) as integer) as varchar) || '.'
            || cast(mod(cast(round(1000 * {{ esn_number('absent_leaders_min_reach') }}) as integer), 10) as varchar) as threshold_pct,
        cast(cast(floor(round(1000 * prev.leader_reach) / 10) as integer) as varchar) || '.'
            || cast(mod(cast(round(1000 * prev.leader_reach) as integer), 10) as varchar) as previous_pct,
        cast(cast(floor(round(1000 * prev.org_reach) / 10) as integer) as varchar) || '.'
            || cast(mod(cast(round(1000 * prev.org_reach) as integer), 10) as varchar) as previous_org_pct
    from leaders l
    cross join data_start s
    join reach_history prev
      on prev.as_of_date = l.as_of_date - 28
     and prev.segment_type = l.segment_type and prev.segment_value = l.segment_value
    where prev.as_of_date >= s.first_day + 27
      and l.leader_reach < {{ esn_number('absent_leaders_min_reach') }}
      and (prev.leader_reach < {{ esn_number('absent_leaders_min_reach') }}
           or prev.leader_reach < {{ esn_number('absent_leaders_max_reach_ratio') }} * prev.org_reach)
),
absent_leader_alerts as (
    select
        as_of_date as alert_date,
        'absent_leaders' as alert_type,
        {{ esn_severity_below('leader_posting_share', esn_number('absent_leaders_min_posting_share')) }} as severity,
        segment_type,
        segment_value,
        'leader_posting_share' as metric,
        cast(leader_posting_share as double precision) as observed,
        cast({{ esn_number('absent_leaders_min_posting_share') }} as double precision) as threshold,
        'only ' || {{ esn_percent_text('leader_posting_share') }} || '% of the '
            || cast(leaders as varchar) || ' leaders posted in the last 28 days (threshold '
            || {{ esn_percent_text(esn_number('absent_leaders_min_posting_share')) }} || '%)' as evidence
    from leaders
    where not leaders_suppressed and leader_posting_share < {{ esn_number('absent_leaders_min_posting_share') }}
    union all
    select
        as_of_date,
        'absent_leaders',
        {{ esn_severity_below('leader_reach', esn_number('absent_leaders_min_reach')) }},
        segment_type,
        segment_value,
        'leader_reach',
        cast(leader_reach as double precision),
        cast({{ esn_number('absent_leaders_min_reach') }} as double precision),
        cast(people_reached_by_leaders as varchar)
            || case when people_reached_by_leaders = 1 then ' person (' else ' people (' end || reach_pct
            || '%) responded to a leader''s post in the last 28 days (threshold ' || threshold_pct
            || '%), and ' || previous_pct || '% in the 28 days before (org-wide ' || previous_org_pct || '%)'
    from reach_persistent
),
check_days as (
    -- the days of the interval and the week before: the rule needs the check of one week earlier too
    select cast({{ esn_date('start_date', -7) }} + cast(g.i as integer) as date) as check_date
    from generate_series(0, {{ esn_days_between('start_date', 'end_date') }} + 7) as g(i)
    cross join data_start s
    where cast({{ esn_date('start_date', -7) }} + cast(g.i as integer) as date) >= s.first_day + 27
),
unanswered as (
    select
        cur.as_of_date,
        cur.segment_type,
        cur.segment_value,
        cur.questions,
        cur.unanswered_rate,
        prev.unanswered_rate as previous_rate,
        prev.questions as previous_questions
    from {{ ref('mart_knowledge_sharing') }} cur
    join check_days d on d.check_date = cur.as_of_date
    cross join data_start s
    join {{ ref('mart_knowledge_sharing') }} prev
      on prev.as_of_date = cur.as_of_date - 28
     and prev.period_type = cur.period_type
     and prev.segment_type = cur.segment_type
     and prev.segment_value = cur.segment_value
    where cur.period_type = 'rolling_28d'
      and cur.segment_type in ('org', 'department', 'location', 'container')
      and not cur.suppressed and not prev.suppressed
      and prev.as_of_date >= s.first_day + 27
      and cur.questions >= {{ esn_number('unanswered_min_questions') }}
      and cur.unanswered_rate >= {{ esn_number('unanswered_min_rate') }}
      and cur.unanswered_rate - prev.unanswered_rate >= {{ esn_number('unanswered_min_increase') }}
),
significant as (
    -- two-proportion z statistic with the pooled rate: small containers swing by chance
    select *
    from (
        select
            u.*,
            (unanswered_rate - previous_rate) / sqrt(
                greatest(pooled * (1 - pooled) * (1.0 / questions + 1.0 / previous_questions), 1e-12)) as z
        from (
            select *, (unanswered_rate * questions + previous_rate * previous_questions)
                      / (questions + previous_questions) as pooled
            from unanswered
        ) u
    ) z_scored
    where z >= {{ esn_number('unanswered_min_z') }}
),
persistent_rise as (
    -- significant on the day (within the interval) and on the same day one week earlier
    select cur.*
    from significant cur
    join significant week_before
      on week_before.as_of_date = cur.as_of_date - 7
     and week_before.segment_type = cur.segment_type
     and week_before.segment_value = cur.segment_value
    where cur.as_of_date >= {{ esn_date('start_date') }}
),
unanswered_alerts as (
    select
        as_of_date as alert_date,
        'rising_unanswered_questions' as alert_type,
        case when unanswered_rate - previous_rate >= 2 * {{ esn_number('unanswered_min_increase') }} then 'high' else 'medium' end
            as severity,
        segment_type,
        segment_value,
        'unanswered_rate' as metric,
        cast(unanswered_rate as double precision) as observed,
        cast({{ esn_number('unanswered_min_increase') }} as double precision) as threshold,
        'unanswered questions ' || {{ esn_percent_text('previous_rate') }} || '% -> '
            || {{ esn_percent_text('unanswered_rate') }} || '% of the '
            || cast(questions as varchar) || ' questions of the last 28 days, against 28 days earlier (z = '
            || cast(cast(floor(round(10 * z) / 10) as integer) as varchar) || '.'
            || cast(mod(cast(round(10 * z) as integer), 10) as varchar) || '), also significant a week earlier'
            as evidence
    from persistent_rise
)
select * from decline_alerts
union all
select * from silent_alerts
union all
select * from single_department_alerts
union all
select * from absent_leader_alerts
union all
select * from unanswered_alerts
