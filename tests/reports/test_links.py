"""Links that work (issue 16, part 3): every link of every email and of report.html is absolute, or points
at an element of the same document; images are the message's own parts (cid:) or embedded (data:).

With an absolute `docs_base_url` the definition links go to the published metric docs, and each of their
anchors exists in docs/metrics.md (generated from the same catalogue); without one, or with a relative
path no mail client can open, the definitions are inlined at the end of the email."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipelines.reports import render_reports

from .conftest import AS_OF, reports_config

REPO = Path(__file__).resolve().parents[2]
DOCS_URL = "https://esn.example.org/docs/metrics.html"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.targets: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.targets.add(str(a["id"]))
        if tag == "a" and a.get("name"):
            self.targets.add(str(a["name"]))
        if tag == "a" and "href" in a:
            self.hrefs.append(str(a["href"]))
        if tag == "img":
            self.srcs.append(str(a.get("src")))


def _links(html: str) -> _Links:
    parser = _Links()
    parser.feed(html)
    return parser


def _documents(out: Path) -> list[tuple[str, str, set[str]]]:
    """(name, html, Content-IDs of the message's parts) of every email written, and report.html."""
    docs = [("report.html", (out / "report.html").read_text(), set())]
    for eml in sorted(out.glob("*.eml")):
        msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        body = msg.get_body(("html",))
        assert body is not None
        cids = {str(p["Content-ID"]).strip("<>") for p in msg.walk() if p["Content-ID"]}
        docs.append((eml.name, body.get_content(), cids))
    return docs


def _check(docs: list[tuple[str, str, set[str]]]) -> list[str]:
    """The links of the documents that are neither absolute nor resolved in their own document."""
    bad = []
    for name, html, cids in docs:
        found = _links(html)
        assert found.hrefs, f"{name} has no link at all"
        for href in found.hrefs:
            parts = urlsplit(href)
            if parts.scheme in ("http", "https") and parts.netloc:
                continue
            if parts.scheme == "mailto" and parts.path:
                continue
            if href.startswith("#") and href[1:] in found.targets:
                continue
            bad.append(f"{name}: {href}")
        for src in found.srcs:
            ok = (src.startswith("cid:") and src[4:] in cids) if name.endswith(".eml") else src.startswith(
                "data:image/png;base64,")
            if not ok:
                bad.append(f"{name}: img {src[:60]}")
    return bad


@pytest.mark.parametrize("docs_base_url", [None, "docs/metrics.md"], ids=["unset", "relative"])
def test_without_an_absolute_docs_url_every_link_points_into_the_email(settings, catalogue, tmp_path: Path,
                                                                        docs_base_url: str | None) -> None:
    render_reports(settings, AS_OF, tmp_path, config=reports_config(catalogue, docs_base_url=docs_base_url))
    docs = _documents(tmp_path)
    assert len(docs) >= 3  # report.html and the emails of every audience with something to say
    assert _check(docs) == []
    for name, html, _ in docs:
        links = _links(html)
        assert "definitions" in links.targets, name
        assert not any(h.startswith("docs/") for h in links.hrefs), name
    plain = (tmp_path / "leadership.eml").read_text()
    assert "DEFINITIONS" in plain and "docs/metrics.md" not in plain


def test_with_an_absolute_docs_url_every_definition_link_resolves_in_the_published_docs(
        settings, tmp_path: Path) -> None:
    # the repository's catalogue, whose anchors docs/metrics.md is generated with
    config = reports_config(REPO / "catalogue" / "metrics.yaml", docs_base_url=DOCS_URL)
    render_reports(settings, AS_OF, tmp_path, config=config)
    docs = _documents(tmp_path)
    assert _check(docs) == []
    published = _links((REPO / "docs" / "metrics.md").read_text()).targets
    out_links = [h for _, html, _ in docs for h in _links(html).hrefs if h.startswith(DOCS_URL)]
    assert out_links, "no link to the published docs"
    missing = sorted({h for h in out_links if urlsplit(h).fragment and urlsplit(h).fragment not in published})
    assert missing == [], f"anchors absent from docs/metrics.md: {missing}"
