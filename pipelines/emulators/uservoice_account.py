"""The content of an emulated UserVoice account: the demo organisation's people as users, its containers as
forums (two categories each), and ideas, comments, votes and status updates derived from its activity,
rendered in the Admin API v2 record shapes.

Built once from `pipelines.sources.demo_org.build_org/simulate`, deterministically for a seed; what exists
depends on a clock (epoch seconds), so new ideas, late comments, votes, status changes and spam flags
appear between runs. Mapping of the demo events: a share (`idea_rate`, drawn with the seed) of the posts
are suggestions in the forum of the post's container (`created_by` its author); replies to them are
comments; reactions to them are supporters (one per person and idea: a second reaction of the same
person is not a second vote); everything else is not UserVoice's. Added with the seed: status updates by
an admin (one of the organisation's leaders) some days after the idea, along the account's statuses
(under review, planned, started, completed, or declined), and a few ideas nobody answered flagged spam
later. A suggestion's `updated_at` moves with every change (a comment, a vote, a status update, the spam
flag) (unverified: UserVoice documents no rule). Clear identities exist here only because this is
synthetic demo data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.sources.demo_org import DemoOrg, simulate

WORDS = ("idea", "improve", "the", "search", "expense", "tool", "meeting", "rooms", "faster", "onboarding")
#: (id, name, is_open): account-defined names; these are the classic defaults (unverified)
STATUSES = ((1, "Under Review", True), (2, "Planned", True), (3, "Started", True), (4, "Completed", False),
            (5, "Declined", False))
PATHS = ((1,), (2,), (2, 3), (2, 3, 4), (5,), (1, 2, 3, 4))  # status ids an idea goes through


def uv_time(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch_s), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(length: int, salt: int) -> str:
    words, total, i = [], 0, salt
    while total < max(length, 1):
        words.append(WORDS[i % len(WORDS)])
        total += len(words[-1]) + 1
        i += 3
    return " ".join(words)[:max(length, 1)]


@dataclass
class Comment:
    id: int
    idea: int
    created: float
    author: int
    body: str

    def render(self) -> dict[str, Any]:
        return {"id": self.id, "body": self.body, "body_mime_type": "text/plain", "state": "approved",
                "is_admin_comment": False, "channel": "web", "inappropriate_flags_count": 0,
                "created_at": uv_time(self.created), "updated_at": uv_time(self.created),
                "links": {"suggestion": self.idea, "created_by": self.author}}


@dataclass
class Supporter:
    id: int
    idea: int
    created: float
    user: int

    def render(self) -> dict[str, Any]:
        return {"id": self.id, "how": "web", "channel": "web", "is_subscribed": True, "requests_count": 0,
                "comments_count": 0, "created_at": uv_time(self.created), "updated_at": uv_time(self.created),
                "links": {"suggestion": self.idea, "user": self.user, "created_by": self.user, "updated_by": None}}


@dataclass
class StatusUpdate:
    id: int
    idea: int
    created: float
    user: int
    old: int | None
    new: int | None
    body: str = ""

    def render(self) -> dict[str, Any]:
        return {"id": self.id, "body": self.body, "supporters_notified": True, "mail_sent_count": 0,
                "mail_opened_count": 0, "mail_clicked_count": 0, "created_at": uv_time(self.created),
                "links": {"suggestion": self.idea, "user": self.user, "old_status": self.old, "new_status": self.new}}


@dataclass
class Idea:
    id: int
    forum: int
    category: int
    created: float
    author: int
    title: str
    body: str
    comments: list[Comment] = field(default_factory=list)
    supporters: list[Supporter] = field(default_factory=list)
    updates: list[StatusUpdate] = field(default_factory=list)
    spam_at: float | None = None

    def stamp(self, now: float) -> float:
        """`updated_at` at `now`: the latest change that has happened."""
        times = [self.created, *(c.created for c in self.comments if c.created <= now),
                 *(s.created for s in self.supporters if s.created <= now),
                 *(u.created for u in self.updates if u.created <= now)]
        if self.spam_at is not None and self.spam_at <= now:
            times.append(self.spam_at)
        return max(times)

    def render(self, now: float, subdomain_url: str) -> dict[str, Any]:
        updates = [u for u in self.updates if u.created <= now]
        comments = sum(c.created <= now for c in self.comments)
        supporters = sum(s.created <= now for s in self.supporters)
        return {
            "id": self.id, "title": self.title, "body": self.body, "body_mime_type": "text/plain",
            "portal_url": f"{subdomain_url}/forums/{self.forum}/suggestions/{self.id}",
            "admin_url": f"{subdomain_url}/admin/v3/suggestions/{self.id}", "created_at": uv_time(self.created),
            "creator_user_agent": None, "creator_referrer": None, "creator_browser": None, "creator_os": None,
            "creator_mobile": False, "state": "spam" if self.spam_at is not None and self.spam_at <= now else "approved",
            "inappropriate_flags_count": 0, "approved_at": uv_time(self.created), "updated_at": uv_time(self.stamp(now)),
            "closed_at": None, "comments_count": comments, "notes_count": 0, "requests_count": 0,
            "votes_count": supporters, "supporters_count": supporters,
            "links": {"category": self.category, "created_by": self.author, "forum": self.forum, "labels": [],
                      "last_status_update": updates[-1].id if updates else None, "parent_suggestion": None,
                      "status": updates[-1].new if updates else None, "ticket": None},
        }


@dataclass
class Account:
    users: list[dict[str, Any]]
    forums: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    ideas: list[Idea]
    start: dt.date
    end: dt.date

    def comments(self) -> list[Comment]:
        return [c for i in self.ideas for c in i.comments]

    def supporters(self) -> list[Supporter]:
        return [s for i in self.ideas for s in i.supporters]

    def status_updates(self) -> list[StatusUpdate]:
        return [u for i in self.ideas for u in i.updates]

    def counts(self, now: float) -> dict[str, int]:
        """The ground truth at `now`: ideas, comments, votes and status changes that exist."""
        return {"idea": sum(i.created <= now for i in self.ideas),
                "reply": sum(c.created <= now for c in self.comments()),
                "vote": sum(s.created <= now for s in self.supporters()),
                "status_change": sum(u.created <= now for u in self.status_updates())}


def user_id(i: int) -> int:
    return 10_000 + 7 * i


def build_account(org: DemoOrg, *, idea_rate: float = 0.25, status_rate: float = 0.5, spam_rate: float = 0.2,
                  seed: int = 23) -> Account:
    rng = np.random.default_rng(seed)
    people = org.people
    uid_of = {e: user_id(i) for i, e in enumerate(people["email"])}
    created0 = uv_time(dt.datetime(org.start.year, org.start.month, org.start.day, tzinfo=dt.UTC).timestamp()
                       - 400 * 86400)
    users = [{"id": user_id(i), "guid": f"guid-{user_id(i)}", "name": f"Person {i}", "email_address": p.email,
              "job_title": p.level, "state": "blocked" if p.termination_date is not None else "active",
              "allowed_state": "allowed", "is_admin": bool(p.is_leader), "is_owner": i == 0,
              "supported_suggestions_count": 0, "created_at": created0, "updated_at": created0,
              "links": {"teams": [], "external_users": [], "current_nps_rating": None}}
             for i, p in enumerate(people.itertuples(index=False))]
    admins = [user_id(int(i)) for i in np.flatnonzero(people["is_leader"].to_numpy())] or [user_id(0)]
    forums, categories, forum_of = [], [], {}
    for j, c in enumerate(org.containers.itertuples(index=False)):
        fid = 2000 + j
        forum_of[c.container_id] = fid
        forums.append({"id": fid, "name": f"Ideas {c.container_id.removeprefix('C-')}",
                       "is_public": c.visibility != "private", "open_suggestions_count": 0, "suggestions_count": 0,
                       "created_at": uv_time(c.created_at.timestamp()), "updated_at": uv_time(c.created_at.timestamp()),
                       "links": {"updated_by": None}})
        for k in range(2):
            categories.append({"id": 3000 + 2 * j + k, "name": f"Category {k + 1}", "suggestions_count": 0,
                               "links": {"forum": fid, "parent_category": None}})
    statuses = [{"id": sid, "name": name, "is_open": is_open, "hex_color": "#3366cc", "position": sid,
                 "allow_comments": True} for sid, name, is_open in STATUSES]
    ideas: list[Idea] = []
    idea_of: dict[str, Idea] = {}
    seq = {"idea": 100_000, "comment": 500_000, "supporter": 800_000, "update": 900_000}

    def next_id(kind: str) -> int:
        seq[kind] += 1
        return seq[kind]

    for _day, events in simulate(org):
        for ev in events.itertuples(index=False):
            sec = float(int(ev.occurred_at.timestamp()))
            actor = uid_of[ev.actor_email]
            if ev.verb == "post":
                if rng.random() >= idea_rate:
                    continue
                length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 40
                fid = forum_of[ev.container_id]
                idea = Idea(next_id("idea"), fid, 3000 + 2 * (fid - 2000) + int(rng.integers(2)), sec, actor,
                            _text(min(length, 60), seq["idea"]), _text(length, seq["idea"] + 1))
                ideas.append(idea)
                idea_of[ev.event_id] = idea
                continue
            found = idea_of.get(ev.parent_id) if isinstance(ev.parent_id, str) else None
            if found is None:
                continue
            idea = found
            when = max(sec, idea.created + 1)
            if ev.verb == "reply":
                length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 20
                idea.comments.append(Comment(next_id("comment"), idea.id, when, actor, _text(length, seq["comment"])))
            elif ev.verb == "reaction" and all(s.user != actor for s in idea.supporters):
                idea.supporters.append(Supporter(next_id("supporter"), idea.id, when, actor))
    for idea in ideas:
        if rng.random() < status_rate:
            path = PATHS[int(rng.integers(len(PATHS)))]
            when, old = idea.created, None
            admin = admins[int(rng.integers(len(admins)))]
            for sid in path:
                when = float(int(when + rng.uniform(0.5, 6.0) * 86400))
                idea.updates.append(StatusUpdate(next_id("update"), idea.id, when, admin, old, sid,
                                                 _text(30, seq["update"])))
                old = sid
        elif not idea.comments and not idea.supporters and rng.random() < spam_rate:
            idea.spam_at = float(int(idea.created + rng.uniform(600, 2 * 86400)))
    return Account(users=users, forums=forums, categories=categories, statuses=statuses, ideas=ideas,
                   start=org.start, end=org.end)
