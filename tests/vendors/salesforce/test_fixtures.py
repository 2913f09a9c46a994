"""Every Salesforce fixture (tests/data/salesforce, see its PROVENANCE.md) is parsed by the connector's
transport and SOQL paging, or rejected with a message that says why. Bodies are served by an httpx
MockTransport under the real transport adapter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.errors import ApiError, AuthError
from pipelines.connectors.http import RetryPolicy
from pipelines.sources.salesforce_api import (
    DailyLimitExceeded,
    SalesforceApi,
    client_credentials,
    parse_datetime,
    parse_usage,
    to18,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "salesforce"
INSTANCE = "https://example.my.salesforce.com"


def _load(name: str) -> Any:
    body = json.loads((DATA / name).read_text())
    if isinstance(body, dict):
        body.pop("_note", None)
    return body


def _api(routes: dict[str, tuple[int, Any, dict[str, str]]], seen: list[str] | None = None) -> SalesforceApi:
    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request.url.path)
        status, body, headers = routes.get(request.url.path, (404, [{"errorCode": "NOT_FOUND", "message": "x"}], {}))
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(status, content=content, headers=headers)
    return SalesforceApi(lambda: ("token", INSTANCE), token_source="the test token",
                         policy=RetryPolicy(max_attempts=1), inner=httpx.MockTransport(handler))


def test_restforce_paginated_query_follows_next_records_url_relative_to_the_instance() -> None:
    first = _load("restforce_query_paginated_first_page_response.json")
    last = _load("restforce_query_paginated_last_page_response.json")
    seen: list[str] = []
    api = _api({"/services/data/v62.0/query": (200, first, {}), "/services/data/v26.0/query/01gD": (200, last, {})}, seen)
    pages = list(api.query("SELECT Text_Label FROM Whizbang"))
    assert [r["Text_Label"] for p in pages for r in p] == ["First Page", "Last Page"]
    assert seen == ["/services/data/v62.0/query", "/services/data/v26.0/query/01gD"]


def test_docs_next_records_url_forms_are_followed() -> None:
    frag = _load("docs_soql_query_nextRecordsUrl_fragment.json")
    head = {**frag["resources_query_example_head"], "records": []}
    nxt = head["nextRecordsUrl"]
    tail = {"done": True, "totalSize": 3222, "records": [{"Id": "001D000000IRFmaIAH"}]}
    seen: list[str] = []
    api = _api({"/services/data/v62.0/query": (200, head, {}), nxt: (200, tail, {})}, seen)
    assert sum(len(p) for p in api.query("SELECT Id FROM Account")) == 1
    assert seen[-1] == "/services/data/v68.0/query/01gRO0000016PIAYA2-500"
    assert frag["dome_query_fragment"]["nextRecordsUrl"].endswith("-2000")


@pytest.mark.parametrize("name", ["docs_soql_query_response_excerpt.json", "restforce_query_empty_response.json",
                                  "restforce_query_success_response.json"])
def test_query_bodies_parse_with_child_subqueries(name: str) -> None:
    body = _load(name)
    api = _api({"/services/data/v62.0/query": (200, body, {})})
    records = [r for p in api.query("SELECT Id FROM X") for r in p]
    assert len(records) == len(body["records"])
    if name == "restforce_query_success_response.json":
        child = records[0]["Whizbangs__r"]  # the shape of (SELECT ... FROM FeedComments)
        assert child["done"] and child["records"][0]["Name"] == "Child Whizbang"
        assert parse_datetime(records[0]["DateTime_Label"]).isoformat() == "2011-07-07T00:37:00+00:00"


def test_sfq_feed_comment_record_and_limit_header() -> None:
    exchange = _load("sfq_feedcomment_query_with_limit_header.json")
    api = _api({"/services/data/v62.0/query": (200, exchange["body"], exchange["headers"])})
    records = [r for p in api.query("SELECT Id FROM FeedComment") for r in p]
    assert records[0]["Id"].startswith("0D7") and to18(records[0]["Id"]) == records[0]["Id"]
    assert api.stats()["api_usage"] == "5252/15000" and api.stats()["api_remaining"] == 9748
    assert parse_usage(exchange["headers"]["Sforce-Limit-Info"]) == (5252, 15000)


def test_request_limit_exceeded_is_the_daily_limit_not_an_auth_error() -> None:
    exchange = _load("real_403_REQUEST_LIMIT_EXCEEDED.json")
    api = _api({"/services/data/v62.0/query": (exchange["status"], exchange["body"], {})})
    with pytest.raises(DailyLimitExceeded, match="daily API request limit"):
        list(api.query("SELECT Id FROM FeedItem"))


@pytest.mark.parametrize("name", ["real_401_INVALID_SESSION_ID.json", "real_401_INVALID_SESSION_ID_not_valid_for_rest.json"])
def test_invalid_session_is_an_auth_error_naming_the_token_source(name: str) -> None:
    body = _load(name)
    status, content = (body["status"], body["body"]) if isinstance(body, dict) else (401, body)
    api = _api({"/services/data/v62.0/query": (status, content, {})})
    with pytest.raises(AuthError, match="the test token"):
        list(api.query("SELECT Id FROM FeedItem"))


@pytest.mark.parametrize(("name", "code"), [("restforce_query_error_response.json", "INVALID_FIELD"),
                                            ("restforce_chatter_records_get_id_error_response.json", "NOT_FOUND")])
def test_rest_error_arrays_raise_with_the_error_code(name: str, code: str) -> None:
    api = _api({"/services/data/v62.0/query": (400, _load(name), {})})
    with pytest.raises(ApiError, match=code) as info:
        list(api.query("SELECT Bad FROM FeedItem"))
    assert info.value.code == code


@pytest.mark.parametrize("name", ["restforce_auth_error_response.json", "restforce_refresh_error_response.json"])
def test_token_endpoint_errors_are_auth_errors(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _load(name)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=body)
    real = httpx.HTTPTransport
    monkeypatch.setattr(httpx, "HTTPTransport", lambda *a, **k: httpx.MockTransport(handler))
    try:
        with pytest.raises(AuthError, match="invalid_grant"):
            client_credentials(INSTANCE, "id", "secret", policy=RetryPolicy(max_attempts=1))
    finally:
        monkeypatch.setattr(httpx, "HTTPTransport", real)


@pytest.mark.parametrize("name", [
    "restforce_chatter_news_feed_items_get_success_response.json", "restforce_chatter_feed-items_get_id_success_response.json",
    "restforce_chatter_comments_get_id_success_response.json", "restforce_chatter_likes_get_id_success_response.json",
    "restforce_get_updated_success_response.json", "restforce_get_deleted_success_response.json"])
def test_non_soql_payloads_are_rejected_as_not_query_results(name: str) -> None:
    # legacy Chatter REST v23 and the /updated, /deleted helpers are not what the connector reads
    api = _api({"/services/data/v62.0/query": (200, _load(name), {})})
    with pytest.raises(ApiError, match="no 'records' list"):
        list(api.query("SELECT Id FROM FeedItem"))


def test_chatter_rest_mixed_datetime_formats_both_parse() -> None:
    item = _load("restforce_chatter_feed-items_get_id_success_response.json")
    assert parse_datetime(item["createdDate"]) is not None  # ...000Z
    assert parse_datetime(item["comments"]["comments"][0]["createdDate"]) is not None  # ...000+0000


def test_ids_normalise_to_18_characters() -> None:
    assert to18("001D000000IRFma") == "001D000000IRFmaIAH"  # the docs' Account id
    assert to18("0D7aj0000005TbECAU") == "0D7aj0000005TbECAU"
    with pytest.raises(ValueError, match="15 or 18"):
        to18("005x")
