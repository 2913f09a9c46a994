"""The complete shared datasets parse to the figures their SOURCE.md publishes.

Opt-in (the suite never reads files outside the repository): `ESN_FULL_DATASETS=<folder of the datasets>
bash scripts/test.sh tests/imports/test_full_datasets.py`. The samples of test_datasets.py cover the code
paths; this parses only, no landing, so the biggest file (367,662 edges) stays a few seconds.
"""

from __future__ import annotations

import pytest

from pipelines.sources import file_import
from tests.imports.conftest import SHARED

pytestmark = pytest.mark.skipif(SHARED is None or not SHARED.is_dir(),
                                reason="opt-in: set ESN_FULL_DATASETS to the folder of the full public datasets")

# (options, events, distinct participants, extra check) — figures from each dataset's SOURCE.md
CASES = {
    "snap-email-Eu-core": ({"format": "snap_edges", "path": "email-Eu-core.txt",
                            "departments": "email-Eu-core-department-labels.txt"}, 25571, 1005),
    "snap-CollegeMsg": ({"format": "snap_edges", "path": "CollegeMsg.txt"}, 59835, 1899),
    "snap-email-Enron": ({"format": "snap_edges", "path": "Email-Enron.txt"}, 367662, 36692),
    "konect-radoslaw-email": ({"format": "konect", "path": "out.radoslaw_email_email"}, 82927, 167),
    "benson-email-W3C": ({"format": "benson_temporal", "path": "email-W3C.txt"}, 124303, 20082),
    "benson-reality-mining/call": ({"format": "benson_temporal", "path": "call-Reality.txt"}, 103607, 9018),
    "benson-reality-mining/text": ({"format": "benson_temporal", "path": "text-Reality.txt"}, 27976, 1178),
    "mcnulty-workfrance": ({"format": "workfrance", "path": "workfrance_edgelist.csv",
                            "departments": "workfrance_vertices.csv"}, 2 * 932, 211),
    "perry-wolfe-enron": ({"format": "enron_tsv", "path": "messages.tsv", "recipients": "recipients.tsv",
                           "departments": "employees.tsv"}, 21635 + 38388, None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_full_dataset_matches_published_counts(name: str) -> None:
    options, events, participants = CASES[name]
    assert SHARED is not None
    folder = SHARED / name.split("/")[0]
    opts = file_import.FileImportOptions.model_validate(
        {k: (str(folder / v) if k in ("path", "departments", "recipients") else v) for k, v in options.items()})
    parsed, _ = file_import.parse(opts)
    acts = parsed.activities
    assert len(acts) == events
    if participants is not None:
        assert len(set(acts["actor_id"]) | set(acts["target_id"].dropna())) == participants
    if name == "perry-wolfe-enron":
        # the author's own unit test: first message 13 Nov 1998 04:07:00, last 21 Jun 2002 13:37:34
        assert str(acts["occurred_at"].min()) == "1998-11-13 04:07:00+00:00"
        assert str(acts["occurred_at"].max()) == "2002-06-21 13:37:34+00:00"
        assert parsed.people is not None and len(parsed.people) == 156
    if name == "konect-radoslaw-email":
        assert int(acts["occurred_at"].min().timestamp()) == 1262454010
        assert int(acts["occurred_at"].max().timestamp()) == 1285884492
    if name == "snap-CollegeMsg":
        assert (acts["occurred_at"].max() - acts["occurred_at"].min()).days == 193


@pytest.mark.parametrize(("file", "messages", "users"), [
    ("racket-2017-merged-racket-general.xml", 6757, 85),
    ("racket-2018-merged-racket-general.xml", 9709, 144),
    ("racket-2019-merged-racket-general.xml", 5706, 106),
])
def test_full_chatterjee_files_match_published_message_and_user_counts(file: str, messages: int, users: int) -> None:
    opts = file_import.FileImportOptions.model_validate(
        {"format": "chatterjee_xml", "path": str(SHARED / "chatterjee-slack-disentangled" / file)})
    acts = file_import.parse(opts)[0].activities
    speaking = acts[acts["verb"] != "mention"]
    assert len(speaking) == messages
    assert speaking["actor_id"].nunique() == users
