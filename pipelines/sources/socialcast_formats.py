"""Socialcast API documents (JSON and the older Rails XML) read into plain records, for the archive
import (`pipelines.sources.socialcast_archive`). Pure: bytes in, records (or fixed-phrase problems) out.

What a file may be (the shapes of the API answers organisations kept after the 2019 retirement):
  - messages: `{"messages": [...]}` (`/api/messages`, `/api/streams/<id>/messages` with
    `messages_next_page`), `{"message": {...}}`, a bare message object (Discourse's exporter writes
    `output/messages/<id>.json`), a JSON array of messages, JSON lines of messages (ihuston/socialcasting
    writes `messages-NNNN.json`); XML `<messages type="array">` and `<message>`;
  - users: `{"users": [...]}`, `{"user": {...}}`, a bare user object, XML `<users>` and `<user>`;
  - groups: `{"groups": [...]}`, `{"group": {...}}`, XML `<groups>` / `<group>`;
  - streams: `{"streams": [...]}`, `{"stream": {...}}` (stream listings: recognised, nothing to import).
Anything else is a `BadDocument` naming why (the top-level keys or the root element, never a value).

XML is Rails' `to_xml`: element names with dashes (`created-at`, `message-type`, `custom-fields`) are
read as the JSON names with underscores, `type="array"` elements as lists, `nil="true"` as null,
`type="integer"` / `"boolean"` as numbers / booleans. A document with a DOCTYPE or an entity declaration
is refused (an API answer never has one; it is how entity-expansion attacks start), and nesting deeper
than `max_depth` is refused, as for JSON (`pipelines.sources.safe_archive`).

Times: ISO 8601 with an offset (`2011-04-26T02:17:14-07:00`, `+00:00`, `Z`; a naive one is UTC) or epoch
seconds (`last_interacted_at`, and any time field an archive wrote as a number), always returned in UTC.

Text is only measured: a record keeps the length of its text (the visible text of `html_body` when the
file has one, else `body` / `text`), the user ids of the HTML body's `data-user-id` attributes, and the
`@name` tokens of the text (lower-cased, to match `recipients[].mention_name` / `username`), and the
topic ids of the item (`pipelines.topics`, when the caller passes the configured rules): the taxonomy
matched on the prose (the visible text outside `<code>` / `<pre>`, links removed) and, for a message,
the names of its `tags[{name,url}]` (Socialcast's hashtags) as platform tags. No record holds the text
itself; the records do hold user ids, names-as-tokens and emails, in memory only: the
caller keys them before anything is written.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from pipelines.sources.safe_archive import DEFAULT_MAX_JSON_DEPTH, BadJson, loads_json
from pipelines.topics import TopicRules, as_column


class BadDocument(ValueError):
    """A whole file that is not a Socialcast API document; `reason` is a fixed phrase (the quarantine
    counts by it), `detail` may say more (keys, parser position), never a value of a record."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}{f' ({detail})' if detail else ''}")


