"""The static report opened in headless Chromium: its charts load and are drawn.

Needs the Debian package `chromium` (/usr/bin/chromium). Without it the test is skipped locally and FAILS
when $CI is set, so CI cannot silently stop checking the rendering. The screenshot is kept under the pytest
tmp dir and copied to tests/artifacts/ for people to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from pipelines.reports import render_reports

from .conftest import AS_OF, reports_config

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# reports never carry scripts; this one is added to a test copy only, to read back what the browser loaded
PROBE = """<script>window.addEventListener('load', function () {
  var out = [].map.call(document.images, function (i) { return i.complete + ':' + i.naturalWidth; });
  var pre = document.createElement('pre'); pre.id = 'probe'; pre.textContent = out.join(' ');
  document.body.appendChild(pre);
});</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed but CI is set: apt-get install -y chromium")
    pytest.skip("chromium is not installed (apt-get install -y chromium); set CI to make this a failure")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=90, check=True)


def test_static_report_renders_its_charts_in_headless_chromium(settings, engine, catalogue, tmp_path) -> None:
    browser = _chromium()
    config = reports_config(catalogue)
    render_reports(settings, AS_OF, tmp_path / "out", [], config=config, engine=engine)
    page = tmp_path / "out" / "report.html"
    html = page.read_text()
    charts = len(re.findall(r'<img src="data:image/png;base64,', html))
    # 3 charts: adoption by department is withheld (complementary suppression of Tiny Team, test_content.py)
    assert charts == 3 and "<script" not in html

    probe = page.with_name("probe.html")
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    dom = _run(browser, tmp_path / "profile-dom", "--virtual-time-budget=5000", "--dump-dom",
               probe.as_uri()).stdout
    loaded = re.search(r'<pre id="probe">([^<]*)</pre>', dom)
    assert loaded, "the probe did not run"
    states = loaded.group(1).split()
    assert len(states) == charts and all(s.startswith("true:") and int(s.split(":")[1]) >= 600 for s in states), states

    shot = tmp_path / "report.png"
    _run(browser, tmp_path / "profile-shot", "--window-size=720,3200", f"--screenshot={shot}", page.as_uri())
    pixels = imread(shot)[:, :, :3]
    accent = np.abs(pixels - np.array([0x1F, 0x5F, 0xA8]) / 255).max(axis=2) < 0.03
    assert accent.sum() > 5000, "hardly any chart colour on the screenshot: were the charts drawn?"
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "report.png")
