"""Topics without storing text: the topic ids of a post or reply, computed at extraction while the text is
in memory, and kept instead of it (issue 18, expertise location).

A message's topics come from two places:
  - the organisation's **taxonomy** (`topics:` in the configuration, or a YAML file it names: a skills
    taxonomy the organisation already has, say): each topic has an id, a name, `terms` (words or phrases
    matched whole, case- and accent-insensitively, on the message's prose) and `patterns` (regular
    expressions, for versions, product codes..., matched on the prose case-folded and without accents), optionally the platform `tags` it covers and a `broader`
    topic (a match counts for every topic above it too). A taxonomy topic's id is `tx:<id>`;
  - the **platform's own tags** (Viva Engage topics, Chatter topics, Socialcast tags, and `#hashtags` in
    the text when `hashtags` is on): a tag the taxonomy lists becomes that topic; any other becomes
    `tag:<h>`, h the first 16 hex digits of the SHA-256 of the normalised tag (NFKC, case-folded, without
    `#`, separators made `-`). The same tag has the same id on every platform and in every run, without
    the tag's text being kept; `esn experts '#kubernetes'` finds it by hashing the query the same way. The
    hash is not keyed on purpose: a topic id is not a person's identity, the pseudonymisation key's
    rotation does not touch it, and what a guess can confirm (that some message carried `#kubernetes`)
    is what a published topic figure shows anyway.
The container (channel, group, community) is a topic of its own in the warehouse (`container:<id>`),
derived there from `container_id`: nothing is added here for it.

What is kept is `topic_ids`, a sorted list of those ids per activity; never a term, a tag or the text.
Privacy rules as everywhere: a topic is a column of activities by pseudonymous people, and whatever is
published about it is suppressed below `min_group_size` like every other figure.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: a `#hashtag` in prose: a letter first, not inside a word, a URL fragment or an HTML entity
_HASHTAG = re.compile(r"(?<![\w&/#])#([^\W\d_][\w-]{0,63})")
_SEPARATORS = re.compile(r"[\s_.-]+")
_WORD = re.compile(r"\w+")
_WORDS = re.compile(r"\w+(?: \w+)*")
TAG_HEX = 16


def fold(text: str) -> str:
    """Case- and accent-insensitive form of a text (NFKD without combining marks, case-folded)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def normalise_tag(tag: str) -> str:
    """The form a tag is compared and hashed in: NFKC, case-folded, accents kept, without a leading `#`,
    runs of blanks, dots, dashes and underscores made one `-`."""
    text = unicodedata.normalize("NFKC", tag).strip().lstrip("#").casefold()
    return _SEPARATORS.sub("-", text).strip("-")


def tag_id(tag: str) -> str | None:
    """`tag:<16 hex>` for a platform tag or hashtag; None for an empty one."""
    norm = normalise_tag(tag)
    if not norm:
        return None
    return "tag:" + hashlib.sha256(norm.encode()).hexdigest()[:TAG_HEX]


class Topic(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(description="lower-case id: letters, digits, '_', '.', '-' (the topic is `tx:<id>`)")
    name: str = Field(description="what the topic is called in outputs")
    terms: list[str] = Field(default_factory=list, description="words or phrases matched whole on the prose, "
                             "case- and accent-insensitively")
    patterns: list[str] = Field(default_factory=list, description="regular expressions (Python syntax, "
                                "case-insensitive) matched on the prose case-folded and without accents")
    tags: list[str] = Field(default_factory=list, description="platform tags / hashtags this topic covers")
    broader: str | None = Field(None, description="id of the topic this one belongs to")

    @field_validator("id", "broader")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(f"topic id {value!r} must be lower-case letters, digits, '_', '.' or '-' "
                             "(at most 63, starting with a letter or digit)")
        return value

    @field_validator("terms", "tags")
    @classmethod
    def _non_blank(cls, value: list[str]) -> list[str]:
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"item {i} must be a non-blank string")
        return value

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern, re.I)
            except re.error as exc:
                raise ValueError(f"pattern {i} ({pattern!r}) is not a regular expression: {exc}") from None
        return value

    @property
    def topic_id(self) -> str:
        return f"tx:{self.id}"