class BadRecord(ValueError):
    """One record (a message, a comment, a like, a user) that cannot be read; `reason` a fixed phrase."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail or reason
        super().__init__(self.detail)


# ------------------------------------------------------------------------------------------ values
def parse_time(value: Any) -> dt.datetime | None:
    """A Socialcast time as an aware UTC datetime; None when missing or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch(float(value))
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"\d{1,11}(\.\d+)?", text):
        return _epoch(float(text))
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _epoch(seconds: float) -> dt.datetime | None:
    if not 0 <= seconds <= 253402300799:  # up to 9999-12-31
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def native_id(value: Any) -> str | None:
    """A Socialcast numeric id (int, or digits in a string or XML text) as a digit string, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value) if value >= 0 else None
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and value >= 0 else None
    text = str(value).strip()
    return text if text.isdigit() else None


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


_NOT_PROSE = frozenset({"code", "pre"})
_URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+", re.IGNORECASE)


class _Text(HTMLParser):
    """Visible text and `data-user-id` values of an HTML body (the text is measured, never kept), and
    its prose (outside `<code>` / `<pre>`), only for the topics of the item."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.length = 0
        self.parts: list[str] = []
        self.prose: list[str] = []
        self.user_ids: set[str] = set()
        self._code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _NOT_PROSE:
            self._code += 1
        for name, value in attrs:
            if name == "data-user-id" and value is not None and value.strip().isdigit():
                self.user_ids.add(value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in _NOT_PROSE and self._code:
            self._code -= 1

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if not self._code:
            self.prose.append(data)


def html_features(html: str) -> tuple[int, set[str]]:
    """(length of the visible text, stripped; user ids of `data-user-id` attributes) of an HTML body."""
    length, ids, _ = _html(html)
    return length, ids


def _html(html: str) -> tuple[int, set[str], str]:
    p = _Text()
    p.feed(html)
    p.close()
    return len("".join(p.parts).strip()), p.user_ids, " ".join(p.prose)


def prose(text: str) -> str:
    """The prose of a plain text body: links removed (what the topics are matched on)."""
    return _URL.sub(" ", text or "")


def tag_names(value: Any) -> list[str]:
    """The names of a message's `tags[{name,url}]` (JSON or Rails XML; a bare string is a name too);
    anything else is ignored: a tag is a topic, not a reason to set a message aside."""
    if isinstance(value, dict):  # Rails XML writes one `<tag>` of an untyped `<tags>` as a mapping
        value = list(value.values()) if "name" not in value else [value]
    if not isinstance(value, list):
        return []
    out = []
    for t in value:
        name = t.get("name") if isinstance(t, dict) else t
        if isinstance(name, str) and name.strip():
            out.append(name)
    return out


#: `@name` tokens of a text: `@MikeWhittington,` gives `mikewhittington`; an email's `@` is not one
MENTION_TOKEN = re.compile(r"(?<![\w@])@([\w.\-]*\w)")


def mention_tokens(text: str) -> set[str]:
    return {t.lower() for t in MENTION_TOKEN.findall(text)}


# ------------------------------------------------------------------------------------------ records
@dataclass
class Like:
    user_id: str
    created_at: dt.datetime | None


@dataclass
class Item:
    """What a message and a comment share: author, time, text features, likes."""

    id: str
    author: str
    created_at: dt.datetime
    updated_at: dt.datetime | None
    text_length: int
    html_user_ids: set[str]
    tokens: set[str]
    likes: list[Like]
    #: the item's topic ids (`pipelines.topics.as_column`), None without rules or topics; never text
    topic_ids: str | None


@dataclass
class Comment(Item):
    pass


@dataclass
class Group:
    id: str
    private: bool
    member_count: int | None = None
    created_at: dt.datetime | None = None


@dataclass
class Recipient:
    user_id: str
    mention_name: str | None  # lower-cased `mention_name`, else `username`


@dataclass
class Message(Item):
    message_type: str
    group: Group | None
    recipients: list[Recipient]
    comments: list[Comment]
    comments_count: int | None
    shared: tuple[str, str | None] | None  # (shared message id, its author) of a share
    #: (comment position, reason, detail) of comments and likes set aside while reading
    problems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class User:
    id: str
    email: str | None
    department: str | None
    deactivated: bool
    account_type: str  # member | external


@dataclass
class Document:
    kind: str  # messages | users | groups | streams
    items: list[tuple[int, Any]]  # (position in the file, raw value)
    unit: str = "message"  # what a position counts: message, user, group, line


# ------------------------------------------------------------------------------------------ documents
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_MESSAGE_KEYS = {"message_type", "comments", "body", "html_body", "likes", "recipients", "action"}
_USER_KEYS = {"contact_info", "custom_fields", "username"}
_XML_KINDS = {"messages": "messages", "message": "messages", "users": "users", "user": "users",
              "groups": "groups", "group": "groups", "streams": "streams", "stream": "streams"}


def read_document(raw: bytes | bytearray, max_depth: int = DEFAULT_MAX_JSON_DEPTH) -> Document:
    """The records of one file, by its content (not its name): XML when it starts with `<`, else JSON
    (one document, or JSON lines). Raises `BadDocument`."""
    head = bytes(raw[:64]).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return _xml_document(raw, max_depth)
    try:
        value = loads_json(raw, max_depth)
    except BadJson as exc:
        if exc.reason == "not valid JSON" and exc.detail.startswith("Extra data"):
            return _json_lines(raw, max_depth)
        raise BadDocument(exc.reason, exc.detail) from None
    return _json_document(value)


def _kind_of(obj: dict[str, Any]) -> str | None:
    keys = set(obj)
    if "id" in keys and keys & _MESSAGE_KEYS:
        return "messages"
    if "id" in keys and keys & _USER_KEYS:
        return "users"
    return None


def _json_document(value: Any) -> Document:
    if isinstance(value, list):
        first = next((v for v in value if isinstance(v, dict)), None)
        kind = _kind_of(first) if first is not None else "messages" if not value else None
        if kind is None:
            raise BadDocument("not a Socialcast API document", "a JSON array of neither messages nor users")
        return Document(kind, list(enumerate(value)), "message" if kind == "messages" else "user")
    if not isinstance(value, dict):
        raise BadDocument("not a Socialcast API document", f"a JSON {type(value).__name__}, not an object")
    for key, kind in (("messages", "messages"), ("users", "users"), ("groups", "groups"),
                      ("streams", "streams")):
        if key in value:
            entries = value[key]
            if not isinstance(entries, list):
                raise BadDocument(f"{key} is not a list")
            return Document(kind, list(enumerate(entries)), kind.removesuffix("s"))
    kind = _kind_of(value)
    if kind is not None:  # a bare message or user object (one file per record)
        return Document(kind, [(0, value)], kind.removesuffix("s"))
    for key, kind in (("message", "messages"), ("user", "users"), ("group", "groups"), ("stream", "streams")):
        if isinstance(value.get(key), dict) and "id" not in value:
            return Document(kind, [(0, value[key])], kind.removesuffix("s"))
    raise BadDocument("not a Socialcast API document", f"top-level keys {sorted(value)[:12]}")


def _json_lines(raw: bytes | bytearray, max_depth: int) -> Document:
    """JSON lines of messages (or users): a line that is not JSON is one bad record, not a bad file."""
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadDocument("not UTF-8 text") from None
    items: list[tuple[int, Any]] = []
    kind = None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = loads_json(line, max_depth)
        except BadJson as exc:
            items.append((n, BadRecord(f"line is {exc.reason}", f"line {n}: {exc}")))
            continue
        if kind is None and isinstance(value, dict):
            kind = _kind_of(value)
        items.append((n, value))
    if kind is None:
        raise BadDocument("not a Socialcast API document", "JSON lines of neither messages nor users")
    return Document(kind, items, "line")


def _xml_document(raw: bytes | bytearray, max_depth: int) -> Document:
    if _DECLARATION.search(raw):
        raise BadDocument("XML with a DOCTYPE or entity declaration (refused: an API answer has none)")
    try:
        root = ET.fromstring(bytes(raw).lstrip())
    except ET.ParseError as exc:
        raise BadDocument("not well-formed XML", str(exc)) from None
    kind = _XML_KINDS.get(root.tag)
    if kind is None:
        raise BadDocument("not a Socialcast API document", f"root element <{root.tag}>")
    if root.tag == kind:  # a listing: every child is a record
        return Document(kind, [(i, _XmlRecord(child, max_depth)) for i, child in enumerate(root)],
                        kind.removesuffix("s"))
    return Document(kind, [(0, _XmlRecord(root, max_depth))], kind.removesuffix("s"))


@dataclass
class _XmlRecord:
    """An XML record converted when it is read (so that a record nested too deep is one bad record)."""

    element: ET.Element
    max_depth: int

    def value(self) -> Any:
        return xml_value(self.element, self.max_depth)


def xml_value(elem: ET.Element, max_depth: int = DEFAULT_MAX_JSON_DEPTH, depth: int = 1) -> Any:
    """The JSON value of a Rails `to_xml` element: dashes to underscores, typed scalars, arrays."""
    if depth > max_depth:
        raise BadRecord(f"nested deeper than max_json_depth={max_depth}")
    if elem.get("nil") == "true":
        return None
    kind = elem.get("type")
    if kind == "array":
        return [xml_value(child, max_depth, depth + 1) for child in elem]
    if len(elem):
        return {child.tag.replace("-", "_"): xml_value(child, max_depth, depth + 1) for child in elem}
    text = (elem.text or "").strip()
    if kind == "integer":
        return int(text) if re.fullmatch(r"-?\d+", text) else text
    if kind == "boolean":
        return text == "true"
    if kind in ("float", "decimal"):
        try:
            return float(text)
        except ValueError:
            return text
    return text


def record_value(raw: Any) -> Any:
    """The JSON value of one entry of a `Document` (XML converted now); raises `BadRecord`."""
    if isinstance(raw, BadRecord):
        raise raw
    return raw.value() if isinstance(raw, _XmlRecord) else raw


# ------------------------------------------------------------------------------------------ records
def _user_id(obj: Any) -> str | None:
    return native_id(obj.get("id")) if isinstance(obj, dict) else None


def embedded_email(obj: Any) -> str | None:
    """`contact_info.email` of a user object (a listing entry, or an embedded user that has one)."""
    if not isinstance(obj, dict):
        return None
    info = obj.get("contact_info")
    email = info.get("email") if isinstance(info, dict) else None
    if email is not None and not isinstance(email, str):
        raise BadRecord("email is not a string")
    if not isinstance(email, str):
        return None
    return email.strip() or None


def _text_features(obj: dict[str, Any], text_key: str, topics: TopicRules | None = None,
                   tags: list[str] | None = None) -> tuple[int, set[str], set[str], str | None]:
    """(length, HTML mention ids, `@name` tokens, topic ids) of a message or comment's text."""
    html, text = obj.get("html_body"), obj.get(text_key)
    for name, v in (("html_body", html), (text_key, text)):
        if v is not None and not isinstance(v, str):
            raise BadRecord(f"{name} is not a string")
    tokens = mention_tokens(text or "")
    if html:
        length, ids, words = _html(html)
        words = prose(words)
    else:
        length, ids, words = len((text or "").strip()), set(), prose(text or "")
    topic_ids = as_column(topics.topics(words, tags or ())) if topics is not None else None
    return length, ids, tokens, topic_ids


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None or value == "":  # XML writes an empty element for an empty list at times
        return []
    if isinstance(value, dict) and not value:
        return []
    if not isinstance(value, list):
        kind = "comment" if ", comment " in where else "message"
        raise BadRecord(f"{kind} {key} is not a list", f"{where}: {key} is not a list")
    return value


def _likes(obj: dict[str, Any], where: str, problems: list[tuple[str, str]]) -> list[Like]:
    out = []
    for k, like in enumerate(_list(obj, "likes", where)):
        uid = _user_id(like.get("user")) if isinstance(like, dict) else None
        if uid is None:
            problems.append(("like has no user id", f"{where}, like {k}: no user id"))
            continue
        out.append(Like(uid, parse_time(like.get("created_at"))))
    return out


def _group(obj: Any) -> Group | None:
    if not isinstance(obj, dict) or not obj:
        return None
    gid = native_id(obj.get("id"))
    if gid is None:
        return None
    permission = obj.get("permission")
    count = obj.get("member_count")
    return Group(gid, _flag(obj.get("private")) or permission == "private",
                 count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None,
                 parse_time(obj.get("created_at")))


def parse_group(value: Any) -> Group:
    g = _group(value)
    if g is None:
        raise BadRecord("group id missing or not an integer")
    return g


def parse_message(value: Any, topics: TopicRules | None = None) -> Message:
    """One message with its comments and likes; `BadRecord` when the message itself cannot be read
    (a bad comment or like is set aside in `problems`, the rest kept). `topics`: the configured topic
    rules (`ctx.settings.topics`), no topic ids when None."""
    if not isinstance(value, dict):
        raise BadRecord("message is not an object")
    mid = native_id(value.get("id"))
    if mid is None:
        raise BadRecord("message id missing or not an integer")
    where = f"message {mid}"
    author = _user_id(value.get("user"))
    if author is None:
        raise BadRecord("message has no user id", f"{where}: no user id (no author)")
    created = parse_time(value.get("created_at"))
    if created is None:
        raise BadRecord("message created_at missing or not a time", f"{where}: created_at is not a time")
    mtype = value.get("message_type")
    if mtype is not None and not isinstance(mtype, str):
        raise BadRecord("message_type is not a string", f"{where}: message_type is not a string")
    length, ids, tokens, topic_ids = _text_features(value, "body", topics, tag_names(value.get("tags")))
    problems: list[tuple[str, str]] = []
    recipients = []
    for r in _list(value, "recipients", where):
        if not isinstance(r, dict) or (r.get("type") or ("User" if "groupname" not in r else "Group")) != "User":
            continue
        uid = native_id(r.get("id"))
        name = r.get("mention_name") or r.get("username")
        if uid is not None:
            recipients.append(Recipient(uid, name.lower() if isinstance(name, str) and name else None))
    comments = []
    for k, c in enumerate(_list(value, "comments", where)):
        try:
            comments.append(_comment(c, f"{where}, comment {k}", problems, topics))
        except BadRecord as exc:
            problems.append((exc.reason, exc.detail))
    shared = value.get("shared_message")
    share = None
    if isinstance(shared, dict) and native_id(shared.get("id")) is not None:
        share = (native_id(shared.get("id")) or "", _user_id(shared.get("user")))
    count = value.get("comments_count")
    group = _group(value.get("group"))
    if group is None:  # 2016 answers carry `groups[]` too; the first one is the message's group
        groups = value.get("groups")
        group = next((g for g in (map(_group, groups) if isinstance(groups, list) else []) if g), None)
    return Message(
        id=mid, author=author, created_at=created, updated_at=parse_time(value.get("updated_at")),
        text_length=length, html_user_ids=ids, tokens=tokens, likes=_likes(value, where, problems),
        topic_ids=topic_ids, message_type=(mtype or "").strip().lower(), group=group, recipients=recipients, comments=comments,
        comments_count=count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None,
        shared=share, problems=problems)


def _comment(c: Any, where: str, problems: list[tuple[str, str]], topics: TopicRules | None = None) -> Comment:
    if not isinstance(c, dict):
        raise BadRecord("comment is not an object", f"{where}: not an object")
    cid = native_id(c.get("id"))
    if cid is None:
        raise BadRecord("comment id missing or not an integer", f"{where}: id missing or not an integer")
    author = _user_id(c.get("user"))
    if author is None:
        raise BadRecord("comment has no user id", f"{where} (id {cid}): no user id")
    created = parse_time(c.get("created_at"))
    if created is None:
        raise BadRecord("comment created_at missing or not a time", f"{where} (id {cid}): created_at is not a time")
    length, ids, tokens, topic_ids = _text_features(c, "text", topics)
    return Comment(id=cid, author=author, created_at=created, updated_at=parse_time(c.get("updated_at")),
                   text_length=length, html_user_ids=ids, tokens=tokens,
                   likes=_likes(c, f"{where} (id {cid})", problems), topic_ids=topic_ids)


def _department(value: dict[str, Any]) -> str | None:
    fields = value.get("custom_fields")
    if fields in (None, "", {}):
        return None
    if not isinstance(fields, list):
        raise BadRecord("custom_fields is not a list")
    for f in fields:
        if isinstance(f, dict) and f.get("id") == "department":
            dept = f.get("value")
            if not isinstance(dept, str):
                return None
            return dept.strip() or None
    return None


def parse_user(value: Any) -> User:
    """One user of a listing: id, email (`contact_info.email`), department (`custom_fields` entry with
    id `department`), deactivated (`terminated`, `inactive`, or `active` false), account type."""
    if not isinstance(value, dict):
        raise BadRecord("user entry is not an object")
    uid = native_id(value.get("id"))
    if uid is None:
        raise BadRecord("user id missing or not an integer")
    role = str(value.get("role") or "").lower()
    kind = str(value.get("type") or "User")
    # external contributors (guests of groups that allow them): unverified field values, see the docs
    external = "external" in role or kind.lower().replace("_", "") == "externalcontributor"
    return User(id=uid, email=embedded_email(value), department=_department(value),
                deactivated=_flag(value.get("terminated")) or _flag(value.get("inactive"))
                or value.get("active") is False,
                account_type="external" if external else "member")


def user_objects(value: Any) -> list[dict[str, Any]]:
    """Every embedded user object of a message (author, comment authors, likers, recipients): the
    places an email may also be found."""
    out: list[dict[str, Any]] = []
    if not isinstance(value, dict):
        return out
    stack = [value]
    while stack:
        node = stack.pop()
        for key, v in node.items():
            if key in ("user", "manager") and isinstance(v, dict):
                out.append(v)
            if isinstance(v, dict):
                stack.append(v)
            elif isinstance(v, list):
                stack.extend(x for x in v if isinstance(x, dict))
    return out

