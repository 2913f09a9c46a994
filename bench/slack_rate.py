"""Benchmark: requests per minute the Slack connector achieves against each method's limit.

Runs a backfill against the local emulator (`pipelines.emulators.slack`) with Slack's tier limits on a
shortened "minute" (`--period`, default 2 s, so the run takes seconds), measured on the server side, and
writes bench/results/slack_rate.json: per method, requests, achieved and allowed rate (per real minute
equivalent), utilisation, and the 429s the server had to send. It never contacts slack.com.

    python -m bench.slack_rate [--period 2] [--days 30] [--fault-rate 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python bench/slack_rate.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.config import Settings, SourceConfig  # noqa: E402
from pipelines.emulators.slack import Faults, SlackEmulator  # noqa: E402
from pipelines.privacy import Pseudonymiser  # noqa: E402
from pipelines.sources import SourceContext, slack  # noqa: E402
from pipelines.sources.demo_org import build_org  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "slack_rate.json"
TOKEN = "xoxb-bench"


def run(period_s: float = 2.0, days: int = 30, people: int = 60, fault_rate: float = 0.0) -> dict:
    start = dt.date(2026, 1, 5)
    org = build_org(people, days + 1, start, 7, 1.0)
    with tempfile.TemporaryDirectory() as tmp, \
            SlackEmulator(org, token=TOKEN, period_s=period_s, faults=Faults(rate=fault_rate, seed=1)) as emu:
        end = start + dt.timedelta(days=days - 1)
        emu.advance_to(end)
        settings = Settings(lake_dir=Path(tmp) / "lake", warehouse_url=f"duckdb:///{tmp}/w.duckdb",
                            sources=[SourceConfig(name="slack", kind="slack", options={
                                "base_url": emu.url, "rate_period_s": period_s, "auto_join": True,
                                "include_private": True, "timeout_s": 2.0, "backoff_base_s": 0.05})])
        ctx = SourceContext(settings, settings.sources[0], Pseudonymiser(b"bench"))
        t0 = time.monotonic()
        report = slack.extract(ctx, start, end, token=TOKEN)
        wall = time.monotonic() - t0
        st = emu.stats
        methods = {}
        for method, n in sorted(st.requests.items()):
            span = st.last_at[method] - st.first_at[method]
            allowed = emu.limits[method] / period_s
            achieved = (n - 1) / span if n > 1 and span > 0 else None
            methods[method] = {
                "requests": n, "allowed_per_minute": emu.limits[method],
                "achieved_per_minute_equivalent": round(achieved * period_s, 2) if achieved else None,
                "utilisation": round(achieved / allowed, 3) if achieved else None,
                "server_429_over_limit": st.rate_limited[method],
            }
    return {"period_s": period_s, "days": days, "people": people, "fault_rate": fault_rate,
            "wall_s": round(wall, 2), "client_retries": report.details["http"]["retries"],
            "replies_announced": report.details["replies_announced"],
            "replies_fetched": report.details["replies_fetched"], "methods": methods,
            "note": "utilisation is meaningful for methods with many requests (history, replies); methods "
                    "called a handful of times are latency-bound by the run's structure, not by the budget"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", type=float, default=2.0, help="seconds standing for Slack's minute")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--fault-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    result = run(args.period, args.days, args.people, args.fault_rate)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
