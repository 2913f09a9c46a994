"""The question heuristic is configuration (`questions:` of the settings): it changes `is_question` on
real messages (the Chatterjee Slack archive, the Graph documentation payloads) at extraction, keeps the
historical rule by default, and a bad value is refused naming its key."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines import lake
from pipelines.config import ConfigError, QuestionRules, load_settings
from pipelines.privacy import Pseudonymiser
from pipelines.sources import SourceContext, slack_export
from pipelines.sources.msgraph_messages import minimise as graph_minimise
from tests.connectors.conftest import EXPORTS, KEY, make_ctx

ARCHIVE = EXPORTS / "chatterjee_racket_2019_first120.xml"
GRAPH = Path(__file__).resolve().parents[1] / "data" / "msgraph"
DAYS = (dt.date(2018, 12, 31), dt.date(2019, 1, 31))
WORDS = ["how", "what", "where", "why", "is", "does", "can", "anyone"]


def _import(tmp_path: Path, questions: dict[str, Any] | None) -> pd.DataFrame:
    ctx = make_ctx(tmp_path, "slack_export", {"path": str(ARCHIVE)})
    if questions is not None:
        settings = ctx.settings.model_copy(update={"questions": QuestionRules.model_validate(questions)})
        ctx = SourceContext(settings, settings.sources[0], Pseudonymiser(KEY))
    slack_export.extract(ctx, *DAYS)
    frames = [slack_export.canonicalise(ctx, d).get("activities") for d in lake.days_between(*DAYS)]
    acts = pd.concat([f for f in frames if f is not None], ignore_index=True)
    return acts[acts["verb"].isin(["post", "reply"])].set_index("occurred_at").sort_index()


def _texts() -> dict[pd.Timestamp, str]:
    """Each message's visible prose, read from the XML independently of the importer: `<...>` links and
    mentions and code blocks removed (the archive's text is HTML-escaped once more in the file)."""
    out = {}
    for msg in ET.parse(ARCHIVE).getroot().iter("message"):
        text = html.unescape(msg.findtext("text") or "")
        text = re.sub(r"```.*?```", " ", text, flags=re.S)  # code is no prose
        out[pd.Timestamp(msg.findtext("ts"), tz="UTC")] = re.sub(r"<[^>]*>", " ", text).strip()
    return out


def test_the_settings_change_is_question_on_the_slack_archive(tmp_path: Path) -> None:
    texts = _texts()
    default = _import(tmp_path / "default", None)
    assert default["is_question"].tolist() == ["?" in texts[t] for t in default.index]
    assert default["is_question"].sum() > 0

    words = _import(tmp_path / "words", {"marks": ["?"], "leading_words": {"en": WORDS}})
    added = words.index[words["is_question"] & ~default["is_question"]]
    assert len(added) > 0 and not (default["is_question"] & ~words["is_question"]).any()
    for t in added:  # each new question starts with one of the words, and has no question mark
        first = texts[t].split(maxsplit=1)[0].lower().strip(",.;:!")
        assert first in WORDS and "?" not in texts[t], texts[t]

    only_words = _import(tmp_path / "only_words", {"marks": [], "leading_words": {"en": WORDS}})
    starts = {t for t in only_words.index if texts[t] and texts[t].split()[0].lower().strip(",.;:!") in WORDS}
    assert set(only_words.index[only_words["is_question"]]) == starts and set(added) < starts

    long = _import(tmp_path / "long", {"min_length": 60})
    assert long["is_question"].tolist() == ["?" in texts[t] and len(texts[t]) >= 60 for t in long.index]
    assert 0 < long["is_question"].sum() < default["is_question"].sum()


def test_the_settings_change_is_question_on_graph_messages() -> None:
    messages = []
    for path in sorted(GRAPH.glob("*.json")):
        data = json.loads(path.read_text())
        items = data.get("value") if isinstance(data, dict) else data
        for m in items if isinstance(items, list) else []:
            for x in [m, *(m.get("replies") or [])] if isinstance(m, dict) else []:
                if isinstance(x, dict) and isinstance(x.get("from"), dict) and (x["from"].get("user") or {}).get("id") \
                        and not x.get("deletedDateTime") and x.get("messageType") == "message" \
                        and isinstance(x.get("createdDateTime"), str):
                    messages.append(x)
    assert len(messages) > 5

    def key(identity: dict[str, Any]) -> str | None:
        return Pseudonymiser(KEY).native("msgraph", identity["id"]) if identity.get("id") else None

    def flags(rules: QuestionRules | None) -> list[bool]:
        return [graph_minimise(m, "19:c", "channel", key, questions=rules)["is_question"] for m in messages]

    texts = [re.sub(r"<[^>]*>", " ", html.unescape(m["body"]["content"] or "")).split() for m in messages]
    first_words = sorted({t[0].lower() for t in texts if t})
    assert flags(None) == [False] * len(messages)  # no '?' in these payloads
    asked = flags(QuestionRules.model_validate({"leading_words": {"en": first_words[:1]}}))
    assert asked == [bool(t) and t[0].lower() == first_words[0] for t in texts] and any(asked)


@pytest.mark.parametrize("questions, key", [
    ({"marks": [""]}, "questions.marks"),
    ({"marks": "?"}, "questions.marks"),
    ({"leading_words": {"English": ["how"]}}, "questions.leading_words"),
    ({"leading_words": {"en": ["how come"]}}, "questions.leading_words"),
    ({"min_length": -1}, "questions.min_length"),
    ({"question_marks": ["?"]}, "questions.question_marks"),
])
def test_a_bad_question_setting_is_refused_naming_its_key(tmp_path: Path, questions: dict[str, Any],
                                                          key: str) -> None:
    config = tmp_path / "esn.yaml"
    config.write_text(json.dumps({"questions": questions}))
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert f"  {key}:" in str(err.value) and str(config) in str(err.value)


def test_the_settings_change_is_question_of_the_chatterjee_file_preset(tmp_path: Path) -> None:
    from pipelines.sources import file_import

    raw = {pd.Timestamp(m.findtext("ts"), tz="UTC"): html.unescape(m.findtext("text") or "")
           for m in ET.parse(ARCHIVE).getroot().iter("message")}

    def roots(questions: dict[str, Any] | None) -> pd.DataFrame:
        ctx = make_ctx(tmp_path / str(len(list(tmp_path.iterdir()))), "file",
                       {"format": "chatterjee_xml", "path": str(ARCHIVE)})
        if questions is not None:
            settings = ctx.settings.model_copy(update={"questions": QuestionRules.model_validate(questions)})
            ctx = SourceContext(settings, settings.sources[0], Pseudonymiser(KEY))
        file_import.extract(ctx, *DAYS)
        frames = [file_import.canonicalise(ctx, d).get("activities") for d in lake.days_between(*DAYS)]
        acts = pd.concat([f for f in frames if f is not None], ignore_index=True)
        return acts[acts["verb"] == "post"].set_index("occurred_at").sort_index()

    default = roots(None)
    assert default["is_question"].tolist() == ["?" in raw[t] for t in default.index]  # the historical rule
    words = roots({"marks": [], "leading_words": {"en": WORDS}})
    # the preset reads the whole text (mentions and links included), as it always did for '?'
    assert words["is_question"].tolist() == [bool(raw[t].split()) and raw[t].split()[0].lower().strip(",.;:!")
                                             in WORDS for t in words.index]
    assert (words["is_question"] != default["is_question"]).any()
    long = roots({"min_length": 60})
    assert long["is_question"].tolist() == ["?" in raw[t] and len(raw[t].strip()) >= 60 for t in long.index]
    assert long["is_question"].sum() < default["is_question"].sum()


def test_teams_topics_come_from_the_html_prose_not_from_code_or_links() -> None:
    from pipelines.topics import TopicRules, tag_id

    rules = TopicRules.model_validate({"taxonomy": [{"id": "payroll", "name": "Payroll", "terms": ["payroll"]}]})
    msg = {"id": "1", "createdDateTime": "2026-05-01T10:00:00Z", "messageType": "message",
           "from": {"user": {"id": "u1", "displayName": "A"}},
           "body": {"contentType": "html", "content": "<p>Payroll &amp; #Benefits</p><code>vpn</code>"
                                                       "<a href='https://x.example/#anchor'>link</a>"}}
    row = graph_minimise(msg, "19:c", "channel", lambda ident: "k" + ident["id"], topics=rules)
    assert row["topic_ids"] == " ".join(sorted(["tx:payroll", tag_id("benefits")]))
    assert graph_minimise(msg, "19:c", "channel", lambda ident: "k" + ident["id"])["topic_ids"] is None
