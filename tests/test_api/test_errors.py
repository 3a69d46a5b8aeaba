"""Auth, the one exception handler, the request timeout, CORS and startup failures."""

from __future__ import annotations

import time

import pytest

from tests.test_api.test_endpoints import problem

READS = [
    "/search?q=fraud",
    "/findings",
    "/files",
    "/files/broken.json",
    "/duplicates?kind=exact",
    "/drift",
    "/stats",
    "/metrics",
]


# -- read key ----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", READS)
def test_reads_need_the_read_key_when_it_is_set(make_client, url):
    client = make_client(api_read_key="r3ad", api_key="wr1te")
    r = client.get(url)
    assert "KB_API_READ_KEY" in problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    problem(client.get(url, headers={"Authorization": "Bearer nope"}), 403)
    problem(client.get(url, headers={"Authorization": "Basic cjNhZA=="}), 401)
    assert client.get(url, headers={"Authorization": "Bearer r3ad"}).status_code == 200
    assert client.get(url, headers={"Authorization": "Bearer wr1te"}).status_code == 200  # the write key reads too


def test_an_unknown_finding_rule_is_a_400_naming_the_close_one(client):
    """A typo in ``rule`` matched nothing and answered 200 with no findings: a gate on it passed."""
    detail = problem(client.get("/findings", params={"rule": "plaintext-secrets"}), 400)
    assert "Unknown rule 'plaintext-secrets'" in detail and "Did you mean plaintext-secret?" in detail
    assert client.get("/findings", params={"rule": "plaintext-secret"}).status_code == 200


def test_reads_are_open_without_a_read_key(client):
    for url in READS:
        assert client.get(url).status_code == 200, url


def test_health_page_and_schema_stay_open_with_a_read_key(make_client):
    client = make_client(api_read_key="r3ad")
    for url in ["/health", "/", "/schema/openapi.json"]:
        assert client.get(url).status_code == 200, url
    assert client.head("/health").status_code == 200


# -- write key ---------------------------------------------------------------------------------


def test_ingest_is_403_with_instructions_when_writes_are_disabled(client):
    detail = problem(client.post("/ingest"), 403)
    assert "KB_API_KEY" in detail and "Bearer" in detail
    problem(client.post("/ingest", headers={"Authorization": "Bearer anything"}), 403)


