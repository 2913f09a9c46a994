"""Every edge / message list of the shared datasets, through the `file` source, against an independent parse.

The samples under tests/data/imports/ (see each PROVENANCE.md) are read here with plain Python or pandas,
without the source's code, and the landed raw tables must agree: one event per edge line, one post per
message plus one mention per distinct recipient, the same participants, the same departments, the same
first and last timestamps, and every identifier pseudonymised.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pipelines.sources import file_import
from tests.imports.conftest import DATA, EVER, file_ctx, landed

HEX_KEY = re.compile(r"^[0-9a-f]{24}$")
DATENUM_OFFSET = 62167305600


def _split_lines(path: Path, comments: tuple[str, ...] = ("#", "%")) -> list[list[str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith(comments):
            out.append(line.split())
    return out


def _run(tmp_path: Path, **options):
    ctx = file_ctx(tmp_path, **{k: str(v) if isinstance(v, Path) else v for k, v in options.items()})
    report = file_import.extract(ctx, *EVER)
    acts, people = landed(ctx, "activities"), landed(ctx, "people")
    assert report.rows["activities"] == len(acts)
    for col in ("actor_key", "target_key"):
        assert acts[col].dropna().map(lambda v: bool(HEX_KEY.match(v))).all(), f"{col} is not pseudonymised"
    assert people["person_key"].is_unique
    assert set(acts["actor_key"]) <= set(people["person_key"]), "every actor must be in the directory"
    assert acts["event_id"].is_unique
    return ctx, report, acts, people


def _check_edges(acts: pd.DataFrame, people: pd.DataFrame, edges: list[list[str]]) -> None:
    assert len(acts) == len(edges)
    assert (acts["verb"] == "mention").all()
    nodes = {e[0] for e in edges} | {e[1] for e in edges}
    assert acts["actor_key"].nunique() == len({e[0] for e in edges})
    assert len(set(acts["actor_key"]) | set(acts["target_key"])) == len(nodes)
    # the multiset of (sender, recipient) degree counts survives pseudonymisation
    assert sorted(Counter(acts["actor_key"]).values()) == sorted(Counter(e[0] for e in edges).values())
    assert sorted(Counter(acts["target_key"]).values()) == sorted(Counter(e[1] for e in edges).values())


def test_snap_eu_core_edges_and_department_labels(tmp_path: Path) -> None:
    d = DATA / "snap-email-Eu-core"
    _, report, acts, people = _run(tmp_path, format="snap_edges", path=d / "email-Eu-core.txt",
                                   departments=d / "email-Eu-core-department-labels.txt")
    edges = _split_lines(d / "email-Eu-core.txt")
    _check_edges(acts, people, edges)
    assert len(edges) == 25571  # published in SOURCE.md
    labels = dict(_split_lines(d / "email-Eu-core-department-labels.txt"))
    assert len(people) == len(labels) == 1005
    assert sorted(Counter(people["department"]).values()) == sorted(Counter(labels.values()).values())
    assert people["department"].nunique() == 42
    # no timestamps: every event on the documented synthetic date
    assert (acts["occurred_at"] == pd.Timestamp("2024-01-01", tz="UTC")).all()
    assert report.details["timestamps"] == "synthetic 2024-01-01"


def test_snap_college_msg_sample_keeps_unix_timestamps(tmp_path: Path) -> None:
    f = DATA / "snap-CollegeMsg" / "CollegeMsg-head5000.txt"
    _, report, acts, people = _run(tmp_path, format="snap_edges", path=f)
    edges = _split_lines(f)
    _check_edges(acts, people, edges)
    ts = sorted(int(e[2]) for e in edges)
    assert acts["occurred_at"].min() == pd.Timestamp(ts[0], unit="s", tz="UTC")
    assert acts["occurred_at"].max() == pd.Timestamp(ts[-1], unit="s", tz="UTC")
    assert len(report.days) == len({pd.Timestamp(t, unit="s").date() for t in ts})


def test_snap_email_enron_sample_skips_header_comments(tmp_path: Path) -> None:
    f = DATA / "snap-email-Enron" / "Email-Enron-head10004.txt"
    _, _, acts, people = _run(tmp_path, format="snap_edges", path=f)
    edges = _split_lines(f)
    assert len(edges) == 10000
    _check_edges(acts, people, edges)
    # event ids are the file's line numbers: the first edge is on line 5, after 4 header lines
    assert acts["event_id"].astype(int).min() == 5


def test_konect_radoslaw_sample(tmp_path: Path) -> None:
    f = DATA / "konect-radoslaw-email" / "out.radoslaw_email_email-head5002"
    _, _, acts, people = _run(tmp_path, format="konect", path=f)
    edges = _split_lines(f)
    assert len(edges) == 5000 and all(len(e) == 4 for e in edges)
    _check_edges(acts, people, edges)
    assert acts["occurred_at"].min() == pd.Timestamp(min(int(e[3]) for e in edges), unit="s", tz="UTC")
    assert acts["occurred_at"].min() == pd.Timestamp("2010-01-02 17:40:10", tz="UTC")


@pytest.mark.parametrize(("folder", "file", "core"), [
    ("benson-email-W3C", "email-W3C-head5000.txt", "core-email-W3C.txt"),
    ("benson-reality-mining", "call-Reality-head4000.txt", "core-call-Reality.txt"),
    ("benson-reality-mining", "text-Reality-head4000.txt", "core-text-Reality.txt"),
])
def test_benson_datenum_timestamps_and_core_members(tmp_path: Path, folder: str, file: str, core: str) -> None:
    d = DATA / folder
    _, _, acts, people = _run(tmp_path, format="benson_temporal", path=d / file, core=d / core)
    edges = _split_lines(d / file)
    _check_edges(acts, people, edges)
    secs = sorted(float(e[2]) - DATENUM_OFFSET for e in edges)
    assert abs((acts["occurred_at"].min() - pd.Timestamp(secs[0], unit="s", tz="UTC")).total_seconds()) < 1e-3
    assert abs((acts["occurred_at"].max() - pd.Timestamp(secs[-1], unit="s", tz="UTC")).total_seconds()) < 1e-3
    core_ids = {x[0] for x in _split_lines(d / core)}
    nodes = {e[0] for e in edges} | {e[1] for e in edges}
    assert (people["department"] == "core").sum() == len(core_ids)
    assert (people["department"] == "outside").sum() == len(nodes - core_ids)


def test_reality_mining_calls_fall_in_the_study_period(tmp_path: Path) -> None:
    d = DATA / "benson-reality-mining"
    _, _, acts, _ = _run(tmp_path, format="benson_temporal", path=d / "call-Reality-head4000.txt")
    assert acts["occurred_at"].min() >= pd.Timestamp("2004-01-01", tz="UTC")
    assert acts["occurred_at"].max() <= pd.Timestamp("2005-08-01", tz="UTC")


def test_workfrance_undirected_edges_give_both_directions(tmp_path: Path) -> None:
    d = DATA / "mcnulty-workfrance"
    _, _, acts, people = _run(tmp_path, format="workfrance", path=d / "workfrance_edgelist.csv",
                              departments=d / "workfrance_vertices.csv")
    edges = pd.read_csv(d / "workfrance_edgelist.csv")
    vertices = pd.read_csv(d / "workfrance_vertices.csv")
    assert len(edges) == 932 and len(acts) == 2 * len(edges)
    pairs = set(zip(acts["actor_key"], acts["target_key"], strict=True))
    assert all((b, a) in pairs for a, b in pairs)
    assert len(people) == len(vertices) == 211
    assert sorted(Counter(people["department"]).items()) == sorted(Counter(vertices["dept"]).items())


def test_perry_wolfe_enron_posts_and_one_mention_per_recipient(tmp_path: Path) -> None:
    d = DATA / "perry-wolfe-enron"
    _, report, acts, people = _run(tmp_path, format="enron_tsv", path=d / "messages-head2000.tsv",
                                   recipients=d / "recipients-messages1-2000.tsv",
                                   departments=d / "employees.tsv")
    messages = pd.read_csv(d / "messages-head2000.tsv", sep="\t", header=None, quoting=3,
                           names=["mid", "file", "unix", "subject", "sender"], encoding="latin-1")
    recipients = pd.read_csv(d / "recipients-messages1-2000.tsv", sep="\t", header=None,
                             names=["mid", "idx", "rid"])
    distinct = recipients.drop_duplicates(["mid", "rid"])
    assert (acts["verb"] == "post").sum() == len(messages) == 2000
    assert (acts["verb"] == "mention").sum() == len(distinct)
    mentions = acts[acts["verb"] == "mention"]
    assert set(mentions["parent_id"]) <= set(acts.loc[acts["verb"] == "post", "event_id"])
    assert acts["occurred_at"].min() == pd.Timestamp("1998-11-13 04:07:00", tz="UTC")  # SOURCE.md
    employees = pd.read_csv(d / "employees.tsv", sep="\t", header=None,
                            names=["id", "name", "dept", "long", "title", "gender", "seniority"])
    assert len(people) == len(employees) == 156
    assert sorted(Counter(people["department"]).items()) == sorted(Counter(employees["dept"]).items())
    assert sorted(Counter(people["level"]).items()) == sorted(Counter(employees["seniority"]).items())
    assert not {"name", "gender", "title"} & set(people.columns)
    assert report.details["messages"] == 2000


def test_chatterjee_threads_replies_and_mentions(tmp_path: Path) -> None:
    f = DATA / "chatterjee-slack-disentangled" / "racket-2017-merged-racket-general-first400.xml"
    _, _, acts, people = _run(tmp_path, format="chatterjee_xml", path=f)
    root = ET.parse(f).getroot()
    msgs = list(root.iter("message"))
    convs = {m.get("conversation_id") for m in msgs}
    mentions = sum(len(set(re.findall(r"<@([^>\s][^>]*)>", m.findtext("text") or ""))) for m in msgs)
    assert len(msgs) == 400
    assert (acts["verb"] == "post").sum() == len(convs)
    assert (acts["verb"] == "reply").sum() == len(msgs) - len(convs)
    assert (acts["verb"] == "mention").sum() == mentions
    assert acts.loc[acts["verb"] != "mention", "actor_key"].nunique() == len({m.findtext("user") for m in msgs})
    assert (acts["container_id"] == "racket/general").all()
    replies = acts[acts["verb"] == "reply"]
    assert set(replies["parent_id"]) <= set(acts.loc[acts["verb"] == "post", "event_id"])
    lengths = sorted(len(m.findtext("text") or "") for m in msgs)
    assert sorted(acts.loc[acts["verb"] != "mention", "content_length"].astype(int)) == lengths
