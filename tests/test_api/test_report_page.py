"""The health report as a person sees it, in headless Chromium (Debian's ``chromium``, as the
search-page test): opened from disk with no server and no network it renders, every chart has
data drawn on screen, nothing is fetched, nothing logs an error; the same page served at
``GET /report`` runs under the API's Content-Security-Policy without a violation. A full-page
screenshot is taken and checked to be a drawn page (saved to ``$KB_ARTIFACTS`` when set).

Skipped only where /usr/bin/chromium is absent *and* ``CI`` is unset (see test_page.py).
"""

from __future__ import annotations

import base64
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from kb.api.app import create_app
from tests.test_api.test_page import Browser


class RecordingBrowser(Browser):
    """A :class:`Browser` that keeps the DevTools events (console, exceptions, requests)."""

    def __init__(self, profile: Path) -> None:
        super().__init__(profile)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        mine = self.next_id
        self.ws.send(json.dumps({"id": mine, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mine:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def problems(self) -> list[str]:
        out = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
                out.append(f"console.{p['type']}: {[a.get('value') for a in p.get('args', [])]}")
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append(f"log: {p['entry'].get('text')}")
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]


@pytest.fixture
def browser(tmp_path):
    b = RecordingBrowser(tmp_path / "chromium-profile")
    for domain in ("Page", "Runtime", "Log", "Network"):
        b.send(f"{domain}.enable")
    yield b
    b.close()


@pytest.fixture
def history_kb(fresh):
    """The API test tree with two runs, a report built after each (so trends have two points)."""
    from kb.knowledge import KnowledgeBase

    root, db = fresh
    with KnowledgeBase.open(db, model="hash", workers=1) as kb:
        kb.report()
        (root / "services/payments/config/production.yaml").write_text(
            "service: payments\nfraud:\n  review_threshold: 0.97\ndatabase:\n  pool_size: 60\n  timeout: 5\n"
        )
        (root / "services/payments/.env").write_text(
            "DATABASE_URL=postgres://db.internal:5432/payments\nLOG_LEVEL=debug\n"
        )
        kb.ingest(root)
        kb.report_html(db.parent / "report.html")
    return root, db, db.parent / "report.html"


CHARTS = """Array.from(document.querySelectorAll('svg.chart')).map(svg => {
  const marks = Array.from(svg.querySelectorAll('.bar, .point, .arc')).map(m => {
    const r = m.getBoundingClientRect(); return [r.width, r.height, parseFloat(m.dataset.value)]; });
  const box = svg.getBoundingClientRect();
  return {name: svg.dataset.chart, points: +svg.dataset.points, w: box.width, h: box.height, marks: marks};
})"""


def check_rendered(b: RecordingBrowser) -> dict[str, Any]:
    b.wait_for("document.body && document.body.dataset.ready === 'true'")
    charts = b.js(CHARTS)
    names = {c["name"] for c in charts}
    assert {
        "score",
        "components",
        "findings-by-rule",
        "findings-by-folder",
        "duplication",
        "most-depended-on",
        "score-trend",
        "findings-trend",
        "files-trend",
        "runs",
        "changes-per-run",
        "schemas",
    } <= names, names
    for c in charts:
        assert c["w"] > 50 and c["h"] > 20, c
        assert c["points"] > 0 and len(c["marks"]) == c["points"], c
        drawn = [m for m in c["marks"] if m[0] > 0 and m[1] > 0]
        assert drawn, f"{c['name']}: nothing drawn"
        assert any(m[2] > 0 for m in c["marks"]), f"{c['name']}: all values zero"
    return {c["name"]: c for c in charts}


def test_report_renders_offline_with_charts_and_no_errors(browser, history_kb, tmp_path):
    _, _, page = history_kb
    b = browser
    url = page.resolve().as_uri()
    b.send("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    b.send("Page.navigate", url=url)
    charts = check_rendered(b)
    data = json.loads(b.js("document.getElementById('kb-report-data').textContent"))
    assert b.js("document.querySelector('header h1').textContent").startswith(
        f"Configuration health: {data['score']['value']:.1f}/100"
    )
    assert charts["score-trend"]["points"] == 2  # a snapshot per run
    assert b.js("document.querySelectorAll('#changes-table tbody tr').length") == data["changes"]["total"] == 4

    # the filter box narrows the recent changes; a header click sorts
    b.js("document.getElementById('changes-filter').focus()")
    b.send("Input.insertText", text="review_threshold")
    b.wait_for("Array.from(document.querySelectorAll('#changes-table tbody tr')).filter(r => !r.hidden).length === 1")
    b.click("#changes-table th:nth-child(4)")
    b.wait_for("document.querySelector('#changes-table th:nth-child(4)').dataset.dir === 'asc'")

    # nothing but the file itself was requested, nothing complained
    assert b.requests() == [url], b.requests()
    assert b.problems() == []

    metrics = b.send("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = b.send(
        "Page.captureScreenshot",
        format="png",
        captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1280, "height": min(size["height"], 6000), "scale": 1},
    )
    png = base64.b64decode(shot["data"])
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    assert img.width >= 1000 and img.height > 1500
    colours = img.resize((320, img.height * 320 // img.width)).getcolors(1 << 20)
    assert colours is not None and len(colours) > 50  # a drawn page, not a blank one
    counts = {c: n for n, c in colours}
    red = sum(n for c, n in counts.items() if c[0] > 170 and c[1] < 90 and c[2] < 90)
    assert red > 0  # error bars are on screen
    out = Path(os.environ.get("KB_ARTIFACTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report-screenshot.png").write_bytes(png)


def test_served_report_runs_under_the_content_security_policy(browser, history_kb, live_server):
    from kb.settings import Settings

    root, db, _ = history_kb
    srv = live_server(create_app(Settings(db=db, root=root, model="hash", workers=1)))
    b = browser
    b.send("Page.navigate", url=srv.url + "/report")
    charts = check_rendered(b)
    assert charts["changes-per-run"]["points"] >= 2
    assert all(u.startswith(srv.url) for u in b.requests()), b.requests()
    assert b.problems() == []
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # a late CSP report would arrive as a log entry
        b.js("1")
        time.sleep(0.1)
    assert b.problems() == []
