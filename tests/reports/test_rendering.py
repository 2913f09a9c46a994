"""Every email and report.html rendered in headless Chromium at desktop and phone widths (issue 16,
part 7): the alerts (and the "data incomplete" banner when there is one) are in the first screen, 900 px.

Needs the Debian package `chromium`; skipped without it locally, a failure when $CI is set (as
test_screenshot.py). The probe script is added to a test copy only: reports never carry scripts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.reports import render_reports

from .conftest import AS_OF, reports_config
from .test_freshness import WEEK, _config, _warehouse
from .test_screenshot import _chromium, _run

FIRST_SCREEN = 900
WIDTHS = {"desktop": 1280, "phone": 390}
PROBE = """<script>window.addEventListener('load', function () {
  function top(sel) { var e = document.querySelector(sel); if (!e) return null;
    var r = e.getBoundingClientRect(); return [r.top + window.scrollY, r.bottom + window.scrollY]; }
  var out = {alerts: top('[data-role="alerts"] h2'), banner: top('[data-role="data-incomplete"]'),
             figures: top('[data-role="objectives"]'), width: document.documentElement.clientWidth,
             images: [].map.call(document.images, function (i) { return i.complete && i.naturalWidth > 0; })};
  out.scrollWidth = document.documentElement.scrollWidth;
  if (window.parent !== window) { window.parent.postMessage(JSON.stringify(out), '*'); return; }
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});</script>"""
# headless Chromium will not make its window narrower than 500 px: a phone is an iframe of its width (its
# own viewport), whose probe posts what it measured to the frame page
FRAME = """<!DOCTYPE html><html><body style="margin:0"><iframe src="{src}" width="{width}" height="{height}"
style="border:0;display:block"></iframe><script>window.addEventListener('message', function (e) {{
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = e.data;
  document.body.appendChild(pre); }});</script></body></html>"""


def _measure(browser: str, page: Path, width: int, profile: Path) -> dict:
    probe = page.with_name(f"probe-{width}-{page.name}")
    probe.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    target = probe
    if width < 500:
        target = page.with_name(f"frame-{width}-{page.name}")
        target.write_text(FRAME.format(src=probe.name, width=width, height=FIRST_SCREEN))
    dom = _run(browser, profile, f"--window-size={max(width, 500)},{FIRST_SCREEN}", "--virtual-time-budget=5000",
               "--allow-file-access-from-files", "--dump-dom", target.as_uri()).stdout
    found = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert found, f"the probe did not run on {page.name}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.mark.parametrize("device", sorted(WIDTHS))
def test_the_alerts_of_every_email_and_the_report_are_in_the_first_screen(settings, engine, catalogue,
                                                                          tmp_path: Path, device: str) -> None:
    browser = _chromium()
    out = tmp_path / "out"
    render_reports(settings, AS_OF, out, config=reports_config(catalogue), engine=engine)
    pages = sorted(out.glob("*.html"))
    assert {p.name for p in pages} >= {"report.html", "leadership.html", "sales-head.html"}
    for page in pages:
        m = _measure(browser, page, WIDTHS[device], tmp_path / f"profile-{page.stem}")
        assert m["width"] == WIDTHS[device], m
        # the card narrows to the screen (max-width 648 px) and every table fits it: no sideways scrolling
        assert m["scrollWidth"] <= WIDTHS[device], f"{page.name} at {device}: {m['scrollWidth']} px"
        assert m["alerts"] is not None, f"{page.name}: no alerts section"
        assert m["alerts"][1] <= FIRST_SCREEN, f"{page.name} at {device}: alerts heading at {m['alerts']} px"
        assert m["figures"] is None or m["alerts"][0] < m["figures"][0], page.name
        assert m["images"] and all(m["images"]), f"{page.name}: a chart did not load"


def test_the_data_incomplete_banner_is_in_the_first_screen_on_a_phone(tmp_path: Path, catalogue: Path) -> None:
    from pipelines.config import load_settings

    browser = _chromium()
    url = _warehouse(tmp_path, {("slack_main", d): None for d in WEEK[5:]})
    settings = load_settings(None, warehouse_url=url, privacy={"min_group_size": 5})
    render_reports(settings, AS_OF, tmp_path / "out", ["leadership"], config=_config(catalogue))
    m = _measure(browser, tmp_path / "out" / "leadership.html", WIDTHS["phone"], tmp_path / "profile")
    assert m["banner"] is not None and m["banner"][1] <= FIRST_SCREEN, m
    assert m["alerts"] is not None and m["banner"][0] < m["alerts"][0], m
