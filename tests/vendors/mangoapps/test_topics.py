"""Topic ids of MangoApps posts and comments (issue 18): computed from the HTML body's prose while the
feed item is in memory (no field of the assumed schema holds tags: hashtags in the prose are the tags);
only the ids are landed, never the text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from pipelines import lake
from pipelines.sources import mangoapps
from pipelines.topics import TopicRules, tag_id
from tests.vendors.yammer.helpers import make_ctx

DAY = dt.date(2026, 3, 2)
AT = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC).timestamp()
RULES = TopicRules.model_validate({"taxonomy": [
    {"id": "vpn", "name": "VPN", "terms": ["vpn", "remote access"]},
    {"id": "k8s", "name": "Kubernetes", "terms": ["kubernetes"], "tags": ["k8s"]},
]})
OPTS = {"base_url": "http://127.0.0.1:9"}


def _run(tmp_path: Path, rules: TopicRules | None) -> mangoapps._Run:
    ctx = make_ctx(tmp_path, "mangoapps", OPTS)
    ctx.settings.topics = rules  # type: ignore[assignment]
    return mangoapps._Run(ctx, mangoapps.MangoAppsOptions.model_validate(OPTS), None, None,  # type: ignore[arg-type]
                          DAY, DAY)


def _item(fid: int, body: str, comment: str, **extra: Any) -> dict[str, Any]:
    return {"id": fid, "body": body, "from_user": {"id": 7}, "group_id": 0, "created_at": AT, "updated_at": AT,
            "liked_list": [{"id": 9}],
            "comments": [{"id": fid * 10, "body": comment, "user": {"id": 8}, "created_at": AT + 60}], **extra}


def _rows(run: mangoapps._Run, *items: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    floor = dt.datetime(DAY.year, DAY.month, DAY.day, tzinfo=dt.UTC)
    rows, _ = run.rows({str(i["id"]): i for i in items}, floor, floor + dt.timedelta(days=1), {})
    return rows


def test_topics_come_from_the_prose_and_only_their_ids_are_kept(tmp_path: Path) -> None:
    body = ('<p><b>Remote access</b> is down &amp; #K8s #outage, see <a href="https://x.example/kubernetes">'
            "https://x.example/kubernetes</a></p>")
    notice = _item(2, "kubernetes upgrade", "vpn", is_system=True)
    rows = _rows(_run(tmp_path, RULES), _item(1, body, "is it the VPN?"), _item(3, "lunch?", "+1"), notice)
    posts = {r["post_id"]: r for r in rows["posts"]}
    comments = {r["comment_id"]: r for r in rows["comments"]}
    # the hashtag #K8s is the taxonomy's k8s; markup and links are not prose
    assert posts["1"]["topic_ids"] == f"{tag_id('outage')} tx:k8s tx:vpn"
    assert comments["10"]["topic_ids"] == "tx:vpn"
    assert posts["3"]["topic_ids"] is None and comments["30"]["topic_ids"] is None
    assert "2" not in posts and "20" not in comments  # a system notice is no activity at all
    bare = _rows(_run(tmp_path, None), _item(1, body, "is it the VPN?"))  # no rules, no topics
    assert bare["posts"][0]["topic_ids"] is None and bare["comments"][0]["topic_ids"] is None

    parts = {s: pa.Table.from_pylist(rows[s], schema=mangoapps.STREAMS[s]) for s in mangoapps.STREAMS}
    got = {r["event_id"]: r for r in mangoapps.canonical_activities(parts, "ma")}
    assert got["feed:1"]["topic_ids"] == posts["1"]["topic_ids"] and got["comment:10"]["topic_ids"] == "tx:vpn"
    assert all(r["topic_ids"] is None for r in got.values() if r["verb"] == "reaction")
    assert "Remote" not in str(got) and "VPN?" not in str(got)


def test_rows_landed_before_topic_ids_still_canonicalise_and_are_replaced(tmp_path: Path) -> None:
    run = _run(tmp_path, RULES)
    rows = _rows(run, _item(1, "kubernetes", "vpn"))
    for stream in ("posts", "comments"):
        old = pa.schema([f for f in mangoapps.STREAMS[stream] if f.name != "topic_ids"])
        table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "topic_ids"} for r in rows[stream]], schema=old)
        lake.write_partition(lake.raw_dir(run.ctx.lake_dir, run.name, stream), DAY, table)
    acts = mangoapps.canonicalise(run.ctx, DAY)["activities"].set_index("event_id")
    assert sorted(acts.index) == ["comment:10", "feed:1"] and acts["topic_ids"].isna().all()
    run.land({"posts": rows["posts"], "comments": [], "likes": []}, {})  # the post read again
    acts = mangoapps.canonicalise(run.ctx, DAY)["activities"].set_index("event_id")
    assert acts.loc["feed:1", "topic_ids"] == "tx:k8s" and pd.isna(acts.loc["comment:10", "topic_ids"])
