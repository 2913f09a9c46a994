"""The content of the emulated Microsoft 365 tenant: the demo organisation as Entra users, Teams and chats.

Built once from `pipelines.sources.demo_org.build_org/simulate`. Mapping: each department is a team with
a private channel (`C-<dept>-team`) and a standard one (`C-<dept>-projects`); its `C-<dept>-social`
container is a group chat of its members; the organisation-wide containers are standard channels of a
"Company" team. Demo verbs: post -> root message (or chat message); reply and share -> channel reply
(`replyToId`) or, in chats, a new message quoting the parent with a `messageReference` attachment;
reaction -> `reactions[]` with its time; mention -> message with `<at id>` + `mentions[]`;
answer_accepted -> a `like` on the answer. Added: bot posts (`from.application`), system events
(`systemEventMessage`, `from: null`), edits (`lastEditedDateTime`) and soft deletions (`deletedDateTime`,
body and author removed) of posts and replies. What the API shows depends on a clock (epoch seconds): a
message, reply, reaction, edit or deletion exists only once its time has come, and `lastModifiedDateTime`
moves with edits, deletions and reactions (not with replies, which Graph tracks on the reply).
Clear identities exist here only because this is synthetic demo data.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.sources.demo_org import DemoOrg, simulate

TENANT = "2432b57b-0abd-43db-aa7b-16eadd115d34"
REACTIONS = ("like", "heart", "laugh", "surprised", "sad", "angry")
WORDS = ("the", "deploy", "report", "team", "budget", "plan", "review", "customer", "ticket", "idea", "launch")
BOT_APP = "358f0194-6b0e-4dd3-af35-c24fe8a9ec87"


def guid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"esn-emulator:{name}"))


def iso(epoch_s: float) -> str:
    t = dt.datetime.fromtimestamp(epoch_s, tz=dt.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _text(length: int, question: bool, salt: int) -> str:
    words: list[str] = []
    total, i = 0, salt
    while total < max(length - 1, 1):
        w = WORDS[i % len(WORDS)]
        words.append(w)
        total += len(w) + 1
        i += 7
    return " ".join(words)[: max(length - 1, 1)] + ("?" if question else ".")


@dataclass
class User:
    id: str
    upn: str
    mail: str
    name: str
    department: str
    terminated: str | None


@dataclass
class Message:
    container: str  # channel id or chat id
    id: str  # epoch-ms string, unique inside its container
    created: float
    user: str | None  # Entra id of the author; None for bots and system events
    text: str
    app: bool = False
    system: str | None = None  # eventDetail @odata.type
    reply_to: str | None = None  # root id (channel replies)
    ref: Message | None = None  # quoted message (chat replies)
    mentions: list[str] = field(default_factory=list)
    reactions: list[tuple[float, str, str]] = field(default_factory=list)  # (at, type, user id)
    edit_at: float | None = None
    delete_at: float | None = None
    replies: list[Message] = field(default_factory=list)

    def exists(self, now: float) -> bool:
        return self.created <= now

    def deleted(self, now: float) -> bool:
        return self.delete_at is not None and self.delete_at <= now

    def last_modified(self, now: float) -> float:
        times = [self.created] + [t for t in (self.edit_at, self.delete_at) if t is not None and t <= now]
        times += [at for at, _, _ in self.reactions if at <= now]
        return max(times)


@dataclass
class Channel:
    id: str
    team: str
    name: str
    private: bool
    created: float
    roots: list[Message] = field(default_factory=list)


@dataclass
class Chat:
    id: str
    created: float
    members: list[str]
    messages: list[Message] = field(default_factory=list)


@dataclass
class Tenant:
    users: list[User]
    teams: list[dict[str, Any]]
    channels: dict[str, Channel]
    chats: dict[str, Chat]
    names: dict[str, str]  # user id -> display name
    start: dt.date
    end: dt.date

    def render(self, m: Message, now: float, *, prefer: bool, team: str | None = None,
               chat: str | None = None) -> dict[str, Any]:
        """The chatMessage as Graph shows it at `now` (the message must exist)."""
        deleted = m.deleted(now)
        edited = m.edit_at is not None and m.edit_at <= now and not deleted
        out: dict[str, Any] = {
            "id": m.id, "replyToId": m.reply_to, "etag": str(int(m.last_modified(now) * 1000)),
            "messageType": ("systemEventMessage" if prefer else "unknownFutureValue") if m.system else "message",
            "createdDateTime": iso(m.created), "lastModifiedDateTime": iso(m.last_modified(now)),
            "lastEditedDateTime": iso(m.edit_at) if edited and m.edit_at is not None else None,
            "deletedDateTime": iso(m.delete_at) if deleted and m.delete_at is not None else None,
            "subject": None, "summary": None, "chatId": chat, "importance": "normal", "locale": "en-us",
            "webUrl": None, "policyViolation": None, "eventDetail": None,
            "channelIdentity": {"teamId": team, "channelId": m.container} if team else None,
            "attachments": [], "mentions": [], "reactions": [],
        }
        if deleted:
            out["from"] = None
            out["body"] = {"contentType": "text", "content": None}
            return out
        if m.system:
            out["from"] = None
            out["body"] = {"contentType": "html", "content": "<systemEventMessage/>"}
            out["eventDetail"] = {"@odata.type": m.system, "members": [], "initiator": {
                "application": None, "device": None, "user": {"id": m.mentions[0] if m.mentions else None,
                                                               "displayName": None, "userIdentityType": "aadUser"}}}
            return out
        if m.app:
            out["from"] = {"application": {"id": BOT_APP, "displayName": "Flow", "applicationIdentityType": "bot"},
                           "device": None, "user": None}
        else:
            out["from"] = {"application": None, "device": None, "user": {
                "@odata.type": "#microsoft.graph.teamworkUserIdentity", "id": m.user,
                "displayName": self.names.get(m.user or ""), "userIdentityType": "aadUser", "tenantId": TENANT}}
        text = m.text + (" (edited)" if edited else "")
        at = "".join(f'<at id="{i}">{self.names.get(u, "")}</at>&nbsp;' for i, u in enumerate(m.mentions))
        out["body"] = {"contentType": "html", "content": f"<div><p>{at}{text}</p></div>"}
        out["mentions"] = [{"id": i, "mentionText": self.names.get(u, ""), "mentioned": {
            "application": None, "device": None, "conversation": None, "tag": None,
            "user": {"id": u, "displayName": self.names.get(u, ""), "userIdentityType": "aadUser"}}}
            for i, u in enumerate(m.mentions)]
        out["reactions"] = [{"reactionType": rtype, "createdDateTime": iso(at_), "user": {
            "application": None, "device": None, "user": {"id": uid, "displayName": None,
                                                          "userIdentityType": "aadUser"}}}
            for at_, rtype, uid in m.reactions if at_ <= now]
        if m.ref is not None:
            content = {"messageId": m.ref.id, "messagePreview": m.ref.text[:40], "messageSender": {
                "application": None, "device": None,
                "user": {"userIdentityType": "aadUser", "id": m.ref.user, "displayName": self.names.get(m.ref.user or "")}}}
            out["attachments"] = [{"id": m.ref.id, "contentType": "messageReference", "contentUrl": None,
                                   "content": json.dumps(content), "name": None, "thumbnailUrl": None}]
        return out


def build_tenant(org: DemoOrg, *, edit_rate: float = 0.05, delete_rate: float = 0.02, seed: int = 13) -> Tenant:
    rng = np.random.default_rng(seed)
    people = org.people
    users: list[User] = []
    email_to_uid: dict[str, str] = {}
    for i, row in enumerate(people.itertuples(index=False)):
        uid = guid(row.email)
        # every seventh person signs in with a tenant UPN that is not their mail: `mail` must win
        upn = row.email if i % 7 else row.email.replace("@demo-corp.example", "@democorp.onmicrosoft.example")
        term = row.termination_date
        users.append(User(uid, upn, row.email, f"Person {i}", row.department,
                          term.isoformat() if term is not None else None))
        email_to_uid[row.email] = uid
    names = {u.id: u.name for u in users}
    dept_uids: dict[str, list[str]] = {}
    for u in users:
        dept_uids.setdefault(u.department, []).append(u.id)

    teams: list[dict[str, Any]] = []
    channels: dict[str, Channel] = {}
    chats: dict[str, Chat] = {}
    where: dict[str, Channel | Chat] = {}  # demo container id -> channel or chat
    for c in org.containers.itertuples(index=False):
        created = c.created_at.timestamp()
        dept = c.owner_department if isinstance(c.owner_department, str) else "Company"
        tid = guid(f"team:{dept}")
        if not any(t["id"] == tid for t in teams):
            teams.append({"id": tid, "displayName": dept, "description": None,
                          "visibility": "public" if dept == "Company" else "private"})
        if c.container_id.endswith("-social"):
            chat = Chat(id=f"19:{uuid.uuid5(uuid.NAMESPACE_URL, c.container_id).hex}@thread.v2", created=created,
                        members=list(dept_uids.get(dept, [])))
            chats[chat.id] = chat
            where[c.container_id] = chat
            continue
        ch = Channel(id=f"19:{uuid.uuid5(uuid.NAMESPACE_DNS, c.container_id).hex}@thread.tacv2", team=tid,
                     name=c.container_id.removeprefix("C-"), private=c.visibility == "private", created=created)
        channels[ch.id] = ch
        where[c.container_id] = ch
    teams.sort(key=lambda t: t["id"])

    used: dict[str, set[str]] = {}

    def new_id(container: str, at: float) -> str:
        ids = used.setdefault(container, set())
        ms = int(at * 1000)
        while str(ms) in ids:
            ms += 1
        ids.add(str(ms))
        return str(ms)

    def maybe_edit_or_delete(m: Message) -> None:
        r = rng.random()
        if r < edit_rate:
            m.edit_at = m.created + float(rng.uniform(60, 6 * 3600))
        elif r < edit_rate + delete_rate:
            m.delete_at = m.created + float(rng.uniform(60, 12 * 3600))

    by_event: dict[str, Message] = {}
    company = [ch for ch in channels.values() if ch.team == guid("team:Company")]
    general = next((ch for ch in company if ch.name == "general"), company[0])
    all_uids = [u.id for u in users]
    chan_list = list(channels.values())
    for day, events in simulate(org):
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
        # noise that is nobody's activity: a member-added event and a bot post (sometimes liked)
        sch = chan_list[int(rng.integers(len(chan_list)))]
        sysm = Message(sch.id, new_id(sch.id, day_start + 3600), day_start + 3600, None, "",
                       system="#microsoft.graph.membersAddedEventMessageDetail",
                       mentions=[all_uids[int(rng.integers(len(all_uids)))]])
        sysm.created = int(sysm.id) / 1000
        sch.roots.append(sysm)
        bot = Message(general.id, new_id(general.id, day_start + 7200), 0.0, None, "Nightly build passed", app=True)
        bot.created = int(bot.id) / 1000
        if rng.random() < 0.5:
            bot.reactions.append((bot.created + 60, "like", all_uids[int(rng.integers(len(all_uids)))]))
        general.roots.append(bot)
        for ev in events.itertuples(index=False):
            sec = float(ev.occurred_at.timestamp())
            actor = email_to_uid[ev.actor_email]
            target = email_to_uid.get(ev.target_email) if isinstance(ev.target_email, str) else None
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 20
            verb = ev.verb
            if verb in ("post", "mention"):
                if verb == "mention" and target is None:
                    continue
                box = where[ev.container_id]
                text = _text(length, bool(ev.is_question), len(by_event)) if verb == "post" else "about the plan"
                m = Message(box.id, new_id(box.id, sec), 0.0, actor, text,
                            mentions=[target] if verb == "mention" and target else [])
                m.created = int(m.id) / 1000
                maybe_edit_or_delete(m)
                (box.roots if isinstance(box, Channel) else box.messages).append(m)
                by_event[ev.event_id] = m
                continue
            parent = by_event.get(ev.parent_id)
            if parent is None or (parent.delete_at is not None and parent.delete_at <= sec):
                continue
            if verb in ("reaction", "answer_accepted"):
                rtype = "like" if verb == "answer_accepted" else REACTIONS[zlib.crc32(ev.event_id.encode()) % 5]
                parent.reactions.append((max(sec, parent.created + 1), rtype, actor))
                continue
            at = max(sec, parent.created + 1)
            if parent.container in channels:
                root = parent
                if parent.reply_to is not None:
                    root = next(r for r in channels[parent.container].roots if r.id == parent.reply_to)
                m = Message(root.container, new_id(root.container, max(at, root.created + 1)), 0.0, actor,
                            _text(length, False, len(by_event)), reply_to=root.id)
                m.created = int(m.id) / 1000
                maybe_edit_or_delete(m)
                root.replies.append(m)
            else:
                m = Message(parent.container, new_id(parent.container, at), 0.0, actor,
                            _text(length, False, len(by_event)), ref=parent)
                m.created = int(m.id) / 1000
                maybe_edit_or_delete(m)
                chats[parent.container].messages.append(m)
            by_event[ev.event_id] = m
    for ch in channels.values():
        ch.roots.sort(key=lambda m: (m.created, int(m.id)))
        for r in ch.roots:
            r.replies.sort(key=lambda m: (m.created, int(m.id)))
    for chat in chats.values():
        chat.messages.sort(key=lambda m: (m.created, int(m.id)))
    return Tenant(users=users, teams=teams, channels=channels, chats=chats, names=names, start=org.start,
                  end=org.end)
