"""The content of the emulated Slack workspace: the demo organisation as Slack users, channels, messages.

Built once from `pipelines.sources.demo_org.build_org/simulate`; what the API shows depends on a clock
(epoch seconds): a message, reply, reaction, edit or deletion exists only once its time has come, so a
test advances the clock between runs and late thread replies, edits and deletions appear exactly as they
would in a live workspace. Mapping of the demo verbs: post -> message; reply -> thread reply; share ->
`thread_broadcast` reply; reaction -> emoji on the parent; mention -> message with `<@U..>` (in text
and rich-text blocks, sometimes only in blocks); answer_accepted -> `white_check_mark` reaction on the
answer. Added: bot messages, `channel_join` system messages, edits and deletions (tombstones when the
message has replies). Clear identities exist here only because this is synthetic demo data.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.sources.demo_org import DemoOrg, simulate

EMOJI = ("thumbsup", "tada", "eyes", "heart", "raised_hands", "100", "pray")
WORDS = ("the", "deploy", "report", "team", "budget", "plan", "review", "customer", "ticket", "idea", "launch")
BOT_USER = "UBOT0EMUL"


def _text(length: int, question: bool, salt: int) -> str:
    words = []
    total = 0
    i = salt
    while total < max(length - 1, 1):
        w = WORDS[i % len(WORDS)]
        words.append(w)
        total += len(w) + 1
        i += 7
    body = " ".join(words)[: max(length - 1, 1)]
    return body + ("?" if question else ".")


def micros(ts: str) -> int:
    sec, _, frac = ts.partition(".")
    return int(sec) * 1_000_000 + int(frac)


@dataclass
class Message:
    channel: str
    ts: str
    user: str | None
    text: str
    subtype: str | None = None
    bot_id: str | None = None
    thread_ts: str | None = None  # set on replies (and on parents once they have replies)
    parent_user: str | None = None
    mention_blocks: list[str] = field(default_factory=list)
    edit_at: float | None = None
    edit_text: str | None = None
    delete_at: float | None = None
    reactions: list[tuple[float, str, str]] = field(default_factory=list)  # (at, name, user)
    replies: list[Message] = field(default_factory=list)

    @property
    def at(self) -> float:
        return micros(self.ts) / 1e6

    def visible(self, now: float) -> bool:
        return self.at <= now

    def deleted(self, now: float) -> bool:
        return self.delete_at is not None and self.delete_at <= now

    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def visible_replies(self, now: float) -> list[Message]:
        return [r for r in self.replies if r.visible(now) and not r.deleted(now)]

    def render(self, now: float) -> dict[str, Any] | None:
        """The message as Slack's API shows it at `now`, or None when it does not exist (yet, or any more)."""
        if not self.visible(now):
            return None
        replies = self.visible_replies(now) if not self.is_reply() else []
        if self.deleted(now):
            if not replies:
                return None
            out: dict[str, Any] = {"type": "message", "subtype": "tombstone", "hidden": True, "user": "USLACKBOT",
                                   "text": "This message was deleted.", "ts": self.ts, "thread_ts": self.ts}
        else:
            out = {"type": "message", "text": self.text, "ts": self.ts}
            if self.user:
                out["user"] = self.user
            if self.subtype:
                out["subtype"] = self.subtype
            if self.bot_id:
                out["bot_id"] = self.bot_id
                out["username"] = "deploy-bot"
            if self.edit_at is not None and self.edit_at <= now:
                out["text"] = self.edit_text or self.text
                out["edited"] = {"user": self.user, "ts": f"{int(self.edit_at)}.000000"}
            if self.mention_blocks:
                out["blocks"] = [{"type": "rich_text", "block_id": "b1", "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "user", "user_id": u} for u in
                                                                self.mention_blocks]}]}]
            grouped: dict[str, list[str]] = {}
            for at, name, user in self.reactions:
                if at <= now and user not in grouped.setdefault(name, []):
                    grouped[name].append(user)
            if grouped:
                out["reactions"] = [{"name": n, "users": us, "count": len(us)} for n, us in grouped.items() if us]
        if self.is_reply():
            out["thread_ts"] = self.thread_ts
            out["parent_user_id"] = self.parent_user
        elif replies:
            out["thread_ts"] = self.ts
            out["reply_count"] = len(replies)
            out["latest_reply"] = replies[-1].ts
            users = sorted({r.user for r in replies if r.user})
            out["reply_users"] = users[:5]
            out["reply_users_count"] = len(users)
        return out


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool
    created: int
    members: list[str]
    bot_is_member: bool
    messages: list[Message] = field(default_factory=list)  # top-level and broadcasts, sorted by ts
    keys: list[int] = field(default_factory=list)  # micros of `messages`, for bisect

    def add(self, m: Message) -> None:
        k = micros(m.ts)
        i = bisect.bisect_right(self.keys, k)
        self.keys.insert(i, k)
        self.messages.insert(i, m)


@dataclass
class Workspace:
    users: list[dict[str, Any]]
    channels: dict[str, Channel]
    by_ts: dict[tuple[str, str], Message]
    start: dt.date
    end: dt.date


def user_id(i: int) -> str:
    # every tenth person has an Enterprise Grid id (W...), as in the OpenAPI examples
    return f"{'W' if i % 10 == 3 else 'U'}{0x1A0000 + i * 37:X}"


def channel_id(container_id: str) -> str:
    return "C" + hashlib.sha1(container_id.encode()).hexdigest()[:9].upper()


