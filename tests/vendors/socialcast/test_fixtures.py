"""Every Socialcast fixture (tests/data/socialcast, see its PROVENANCE.md) parses into records, or is
rejected with a message naming the file and the record; and the mapping decisions of
docs/sources/socialcast.md, one behaviour a test, on the fixtures themselves."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipelines.privacy import Pseudonymiser
from pipelines.sources import socialcast_archive
from pipelines.sources.socialcast_formats import (
    BadDocument,
    BadRecord,
    parse_group,
    parse_message,
    parse_time,
    parse_user,
    read_document,
    record_value,
)
from tests.vendors.yammer.helpers import KEY, make_ctx

DATA = Path(__file__).resolve().parents[2] / "data" / "socialcast"
FIXTURES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".json", ".xml"))
PS = Pseudonymiser(KEY)

#: what each fixture is, and the records it must reject (detail of the problem)
EXPECTED: dict[str, tuple[str, int, list[str]]] = {
    "sdk_GET-api-messages_page-of-20-messages-2011.xml": ("messages", 20, []),
    "sdk_GET-api-messages-id_single-message-2011.xml": ("messages", 1, []),
    "sdk_GET-api-users-id_user-2011.xml": ("users", 1, []),
    "sdk_GET-api-streams-id-messages_page1-messages_next_page.json": ("messages", 0, ["message 1: no user id (no author)"]),
    "sdk_GET-api-streams-id-messages_last-page-messages_next_page-null.json":
        ("messages", 0, ["message 1: no user id (no author)"]),
    "sdk_GET-api-streams_company-stream.json": ("streams", 0, []),
    "own_GET-api-messages_page-2016-shape.json": ("messages", 9, [
        "message 5001, comment 2 (id 9006): no user id", "message 5007, like 1: no user id",
        "message 5010: no user id (no author)"]),
    "own_GET-api-streams-id-messages_page-2016-shape.json": ("messages", 2, []),
    "own_GET-api-users_page-2016-shape.json": ("users", 6, []),
    "own_GET-api-users_page-xml-shape.xml": ("users", 2, []),
    "own_GET-api-groups_page-apidoc-fields.json": ("groups", 3, []),
    "own_GET-api-streams-primary_stream.json": ("streams", 0, []),
    "own_error-answer-saved-as-file.json": ("rejected", 0, ["not a Socialcast API document (top-level keys ['errors'])"]),
}


def test_every_fixture_is_listed_here() -> None:
    assert sorted(EXPECTED) == FIXTURES


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_parses_or_is_rejected_with_a_clear_message(name: str) -> None:
    kind, n_records, problems = EXPECTED[name]
    try:
        doc = read_document((DATA / name).read_bytes())
    except BadDocument as exc:
        assert kind == "rejected" and [str(exc)] == problems
        return
    assert doc.kind == kind
    parse = {"messages": parse_message, "users": parse_user, "groups": parse_group}.get(doc.kind)
    found, parsed = [], 0
    for _, entry in doc.items:
        if parse is None:
            continue
        try:
            record = parse(record_value(entry))
        except BadRecord as exc:
            found.append(exc.detail)
            continue
        parsed += 1
        found += [detail for _, detail in getattr(record, "problems", [])]
    assert (parsed, found) == (n_records, problems)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("sc")
    ctx = make_ctx(root, "socialcast_archive", {"path": str(DATA)})
    report = socialcast_archive.extract(ctx, dt.date(2011, 1, 1), dt.date(2016, 12, 31))
    acts = pd.concat([socialcast_archive.canonicalise(ctx, d)["activities"] for d in report.days])
    last = socialcast_archive.canonicalise(ctx, dt.date(2016, 12, 31))
    return {"report": report, "acts": acts.set_index("event_id"), "people": last["people"],
            "containers": last["containers"].set_index("container_id")}


def key(uid: str, email: str | None = None) -> str:
    return PS.email(email) if email else PS.native("socialcast", uid)


EMILY, BOB, PAUL, LINDA, MIKE = (key("25", "emily@socialcast.com"), key("21"), key("23"), key("24"), key("27"))
JENNIFER = key("26", "jennifer.lawson@example.com")
ADA, BRUNO, CARL, DIANA = (key("", "ada.lindqvist@example.com"), key("", "bruno.kowalczyk@example.com"),
                           key("", "carl.okafor@example.com"), key("", "diana.moreau@example.com"))
ELIF, FARID = key("105"), key("", "farid.haddad@example.com")


def test_questions_and_ideas_come_from_the_message_type(run) -> None:
    acts = run["acts"]
    posts = acts[acts["verb"] == "post"]
    assert set(posts.index[posts["is_question"]]) == {"m394", "m44", "m424", "m400", "m42", "m399", "m384",
                                                      "m401", "m5001"}
    assert set(posts.index[posts["is_idea"]]) == {"m63", "m5002"}  # 2011 XML idea, 2016-shape idea
    assert not acts.loc[acts["verb"] != "post", "is_idea"].any()
    assert not acts.loc[acts["verb"] != "post", "is_question"].any()


def test_system_items_are_no_posts_but_their_comments_and_likes_count(run) -> None:
    acts = run["acts"]
    for system in ("m405", "m280", "m344", "m5004", "m5005"):  # new_group, web_feed x3, new_group
        assert system not in acts.index
    assert acts.loc["m5004:c9005", "verb"] == "reply" and acts.loc["m5004:c9005", "target_key"] == DIANA
    assert acts.loc[f"m5004:like:{FARID}", "target_key"] == DIANA
    assert acts.loc["m280:c46", "verb"] == "reply"  # a comment on a Twitter feed item
    assert acts.loc[f"m280:c46:mention:{EMILY}", "actor_key"] == JENNIFER
    # a type seen in no answer ("thanks") is a person's post, and reported
    assert acts.loc["m5008", "verb"] == "post" and run["report"].details["unknown_message_types"] == ["thanks"]
    for person in ("m403", "m406", "m5007", "m5011"):  # poll, link, poll, link
        assert acts.loc[person, "verb"] == "post"


def test_comments_are_replies_to_the_message_author(run) -> None:
    acts = run["acts"]
    reply = acts.loc["m424:c84"]
    assert (reply["verb"], reply["actor_key"], reply["target_key"], reply["parent_id"], reply["thread_id"]) == \
        ("reply", BOB, EMILY, "m424", "m424")
    assert reply["container_id"] == "8" and reply["content_length"] > 0


def test_likes_on_messages_and_comments_are_reactions_dated_when_made(run) -> None:
    acts = run["acts"]
    on_comment = acts.loc[f"m424:c84:like:{EMILY}"]
    assert (on_comment["verb"], on_comment["target_key"], on_comment["parent_id"]) == ("reaction", BOB, "m424:c84")
    late = acts.loc[f"m5001:like:{DIANA}"]  # liked the next day
    assert late["occurred_at"] == pd.Timestamp("2016-06-02T08:00:00Z") and late["target_key"] == ADA


def test_mentions_are_attributed_to_the_item_that_names_them(run) -> None:
    acts = run["acts"]
    mentions = acts[acts["verb"] == "mention"]
    by = {(eid.rsplit(":mention:", 1)[0], r["target_key"]): r["actor_key"] for eid, r in mentions.iterrows()}
    assert by[("m407", PAUL)] == BOB  # @PaulGandy in the message
    assert by[("m407:c67", MIKE)] == BOB  # @MikeWhittington in Bob's comment, not the message
    assert by[("m394:c44", LINDA)] == JENNIFER  # in a comment by someone else than the author
    assert by[("m384:c42", PAUL)] == EMILY  # the author himself, mentioned by a commenter
    assert by[("m5001:c9001", CARL)] == BRUNO  # HTML data-user-id
    assert by[("m5003:c9004", ADA)] == DIANA  # @name of the text, matched on recipients' mention_name
    assert by[("m5003", FARID)] == CARL  # a recipient no item names: addressed by the author
    assert ("m5003", CARL) not in by  # the author is among the recipients: nobody mentions themselves
    assert all(r["actor_key"] != r["target_key"] for _, r in mentions.iterrows())


def test_the_same_message_in_two_files_is_one_with_everything_either_shows(run) -> None:
    acts, details = run["acts"], run["report"].details
    assert details["duplicate_messages"] == 2  # 425 (page + single XML), 5001 (messages + stream page)
    assert acts.index.is_unique
    thread = acts[acts["thread_id"] == "m5001"]
    assert set(thread.index[thread["verb"] == "reply"]) == {"m5001:c9001", "m5001:c9002", "m5001:c9007"}
    assert set(thread.loc[thread["parent_id"] == "m5001"].query("verb == 'reaction'")["actor_key"]) == \
        {BRUNO, DIANA, ELIF}  # 102 and 104 in the messages page, 102 and 105 in the stream page
    assert f"m5001:c9001:like:{EMILY}" in acts.index  # only the first capture has it


def test_a_share_is_directed_at_the_shared_message_author(run) -> None:
    share = run["acts"].loc["m5006:share"]
    assert (share["verb"], share["actor_key"], share["target_key"], share["parent_id"]) == \
        ("share", ELIF, ADA, "m5001")


def test_times_with_offsets_and_epoch_seconds_land_on_their_utc_day(run) -> None:
    acts = run["acts"]
    assert acts.loc["m5003", "occurred_at"] == pd.Timestamp("2016-06-01T04:30:00Z")  # 21:30 -07:00 the day before
    assert acts.loc["m5009", "occurred_at"] == pd.Timestamp("2016-06-03T09:00:00Z")  # epoch seconds
    assert acts.loc["m425", "occurred_at"] == pd.Timestamp("2011-04-26T09:17:14Z")  # 02:17:14 -07:00
    assert parse_time("2011-04-26T02:17:14-07:00") == dt.datetime(2011, 4, 26, 9, 17, 14, tzinfo=dt.UTC)
    assert parse_time("1303809434") == parse_time(1303809434) == dt.datetime(2011, 4, 26, 9, 17, 14, tzinfo=dt.UTC)
    assert parse_time("2016-05-21T22:36:42Z") == parse_time("2016-05-21T22:36:42")  # naive is UTC
    assert parse_time("yesterday") is None and parse_time(True) is None


def test_groups_are_containers_and_the_rest_is_the_company_stream(run) -> None:
    c = run["containers"]
    assert c.loc["62", "visibility"] == "private" and c.loc["61", "visibility"] == "public"
    assert c.loc["61", "member_count"] == 12 and c.loc["63", "kind"] == "group"  # 63: from the listing only
    assert c.loc["company_stream", "kind"] == "feed"
    assert set(run["acts"]["container_id"]) <= set(c.index)
    assert {"7", "8", "2"} <= set(c.index)  # the 2011 XML groups


def test_announced_comments_are_tallied_for_completeness(run) -> None:
    found = run["report"].details["completeness"]
    # 5001 announces 4 (3 present, 9006 quarantined), 5002 announces 3 (1 present); the XML counts match
    assert (found["replies_announced"], found["replies_fetched"], found["threads_incomplete"]) == (41, 38, 2)


def test_the_html_body_is_measured_not_kept(run) -> None:
    acts = run["acts"]
    # "Which pallet wrap do the night shifts use now?" inside <div><p>: the visible text only
    assert acts.loc["m5001", "content_length"] == len("Which pallet wrap do the night shifts use now?")
    assert acts.loc["m425", "content_length"] == len("hello")  # XML has no html-body: the body
