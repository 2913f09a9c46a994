"""One organisation on Slack and Viva Engage at once (both emulators serve the same demo org): the
same people get the same actor keys on both platforms, because both sources key people by email."""

from __future__ import annotations

import datetime as dt

from pipelines.emulators.slack import SlackEmulator
from pipelines.emulators.yammer import YammerEmulator
from pipelines.sources import slack, yammer
from pipelines.sources.demo_org import build_org
from tests.vendors.yammer.helpers import activities, make_ctx

START = dt.date(2026, 1, 5)
END = START + dt.timedelta(days=13)


def test_actor_keys_match_across_slack_and_viva_engage(tmp_path) -> None:
    (tmp_path / "slack").mkdir()
    (tmp_path / "yammer").mkdir()
    org = build_org(60, 16, START, 7, 1.0)
    with SlackEmulator(org, token="xoxb-x", period_s=0.05) as s_emu, \
            YammerEmulator(org, token="y", period_s=0.02) as y_emu:
        s_emu.advance_to(END)
        y_emu.advance_to(END)
        s_ctx = make_ctx(tmp_path / "slack", "slack", {"base_url": s_emu.url, "rate_period_s": 0.05,
                                                       "auto_join": True, "include_private": True,
                                                       "fetch_members": False})
        y_ctx = make_ctx(tmp_path / "yammer", "yammer", {"base_url": y_emu.url, "rate_period_s": 0.02})
        slack.extract(s_ctx, START, END, token="xoxb-x")
        report = yammer.extract(y_ctx, START, END, token="y")
    s_acts = activities(slack.canonicalise, s_ctx, START, END)
    y_acts = activities(yammer.canonicalise, y_ctx, START, END)
    # the people who posted or replied: on both platforms the demo org's same events
    s_actors = set(s_acts.loc[s_acts["verb"].isin(["post", "reply"]), "actor_key"])
    y_actors = set(y_acts.loc[y_acts["verb"].isin(["post", "reply"]), "actor_key"])
    matched = len(s_actors & y_actors) / len(s_actors | y_actors)
    print(f"cross-platform identity: {len(s_actors & y_actors)} of {len(s_actors | y_actors)} actors "
          f"matched ({matched:.1%}); yammer email-keyed share {report.details['identity_matched_share']}")
    assert len(y_actors) >= 10
    # Slack drops deleted messages without replies and mentions-only posters differ slightly; the keys
    # of a person are identical wherever they act
    assert matched >= 0.95
    email_keys = {s_ctx.pseudonymiser.email(e) for e in org.people["email"]}
    assert y_actors <= email_keys and s_actors <= email_keys