def test_ingest_needs_the_bearer_token(make_client, fresh):
    root, db = fresh
    client = make_client(db=db, root=root, api_key="wr1te")
    r = client.post("/ingest")
    assert "KB_API_KEY" in problem(r, 401) and r.headers["www-authenticate"].startswith("Bearer")
    problem(client.post("/ingest", headers={"Authorization": "Bearer wrong"}), 403)
    problem(client.post("/ingest", headers={"Authorization": "Bearer"}), 401)
    problem(client.post("/ingest", headers={"Authorization": "Token wr1te"}), 401)
    r = client.post("/ingest", headers={"Authorization": "Bearer wr1te"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "complete" and body["files_seen"] == 12 and body["unchanged"] == 12


def test_ingest_picks_up_changes(make_client, fresh):
    root, db = fresh
    client = make_client(db=db, root=root, api_key="wr1te")
    auth = {"Authorization": "Bearer wr1te"}
    before = client.get("/health").json()["generation"]
    assert client.get("/search", params={"q": "wombatcolony", "mode": "keyword"}).json()["hits"] == []
    (root / "services/orders/config/base.yaml").write_text("service: orders\nnote: wombatcolony lives here\n")
    (root / "docs/new.md").write_text("# New\n\nAnother wombatcolony page.\n")
    (root / "copies/two.json").unlink()
    body = client.post("/ingest", headers=auth).json()
    assert (body["added"], body["changed"], body["removed"]) == (1, 1, 1)
    assert body["chunks_embedded"] >= 1
    hits = client.get("/search", params={"q": "wombatcolony", "mode": "keyword"}).json()["hits"]
    assert {h["path"] for h in hits} == {"services/orders/config/base.yaml", "docs/new.md"}
    assert client.get("/files/copies/two.json").status_code == 404
    assert client.get("/health").json()["generation"] > before


def test_ingest_without_waiting_answers_202(make_client, fresh):
    root, db = fresh
    client = make_client(db=db, root=root, api_key="wr1te")
    r = client.post("/ingest", params={"wait": "false"}, headers={"Authorization": "Bearer wr1te"})
    assert r.status_code == 202 and r.json()["status"] == "running"
    deadline = time.monotonic() + 20
    while client.get("/health").json()["ingesting"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_ingest_failure_maps_through_the_handler(make_client, fresh):
    import shutil

    root, db = fresh
    client = make_client(db=db, root=root, api_key="wr1te")
    shutil.rmtree(root)
    detail = problem(client.post("/ingest", headers={"Authorization": "Bearer wr1te"}), 400)
    assert "not a folder" in detail
    assert client.get("/health").json()["last_ingest_error"]
    assert client.get("/search", params={"q": "fraud"}).status_code == 200  # still serving the old state


# -- one handler for kb errors; nothing else leaks ----------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        ("NotIndexedError", 404),
        ("BadRequestError", 400),
        ("EmbedderMismatchError", 409),
        ("ConfigError", 400),
        ("DependencyError", 500),
    ],
)
def test_kb_errors_map_by_status_code(client, monkeypatch, exc, status):
    import kb.errors
    import kb.search

    def boom(*a, **k):
        raise getattr(kb.errors, exc)(f"{exc}: here is how to fix it")

    monkeypatch.setattr(kb.search, "search", boom)
    assert problem(client.get("/search", params={"q": "x"}), status) == f"{exc}: here is how to fix it"


def test_unknown_exceptions_are_500_without_details(client, monkeypatch):
    import kb.search

    def boom(*a, **k):
        raise RuntimeError("internal detail /etc/shadow")

    monkeypatch.setattr(kb.search, "search", boom)
    r = client.get("/search", params={"q": "x"})
    detail = problem(r, 500)
    assert "internal detail" not in r.text and "RuntimeError" not in r.text and "Traceback" not in detail


def test_request_timeout_is_503_json(make_client, monkeypatch):
    import kb.search

    client = make_client(request_timeout=0.3)

    def slow(*a, **k):
        time.sleep(1.0)
        return []

    monkeypatch.setattr(kb.search, "search", slow)
    t0 = time.monotonic()
    r = client.get("/search", params={"q": "x"})
    assert time.monotonic() - t0 < 0.9
    assert "request_timeout" in problem(r, 503)
    assert client.get("/health").status_code == 200
    assert (
        'kb_http_requests_total{app_name="kb",method="GET",path="/search",status_code="503"} 1.0'
        in client.get("/metrics").text
    )
    time.sleep(0.8)  # let the abandoned handler finish before teardown


# -- CORS ----------------------------------------------------------------------------------------


def test_cors_from_settings(make_client):
    client = make_client(cors_origins=["https://ui.example"])
    r = client.get("/findings", headers={"Origin": "https://ui.example"})
    assert r.headers.get("access-control-allow-origin") == "https://ui.example"
    pre = client.options(
        "/search",
        headers={
            "Origin": "https://ui.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert pre.status_code in (200, 204)
    assert pre.headers.get("access-control-allow-origin") == "https://ui.example"
    other = client.get("/findings", headers={"Origin": "https://evil.example"})
    assert other.headers.get("access-control-allow-origin") is None


def test_no_cors_headers_by_default(client):
    r = client.get("/findings", headers={"Origin": "https://ui.example"})
    assert "access-control-allow-origin" not in r.headers


# -- startup ------------------------------------------------------------------------------------


def test_missing_kb_fails_at_startup_with_a_fix(tmp_path):
    from kb.api.app import create_app
    from kb.errors import NotIndexedError
    from kb.settings import Settings

    app = create_app(Settings(db=tmp_path / "none", model="hash"))
    with pytest.raises(NotIndexedError, match="kb ingest"):
        app.state.service.preflight()
    assert not (tmp_path / "none").exists()


def test_a_read_only_server_shares_the_catalogue(make_client, built):
    """Without a write key or --watch the server only reads, beside any other reader."""
    from kb.knowledge import KnowledgeBase

    client = make_client()
    assert client.get("/health").json()["writable"] is False
    with KnowledgeBase.open(built[1], read_only=True) as other:
        assert other.sql("SELECT count(*) AS n FROM files")["n"][0] == 12
        assert client.get("/stats").json()["files"] == 12
