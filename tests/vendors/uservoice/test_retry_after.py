"""UserVoice's `Retry-After` is honoured in both forms: the docs define it as the unix epoch second when
the limit expires, tap-uservoice reads it as seconds to sleep. A wait beyond `max_retry_after_s` stops
with a clear error instead of sleeping for days."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipelines.connectors.errors import ApiError
from pipelines.connectors.http import RetryPolicy
from pipelines.sources.uservoice_api import UserVoiceApi, UserVoiceResponses, retry_after_seconds

DATA = Path(__file__).resolve().parents[2] / "data" / "uservoice"
STATUSES = (DATA / "own_GET-admin-statuses.json").read_bytes()
TOKEN = (DATA / "own_POST-oauth-token_access-token.json").read_bytes()


def _exchange(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def _api(answers: list[httpx.Response], *, clock: float, sleeps: list[float] | None = None,
         max_retry_after_s: float = 300.0) -> UserVoiceApi:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/token"):
            return httpx.Response(200, content=TOKEN)
        return answers.pop(0) if len(answers) > 1 else answers[0]
    return UserVoiceApi("https://example.uservoice.com", "key", "secret", credentials_source="the test credentials",
                        policy=RetryPolicy(max_attempts=3), inner=httpx.MockTransport(handler),
                        clock=lambda: clock, sleep=(sleeps.append if sleeps is not None else time.sleep),
                        max_retry_after_s=max_retry_after_s)


def test_the_two_forms_and_an_http_date() -> None:
    assert retry_after_seconds("2", now=1_709_546_000.0) == 2.0
    assert retry_after_seconds("0.25", now=1_709_546_000.0) == 0.25
    assert retry_after_seconds("1709546400", now=1_709_546_390.0) == 10.0  # an epoch second
    assert retry_after_seconds("1709546400", now=1_709_546_500.0) == 0.0  # already past
    assert retry_after_seconds("Mon, 04 Mar 2024 10:00:10 GMT", now=1_709_546_400.0) == 10.0
    assert retry_after_seconds("soon", now=0.0) is None and retry_after_seconds(None, now=0.0) is None


@pytest.mark.parametrize(("name", "now", "wait"), [("own_429_retry-after-seconds.json", 1_709_546_000.0, 2.0),
                                                    ("own_429_retry-after-epoch.json", 1_709_546_395.5, 4.5)])
def test_the_fixture_exchanges_give_the_wait_they_mean(name: str, now: float, wait: float) -> None:
    ex = _exchange(name)
    hook = UserVoiceResponses(max_retry_after_s=300, clock=lambda: now)
    response = httpx.Response(ex["status"], headers=ex["headers"], json=ex["body"],
                              request=httpx.Request("GET", "https://x/api/v2/admin/suggestions"))
    with pytest.raises(Exception, match="HTTP 429") as info:
        hook("api/v2/admin/suggestions", response)
    assert getattr(info.value, "retry_after", None) == wait
    assert hook.remaining == 0 and hook.limit == 110


def test_a_429_in_seconds_is_waited_then_the_call_succeeds() -> None:
    api = _api([httpx.Response(429, headers={"Retry-After": "0.3"}, json={}), httpx.Response(200, content=STATUSES)],
               clock=time.time())
    began = time.monotonic()
    assert len(api.records("statuses")) == 5
    assert time.monotonic() - began >= 0.25
    assert api.responses.waits == [0.3] and api.stats()["retries"] == {"RateLimitedError": 1}


def test_a_429_as_an_epoch_time_is_waited_until_then() -> None:
    now = 1_709_546_399.6  # the server's epoch 1709546400 is 0.4 s away
    api = _api([httpx.Response(429, headers={"Retry-After": "1709546400"}, json={}),
                httpx.Response(200, content=STATUSES)], clock=now)
    began = time.monotonic()
    assert len(api.records("statuses")) == 5
    assert time.monotonic() - began >= 0.35
    assert api.responses.waits == [pytest.approx(0.4)]  # not 1.7e9 seconds


def test_a_503_with_an_epoch_retry_after_sleeps_the_difference() -> None:
    sleeps: list[float] = []
    api = _api([httpx.Response(503, headers={"Retry-After": "1709546405"}), httpx.Response(200, content=STATUSES)],
               clock=1_709_546_400.0, sleeps=sleeps)
    assert len(api.records("statuses")) == 5
    assert sleeps == [5.0]


def test_a_wait_longer_than_allowed_stops_with_a_clear_error() -> None:
    ex = _exchange("own_429_retry-after-epoch.json")
    api = _api([httpx.Response(429, headers=ex["headers"], json=ex["body"])], clock=1_709_536_400.0)
    with pytest.raises(ApiError, match=r"statuses: HTTP 429: the server asks to wait 10000 s \(Retry-After\), more "
                                       r"than max_retry_after_s=300") as info:
        api.records("statuses")
    assert info.value.code == "retry_after_too_long"
