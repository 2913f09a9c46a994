"""Malformed dataset files are rejected whole, with the file, the line and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.sources import file_import
from pipelines.sources.file_import_formats import ImportRejected
from tests.imports.conftest import DATA, EVER, file_ctx, lake_files


def _reject(tmp_path: Path, expected: str, **options: str) -> ImportRejected:
    ctx = file_ctx(tmp_path, **options)
    with pytest.raises(ImportRejected) as err:
        file_import.extract(ctx, *EVER)
    assert expected in str(err.value), str(err.value)
    assert lake_files(ctx) == [], "a rejected import must land nothing"
    return err.value


def test_snap_line_with_one_field(tmp_path: Path) -> None:
    f = tmp_path / "edges.txt"
    f.write_text("# header\n0 1\n1 2\n3\n")
    _reject(tmp_path, f"{f}:line 4: 1 fields, expected 2 to 3 for snap_edges", format="snap_edges", path=str(f))


def test_snap_timestamp_missing_on_some_lines(tmp_path: Path) -> None:
    f = tmp_path / "edges.txt"
    f.write_text("1 2 1082040961\n3 4\n")
    _reject(tmp_path, f"{f}:line 2: a timestamp is present on some lines and missing on others",
            format="snap_edges", path=str(f))


def test_konect_non_numeric_timestamp(tmp_path: Path) -> None:
    f = tmp_path / "out.x"
    f.write_text("% asym positive\n% 2 3 3\n1 2 1 1262454010\n1 3 1 2010-01-02\n")
    _reject(tmp_path, f"{f}:line 4: timestamp '2010-01-02' is not a number", format="konect", path=str(f))


def test_snap_department_labels_with_a_duplicate_node(tmp_path: Path) -> None:
    edges, labels = tmp_path / "e.txt", tmp_path / "l.txt"
    edges.write_text("0 1\n")
    labels.write_text("0 1\r\n1 4\r\n0 2\r\n")
    _reject(tmp_path, f"{labels}:line 3: node listed twice", format="snap_edges", path=str(edges),
            departments=str(labels))


def test_benson_core_file_with_two_fields(tmp_path: Path) -> None:
    edges, core = tmp_path / "e.txt", tmp_path / "core.txt"
    edges.write_text("1 2 6.3200514346e10\n")
    core.write_text("1\n2 3\n")
    _reject(tmp_path, f"{core}:line 2: 2 fields, expected one node id", format="benson_temporal",
            path=str(edges), core=str(core))


def test_workfrance_wrong_header_and_bad_minutes(tmp_path: Path) -> None:
    f = tmp_path / "w.csv"
    f.write_text('"source","target","mins"\n3,159,8\n')
    _reject(tmp_path, f"{f}:line 1: header ['source', 'target', 'mins'] is not ['from', 'to', 'mins']",
            format="workfrance", path=str(f))
    f.write_text('"from","to","mins"\n3,159,8\n3,253,ten\n')
    _reject(tmp_path, f"{f}:line 3: mins 'ten' is not a non-negative number", format="workfrance", path=str(f))


def test_enron_recipient_of_an_unknown_message(tmp_path: Path) -> None:
    d = DATA / "perry-wolfe-enron"
    rec = tmp_path / "recipients.tsv"
    rec.write_text("1\t1\t59\n99999\t1\t15\n")
    _reject(tmp_path, f"{rec}:line 2: recipient of a message id that is not in the messages file",
            format="enron_tsv", path=str(d / "messages-head2000.tsv"), recipients=str(rec))


def test_enron_message_with_a_missing_field(tmp_path: Path) -> None:
    msgs, rec = tmp_path / "m.tsv", tmp_path / "r.tsv"
    msgs.write_text("1\tx/sent/1\t910930020\tHi\t138\n2\tx/sent/2\t910930021\t138\n")
    rec.write_text("1\t1\t59\n")
    _reject(tmp_path, f"{msgs}:line 2: 4 tab-separated fields, expected 5", format="enron_tsv",
            path=str(msgs), recipients=str(rec))


def test_chatterjee_broken_xml_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "c.xml"
    f.write_text("<slack>\n <message conversation_id=\"1\">\n  <ts>2017-05-11T15:46:08</ts>\n"
                 "  <user>Jacob</user>\n  <text>a < b</text>\n </message>\n</slack>\n")
    _reject(tmp_path, f"{f}:line 5: XML syntax error", format="chatterjee_xml", path=str(f))


def test_chatterjee_message_without_timestamp_is_reported_by_position(tmp_path: Path) -> None:
    f = tmp_path / "c.xml"
    f.write_text("<slack><message conversation_id=\"1\"><ts>2017-05-11T15:46:08</ts><user>A</user><text>x</text>"
                 "</message><message conversation_id=\"1\"><ts>soon</ts><user>B</user><text>y</text></message></slack>")
    _reject(tmp_path, f"{f}:message 2: ts 'soon' is not an ISO-8601 timestamp", format="chatterjee_xml", path=str(f))
