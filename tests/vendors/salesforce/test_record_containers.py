"""Posts on records (accounts, opportunities, cases...) get a container per object type,
`records:<key prefix>`, and that container is in the containers snapshot, so the validation's
referential check (every activity's container is known) never blocks them, including for object types
seen only by an earlier run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import sqlalchemy as sa

from pipelines.connectors.http import RetryPolicy
from pipelines.connectors.state import StateStore
from pipelines.sources import salesforce
from pipelines.sources.salesforce_api import SalesforceApi
from tests.vendors.yammer.helpers import activities, make_ctx

INSTANCE = "https://example.my.salesforce.com"
DAY1 = dt.date(2026, 2, 2)
DAY2 = DAY1 + dt.timedelta(days=1)
USERS = [{"Id": f"005Dm{i:010d}AAA", "Email": f"person{i}@example.com", "IsActive": True} for i in range(3)]
GROUP = "0F9Dm0000000001AAA"


def _item(n: int, parent: str, day: dt.date, author: int) -> dict[str, Any]:
    stamp = f"{day.isoformat()}T1{n % 10}:00:00.000+0000"
    return {"Id": f"0D5Dm{n:010d}AAA", "ParentId": parent, "CreatedById": USERS[author]["Id"],
            "CreatedDate": stamp, "SystemModstamp": stamp, "Type": "TextPost", "Body": "hello", "IsDeleted": False,
            "BestCommentId": None,
            "FeedComments": {"done": True, "totalSize": 1, "records": [
                {"Id": f"0D7Dm{n:010d}AAA", "CreatedById": USERS[(author + 1) % 3]["Id"],
                 "CreatedDate": stamp, "CommentBody": "reply", "IsDeleted": False}]},
            "FeedLikes": {"done": True, "totalSize": 1, "records": [
                {"Id": f"0I0Dm{n:010d}AAA", "CreatedById": USERS[(author + 2) % 3]["Id"],
                 "CreatedDate": stamp}]}}


def _api(items: list[dict[str, Any]]) -> SalesforceApi:
    def handler(request: httpx.Request) -> httpx.Response:
        q = request.url.params.get("q", "")
        if "FROM User" in q:
            records: list[dict[str, Any]] = USERS
        elif "FROM CollaborationGroup" in q:
            records = [{"Id": GROUP, "CollaborationType": "Public", "MemberCount": 3,
                        "CreatedDate": "2025-01-01T00:00:00.000+0000"}]
        else:
            records = items
        return httpx.Response(200, json={"done": True, "totalSize": len(records), "records": records},
                              headers={"Sforce-Limit-Info": "api-usage=3/15000"})
    return SalesforceApi(lambda: ("token", INSTANCE), token_source="the test token",
                         policy=RetryPolicy(max_attempts=1), inner=httpx.MockTransport(handler))


def _run(ctx, items: list[dict[str, Any]], day: dt.date) -> None:
    engine = sa.create_engine(ctx.settings.warehouse_url)
    api = _api(items)
    try:
        store = StateStore(engine, ctx.source.name)
        store.ensure_table()
        salesforce._Run(ctx, api, store, day, day).execute()
    finally:
        api.close()
        engine.dispose()


def test_posts_on_records_have_their_object_type_container_in_the_snapshot(tmp_path) -> None:
    ctx = make_ctx(tmp_path, "salesforce", {"token_env": "SF_UNUSED", "instance_url": INSTANCE})
    _run(ctx, [_item(1, GROUP, DAY1, 0), _item(2, USERS[1]["Id"], DAY1, 1),
               _item(3, "001Dm0000000001AAA", DAY1, 2), _item(4, "006Dm0000000001AAA", DAY1, 0)], DAY1)
    _run(ctx, [_item(5, "500Dm0000000001AAA", DAY2, 1)], DAY2)

    first = salesforce.canonicalise(ctx, DAY1)["containers"]
    snapshot = salesforce.canonicalise(ctx, DAY2)["containers"].set_index("container_id")
    acts = activities(salesforce.canonicalise, ctx, DAY1, DAY2)
    used = set(acts["container_id"])
    assert used == {GROUP, "user_profiles", "records:001", "records:006", "records:500"}
    assert set(first["container_id"]) >= used - {"records:500"}
    # the latest snapshot lists every container named by the landed activities, earlier runs' included
    assert used <= set(snapshot.index)
    records = snapshot.loc[["records:001", "records:006", "records:500"]]
    assert (records["kind"] == "record_feed").all() and (records["visibility"] == "private").all()
    assert snapshot.loc["user_profiles", "visibility"] == "public"
    assert snapshot.loc[GROUP, "kind"] == "group"
    assert snapshot.reset_index()["container_id"].is_unique
    # every verb of a post on a record lands in the record type's container
    on_records = acts[acts["container_id"].str.startswith("records:")]
    assert set(on_records["verb"]) == {"post", "reply", "reaction"}


def test_usage_header_is_read_through_the_response_hook() -> None:
    api = _api([])
    try:
        assert [r for page in api.query("SELECT Id FROM User") for r in page] == USERS
        assert api.stats()["api_usage"] == "3/15000"
    finally:
        api.close()
