"""The search page in headless Chromium, driven over the DevTools protocol: type a query, click
Search, see the results (path:line, key path, snippet, a link to the file's records); switch the
mode; load a ``?q=`` URL. Snippets are untrusted text and must never become markup.

Needs Debian's ``chromium`` package. Skipped only where /usr/bin/chromium is absent *and* ``CI`` is
unset; in CI a missing browser fails the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from kb.api.app import create_app

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip("needs /usr/bin/chromium (apt-get install -y chromium); required in CI", allow_module_level=True)


class Browser:
    """A headless Chromium with one page, spoken to over the DevTools websocket."""

    def __init__(self, profile: Path) -> None:
        import websocket  # websocket-client

        exe = str(CHROMIUM) if CHROMIUM.exists() else (shutil.which("chromium") or "chromium")
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-allow-origins=*",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets: list[dict[str, Any]] = []
        while not any(t.get("type") == "page" for t in targets):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                targets = json.load(r)
            if time.monotonic() > deadline:
                raise RuntimeError("chromium has no page")
            time.sleep(0.05)
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.next_id = 0

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

    def js(self, expression: str) -> Any:
        res = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"{expression}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        base = json.dumps(url.split("?")[0])
        self.wait_for(f"location.href.startsWith({base}) && document.readyState === 'complete'")

    def click(self, selector: str) -> None:
        box = self.js(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def browser(tmp_path):
    b = Browser(tmp_path / "chromium-profile")
    yield b
    b.close()


HITS = "document.querySelectorAll('#results li.hit')"


def test_search_page_types_a_query_and_shows_escaped_results(browser, live_server, make_settings):
    srv = live_server(create_app(make_settings()))
    b = browser
    b.send("Page.enable")
    b.send("Runtime.enable")
    b.goto(srv.url + "/")

    # type into the box and click Search
    b.js("document.getElementById('q').focus()")
    b.send("Input.insertText", text="zebraquokka marker")
    b.click("#go")
    b.wait_for(f"document.body.dataset.state === 'done' && {HITS}.length > 0")

    hits = b.js(f"""Array.from({HITS}).map(li => ({{
        loc: li.querySelector('a.loc').textContent,
        href: li.querySelector('a.loc').getAttribute('href'),
        key: (li.querySelector('.key') || {{}}).textContent || null,
        snippet: li.querySelector('pre.snippet').textContent,
    }}))""")
    top = next(h for h in hits if h["loc"].startswith("docs/untrusted.md:"))
    assert top["href"] == "/files/docs/untrusted.md"
    assert top["key"] == "Untrusted snippet"
    # the markup in the snippet is shown as text, never run or rendered
    assert '<img src=x onerror="window.__pwned=1">' in top["snippet"]
    assert "<script>window.__pwned=2</script>" in top["snippet"]
    assert b.js("document.querySelectorAll('#results img, #results script').length") == 0
    assert b.js("typeof window.__pwned") == "undefined"
    assert b.js("document.querySelectorAll('#results mark').length") > 0  # query words highlighted
    assert "zebraquokka" in b.js("location.search")

    # the mode toggle re-runs the search in that mode
    b.click("label:nth-of-type(3)")  # keyword
    b.wait_for("document.getElementById('status').textContent.includes('keyword')")
    assert b.js("document.querySelector('input[name=mode]:checked').value") == "keyword"
    b.wait_for(f"{HITS}.length > 0")

    # a shared ?q= URL runs on load, and a hit's link opens the file's records
    b.goto(srv.url + "/?q=DATABASE_URL&mode=keyword")
    b.wait_for(f"document.body.dataset.state === 'done' && {HITS}.length > 0")
    assert b.js("document.getElementById('q').value") == "DATABASE_URL"
    locs = b.js(f"Array.from({HITS}).map(li => li.querySelector('a.loc').textContent)")
    assert any(loc.startswith("services/payments/.env:") for loc in locs)
    href = b.js(
        f"Array.from({HITS}).map(li => li.querySelector('a.loc').href).find(h => h.endsWith('/services/payments/.env'))"
    )
    b.goto(href)
    body = json.loads(b.js("document.body.innerText"))
    assert body["file"]["path"] == "services/payments/.env"
    assert any(r["key_path"] == "DATABASE_URL" for r in body["records"])


def test_search_page_shows_the_problem_detail(browser, live_server, make_settings):
    srv = live_server(create_app(make_settings()))
    b = browser
    b.goto(srv.url + "/?q=" + "x" * 1001)
    b.wait_for("document.body.dataset.state === 'error'")
    assert "1,000" in b.js("document.getElementById('status').textContent")
