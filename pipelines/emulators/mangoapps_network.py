"""The content of an emulated MangoApps domain: the demo organisation as users, groups, feed items with
their embedded comments (threaded) and likes, rendered in the shapes the connector assumes.

**Every shape here is an unverified assumption** (no real MangoApps payload exists in the project's
material; docs/sources/mangoapps.md): field names come from the documented field lists (the Ruby SDK's
`feeds_spec.rb`, the .NET client's `StatusFeed` / `GetAllGroupsResponse`, the importer's users), values
and their types are ours (ids integers, times epoch seconds).

Built once from `pipelines.sources.demo_org.build_org/simulate`; what exists depends on the data clock
(epoch seconds), so new items, late comments and likes appear between runs. Mapping of the demo:
  - people -> users (`id`, made-up `name`, `email`, `employee_id`, `photo`, `presence_option_id`);
  - channels -> groups, but for `general` and `announcements`, whose posts go to the network feed
    (`group_id` 0); a department's `team` channel is a private group, the others public;
  - post -> a feed item (`feed_type` "status"); reply -> a comment on the post, one in four a nested
    reply to the post's latest comment (`parent_id`); reaction -> a like of the post, or one in three
    of the post's latest comment, once per person and item; mentions, shares and accepted answers are
    left out (their representation is not documented). One post in twelve is followed by a system
    notice (`is_system` true, `feed_type` "group_join") that is no post;
  - a like has no documented time: it is served without one; the ground truth dates it at the liked
    item's creation, as the connector does (assumption A10).
Ids are disjoint number ranges (users 77xxxxx, feed items 33xxxxx, comments 55xxxxx, groups 9xx) so that a
raw id found on disk is recognisable. Clear identities exist here only because this is synthetic data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipelines.sources.demo_org import DemoOrg, simulate

USER_BASE, USER_STEP = 7_700_001, 11
FEED_BASE = 3_300_000
COMMENT_BASE = 5_500_000
GROUP_BASE = 900
NETWORK = ("C-general", "C-announcements")
SYSTEM_EVERY = 12
WORDS = ("the", "plan", "review", "budget", "deploy", "customer", "launch", "roadmap", "ticket", "idea", "team")


def user_id(i: int) -> int:
    return USER_BASE + USER_STEP * i


def words(length: int, salt: int) -> str:
    out: list[str] = []
    i = salt
    while sum(len(w) + 1 for w in out) < max(length, 3):
        out.append(WORDS[i % len(WORDS)])
        i += 7
    return " ".join(out)[:max(length, 3)]


def stamp(epoch_s: float, style: str) -> Any:
    """A timestamp as served: `epoch` (an integer, the assumption), `epoch_string`, or, to show the connector
    failing loudly on a different API, `iso` or `ms`."""
    if style == "epoch":
        return int(epoch_s)
    if style == "epoch_string":
        return str(int(epoch_s))
    if style == "ms":
        return int(epoch_s * 1000)
    if style == "iso":
        return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).isoformat()
    raise ValueError(f"unknown timestamp style {style!r}")


@dataclass
class Like:
    user: int
    at: float  # when it happened (not served: A10)


@dataclass
class Comment:
    id: int
    feed_id: int
    author: int
    created: float
    body: str
    parent_id: int | None = None
    likes: list[Like] = field(default_factory=list)


@dataclass
class FeedItem:
    id: int
    author: int
    group: int | None
    created: float
    body: str
    system: bool = False
    comments: list[Comment] = field(default_factory=list)
    likes: list[Like] = field(default_factory=list)

    def updated(self, now: float) -> float:
        """`updated_at` at `now`: the latest comment or like that has happened (A19)."""
        times = [self.created, *(c.created for c in self.comments if c.created <= now),
                 *(like.at for like in self.likes if like.at <= now),
                 *(like.at for c in self.comments for like in c.likes if like.at <= now)]
        return max(times)


@dataclass
class Network:
    users: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    items: list[FeedItem]
    admin_id: int
    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        self._users = {int(u["id"]): u for u in self.users}
        self._groups = {int(g["id"]): g for g in self.groups}

    def user_ref(self, uid: int, *, full: bool = True) -> dict[str, Any]:
        u = self._users[uid]
        ref = {"id": uid, "name": u["name"]}
        if full:
            ref.update(email=u["email"], photo=u["photo"])
        return ref

    def comments(self) -> list[Comment]:
        return [c for i in self.items for c in i.comments]

    def render(self, item: FeedItem, now: float, style: str = "epoch") -> dict[str, Any]:
        comments = [c for c in item.comments if c.created <= now]
        likes = [x for x in item.likes if x.at <= now]
        group = self._groups.get(item.group) if item.group is not None else None
        return {
            "id": item.id, "feed_type": "group_join" if item.system else "status", "body": item.body,
            "from_user": self.user_ref(item.author), "group_id": item.group or 0,
            "group_name": group["name"] if group else None, "created_at": stamp(item.created, style),
            "updated_at": stamp(item.updated(now), style), "mlink": f"/ce/pulse/user/feed/{item.id}",
            "category": "network" if group is None else "group", "sub_category": None,
            "is_system": item.system, "is_link": False, "shareable": not item.system, "platform": "web",
            "like_count": len(likes), "comment_count": len(comments), "attachment_count": 0, "attachments": [],
            "liked": False, "liked_list": [self.user_ref(x.user, full=False) for x in likes], "watched": False,
            "unread": False, "visibility": "private" if group and group["privacy"] == "private" else "public",
            "comments": [self.render_comment(c, now, style) for c in comments],
        }

    def render_comment(self, c: Comment, now: float, style: str) -> dict[str, Any]:
        likes = [x for x in c.likes if x.at <= now]
        return {"id": c.id, "body": c.body, "user": self.user_ref(c.author, full=False),
                "created_at": stamp(c.created, style), "parent_id": c.parent_id,
                "like_count": len(likes), "liked_list": [self.user_ref(x.user, full=False) for x in likes]}

    def counts(self, now: float) -> dict[str, int]:
        """The ground truth at `now`: posts (system notices excluded), replies and reactions that exist."""
        live = [i for i in self.items if i.created <= now]
        return {"post": sum(not i.system for i in live),
                "reply": sum(c.created <= now for i in live for c in i.comments),
                "reaction": sum(x.at <= now for i in live for x in i.likes)
                + sum(x.at <= now for i in live for c in i.comments for x in c.likes)}


def build_network(org: DemoOrg) -> Network:
    people = org.people
    uid_of = {e: user_id(i) for i, e in enumerate(people["email"])}
    users = [{"id": user_id(i), "name": f"Given{i:04d} Family{i:04d}", "email": p.email,
              "employee_id": p.employee_id, "photo": f"/uploads/photo/{user_id(i)}.png", "presence_option_id": 1}
             for i, p in enumerate(people.itertuples(index=False))]
    groups: list[dict[str, Any]] = []
    group_of: dict[str, int] = {}
    created = dt.datetime(org.start.year, org.start.month, org.start.day, tzinfo=dt.UTC).timestamp() - 400 * 86400
    for j, c in enumerate(org.containers.itertuples(index=False)):
        cid = str(c.container_id)
        if cid in NETWORK:
            continue
        gid = GROUP_BASE + j
        group_of[cid] = gid
        groups.append({"id": gid, "name": cid.removeprefix("C-").replace("-", " ").title(),
                       "privacy": "private" if c.visibility == "private" else "public",
                       "member_Count": int(c.member_count), "CreatorId": users[0]["id"], "state": "active",
                       "created_at": int(created)})
    items: list[FeedItem] = []
    item_of: dict[str, FeedItem] = {}
    n_item = n_comment = n_reaction = n_reply = 0
    for _day, events in simulate(org):
        for ev in events.itertuples(index=False):
            sec = float(int(ev.occurred_at.timestamp()))
            actor = uid_of[ev.actor_email]
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 24
            if ev.verb == "post":
                n_item += 1
                item = FeedItem(FEED_BASE + n_item, actor, group_of.get(str(ev.container_id)), sec,
                                words(length, n_item) + ("?" if bool(ev.is_question) else "."))
                items.append(item)
                item_of[ev.event_id] = item
                if n_item % SYSTEM_EVERY == 0:
                    n_item += 1
                    items.append(FeedItem(FEED_BASE + n_item, actor, item.group, sec + 5, "joined the group",
                                          system=True))
                continue
            parent = item_of.get(ev.parent_id) if isinstance(ev.parent_id, str) else None
            if parent is None:
                continue  # mentions, shares, accepted answers (module doc)
            if ev.verb == "reply":
                n_comment += 1
                n_reply += 1
                last = parent.comments[-1] if parent.comments else None
                nested = last is not None and n_reply % 4 == 0
                when = max(sec, (last.created if nested and last else parent.created) + 1)
                parent.comments.append(Comment(COMMENT_BASE + n_comment, parent.id, actor, when,
                                               words(length, n_comment), parent_id=last.id if nested and last else None))
            elif ev.verb == "reaction":
                n_reaction += 1
                last = parent.comments[-1] if parent.comments else None
                target_likes, created = parent.likes, parent.created
                if last is not None and n_reaction % 3 == 0 and last.created <= sec:
                    target_likes, created = last.likes, last.created
                if all(x.user != actor for x in target_likes):
                    target_likes.append(Like(actor, max(sec, created + 1)))
    items.sort(key=lambda i: i.id)
    return Network(users=users, groups=groups, items=items, admin_id=users[0]["id"], start=org.start, end=org.end)