class TopicRules(BaseModel):
    """The `topics:` section: the taxonomy (inline, and / or from `taxonomy_file`) and which tags count."""

    model_config = ConfigDict(extra="forbid")
    taxonomy: list[Topic] = Field(default_factory=list, description="the organisation's topics")
    taxonomy_file: Path | None = Field(None, description="a YAML file with a list of topics (or `topics:` "
                                       "holding one), added to `taxonomy`")
    platform_tags: bool = Field(True, description="the platform's own tags are topics")
    hashtags: bool = Field(True, description="#hashtags in the prose are tags")
    max_topics: int = Field(32, ge=1, le=256, description="at most this many topic ids per message "
                            "(taxonomy topics kept first)")
    _matchers: list[tuple[re.Pattern[str], tuple[str, ...]]] = PrivateAttr(default_factory=list)
    _by_term: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _terms: re.Pattern[str] | None = PrivateAttr(default=None)
    _ngram: int = PrivateAttr(default=0)
    _by_tag: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _names: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _build(self) -> TopicRules:
        topics = list(self.taxonomy)
        if self.taxonomy_file is not None:
            topics += load_taxonomy_file(self.taxonomy_file)
        seen: dict[str, Topic] = {}
        for t in topics:
            if t.id in seen:
                raise ValueError(f"topic id {t.id!r} is defined twice")
            seen[t.id] = t
        for t in topics:
            if t.broader is not None and t.broader not in seen:
                raise ValueError(f"topic {t.id!r}: broader topic {t.broader!r} is not defined")
        ancestry: dict[str, tuple[str, ...]] = {}
        for t in topics:
            chain, node = [t.topic_id], t
            while node.broader is not None:
                node = seen[node.broader]
                if node.topic_id in chain:
                    raise ValueError(f"topic {t.id!r}: its broader topics form a cycle")
                chain.append(node.topic_id)
            ancestry[t.id] = tuple(chain)
        self._matchers = []
        self._by_term = {}
        self._by_tag = {}
        for t in topics:
            for term in t.terms:
                key = " ".join(fold(term).split())
                self._by_term[key] = tuple(dict.fromkeys(self._by_term.get(key, ()) + ancestry[t.id]))
            if t.patterns:
                self._matchers.append((re.compile("|".join(f"(?:{p})" for p in t.patterns), re.I), ancestry[t.id]))
            for tag in t.tags:
                norm = normalise_tag(tag)
                self._by_tag[norm] = tuple(dict.fromkeys(self._by_tag.get(norm, ()) + ancestry[t.id]))
        # terms made of words only are looked up by the prose's word n-grams (a dict look-up per word and
        # length: fast with thousands of topics); the others (c++, node.js) by one regular expression,
        # whole, with any blanks between a phrase's words
        plain = {k for k in self._by_term if _WORDS.fullmatch(k)}
        self._ngram = max((len(k.split()) for k in plain), default=0)
        odd = sorted(set(self._by_term) - plain, key=lambda k: (-len(k), k))
        self._terms = (re.compile(r"(?<!\w)(?:" + "|".join(r"\s+".join(re.escape(w) for w in k.split())
                                                          for k in odd) + r")(?!\w)") if odd else None)
        self._names = {t.topic_id: t.name for t in topics}
        return self

    def names(self) -> dict[str, str]:
        """Taxonomy topic id -> its name."""
        return dict(self._names)

    def resolve(self, query: str) -> list[str]:
        """The topic ids a person asking about `query` means: a taxonomy id or name (`tx:<id>`, its id or
        its name, case-insensitively), else a tag (`#kubernetes`, `kubernetes`): the taxonomy topic that
        covers it, or its `tag:` id."""
        q = query.strip()
        if q.startswith(("tx:", "tag:", "container:")):
            return [q]
        folded = fold(q.lstrip("#"))
        for topic_id, name in self._names.items():
            if folded in (fold(topic_id.removeprefix("tx:")), fold(name)):
                return [topic_id]
        covered = self._by_tag.get(normalise_tag(q))
        if covered:
            return [covered[0]]
        tid = tag_id(q)
        return [tid] if tid else []

    def topics(self, prose: str | None, tags: Iterable[str] = ()) -> list[str]:
        """The sorted topic ids of a message: taxonomy matches on its prose (with their broader topics)
        and its tags (the platform's, and hashtags of the prose when on). Never returns text."""
        found_tx: set[str] = set()
        found_tags: set[str] = set()
        all_tags: list[str] = list(tags) if self.platform_tags else []
        if prose:
            folded = fold(prose)
            longest, by_term = self._ngram, self._by_term
            if longest:
                words = _WORD.findall(folded)
                for chain in filter(None, map(by_term.get, words)):
                    found_tx.update(chain)
                for n in range(2, longest + 1):
                    for i in range(len(words) - n + 1):
                        phrase = by_term.get(" ".join(words[i:i + n]))
                        if phrase:
                            found_tx.update(phrase)
            if self._terms is not None:
                for hit in self._terms.finditer(folded):
                    found_tx.update(self._by_term[" ".join(hit.group(0).split())])
            for matcher, chain in self._matchers:
                if matcher.search(folded):
                    found_tx.update(chain)
            if self.hashtags:
                all_tags += _HASHTAG.findall(prose)
        for tag in all_tags:
            if not isinstance(tag, str):
                continue
            covered = self._by_tag.get(normalise_tag(tag))
            if covered:
                found_tx.update(covered)
            else:
                tid = tag_id(tag)
                if tid:
                    found_tags.add(tid)
        # at most max_topics, the taxonomy's first; then in one sorted order
        return sorted((sorted(found_tx) + sorted(found_tags))[: self.max_topics])


def as_column(ids: Iterable[str]) -> str | None:
    """The `topic_ids` value of an activity: the ids separated by one blank, None when there are none."""
    joined = " ".join(ids)
    return joined or None


def load_taxonomy_file(path: Path) -> list[Topic]:
    """The topics of a taxonomy YAML file: a list of topics, or a mapping whose `topics` holds one; a clear
    error naming the file and the entry otherwise."""
    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"taxonomy_file {str(path)!r} does not exist") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"taxonomy_file {str(path)!r} is not valid YAML: {exc}") from None
    if isinstance(data, dict):
        data = data.get("topics")
    if not isinstance(data, list):
        raise ValueError(f"taxonomy_file {str(path)!r} must hold a list of topics (or `topics:` with one)")
    out = []
    for i, entry in enumerate(data):
        try:
            out.append(Topic.model_validate(entry))
        except Exception as exc:  # noqa: BLE001 - pydantic's message, with where it came from
            raise ValueError(f"taxonomy_file {str(path)!r}, topic {i}: {exc}") from None
    return out
