"""Topic ids of imported messages (issue 18): the Chatterjee Slack XML preset reads message text, so a
post's and a reply's topics are computed from its prose before the text is dropped; the canonical CSV /
JSONL / Parquet formats carry no text, but an optional `tags` column gives topic ids (the tags dropped);
activities landed before the column still canonicalise."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from pipelines import lake
from pipelines.sources import file_import
from pipelines.sources.file_import_formats import ImportRejected
from pipelines.topics import TopicRules, tag_id
from tests.imports.conftest import EVER, file_ctx, landed

RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "racket", "name": "Racket", "terms": ["racket", "drracket"]},
    {"id": "macros", "name": "Macros", "terms": ["syntax-case", "macro"], "broader": "racket", "tags": ["syntax"]},
]})
XML = """<slack><team_domain>racket</team_domain><channel_name>general</channel_name>
<message conversation_id="1"><ts>2017-05-11T15:46:08</ts><user>Ann</user>
<text>How do I write a macro with syntax-case? &lt;https://docs.racket-lang.org|drracket docs&gt;</text></message>
<message conversation_id="1"><ts>2017-05-11T15:50:00</ts><user>Bob</user>
<text>&lt;@Ann&gt; see #syntax and #teaching ```(racket-eval)```</text></message>
<message conversation_id="2"><ts>2017-05-11T16:00:00</ts><user>Cid</user><text>lunch?</text></message>
</slack>"""


def _import(tmp_path: Path, rules: TopicRules | None):
    f = tmp_path / "c.xml"
    f.write_text(XML)
    ctx = file_ctx(tmp_path, format="chatterjee_xml", path=str(f))
    if rules is not None:
        ctx.settings.topics = rules
    file_import.extract(ctx, *EVER)
    return ctx


def test_chatterjee_topics_come_from_the_prose_and_only_their_ids_are_kept(tmp_path: Path) -> None:
    ctx = _import(tmp_path, RULES)
    acts = landed(ctx, "activities").set_index("event_id")
    # a narrower topic counts for its broader one; the #syntax hashtag is the taxonomy's macros; links,
    # references and code are not prose
    assert acts.loc["1:1", "topic_ids"] == "tx:macros tx:racket"
    assert acts.loc["1:2", "topic_ids"] == f"{tag_id('teaching')} tx:macros tx:racket"
    assert pd.isna(acts.loc["2:3", "topic_ids"])
    assert acts.loc["1:2:@1", "verb"] == "mention" and pd.isna(acts.loc["1:2:@1", "topic_ids"])
    canonical = file_import.canonicalise(ctx, dt.date(2017, 5, 11))["activities"].set_index("event_id")
    assert canonical.loc["1:1", "topic_ids"] == "tx:macros tx:racket"
    cells = " ".join(map(str, canonical.reset_index().to_numpy().ravel())).lower()
    assert not [w for w in ("syntax-case", "lunch", "teaching", "drracket", "ann") if w in cells]


def test_without_a_taxonomy_only_hashtags_are_topics(tmp_path: Path) -> None:
    acts = landed(_import(tmp_path, None), "activities").set_index("event_id")
    assert pd.isna(acts.loc["1:1", "topic_ids"])
    assert acts.loc["1:2", "topic_ids"] == " ".join(sorted([tag_id("syntax"), tag_id("teaching")]))


def test_no_rules_no_topics(tmp_path: Path) -> None:
    from pipelines.sources.file_import_presets import PresetInput, chatterjee_xml

    f = tmp_path / "c.xml"
    f.write_text(XML)
    parsed = chatterjee_xml(PresetInput(path=f, departments=None, recipients=None, core=None,
                                        synthetic_date=dt.date(2017, 1, 1), edge_verb="mention", container_id=None))
    assert parsed.activities["topic_ids"].isna().all()


def test_activities_landed_before_topic_ids_still_canonicalise(tmp_path: Path) -> None:
    ctx = _import(tmp_path, RULES)
    day = dt.date(2017, 5, 11)
    base = lake.raw_dir(ctx.lake_dir, ctx.source.name, "activities")
    table = lake.read_partition(base, day)
    assert table is not None and "topic_ids" in table.column_names  # what this import lands now
    lake.write_partition(base, day, table.drop_columns(["topic_ids"]))
    acts = file_import.canonicalise(ctx, day)["activities"]
    assert len(acts) == table.num_rows and acts["topic_ids"].isna().all()


def _csv(tmp_path: Path, body: str, rules: TopicRules | None = RULES, name: str = "a.csv"):
    f = tmp_path / name
    f.write_text(body)
    ctx = file_ctx(tmp_path, format="csv" if name.endswith(".csv") else "jsonl", path=str(f))
    if rules is not None:
        ctx.settings.topics = rules
    return ctx, f


def test_a_tags_column_gives_topic_ids_and_is_not_kept(tmp_path: Path) -> None:
    ctx, _ = _csv(tmp_path, "event_id,occurred_at,actor_id,verb,parent_id,tags\n"
                            "p1,2024-03-01T10:00:00Z,u1,post,,\"Syntax, #Team Building\"\n"
                            "r1,2024-03-01T11:00:00Z,u2,reply,p1,\n"
                            "x1,2024-03-01T12:00:00Z,u3,reaction,p1,\n")
    file_import.extract(ctx, *EVER)
    acts = file_import.canonicalise(ctx, dt.date(2024, 3, 1))["activities"].set_index("event_id")
    # a tag the taxonomy lists is its topic (with the broader one); another tag its hash
    assert acts.loc["p1", "topic_ids"] == f"{tag_id('team building')} tx:macros tx:racket"
    assert pd.isna(acts.loc["r1", "topic_ids"]) and pd.isna(acts.loc["x1", "topic_ids"])
    raw = landed(ctx, "activities")
    assert "tags" not in raw.columns
    cells = " ".join(map(str, raw.to_numpy().ravel())).lower()
    assert "syntax" not in cells and "team" not in cells


def test_tags_in_jsonl_are_a_list_and_bad_tags_are_rejected_naming_the_line(tmp_path: Path) -> None:
    ctx, _ = _csv(tmp_path, '{"event_id": "p1", "occurred_at": "2024-03-01T10:00:00Z", "actor_id": "u1", '
                            '"verb": "idea", "tags": ["k8s"]}\n', name="a.jsonl")
    file_import.extract(ctx, *EVER)
    assert landed(ctx, "activities")["topic_ids"].tolist() == [tag_id("k8s")]
    for n, (line, reason) in enumerate([
            ('"verb": "reaction", "parent_id": "p0", "tags": ["k8s"]', "tags are set on a reaction"),
            ('"verb": "post", "tags": [1, 2]', "tags must be texts"),
            ('"verb": "post", "tags": {"a": 1}', "tags is a dict")]):
        sub = tmp_path / f"bad{n}"
        sub.mkdir()
        ctx, f = _csv(sub, '{"event_id": "p1", "occurred_at": "2024-03-01T10:00:00Z", "actor_id": "u1", '
                           f"{line}}}\n", name="b.jsonl")
        with pytest.raises(ImportRejected, match=rf"{f}:line 1: {reason}"):
            file_import.extract(ctx, *EVER)