def build_workspace(org: DemoOrg, *, edit_rate: float = 0.05, delete_rate: float = 0.02, seed: int = 11) -> Workspace:
    rng = np.random.default_rng(seed)
    people = org.people
    email_to_uid = {e: user_id(i) for i, e in enumerate(people["email"])}
    users = []
    for i, row in enumerate(people.itertuples(index=False)):
        term = row.termination_date
        users.append({"id": user_id(i), "team_id": "T0EMULATE", "name": f"user{i}", "deleted": False,
                      "is_bot": False, "is_app_user": False, "updated": 1700000000,
                      "profile": {"email": row.email, "real_name": f"Person {i}", "display_name": f"user{i}"},
                      "_terminated": term.isoformat() if term is not None else None})
    users.append({"id": BOT_USER, "team_id": "T0EMULATE", "name": "esn-bot", "deleted": False, "is_bot": True,
                  "is_app_user": False, "updated": 1700000000, "profile": {"real_name": "esn bot"},
                  "bot_id": "B0EMULATE", "_terminated": None})
    dept_uids: dict[str, list[str]] = {}
    for i, d in enumerate(people["department"]):
        dept_uids.setdefault(d, []).append(user_id(i))
    all_uids = [user_id(i) for i in range(len(people))]
    channels: dict[str, Channel] = {}
    by_container: dict[str, Channel] = {}
    for j, c in enumerate(org.containers.itertuples(index=False)):
        dept = c.owner_department
        members = dept_uids.get(dept, []) if isinstance(dept, str) else all_uids
        private = c.visibility == "private"
        ch = Channel(id=channel_id(c.container_id), name=c.container_id.removeprefix("C-"), is_private=private,
                     created=int(c.created_at.timestamp()), members=list(members),
                     bot_is_member=private or j % 2 == 0)
        channels[ch.id] = ch
        by_container[c.container_id] = ch
    by_event: dict[str, Message] = {}
    by_ts: dict[tuple[str, str], Message] = {}
    seq = 0

    def new_ts(sec: int) -> str:
        nonlocal seq
        seq += 1
        return f"{sec}.{seq % 1_000_000:06d}"

    def add_top(ch: Channel, m: Message) -> None:
        ch.add(m)
        by_ts[(ch.id, m.ts)] = m

    general = by_container.get("C-general") or next(iter(channels.values()))
    for day, events in simulate(org):
        day_start = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())
        # system and bot noise that must not count as people activity
        jc = list(channels.values())[int(rng.integers(len(channels)))]
        if jc.members:
            joiner = jc.members[int(rng.integers(len(jc.members)))]
            add_top(jc, Message(jc.id, new_ts(day_start + 3600), joiner, f"<@{joiner}> has joined the channel",
                                subtype="channel_join"))
        bot = Message(general.id, new_ts(day_start + 7200), None, "Nightly build passed", subtype="bot_message",
                      bot_id="B0DEPLOY")
        if all_uids and rng.random() < 0.5:
            bot.reactions.append((bot.at + 60, "tada", all_uids[int(rng.integers(len(all_uids)))]))
        add_top(general, bot)
        for ev in events.itertuples(index=False):
            sec = int(ev.occurred_at.timestamp())
            actor = email_to_uid[ev.actor_email]
            target = email_to_uid.get(ev.target_email) if isinstance(ev.target_email, str) else None
            verb = ev.verb
            length = int(ev.content_length) if ev.content_length == ev.content_length and ev.content_length else 20
            if verb == "post":
                ch = by_container[ev.container_id]
                m = Message(ch.id, new_ts(sec), actor, _text(length, bool(ev.is_question), seq))
                r = rng.random()
                if r < edit_rate:
                    m.edit_at = m.at + float(rng.uniform(60, 6 * 3600))
                    m.edit_text = m.text + " (edited)"
                elif r < edit_rate + delete_rate:
                    m.delete_at = m.at + float(rng.uniform(60, 12 * 3600))
                add_top(ch, m)
                by_event[ev.event_id] = m
            elif verb == "mention":
                ch = by_container[ev.container_id]
                if target is None:
                    continue
                only_blocks = seq % 3 == 0
                text = f"ping {'@someone' if only_blocks else f'<@{target}>'} about the plan"
                m = Message(ch.id, new_ts(sec), actor, text, mention_blocks=[target])
                add_top(ch, m)
                by_event[ev.event_id] = m
            elif verb in ("reply", "share", "reaction", "answer_accepted"):
                parent = by_event.get(ev.parent_id)
                if parent is None or (parent.delete_at is not None and parent.delete_at <= sec):
                    continue
                if verb == "reaction":
                    parent.reactions.append((float(sec), EMOJI[zlib.crc32(ev.event_id.encode()) % len(EMOJI)], actor))
                    continue
                if verb == "answer_accepted":
                    parent.reactions.append((float(sec), "white_check_mark", actor))
                    continue
                root = by_ts[(parent.channel, parent.thread_ts)] if parent.is_reply() and parent.thread_ts else parent
                if sec <= root.at:
                    sec = int(root.at) + 1
                m = Message(root.channel, new_ts(sec), actor, _text(length, False, seq), thread_ts=root.ts,
                            parent_user=root.user, subtype="thread_broadcast" if verb == "share" else None)
                root.thread_ts = root.ts
                root.replies.append(m)
                root.replies.sort(key=lambda x: micros(x.ts))
                by_ts[(root.channel, m.ts)] = m
                by_event[ev.event_id] = m
                if verb == "share":
                    channels[root.channel].add(m)
    return Workspace(users=users, channels=channels, by_ts=by_ts, start=org.start, end=org.end)
