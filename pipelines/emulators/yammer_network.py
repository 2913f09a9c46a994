"""The content of an emulated Viva Engage (Yammer) network: the demo organisation as Yammer users,
communities and messages, rendered in the REST v1 shapes and as a Data Export zip of CSVs.

Built once from `pipelines.sources.demo_org.build_org/simulate`. What exists depends on a clock (epoch
seconds): a message, a like, a best-answer choice or a deletion exists only once its time has come, so a
test advances the clock between runs and new messages, late replies, late likes and deletions appear as
in a live network. Mapping of the demo verbs: post -> thread starter (`message_type: question` for
questions, else `update`); reply and share -> reply (`replied_to_id`); reaction -> like; mention ->
message with `notified_user_ids` and a `[[user:ID]]` token; answer_accepted -> the thread's best reply.
Added: one `system` message a day, and deletions of a few starters nobody answered. Message ids grow
with time, as Yammer's do, which `older_than` paging relies on.

Viva Engage topics: a thread starter whose text starts with a word of `TOPICS` carries that topic (`YMessage.topics`,
ids of `TOPICS`), served on its thread reference as `topics: [{"type": "topic", "id": ...}]` with a
`{"type": "topic", "id", "name", "normalized_name", "permalink", ...}` reference (the field names of the
client models: no verbatim envelope with references was found); bodies are unchanged, and the export does
not carry them (its documented columns have no topics).

Best answers have no verified REST or export field: the emulator uses `best_reply_id` on the thread
reference (REST) and on the starter's row of Messages.csv (export), the names the connectors read
(marked unverified there too). Clear identities exist here only because this is synthetic demo data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.sources.demo_org import DemoOrg, simulate

NETWORK_ID = 5897756673
WORDS = ("the", "deploy", "report", "team", "budget", "plan", "review", "customer", "ticket", "idea", "launch")
BOM = "\ufeff"
#: the first word of a starter's text -> the Viva Engage topic the thread carries (id, name)
TOPICS = {"deploy": (25209, "Deployments"), "budget": (25211, "Budget planning")}


def _text(length: int, question: bool, salt: int) -> str:
    words, total, i = [], 0, salt
    while total < max(length - 1, 1):
        w = WORDS[i % len(WORDS)]
        words.append(w)
        total += len(w) + 1
        i += 7
    return " ".join(words)[: max(length - 1, 1)] + ("?" if question else ".")


def user_id(i: int) -> int:
    return 1_499_642_294 + i * 131


def yammer_time(epoch_s: float) -> str:
    """REST style: `2013/06/25 18:14:45 +0000`."""
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).strftime("%Y/%m/%d %H:%M:%S +0000")


def export_time(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class YMessage:
    created: float  # epoch seconds
    sender: int
    text: str
    message_type: str = "update"  # update | question | system
    group_id: int | None = None
    private: bool = False
    replied_to: YMessage | None = None
    notified: list[int] = field(default_factory=list)
    likes: list[tuple[float, int]] = field(default_factory=list)  # (at, user id)
    best_reply: tuple[float, YMessage] | None = None  # on starters: (chosen at, reply)
    delete_at: float | None = None
    replies: int = 0
    id: int = 0  # assigned once every message is known, in time order
    thread: YMessage | None = None  # the starter (itself for starters)
    topics: list[int] = field(default_factory=list)  # on starters: Viva Engage topic ids (TOPICS)

    @property
    def thread_id(self) -> int:
        return self.thread.id if self.thread is not None else self.id

    def exists(self, now: float) -> bool:
        return self.created <= now and not self.deleted(now)

    def deleted(self, now: float) -> bool:
        return self.delete_at is not None and self.delete_at <= now

    def best_reply_id(self, now: float) -> int | None:
        if self.best_reply is None or self.best_reply[0] > now or not self.best_reply[1].exists(now):
            return None
        return self.best_reply[1].id

    def body(self, users: dict[int, dict[str, Any]]) -> dict[str, str]:
        tokens = " ".join(f"[[user:{u}]]" for u in self.notified)
        names = " ".join(f"@{users[u]['name']}" for u in self.notified if u in users)
        return {"parsed": f"{tokens} {self.text}".strip(), "plain": f"{names} {self.text}".strip(),
                "rich": f"{names} {self.text}".strip()}

    def render(self, now: float, users: dict[int, dict[str, Any]]) -> dict[str, Any]:
        """The message as the REST API shows it at `now` (the pnp-cli / camel fixture shape)."""
        likers = [u for at, u in self.likes if at <= now]
        out: dict[str, Any] = {
            "id": self.id, "sender_id": self.sender, "delegate_id": None,
            "replied_to_id": self.replied_to.id if self.replied_to is not None else None,
            "created_at": yammer_time(self.created), "network_id": NETWORK_ID,
            "message_type": self.message_type, "sender_type": "user",
            "url": f"https://www.yammer.com/api/v1/messages/{self.id}",
            "web_url": f"https://www.yammer.com/demo-corp.example/messages/{self.id}",
            "group_id": self.group_id, "body": self.body(users), "thread_id": self.thread_id,
            "client_type": "Web", "client_url": "https://www.yammer.com/",
            "system_message": self.message_type == "system", "direct_message": self.private,
            "chat_client_sequence": None, "language": None, "notified_user_ids": list(self.notified),
            "privacy": "private" if self.private else "public", "attachments": [],
            "liked_by": {"count": len(likers), "names": [
                {"user_id": u, "full_name": users[u]["full_name"], "permalink": users[u]["name"]}
                for u in likers if u in users]},
            "supplemental_reply": False, "content_excerpt": self.text[:40],
        }
        if self.group_id is not None:
            out["group_created_id"] = self.group_id
        return out


@dataclass
class Network:
    users: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    messages: list[YMessage]  # sorted by id (= by time)
    by_id: dict[int, YMessage]
    start: dt.date
    end: dt.date

    @property
    def users_by_id(self) -> dict[int, dict[str, Any]]:
        return {u["id"]: u for u in self.users}


def build_network(org: DemoOrg, *, delete_rate: float = 0.03, seed: int = 13) -> Network:
    rng = np.random.default_rng(seed)
    people = org.people
    email_to_uid = {e: user_id(i) for i, e in enumerate(people["email"])}
    users = []
    for i, p in enumerate(people.itertuples(index=False)):
        users.append({"type": "user", "id": user_id(i), "network_id": NETWORK_ID, "state": "active",
                      "job_title": p.level, "department": p.department, "location": p.location,
                      "full_name": f"Person {i}", "name": f"person{i}", "email": p.email,
                      "activated_at": "2024/01/01 09:00:00 +0000", "admin": "false",
                      "url": f"https://www.yammer.com/api/v1/users/{user_id(i)}",
                      "_terminated": p.termination_date.isoformat() if p.termination_date is not None else None})
    groups: list[dict[str, Any]] = []
    group_of: dict[str, int | None] = {}
    for j, c in enumerate(org.containers.itertuples(index=False)):
        if c.container_id == "C-general":
            group_of[c.container_id] = None  # the All Company feed
            continue
        gid = 31_158_067_201 + j * 1009
        group_of[c.container_id] = gid
        groups.append({"type": "group", "id": gid, "full_name": c.container_id.removeprefix("C-"),
                       "name": c.container_id.removeprefix("C-").replace("-", ""), "description": "",
                       "privacy": "private" if c.visibility == "private" else "public", "state": "active",
                       "created_at": yammer_time(c.created_at.timestamp()),
                       "stats": {"members": int(c.member_count or 0), "updates": 0}})
    msgs: list[YMessage] = []
    by_event: dict[str, YMessage] = {}
    uids = [u["id"] for u in users]
    seq = 0
    for day, events in simulate(org):
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        joiner = uids[int(rng.integers(len(uids)))]
        system = YMessage(day_start + 3600, joiner, "has #joined the network.", message_type="system")
        system.thread = system
        msgs.append(system)
        for ev in events.itertuples(index=False):
            seq += 1
            sec = float(ev.occurred_at.timestamp())
            actor = email_to_uid[ev.actor_email]
            target = email_to_uid.get(ev.target_email) if isinstance(ev.target_email, str) else None
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 20
            if ev.verb in ("post", "mention"):
                if ev.verb == "mention" and target is None:
                    continue
                question = ev.verb == "post" and bool(ev.is_question)
                m = YMessage(sec, actor, _text(length, question, seq) if ev.verb == "post" else "about the plan",
                             message_type="question" if question else "update",
                             group_id=group_of.get(ev.container_id),
                             notified=[target] if ev.verb == "mention" and target is not None else [])
                m.thread = m
                first = m.text.rstrip("?.").split(" ", 1)[0]
                m.topics = [tid for word, (tid, _) in TOPICS.items() if word == first]
                msgs.append(m)
                by_event[ev.event_id] = m
                continue
            parent = by_event.get(ev.parent_id)
            if parent is None:
                continue
            if ev.verb == "reaction":
                parent.likes.append((sec, actor))
            elif ev.verb == "answer_accepted":
                starter = parent.thread or parent
                if parent.replied_to is not None and starter.best_reply is None:
                    starter.best_reply = (sec, parent)
            else:  # reply, share
                starter = parent.thread or parent
                m = YMessage(max(sec, parent.created + 1), actor, _text(length, False, seq),
                             group_id=parent.group_id, private=parent.private, replied_to=parent)
                m.thread = starter
                parent.replies += 1
                starter.replies += 1
                msgs.append(m)
                by_event[ev.event_id] = m
    # deletions: a few starters that nobody answered or liked (deleting a thread with replies would
    # also delete the replies, which the demo does not model)
    for m in msgs:
        if (m.message_type != "system" and m.replied_to is None and not m.replies and not m.likes
                and rng.random() < delete_rate):
            m.delete_at = m.created + float(rng.uniform(60, 12 * 3600))
    msgs.sort(key=lambda m: m.created)
    for i, m in enumerate(msgs):
        m.id = 2_000_000_000_000_000 + (i + 1) * 4096
    return Network(users=users, groups=groups, messages=msgs, by_id={m.id: m for m in msgs},
                   start=org.start, end=org.end)


# ------------------------------------------------------------------------------------------ export
MESSAGES_HEADER = ("id", "replied_to_id", "thread_id", "conversation_id", "group_id", "group_name", "participants",
                   "in_private_group", "in_private_conversation", "sender_id", "sender_type", "sender_name",
                   "sender_email", "body", "api_url", "attachments", "deleted_by_id", "deleted_by_type",
                   "created_at", "deleted_at", "message_type", "best_reply_id")
USERS_HEADER = ("id", "name", "email", "job_title", "location", "department", "api_url", "joined_at",
                "deleted_at", "suspended_at", "state", "guid")
GROUPS_HEADER = ("id", "name", "description", "private", "deleted", "created_at")


def _csv(header: tuple[str, ...], rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in r] for r in rows)
    return (BOM + buf.getvalue()).encode("utf-8")


def export_zip(net: Network, since: float, until: float, now: float) -> bytes:
    """The Data Export zip of messages created in [since, until) as known at `now` (deleted ones kept
    with `deleted_at`; starters whose best answer was chosen in the window again, as their new version),
    and the current users and groups. UTF-8 with BOM, CRLF, as exported."""
    users = net.users_by_id
    groups = {g["id"]: g for g in net.groups}
    rows = []
    for m in net.messages:
        # a starter whose best answer was chosen in the window is exported again, as a new version
        chosen = m.best_reply is not None and since <= m.best_reply[0] < until and m.best_reply[0] <= now
        if not (since <= m.created < until or chosen) or m.created > now:
            continue
        g = groups.get(m.group_id) if m.group_id is not None else None
        s = users.get(m.sender, {})
        deleted = m.deleted(now)
        rows.append([m.id, m.replied_to.id if m.replied_to else None, m.thread_id, m.thread_id, m.group_id,
                     g["full_name"] if g else None, "", "true" if g and g["privacy"] == "private" else "false",
                     "true" if m.private else "false", m.sender, "user", s.get("full_name"), s.get("email"),
                     m.body(users)["parsed"], f"https://www.yammer.com/api/v1/messages/{m.id}", "",
                     m.sender if deleted else None, "user" if deleted else None, export_time(m.created),
                     export_time(m.delete_at) if deleted and m.delete_at is not None else None,
                     m.message_type, m.best_reply_id(now) if m.replied_to is None else None])
    user_rows = [[u["id"], u["full_name"], u["email"], u["job_title"], u["location"], u["department"], u["url"],
                  "2024-01-01T09:00:00Z", None, None, u["state"], None] for u in net.users]
    group_rows = [[g["id"], g["full_name"], g["description"], "true" if g["privacy"] == "private" else "false",
                   "false", g["created_at"]] for g in net.groups]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("Messages.csv", _csv(MESSAGES_HEADER, rows))
        z.writestr("Users.csv", _csv(USERS_HEADER, user_rows))
        z.writestr("Groups.csv", _csv(GROUPS_HEADER, group_rows))
    return out.getvalue()
