import pandas as pd

from pipelines.canonical import activities_table, raw_activities_to_canonical, split_malformed_activities
from pipelines.model import ACTIVITIES


def frame(rows):
    return raw_activities_to_canonical(pd.DataFrame(rows), "test")


def test_malformed_records_are_quarantined_with_reason_and_count():
    df = frame([
        {"event_id": "1", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post"},
        {"event_id": "2", "occurred_at": "not a time", "actor_key": "a", "verb": "post"},
        {"event_id": "3", "occurred_at": "2026-05-01T11:00:00Z", "actor_key": None, "verb": "post"},
        {"event_id": "4", "occurred_at": "2026-05-01T11:00:00Z", "actor_key": "b", "verb": "like"},
        {"event_id": "5", "occurred_at": "2026-05-01T12:00:00Z", "actor_key": "b", "verb": "reply",
         "content_length": "many"},
    ])
    split = split_malformed_activities(df)
    assert list(split.good["event_id"]) == ["1"]
    assert split.reasons == {"unparseable occurred_at": 1, "missing actor_key": 1, "unknown verb": 1,
                             "non-numeric content_length": 1}
    assert set(split.bad["event_id"]) == {"2", "3", "4", "5"}


def test_defaults_fill_optional_columns():
    df = frame([{"event_id": "1", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post"}])
    assert df.loc[0, "source"] == "test"
    assert not df.loc[0, "is_question"] and not df.loc[0, "is_deleted"]


def test_idea_statuses_are_checked_and_the_idea_flag_defaults_to_false():
    df = frame([
        {"event_id": "i1", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "idea", "is_idea": True},
        {"event_id": "v1", "occurred_at": "2026-05-01T10:05:00Z", "actor_key": "b", "verb": "vote",
         "parent_id": "i1", "target_key": "a"},
        {"event_id": "s1", "occurred_at": "2026-05-02T09:00:00Z", "actor_key": "c", "verb": "status_change",
         "parent_id": "i1", "idea_status": "planned"},
        {"event_id": "s2", "occurred_at": "2026-05-02T09:00:00Z", "actor_key": "c", "verb": "status_change",
         "parent_id": "i1"},
        {"event_id": "s3", "occurred_at": "2026-05-02T09:00:00Z", "actor_key": "c", "verb": "status_change",
         "parent_id": "i1", "idea_status": "under review"},
        {"event_id": "p1", "occurred_at": "2026-05-02T09:00:00Z", "actor_key": "c", "verb": "post",
         "idea_status": "open"},
    ])
    split = split_malformed_activities(df)
    assert list(split.good["event_id"]) == ["i1", "v1", "s1"]
    assert split.reasons == {"status_change without idea_status": 1, "unknown idea_status": 1,
                             "idea_status on a verb other than status_change": 1}
    assert list(split.good["is_idea"]) == [True, False, False]
    table = activities_table(split.good)
    assert table.schema == ACTIVITIES and table.column("idea_status").to_pylist() == [None, None, "planned"]


def test_a_source_frame_without_the_idea_columns_gets_their_defaults():
    # a source building its frame from records that predate the idea columns (NaN once reindexed)
    df = pd.DataFrame([{"source": "s", "event_id": "1", "occurred_at": pd.Timestamp("2026-05-01", tz="UTC"),
                        "actor_key": "a", "verb": "post", "content_length": 3, "is_question": False,
                        "is_edited": False, "is_deleted": False}], columns=list(ACTIVITIES.names))
    table = activities_table(df)
    assert table.column("is_idea").to_pylist() == [False] and table.column("idea_status").null_count == 1


def test_file_imports_carry_ideas_and_name_a_bad_status():
    from pipelines.sources.file_import_formats import _activity_row

    base = {"event_id": "1", "occurred_at": "2026-05-01T10:00:00Z", "actor_id": "u1"}
    row, why = _activity_row({**base, "verb": "status_change", "idea_status": "In progress"})
    assert why is None and row is not None and row["idea_status"] == "in_progress" and not row["is_idea"]
    row, why = _activity_row({**base, "verb": "idea", "is_idea": "yes"})
    assert why is None and row is not None and row["is_idea"] and row["idea_status"] is None
    assert _activity_row({**base, "verb": "status_change"})[1] == "a status_change needs an idea_status"
    assert _activity_row({**base, "verb": "post", "idea_status": "open"})[1] == (
        "idea_status is set on a post (only a status_change has one)")
    assert "is not one of open, planned" in str(_activity_row({**base, "verb": "status_change",
                                                               "idea_status": "shipped"})[1])


def test_topic_ids_hold_ids_only_and_anything_else_is_quarantined():
    ok = "tag:0123456789abcdef tx:cloud tx:kubernetes"
    df = frame([
        {"event_id": "1", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post", "topic_ids": ok},
        {"event_id": "2", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post"},
        # text where ids belong (a connector that put the tag itself, or the message) never lands
        {"event_id": "3", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post",
         "topic_ids": "how do I roll back a helm chart"},
        {"event_id": "4", "occurred_at": "2026-05-01T10:00:00Z", "actor_key": "a", "verb": "post",
         "topic_ids": "tx:cloud  tx:kubernetes"},
    ])
    split = split_malformed_activities(df)
    assert list(split.good["event_id"]) == ["1", "2"]
    assert split.reasons == {"malformed topic_ids": 2}
    assert activities_table(split.good).column("topic_ids").to_pylist() == [ok, None]
