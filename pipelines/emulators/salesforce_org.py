"""The content of an emulated Salesforce org's Chatter: the demo organisation as Users,
CollaborationGroups, FeedItems, FeedComments and FeedLikes, rendered as SOQL records.

Built once from `pipelines.sources.demo_org.build_org/simulate`; what exists depends on a clock (epoch
seconds), so new posts, late comments, likes, best answers and deletions appear between runs. Mapping
of the demo verbs: post -> FeedItem on a group (`Type: QuestionPost` for questions, else `TextPost`);
reply and share -> FeedComment on the thread's FeedItem (Chatter comments are flat); reaction on a
post -> FeedLike (likes on comments cannot be queried through the API, so they are not modelled);
answer_accepted -> the item's `BestCommentId`; mention -> a TextPost whose body names someone (SOQL
bodies are text: mentions are not structured there). Added: a daily `TrackedChange` item (system
noise) and deletions of a few posts nobody answered (`IsDeleted`, visible through queryAll only).
`SystemModstamp` moves with every change (comment, like, best answer, deletion), which the
incremental connector relies on. Clear identities exist here only because this is synthetic demo data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.sources.demo_org import DemoOrg, simulate
from pipelines.sources.salesforce_api import to18

WORDS = ("the", "deploy", "report", "team", "budget", "plan", "review", "customer", "ticket", "idea", "launch")


def sf_time(epoch_s: float) -> str:
    t = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def make_id(prefix: str, n: int) -> str:
    body = ""
    for _ in range(9):
        n, r = divmod(n, 62)
        body = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"[r] + body
    return to18(f"{prefix}Dm{body}"[:15].ljust(15, "0"))


def _text(length: int, salt: int) -> str:
    words, total, i = [], 0, salt
    while total < max(length, 1):
        words.append(WORDS[i % len(WORDS)])
        total += len(words[-1]) + 1
        i += 7
    return " ".join(words)[:max(length, 1)]


@dataclass
class Comment:
    id: str
    created: float
    author: str
    body: str


@dataclass
class Like:
    id: str
    created: float
    author: str


@dataclass
class Item:
    id: str
    parent: str
    created: float
    author: str
    type: str
    body: str
    comments: list[Comment] = field(default_factory=list)
    likes: list[Like] = field(default_factory=list)
    best: tuple[float, str] | None = None  # (chosen at, comment id)
    delete_at: float | None = None

    def stamp(self, now: float) -> float:
        """SystemModstamp at `now`: the latest change that has happened."""
        times = [self.created, *(c.created for c in self.comments if c.created <= now),
                 *(x.created for x in self.likes if x.created <= now)]
        if self.best is not None and self.best[0] <= now:
            times.append(self.best[0])
        if self.delete_at is not None and self.delete_at <= now:
            times.append(self.delete_at)
        return max(times)

    def deleted(self, now: float) -> bool:
        return self.delete_at is not None and self.delete_at <= now

    def render(self, now: float, version: str) -> dict[str, Any]:
        comments = [c for c in self.comments if c.created <= now]
        likes = [x for x in self.likes if x.created <= now]
        deleted = self.deleted(now)
        best = self.best[1] if self.best is not None and self.best[0] <= now else None

        def child(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
            return {"totalSize": len(rows), "done": True, "records": rows} if rows else None
        return {
            "attributes": {"type": "FeedItem", "url": f"/services/data/v{version}/sobjects/FeedItem/{self.id}"},
            "Id": self.id, "ParentId": self.parent, "CreatedById": self.author, "InsertedById": self.author,
            "CreatedDate": sf_time(self.created), "LastModifiedDate": sf_time(self.stamp(now)),
            "SystemModstamp": sf_time(self.stamp(now)), "Type": self.type, "Body": self.body,
            "IsRichText": False, "IsDeleted": deleted, "CommentCount": len(comments), "LikeCount": len(likes),
            "BestCommentId": best, "LastEditDate": None,
            "FeedComments": child([{
                "attributes": {"type": "FeedComment", "url": f"/services/data/v{version}/sobjects/FeedComment/{c.id}"},
                "Id": c.id, "FeedItemId": self.id, "ParentId": self.parent, "CreatedById": c.author,
                "CreatedDate": sf_time(c.created), "CommentBody": c.body, "IsDeleted": deleted}
                for c in comments]),
            "FeedLikes": child([{
                "attributes": {"type": "FeedLike", "url": f"/services/data/v{version}/sobjects/FeedLike/{x.id}"},
                "Id": x.id, "FeedItemId": self.id, "FeedEntityId": self.id, "CreatedById": x.author,
                "CreatedDate": sf_time(x.created)} for x in likes]),
        }


@dataclass
class ChatterOrg:
    users: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    items: list[Item]
    start: dt.date
    end: dt.date


def user_id(i: int) -> str:
    return make_id("005", 7919 * (i + 1))


def build_chatter(org: DemoOrg, *, delete_rate: float = 0.03, seed: int = 17) -> ChatterOrg:
    rng = np.random.default_rng(seed)
    people = org.people
    email_to_uid = {e: user_id(i) for i, e in enumerate(people["email"])}
    users = [{"Id": user_id(i), "Email": p.email, "IsActive": p.termination_date is None, "UserType": "Standard",
              "Name": f"Person {i}", "Department": p.department} for i, p in enumerate(people.itertuples(index=False))]
    groups, group_of = [], {}
    for j, c in enumerate(org.containers.itertuples(index=False)):
        gid = make_id("0F9", 104729 * (j + 1))
        group_of[c.container_id] = gid
        groups.append({"Id": gid, "Name": c.container_id.removeprefix("C-"), "MemberCount": int(c.member_count or 0),
                       "CollaborationType": "Private" if c.visibility == "private" else "Public",
                       "CreatedDate": sf_time(c.created_at.timestamp()), "IsArchived": False})
    items: list[Item] = []
    by_event: dict[str, Item] = {}
    comment_of: dict[str, tuple[Item, Comment]] = {}
    uids = list(email_to_uid.values())
    n = 0

    def next_n() -> int:
        nonlocal n
        n += 1
        return n * 613

    for day, events in simulate(org):
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        items.append(Item(make_id("0D5", next_n()), groups[int(rng.integers(len(groups)))]["Id"], day_start + 5400,
                          uids[int(rng.integers(len(uids)))], "TrackedChange", ""))
        for ev in events.itertuples(index=False):
            sec = float(ev.occurred_at.timestamp())
            actor = email_to_uid[ev.actor_email]
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 20
            if ev.verb in ("post", "mention"):
                question = ev.verb == "post" and bool(ev.is_question)
                body = _text(length, n) if ev.verb == "post" else "@someone about the plan"
                item = Item(make_id("0D5", next_n()), group_of[ev.container_id], sec, actor,
                            "QuestionPost" if question else "TextPost", body + ("?" if question else ""))
                items.append(item)
                by_event[ev.event_id] = item
                continue
            parent_item = by_event.get(ev.parent_id)
            if parent_item is None:
                continue
            if ev.verb == "reaction":
                if ev.parent_id in comment_of:
                    continue  # a like on a comment: not queryable through the API
                parent_item.likes.append(Like(make_id("0I0", next_n()), sec, actor))
            elif ev.verb == "answer_accepted":
                found = comment_of.get(ev.parent_id)
                if found is not None and found[0].best is None:
                    found[0].best = (sec, found[1].id)
            else:
                c = Comment(make_id("0D7", next_n()), max(sec, parent_item.created + 1), actor, _text(length, n))
                parent_item.comments.append(c)
                by_event[ev.event_id] = parent_item  # replies to this comment go to the same item
                comment_of[ev.event_id] = (parent_item, c)
    for item in items:
        if item.type != "TrackedChange" and not item.comments and not item.likes and rng.random() < delete_rate:
            item.delete_at = item.created + float(rng.uniform(60, 12 * 3600))
    return ChatterOrg(users=users, groups=groups, items=items, start=org.start, end=org.end)
