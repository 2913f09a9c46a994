"""Unit tests of the Bitrix24 paging and limit primitives (no HTTP): scans that survive posts moving between
pages, short pages and holes, comment cursors, the operating-time governor, the portal's bucket, parameter
encoding, dates, BBCode features, the department tree and the canonical activities."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest

from pipelines.connectors.errors import ApiError
from pipelines.sources import bitrix24
from pipelines.sources.bitrix24_api import (
    Answer,
    CommentScan,
    OffsetScan,
    OperatingTime,
    PortalBudget,
    command,
    flatten,
    parse_datetime,
    result_items,
)


class MovingFeed:
    """A Feed of `n` posts ordered newest first; `move_after[k]` = the position of a post that moves to the
    head once page k has been served (a comment arrived), as `LOG_UPDATE DESC` ordering does."""

    def __init__(self, n: int, move_after: dict[int, int]):
        self.order = [str(1000 - i) for i in range(n)]
        self.move_after = move_after
        self.served = 0

    def page(self, start: int) -> Answer:
        first = (start // 50) * 50
        rows = [{"ID": i} for i in self.order[first:first + 50]]
        nxt = first + 50 if len(self.order) > first + 50 else None
        pos = self.move_after.get(self.served)
        if pos is not None:
            self.order.insert(0, self.order.pop(pos))
        self.served += 1
        return Answer(rows, nxt, total=50)  # the total lies


def _drive(scan: Any, feed: MovingFeed) -> None:
    while not scan.done:
        req = scan.request()
        scan.feed(feed.page(int(req[1]["start"])))


def test_a_post_moving_to_the_head_mid_scan_is_found_by_reading_the_head_again() -> None:
    feed = MovingFeed(180, {1: 160})  # after page 1, the post at 160 (not read yet) jumps to the head
    scan = OffsetScan("feed", "log.blogpost.get", {})
    _drive(scan, feed)
    assert set(scan.items) == set(feed.order) and len(scan.items) == 180
    assert scan.head_new == 1 and scan.head_pages >= 1

    naive = OffsetScan("feed", "log.blogpost.get", {}, reread_head=False)
    _drive(naive, MovingFeed(180, {1: 160}))
    assert len(naive.items) == 179  # without the second read of the head it is lost


def test_many_moves_are_all_found_and_nothing_is_taken_twice() -> None:
    feed = MovingFeed(400, {k: 399 - k for k in range(1, 7)})
    scan = OffsetScan("feed", "log.blogpost.get", {})
    _drive(scan, feed)
    assert sorted(scan.items) == sorted(feed.order)


def test_a_short_page_with_a_next_and_a_result_with_holes_do_not_end_the_scan() -> None:
    scan = OffsetScan("feed", "log.blogpost.get", {}, reread_head=False)
    scan.feed(Answer({"0": {"ID": "9"}, "2": {"ID": "7"}}, 50))  # a draft was dropped at position 1
    assert not scan.done and scan.start == 50
    scan.feed(Answer([{"ID": "5"}], None))
    assert scan.done and list(scan.items) == ["9", "7", "5"]


def test_a_next_that_does_not_advance_ends_the_scan_and_is_counted() -> None:
    scan = OffsetScan("feed", "log.blogpost.get", {}, reread_head=False)
    scan.feed(Answer([{"ID": "9"}], 50))
    scan.feed(Answer([{"ID": "8"}], 50))
    assert scan.done and scan.anomalies == 1


def test_rows_without_an_id_or_not_objects_are_rejected_by_name() -> None:
    with pytest.raises(ApiError, match="log.blogpost.get: a row without 'ID'"):
        OffsetScan("f", "log.blogpost.get", {}).feed(Answer([{"TITLE": "x"}]))
    with pytest.raises(ApiError, match="a row of the result is a str"):
        OffsetScan("f", "log.blogpost.get", {}).feed(Answer(["x"]))
    with pytest.raises(ApiError, match="result is a str, not a list"):
        result_items("nope", "user.get")
    assert result_items([], "x") == [] and result_items({}, "x") == []


def _comments(ids: list[int], day: str = "2026-02-01") -> Answer:
    return Answer({"comments": [{"id": i, "comment_id": i - 1000, "post_id": 7, "date": f"{day}T10:00:00+03:00",
                                 "text": ""} for i in ids], "files": []})


def test_comments_are_paged_newest_first_with_last_id_down_to_the_cursor() -> None:
    scan = CommentScan("u0", "42", cursor=1005, limit=3)
    assert scan.request() == ("log.blogcomment.user.get", {"USER_ID": "42", "LIMIT": 3})  # never FIRST_ID
    scan.feed(_comments([1010, 1009, 1008]))
    assert not scan.done and scan.request()[1]["LAST_ID"] == 1008
    scan.feed(_comments([1007, 1006, 1005]))
    assert scan.done and sorted(scan.rows) == [1006, 1007, 1008, 1009, 1010]  # not the cursor's own


def test_a_comment_scan_stops_at_the_floor_and_rejects_rows_without_an_id() -> None:
    floor = dt.datetime(2026, 2, 1, tzinfo=dt.UTC)
    scan = CommentScan("u0", "42", limit=2, floor=floor)
    scan.feed(_comments([20, 19], day="2026-01-20"))
    assert scan.done
    with pytest.raises(ApiError, match="a comment without a numeric 'id'"):
        CommentScan("u0", "42").feed(Answer({"comments": [{"comment_id": 1}]}))
    with pytest.raises(ApiError, match="has no 'comments'"):
        CommentScan("u0", "42").feed(Answer({"files": []}))


def test_the_governor_waits_for_the_reset_once_the_headroom_is_used() -> None:
    now = [1000.0]
    slept: list[float] = []
    gov = OperatingTime(limit_s=480, headroom=0.8, clock=lambda: now[0], sleep=slept.append)
    gov.observe("log.blogpost.get", {"operating": 100.0, "operating_reset_at": 1300})
    assert gov.before("log.blogpost.get") == 0.0
    gov.observe("log.blogpost.get", {"operating": 390.0, "operating_reset_at": 1300})
    assert gov.before("log.blogpost.get") == 301.0 and slept == [301.0]  # the reset, and a second for rounding
    assert gov.before("log.blogpost.get") == 0.0  # waited once: the next answer says more
    assert gov.before("user.get") == 0.0  # other methods are not held up
    now[0] = 1400.0
    assert gov.blocked_wait("log.blogpost.get") == gov.basket_s  # the known reset passed: one basket
    gov.observe("batch", {"start": 1.0})  # no operating in the answer: nothing recorded
    assert "batch" not in gov.seen


def test_the_portal_bucket_starts_empty_and_slows_down_at_each_503() -> None:
    budget = PortalBudget(2.0, 50)
    assert budget.bucket("a") is budget.bucket("b")  # one bucket for every method
    assert budget.portal._tokens == 0.0  # no opening burst
    waits = [budget.limited(1.0) for _ in range(3)]
    assert waits == [1.0, 2.0, 4.0] and budget.portal.rate == pytest.approx(1.9 * 0.8 ** 3)
    budget.ok()
    assert budget.limited(1.0) == 1.0
    for _ in range(20):
        budget.limited(1.0)
    assert budget.portal.rate == 0.5 and budget.limited(100.0) == 60.0


def test_parameters_are_encoded_as_php_does() -> None:
    assert flatten({"FILTER": {">ID": 5, "ACTIVE": True}, "LOG_RIGHTS": ["SG1", "DR2"], "X": None}) == [
        ("FILTER[>ID]", "5"), ("FILTER[ACTIVE]", "1"), ("LOG_RIGHTS[0]", "SG1"), ("LOG_RIGHTS[1]", "DR2")]
    assert command("log.blogpost.get", {"LOG_RIGHTS": ["SG5"], "start": 50}) == \
        "log.blogpost.get?LOG_RIGHTS%5B0%5D=SG5&start=50"
    assert command("user.admin", None) == "user.admin"


@pytest.mark.parametrize(("value", "tz", "want"), [
    ("2026-03-17T15:29:15+01:00", "UTC", "2026-03-17T14:29:15+00:00"),
    ("2026-03-17T15:29:15Z", "UTC", "2026-03-17T15:29:15+00:00"),
    ("21.10.2015 17:00:50", "Europe/Moscow", "2015-10-21T14:00:50+00:00"),  # the old docs' portal format
    ("21.10.2015", "UTC", "2015-10-21T00:00:00+00:00"),
    ("2026-03-17 15:29:15", "Europe/Moscow", "2026-03-17T12:29:15+00:00"),
    ("", "UTC", None), ("yesterday", "UTC", None), (None, "UTC", None), ("32.13.2020 10:00:00", "UTC", None),
])
def test_dates_are_read_in_every_documented_form(value: Any, tz: str, want: str | None) -> None:
    got = parse_datetime(value, bitrix24.timezone(tz))
    assert (got.isoformat() if got else None) == want


def test_bbcode_mentions_questions_and_lengths() -> None:
    text = "[USER=7300114]Given0001 Family0001[/USER], can you [B]review[/B] [URL=https://x.example?a=1]this[/URL]?"
    assert bitrix24.mentioned_ids(text + " [user=7300114]again[/user] [USER=9]x[/USER]") == ["7300114", "9"]
    assert bitrix24.shown_text(text) == "Given0001 Family0001, can you review this?"
    assert "Given0001" not in bitrix24.prose(text) and "?" in bitrix24.prose(text)
    assert "?" not in bitrix24.prose("[URL=https://x.example?a=1]link[/URL] done")


def test_the_department_tree_gives_top_level_or_leaf_names() -> None:
    rows = [{"ID": "1", "NAME": "Company"}, {"ID": "2", "NAME": "Sales", "PARENT": "1"},
            {"ID": "3", "NAME": "Sales East", "PARENT": "2"}, {"ID": "4", "NAME": "Key Accounts", "PARENT": "3"},
            {"ID": "5", "NAME": "Loop A", "PARENT": "6"}, {"ID": "6", "NAME": "Loop B", "PARENT": "5"}]
    top = bitrix24.department_names(rows, "top")
    assert top[4] == top[3] == top[2] == "Sales" and top[1] == "Company"
    assert top[5] in ("Loop A", "Loop B")  # a loop in the tree ends the climb instead of hanging
    assert bitrix24.department_names(rows, "leaf")[4] == "Key Accounts"


def test_canonical_activities_of_a_day() -> None:
    ts = dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC)
    posts = pa.Table.from_pylist([{"post_id": "210001", "container_id": "sg:3", "created_at": ts, "actor_key": "a",
                                   "content_length": 10, "is_question": True, "is_important": True, "comment_count": 1,
                                   "mention_keys": ["b"]}], schema=bitrix24.POSTS)
    comments = pa.Table.from_pylist([
        {"comment_id": "c3000001", "post_id": "210001", "log_id": None, "container_id": "sg:3", "created_at": ts,
         "actor_key": "b", "parent_actor_key": "a", "content_length": None, "mention_keys": []},
        {"comment_id": "c3000002", "post_id": None, "log_id": "600001", "container_id": None, "created_at": ts,
         "actor_key": "c", "parent_actor_key": None, "content_length": 4, "mention_keys": ["a"]}], schema=bitrix24.COMMENTS)
    views = pa.Table.from_pylist([{"post_id": "210001", "container_id": "sg:3", "created_at": ts, "actor_key": "c",
                                   "parent_actor_key": "a"}], schema=bitrix24.VIEWS)
    got = {r["event_id"]: r for r in bitrix24.canonical_activities(posts, comments, views, "b24")}
    assert got["p210001"]["verb"] == "post" and got["p210001"]["is_question"]
    assert (got["p210001:mention:b"]["target_key"], got["p210001:mention:b"]["parent_id"]) == ("b", "p210001")
    assert (got["c3000001"]["verb"], got["c3000001"]["target_key"], got["c3000001"]["parent_id"]) == ("reply", "a", "p210001")
    assert (got["c3000002"]["thread_id"], got["c3000002"]["parent_id"]) == ("l600001", None)
    assert got["c3000002:mention:a"]["parent_id"] == "c3000002"
    assert (got["p210001:view:c"]["verb"], got["p210001:view:c"]["occurred_at"]) == ("view", ts)
    assert len(got) == 6
