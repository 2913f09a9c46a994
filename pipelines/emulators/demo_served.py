"""The demo organisation served by the loopback emulators of one or more platforms at once, with the source
configurations that extract it through the real connectors: what `esn demo --via slack,bitrix24,uservoice`
(or mangoapps) runs, and what the multi-platform tests use.

Each emulator serves the whole organisation in its own API's shapes (the same people, keyed by email on
every platform), so a run over several platforms sees each person on each of them; the HR directory comes
from the generator (`demo` source with `directory_only`). Limits are the emulators' defaults scaled up and
the clients' pauses scaled down, to keep a demo quick; the fault and limit behaviour is what the vendor
tests exercise. Credentials are the emulators' own, handed to the sources through environment variables
(set here, for this process), as a real deployment's would be.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from pipelines.config import SourceConfig
from pipelines.sources.demo_org import DemoOrg

#: the platforms a demo can be served on, in the order their sources are listed
PLATFORMS = ("slack", "bitrix24", "mangoapps", "uservoice")

_ENV = {
    "ESN_DEMO_SLACK_TOKEN": "xoxb-local-emulator",
    "ESN_DEMO_B24_WEBHOOK_CODE": "emulatorwebhookcode7",
    "ESN_DEMO_MA_API_KEY": "emulator-api-key",
    "ESN_DEMO_MA_USERNAME": "admin@demo-corp.example",
    "ESN_DEMO_MA_PASSWORD": "emulator-password",
    "ESN_DEMO_UV_CLIENT_ID": "emulator-key",
    "ESN_DEMO_UV_CLIENT_SECRET": "emulator-secret",
}


def parse_platforms(via: str) -> tuple[str, ...]:
    """`slack`, `bitrix24,uservoice` ... -> the platforms in PLATFORMS order; a clear error for others."""
    asked = [p.strip() for p in via.split(",") if p.strip()]
    unknown = sorted(set(asked) - set(PLATFORMS))
    if unknown or not asked:
        raise ValueError(f"--via is 'direct' or a comma-separated list of {', '.join(PLATFORMS)} "
                         f"(got {via!r})")
    return tuple(p for p in PLATFORMS if p in asked)


@contextmanager
def serve(org: DemoOrg, platforms: Sequence[str], end: dt.date,
          directory_options: dict[str, Any]) -> Iterator[tuple[list[SourceConfig], dict[str, str]]]:
    """Start an emulator per platform, advanced to `end`; yield the sources (the HR directory first) and
    the URL of each emulator. The emulators stop when the block ends."""
    from pipelines.emulators.bitrix24 import Bitrix24Emulator, Limits
    from pipelines.emulators.bitrix24_portal import build_portal
    from pipelines.emulators.mangoapps import MangoAppsEmulator
    from pipelines.emulators.slack import SlackEmulator
    from pipelines.emulators.uservoice import UserVoiceEmulator
    from pipelines.emulators.uservoice_account import build_account

    for name, value in _ENV.items():
        os.environ[name] = value
    sources = [SourceConfig.model_validate({"name": "hr", "kind": "demo",
                                            "options": {**directory_options, "directory_only": True}})]
    urls: dict[str, str] = {}
    with ExitStack() as stack:
        for platform in platforms:
            if platform == "slack":
                emu: Any = stack.enter_context(SlackEmulator(org, token=_ENV["ESN_DEMO_SLACK_TOKEN"], period_s=0.01))
                options: dict[str, Any] = {"base_url": emu.url, "token_env": "ESN_DEMO_SLACK_TOKEN",
                                           "rate_period_s": 0.01, "backoff_base_s": 0.01}
            elif platform == "bitrix24":
                emu = stack.enter_context(Bitrix24Emulator(
                    org, portal=build_portal(org), webhook_code=_ENV["ESN_DEMO_B24_WEBHOOK_CODE"],
                    limits=Limits(drain_per_s=1000, burst=200)))
                options = {"portal_url": emu.url, "webhook_user_id": emu.webhook_user,
                           "webhook_code_env": "ESN_DEMO_B24_WEBHOOK_CODE", "requests_per_s": 1000, "burst": 100,
                           "backoff_base_s": 0.01, "query_limit_wait_s": 0.05}
            elif platform == "mangoapps":
                emu = stack.enter_context(MangoAppsEmulator(
                    org, api_key=_ENV["ESN_DEMO_MA_API_KEY"], username=_ENV["ESN_DEMO_MA_USERNAME"],
                    password=_ENV["ESN_DEMO_MA_PASSWORD"]))
                options = {"base_url": emu.url, "api_key_env": "ESN_DEMO_MA_API_KEY",
                           "username_env": "ESN_DEMO_MA_USERNAME", "password_env": "ESN_DEMO_MA_PASSWORD",
                           "requests_per_s": 1000}
            elif platform == "uservoice":
                emu = stack.enter_context(UserVoiceEmulator(
                    org, account=build_account(org), client_id=_ENV["ESN_DEMO_UV_CLIENT_ID"],
                    client_secret=_ENV["ESN_DEMO_UV_CLIENT_SECRET"]))
                options = {"base_url": emu.url, "client_id_env": "ESN_DEMO_UV_CLIENT_ID",
                           "client_secret_env": "ESN_DEMO_UV_CLIENT_SECRET", "requests_per_s": 1000}
            else:  # parse_platforms keeps others out
                raise ValueError(f"no emulator for platform {platform!r}")
            emu.advance_to(end)
            urls[platform] = emu.url
            # a small demo organisation's weekends swing more than the drift check allows for a real one,
            # and idea forums have empty days: warnings, not stops
            quality = {"volume_drift": "warning", **({"empty_day": "warning"} if platform == "uservoice" else {})}
            sources.append(SourceConfig.model_validate({"name": platform, "kind": platform, "options": options,
                                                        "quality": quality}))
        yield sources, urls
