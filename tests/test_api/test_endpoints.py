"""Every endpoint through Litestar's TestClient: the answers and every error path."""

from __future__ import annotations

import pytest

from kb.types import FileInfo, Finding, Hit, SearchResult


def problem(resp, status: int) -> str:
    """Assert a JSON problem body with ``status`` and return its detail."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert "Traceback" not in resp.text
    return body["detail"]


# -- search ------------------------------------------------------------------------------------


def test_search_returns_the_cli_hit_fields(client):
    r = client.get("/search", params={"q": "fraud review threshold", "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "hybrid" and body["query"] == "fraud review threshold"
    assert body["embedded"] == body["embeddable"] > 0 and body["embedded_share"] == 1.0  # a complete KB
    assert set(SearchResult.model_fields) <= set(body)  # every field the CLI's --json and Python carry
    assert 1 <= len(body["hits"]) <= 5
    for hit in body["hits"]:
        assert set(hit) == set(Hit.model_fields)
        Hit(**hit)
    assert any(h["path"].startswith("services/payments/config/") or h["path"] == "docs/fraud.md" for h in body["hits"])
    for hit in body["hits"]:  # answer lines, covered by the hit's line range
        assert hit["answer"] and all(hit["line_start"] <= a["line"] <= hit["line_end"] for a in hit["answer"])
    every = client.get("/search", params={"q": "review_threshold", "all": "true"}).json()
    assert every["grouped"] is True and len({h["path"] for h in every["hits"]}) == len(every["hits"]) >= 2


@pytest.mark.parametrize("mode", ["hybrid", "semantic", "keyword"])
def test_search_modes(client, mode):
    r = client.get("/search", params={"q": "DATABASE_URL", "mode": mode, "k": 3})
    assert r.status_code == 200
    assert r.json()["mode"] == mode
    assert len(r.json()["hits"]) <= 3


def test_search_literal_identifier_finds_its_definition(client):
    hits = client.get("/search", params={"q": "DATABASE_URL", "mode": "keyword"}).json()["hits"]
    assert any(h["path"] == "services/payments/.env" for h in hits)


def test_search_filters_by_format_and_path(client):
    hits = client.get("/search", params={"q": "logging level", "format": "yaml"}).json()["hits"]
    assert hits and all(h["format"] == "yaml" for h in hits)
    hits = client.get("/search", params={"q": "logging level", "path": "services/orders/*"}).json()["hits"]
    assert hits and all(h["path"].startswith("services/orders/") for h in hits)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"q": "x" * 1001}, "1,000"),
        ({"q": "ok", "k": 101}, "1 to 100"),
        ({"q": "ok", "k": 0}, "1 to 100"),
        ({"q": "ok", "k": "many"}, "k"),
        ({"q": "ok", "mode": "fuzzy"}, "mode=hybrid"),
        ({"q": ""}, "q"),
        ({}, "q"),
        ({"q": "   "}, "blank"),
        ({"q": "ok", "format": "nosuchformat"}, "nosuchformat"),
    ],
)
def test_search_bad_parameters_are_400_with_a_fix(client, params, needle):
    assert needle in problem(client.get("/search", params=params), 400)


def test_search_at_the_limits_is_fine(client):
    assert client.get("/search", params={"q": "y" * 1000, "k": 100}).status_code == 200


# -- findings ----------------------------------------------------------------------------------


def test_findings_paginate_with_total(client):
    full = client.get("/findings").json()
    assert full["total"] == len(full["findings"]) >= 2
    for f in full["findings"]:
        Finding(**f)
    rules = {f["rule"] for f in full["findings"]}
    assert {"parse-error", "plaintext-secret"} <= rules
    first = client.get("/findings", params={"limit": 1}).json()
    second = client.get("/findings", params={"limit": 1, "offset": 1}).json()
    page2 = client.get("/findings", params={"limit": 1, "page": 2}).json()
    assert first["total"] == full["total"] and first["limit"] == 1 and len(first["findings"]) == 1
    assert second["findings"] == page2["findings"] == full["findings"][1:2]
    assert page2["offset"] == 1


def test_findings_filters(client):
    r = client.get("/findings", params={"rule": "parse-error"}).json()
    assert r["total"] >= 1 and all(f["rule"] == "parse-error" for f in r["findings"])
    r = client.get("/findings", params={"severity": "error"}).json()
    assert all(f["severity"] == "error" for f in r["findings"])
    r = client.get("/findings", params={"path": "legacy/*"}).json()
    assert r["total"] >= 1 and all(f["path"].startswith("legacy/") for f in r["findings"])
    # a rule kb does not have is a typo, not "no findings" (a CI gate on it would pass): 400
    assert client.get("/findings", params={"rule": "no-such-rule"}).status_code == 400


def test_findings_never_show_the_secret(client):
    assert "AKIAIOSFODNN7EXAMPLQ" not in client.get("/findings").text
    assert "AKIAIOSFODNN7EXAMPLQ" not in client.get("/files/legacy/aws.ini").text


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"limit": 501}, "500"),
        ({"limit": 0}, "500"),
        ({"offset": -1}, "offset"),
        ({"page": 0}, "page"),
        ({"severity": "fatal"}, "severity"),
    ],
)
def test_findings_bad_parameters_are_400(client, params, needle):
    assert needle in problem(client.get("/findings", params=params), 400)


# -- files -------------------------------------------------------------------------------------


def test_files_paginate_and_filter_by_format(client):
    every = client.get("/files", params={"limit": 500}).json()
    paths = [f["path"] for f in every["files"]]
    assert every["total"] == len(paths) == 12 and paths == sorted(paths)
    assert "ignored/on-disk-only.yaml" not in paths
    for f in every["files"]:
        FileInfo(**f)
    page = client.get("/files", params={"limit": 5, "page": 2}).json()
    assert [f["path"] for f in page["files"]] == paths[5:10] and page["total"] == 12
    yaml = client.get("/files", params={"format": "yaml"}).json()
    assert yaml["total"] == 5 and all(f["format"] == "yaml" for f in yaml["files"])
    assert client.get("/files", params={"path": "services/**"}).json()["total"] == 5
    assert problem(client.get("/files", params={"limit": 1000}), 400)
    # a format or status no file has is a typo (as /search?format= says), not an empty page
    assert "Unknown format 'yml'" in problem(client.get("/files", params={"format": "yml"}), 400)
    assert "Unknown status 'broken'" in problem(client.get("/files", params={"status": "broken"}), 400)
    assert client.get("/files", params={"status": "skipped"}).json()["total"] == 0  # none, but a status


def test_file_records(client):
    r = client.get("/files/services/payments/config/base.yaml")
    assert r.status_code == 200
    body = r.json()
    assert body["file"]["path"] == "services/payments/config/base.yaml" and body["file"]["format"] == "yaml"
    recs = {rec["key_path"]: rec for rec in body["records"]}
    assert recs["fraud.review_threshold"]["value"] == "0.85" and recs["fraud.review_threshold"]["line"] == 3
    assert body["total"] == len(body["records"])
    paged = client.get("/files/services/payments/config/base.yaml", params={"limit": 2, "offset": 1}).json()
    assert paged["records"] == body["records"][1:3]
    broken = client.get("/files/broken.json").json()
    assert [f["rule"] for f in broken["findings"]] == ["parse-error"]


@pytest.mark.parametrize(
    "url",
    [
        "/files/no/such/file.yaml",
        "/files/ignored/on-disk-only.yaml",  # on disk under the root, but not catalogued
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/services/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/files/%252e%252e/%252e%252e/etc/passwd",
        "/files/services/payments/..%2f..%2f..%2fetc%2fpasswd",
        "/files/..%5c..%5cetc%5cpasswd",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/C:%5cWindows%5cwin.ini",
        "/files/services/%2e/payments/.env",
        "/files/services/payments/.env%00.yaml",
    ],
)
def test_file_paths_outside_the_catalogue_are_404_json(client, url):
    detail = problem(client.get(url), 404)
    assert "ondisk-only-marker" not in detail and "root:" not in detail


def test_file_detail_limits(client):
    assert "500" in problem(client.get("/files/broken.json", params={"limit": 501}), 400)


# -- duplicates and drift ----------------------------------------------------------------------


def test_duplicates(client):
    groups = client.get("/duplicates").json()["groups"]
    exact = [g for g in groups if g["kind"] == "exact"]
    assert any({m["path"] for m in g["members"]} == {"copies/one.json", "copies/two.json"} for g in exact)
    only = client.get("/duplicates", params={"kind": ["block"], "min_leaves": 5}).json()["groups"]
    assert only and {g["kind"] for g in only} == {"block"}
    blocks = {m["path"] for g in only for m in g["members"]}
    assert {"services/orders/config/base.yaml", "services/billing/config/base.yaml"} <= blocks


@pytest.mark.parametrize(
    "params", [{"kind": "fuzzy"}, {"threshold": 0}, {"threshold": 1.5}, {"min_leaves": 0}, {"semantic_threshold": -1}]
)
def test_duplicates_bad_parameters_are_400(client, params):
    problem(client.get("/duplicates", params=params), 400)


def test_drift(client, make_client, tmp_path):
    from tests.conftest import write_tree
    from tests.test_api.conftest import TREE, build_kb

    # the shared tree has a base and a single environment (payments): nothing can drift
    assert client.get("/drift").json() == {"groups": []}
    # plant drift: a staging environment that differs from production and adds a key
    root = write_tree(
        tmp_path / "tree",
        {
            **TREE,
            "services/payments/config/staging.yaml": "database:\n  pool_size: 20\ncache:\n  ttl: 60\n",
        },
    )
    build_kb(root, tmp_path / "kb")
    r = make_client(db=tmp_path / "kb", root=root).get("/drift")
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    base, prod, staging = (f"services/payments/config/{n}.yaml" for n in ("base", "production", "staging"))
    assert [g["files"] for g in groups] == [[base, prod, staging]]
    g = groups[0]
    assert set(g) == {"files", "missing", "differing"}
    assert g["missing"] == [{"key_path": "cache.ttl", "missing_in": [prod]}]
    differing = {d["key_path"]: d["values"] for d in g["differing"]}
    assert differing == {
        "database.pool_size": {base: 10, prod: 50, staging: 20},
        "fraud.review_threshold": {base: 0.85, prod: 0.95, staging: 0.85},  # staging inherits the base's
    }


# -- graph -------------------------------------------------------------------------------------


def test_graph_deps_and_impact(client):
    deps = client.get("/graph/deps", params={"path": "docs/fraud.md"})
    assert deps.status_code == 200, deps.text
    body = deps.json()
    assert body["direction"] == "deps" and body["path"] == "docs/fraud.md" and body["transitive"] is False
    link = next(f for f in body["files"] if f["path"] == "services/payments/config/base.yaml")
    assert link["depth"] == 1 and link["line"] == 4
    impact = client.get("/graph/impact", params={"path": "services/payments/config/base.yaml"}).json()
    assert impact["direction"] == "impact" and "docs/fraud.md" in {f["path"] for f in impact["files"]}
    env = client.get("/graph/impact", params={"path": "services/payments/.env"}).json()
    assert "deploy/compose.yml" in {f["path"] for f in env["files"]}
    deep = client.get("/graph/deps", params={"path": "docs/fraud.md", "transitive": "true"}).json()
    assert deep["transitive"] is True and {f["path"] for f in body["files"]} <= {f["path"] for f in deep["files"]}


@pytest.mark.parametrize("endpoint", ["/graph/deps", "/graph/impact"])
@pytest.mark.parametrize("path", ["no/such.yaml", "../etc/passwd", "/etc/passwd"])
def test_graph_unknown_paths_are_404(client, endpoint, path):
    problem(client.get(endpoint, params={"path": path}), 404)


@pytest.mark.parametrize("endpoint", ["/graph/deps", "/graph/impact"])
def test_graph_needs_a_path(client, endpoint):
    problem(client.get(endpoint), 400)


# -- stats, health, metrics, schema, page ------------------------------------------------------


def test_stats(client):
    st = client.get("/stats").json()
    assert st["files"] == 12 and st["chunks"] > 0
    assert st["files_by_format"]["yaml"] == 5
    assert st["findings_by_rule"]["parse-error"] == 1


def test_health(client):
    h = client.get("/health").json()
    assert h["status"] == "ok" and h["files"] == 12 and h["chunks"] > 0
    assert h["ingesting"] is False and h["embedder"] == "hash-64"
    probe = client.head("/health")  # load balancers and uptime checks probe with HEAD
    assert probe.status_code == 200 and probe.content == b""
    service = client.app.state.service
    service.opened = False  # as while the server starts or stops: both say so with the same status
    try:
        assert client.get("/health").status_code == 503 and client.head("/health").status_code == 503
    finally:
        service.opened = True


def test_metrics_prometheus_text(client):
    client.get("/search", params={"q": "retry"})
    client.get("/search", params={"q": "retry", "k": 500})
    client.get("/files/broken.json")
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=1.0.0; charset=utf-8"  # each parameter once
    text = r.text
    labels = 'app_name="kb",method="GET",path="/search"'
    assert f'kb_http_requests_total{{{labels},status_code="200"}} 1.0' in text
    assert f'kb_http_requests_total{{{labels},status_code="400"}} 1.0' in text
    assert 'path="/files/{file_path}"' in text  # the route template, not the path asked for
    assert "# TYPE kb_http_request_duration_seconds histogram" in text
    assert (
        'kb_http_request_duration_seconds_bucket{app_name="kb",le="+Inf",method="GET",path="/search",'
        'status_code="200"} 1.0' in text
    )
    assert f'kb_http_request_duration_seconds_count{{{labels},status_code="400"}} 1.0' in text
    assert "kb_index_files 12.0" in text
    assert any(line.startswith("kb_index_chunks ") and float(line.split()[1]) > 0 for line in text.splitlines())
    for line in text.splitlines():  # every sample line parses: name{labels} value
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_metrics_of_two_apps_are_their_own(client, make_client):
    client.get("/health")
    other = make_client()
    assert 'path="/health"' not in other.get("/metrics").text


def test_openapi_schema_and_ui(client):
    doc = client.get("/schema/openapi.json").json()
    for path in [
        "/search",
        "/duplicates",
        "/drift",
        "/findings",
        "/files",
        "/files/{file_path}",
        "/graph/deps",
        "/graph/impact",
        "/stats",
        "/health",
        "/metrics",
        "/ingest",
    ]:
        assert path in doc["paths"], path
    q = next(p for p in doc["paths"]["/search"]["get"]["parameters"] if p["name"] == "q")
    assert q["schema"]["maxLength"] == 1000
    assert "Hit" in doc["components"]["schemas"] and "Finding" in doc["components"]["schemas"]
    ui = client.get("/schema/swagger")
    assert ui.status_code == 200 and "swagger" in ui.text.lower()


def test_search_page_is_served(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert 'id="q"' in r.text and "innerHTML" not in r.text
    assert "default-src 'none'" in r.headers["content-security-policy"]


def test_unknown_route_and_method_are_json(client):
    assert "/schema" in problem(client.get("/nope"), 404)
    problem(client.delete("/search"), 405)
    problem(client.get("/ingest"), 405)
