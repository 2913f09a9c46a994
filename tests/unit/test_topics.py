"""Topics at extraction (pipelines/topics.py): taxonomy terms and patterns on the prose, broader topics,
platform tags and hashtags as hashed ids or as the taxonomy topic that covers them, queries resolved the
same way, and configuration errors that name the topic."""

from __future__ import annotations

import hashlib

import pytest

from pipelines.topics import TopicRules, normalise_tag, tag_id

TAXONOMY = [
    {"id": "cloud", "name": "Cloud"},
    {"id": "kubernetes", "name": "Kubernetes", "terms": ["kubernetes", "k8s", "helm chart"], "tags": ["k8s"],
     "broader": "cloud"},
    {"id": "python", "name": "Python", "terms": ["python"], "patterns": [r"\bpy3\.\d+\b"]},
    {"id": "expenses", "name": "Expense claims", "terms": ["note de frais", "expense claim"]},
]


@pytest.fixture(scope="module")
def rules() -> TopicRules:
    return TopicRules.model_validate({"taxonomy": TAXONOMY})


def test_terms_match_whole_words_phrases_case_and_accents_with_their_broader_topics(rules) -> None:
    assert rules.topics("How do I roll back a Helm  chart on K8S?") == ["tx:cloud", "tx:kubernetes"]
    assert rules.topics("Où envoyer ma NOTE DE FRAIS ?") == ["tx:expenses"]
    assert rules.topics("Nôte de frâis") == ["tx:expenses"]  # accents do not matter
    assert rules.topics("pythonic code and k8smith") == []  # whole words only
    assert rules.topics("we moved to py3.12 last week") == ["tx:python"]
    assert rules.topics(None) == [] and rules.topics("") == []


def test_tags_become_their_taxonomy_topic_or_a_hash_of_the_normalised_tag(rules) -> None:
    assert rules.topics("", tags=["K8s"]) == ["tx:cloud", "tx:kubernetes"]
    expected = "tag:" + hashlib.sha256(b"site-reliability").hexdigest()[:16]
    assert tag_id("#Site Reliability") == tag_id("site_reliability") == tag_id("SITE-reliability") == expected
    assert rules.topics("", tags=["Site Reliability"]) == [expected]
    # hashtags in the prose, not in URLs, entities or numbers; the text itself is never returned
    got = rules.topics("Release notes #Onboarding see https://x.example/a#frag &#39; issue #42 #k8s")
    assert got == [tag_id("onboarding"), "tx:cloud", "tx:kubernetes"]
    assert all(t.startswith(("tx:", "tag:")) for t in got) and "onboarding" not in "".join(got)


def test_hashtags_and_platform_tags_can_be_turned_off() -> None:
    off = TopicRules.model_validate({"taxonomy": TAXONOMY, "hashtags": False, "platform_tags": False})
    assert off.topics("#onboarding", tags=["k8s"]) == []
    capped = TopicRules.model_validate({"max_topics": 2, "taxonomy": [{"id": "zz", "name": "Z", "terms": ["zed"]}]})
    # the taxonomy's topics are kept first, then the tags in order, then the whole sorted
    assert capped.topics("zed #a1 #b2 #c3") == sorted(["tx:zz", sorted(tag_id(t) for t in ("a1", "b2", "c3"))[0]])


def test_a_query_resolves_to_the_ids_the_messages_carry(rules) -> None:
    assert rules.resolve("Kubernetes") == ["tx:kubernetes"] == rules.resolve("kubernetes")
    assert rules.resolve("#k8s") == ["tx:kubernetes"]  # a tag the taxonomy covers
    assert rules.resolve("expense claims") == ["tx:expenses"]  # by name
    assert rules.resolve("#Site Reliability") == [tag_id("site-reliability")]
    assert rules.resolve("tx:python") == ["tx:python"]
    assert rules.names()["tx:expenses"] == "Expense claims"
    assert normalise_tag("  #Data  Science ") == "data-science"


def test_the_taxonomy_file_is_read_and_errors_name_the_topic(tmp_path) -> None:
    f = tmp_path / "skills.yaml"
    f.write_text("topics:\n  - {id: sql, name: SQL, terms: [sql, postgres]}\n")
    assert TopicRules.model_validate({"taxonomy_file": f}).topics("a Postgres question") == ["tx:sql"]
    with pytest.raises(ValueError, match="defined twice"):
        TopicRules.model_validate({"taxonomy": [{"id": "a", "name": "A"}, {"id": "a", "name": "B"}]})
    with pytest.raises(ValueError, match="broader topic 'nope' is not defined"):
        TopicRules.model_validate({"taxonomy": [{"id": "a", "name": "A", "broader": "nope"}]})
    with pytest.raises(ValueError, match="cycle"):
        TopicRules.model_validate({"taxonomy": [{"id": "a", "name": "A", "broader": "b"},
                                                {"id": "b", "name": "B", "broader": "a"}]})
    with pytest.raises(ValueError, match="not a regular expression"):
        TopicRules.model_validate({"taxonomy": [{"id": "a", "name": "A", "patterns": ["(unclosed"]}]})
    with pytest.raises(ValueError, match="lower-case"):
        TopicRules.model_validate({"taxonomy": [{"id": "Has Space", "name": "A"}]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {id: ok, name: OK}\n- {id: x, name: X, colour: red}\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*topic 1"):
        TopicRules.model_validate({"taxonomy_file": bad})
    with pytest.raises(ValueError, match="does not exist"):
        TopicRules.model_validate({"taxonomy_file": tmp_path / "missing.yaml"})
