import pandas as pd

from pipelines.canonical import raw_activities_to_canonical, split_malformed_activities


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
