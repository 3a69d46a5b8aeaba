"""Against a real uvicorn server on loopback: plain HTTP, raw traversal attempts, searches that keep
answering while ``POST /ingest`` rewrites the tree, and ``--watch``."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from kb.api.app import create_app
from tests.test_api.conftest import build_kb


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send ``GET target`` byte for byte (no client-side normalisation of ``..``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_real_server_on_loopback(live_server, make_settings):
    srv = live_server(create_app(make_settings()))
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        assert http.get("/health").json()["status"] == "ok"
        hits = http.get("/search", params={"q": "fraud review threshold"}).json()["hits"]
        assert hits and {"path", "score", "line_start", "line_end", "key_path", "snippet", "format"} <= set(hits[0])
        assert http.get("/files/broken.json").json()["file"]["status"] == "error"
        assert http.get("/search", params={"q": "x" * 1001}).json()["status_code"] == 400
        assert "kb_http_requests_total" in http.get("/metrics").text
        assert http.get("/").headers["content-type"].startswith("text/html")
    for target in [
        "/files/../../../../etc/passwd",
        "/files/..%2f..%2f..%2fetc%2fpasswd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/services/../../../etc/passwd",
        "/files//etc/passwd",
        "/files/ignored/on-disk-only.yaml",
    ]:
        status, body = raw_get(srv.port, target)
        assert status == 404, (target, body)
        assert b'"status_code":404' in body and b"root:" not in body and b"ondisk-only-marker" not in body


def test_searches_keep_answering_during_an_ingest(live_server, fresh, make_settings):
    root, db = fresh
    srv = live_server(create_app(make_settings(db=db, root=root, api_key="wr1te")))
    # A change big enough that the ingest takes a while: 400 new files, 3 changed, 1 removed.
    for i in range(400):
        d = root / "generated" / f"svc{i:03d}"
        d.mkdir(parents=True)
        (d / "config.yaml").write_text(f"service: svc{i}\nretry:\n  attempts: {i % 7}\nowner: team{i % 9}\n")
    (root / "services/payments/config/base.yaml").write_text("service: payments\nfraud:\n  review_threshold: 0.9\n")
    (root / "docs/fraud.md").write_text("# Fraud review\n\nHeld payments are checked by a person.\n")
    (root / "services/payments/.env").write_text("DATABASE_URL=postgres://db2.internal/payments\n")
    (root / "copies/two.json").unlink()

    statuses: list[int] = []
    errors: list[str] = []
    stop = threading.Event()
    queries = ["fraud review threshold", "DATABASE_URL", "retry attempts", "logging level", "svc42 owner"]

    def hammer(n: int) -> None:
        with httpx.Client(base_url=srv.url, timeout=30) as http:
            i = n
            while not stop.is_set():
                path = ["/search", "/findings", "/files", "/stats"][i % 4] if i % 3 == 0 else "/search"
                try:
                    params = {"q": queries[i % len(queries)], "mode": ["hybrid", "keyword", "semantic"][i % 3]}
                    r = http.get(path, params=params if path == "/search" else {})
                    statuses.append(r.status_code)
                    if r.status_code >= 500:
                        errors.append(f"{path}: {r.status_code} {r.text[:200]}")
                    elif path == "/search":
                        for h in r.json()["hits"]:
                            assert h["path"] and h["line_start"] <= h["line_end"]
                except Exception as exc:
                    errors.append(f"{path}: {type(exc).__name__}: {exc}")
                i += 1

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    with httpx.Client(base_url=srv.url, timeout=120) as http:
        before = len(statuses)
        t0 = time.monotonic()
        r = http.post("/ingest", headers={"Authorization": "Bearer wr1te"})
        took = time.monotonic() - t0
        during = len(statuses) - before
    print(f"ingest took {took:.2f}s; {during} requests answered meanwhile")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(60)
    assert r.status_code == 200, r.text
    summary = r.json()
    assert summary["added"] == 400 and summary["changed"] == 3 and summary["removed"] == 1
    assert not errors, errors[:5]
    assert during > 0, "no request overlapped the ingest"
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
    with httpx.Client(base_url=srv.url, timeout=10) as http:
        assert http.get("/stats").json()["files"] == 12 + 400 - 1
        hits = http.get("/search", params={"q": "svc42", "mode": "keyword"}).json()["hits"]
        assert any(h["path"] == "generated/svc042/config.yaml" for h in hits)


def test_watch_reingests_a_saved_file_within_two_seconds(make_client, fresh):
    root, db = fresh
    client = make_client(db=db, root=root, watch=True)
    assert client.get("/health").json()["watching"] is True
    time.sleep(0.5)  # let the watcher settle
    target = root / "services/orders/config/base.yaml"
    assert client.get("/search", params={"q": "platypusgarden", "mode": "keyword"}).json()["hits"] == []
    saved = time.monotonic()
    target.write_text("service: orders\nretry:\n  attempts: 5\nnote: platypusgarden\n")
    seen_after = None
    while time.monotonic() - saved < 5:
        hits = client.get("/search", params={"q": "platypusgarden", "mode": "keyword"}).json()["hits"]
        if any(h["path"] == "services/orders/config/base.yaml" for h in hits):
            seen_after = time.monotonic() - saved
            break
        time.sleep(0.05)
    assert seen_after is not None, "the change never reached the index"
    assert seen_after < 2.0, f"the change took {seen_after:.2f}s to reach search"
    # a new file and a deletion are followed too
    (root / "docs/added.md").write_text("# Added\n\nplatypusgarden again\n")
    (root / "copies/one.json").unlink()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hits = client.get("/search", params={"q": "platypusgarden", "mode": "keyword"}).json()["hits"]
        paths = {h["path"] for h in hits}
        gone = client.get("/files/copies/one.json").status_code == 404
        if "docs/added.md" in paths and gone:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the watcher missed a new or deleted file")


def test_serve_builds_a_new_kb_from_its_root(make_client, tmp_path):
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "tree", {"a.yaml": "name: alpha\nport: 8080\n", "b.env": "PORT=8080\n"})
    client = make_client(db=tmp_path / "new-kb", root=root, api_key="k")
    deadline = time.monotonic() + 20
    while client.get("/health").json()["files"] < 2:
        assert time.monotonic() < deadline, "the first ingest did not finish"
        time.sleep(0.05)
    while client.get("/health").json()["ingesting"]:
        time.sleep(0.05)
    assert client.get("/search", params={"q": "alpha", "mode": "keyword"}).json()["hits"]


def test_build_helper_matches_the_session_kb(tmp_path):
    """The fixture helper builds a searchable KB with the hash embedder."""
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "t", {"x.json": '{"k": "v"}'})
    settings = build_kb(root, tmp_path / "kb")
    assert settings.model == "hash" and (tmp_path / "kb" / "HEAD.json").exists()
