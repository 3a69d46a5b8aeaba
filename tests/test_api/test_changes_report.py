"""``GET /changes``, ``GET /blame``, ``GET /report`` and ``/report.json`` over the test KB."""

from __future__ import annotations

import re


def test_changes_and_blame_follow_a_reingest(make_client, fresh):
    root, db = fresh
    client = make_client(db=db, root=root, api_key="wr1te")
    assert client.get("/changes").json() == {"total": 0, "offset": 0, "limit": 100, "changes": []}
    (root / "services/payments/config/production.yaml").write_text(
        "service: payments\nfraud:\n  review_threshold: 0.97\ndatabase:\n  pool_size: 50\n  timeout: 5\n"
    )
    (root / "copies/two.json").unlink()
    body = client.post("/ingest", headers={"Authorization": "Bearer wr1te"}).json()
    assert body["key_changes"] == 4

    page = client.get("/changes").json()
    assert page["total"] == 4
    assert {(c["path"], c["key_path"], c["change"]) for c in page["changes"]} == {
        ("services/payments/config/production.yaml", "fraud.review_threshold", "changed"),
        ("services/payments/config/production.yaml", "database.timeout", "added"),
        ("copies/two.json", "name", "removed"),
        ("copies/two.json", "size", "removed"),
    }
    one = client.get("/changes", params={"key": "*threshold*", "path": "services/*/config/*.yaml"}).json()
    assert [(c["old_value"], c["new_value"], c["line"]) for c in one["changes"]] == [("0.95", "0.97", 3)]
    paged = client.get("/changes", params={"limit": 1, "page": 2}).json()
    assert paged["offset"] == 1 and paged["changes"] == page["changes"][1:2]
    assert client.get("/changes", params={"since": "1", "change": "removed"}).json()["total"] == 2

    h = client.get(
        "/blame", params={"path": "services/payments/config/production.yaml", "key": "fraud.review_threshold"}
    ).json()
    assert h["value"] == "0.97" and h["line"] == 3 and [x["old_value"] for x in h["history"]] == ["0.95"]

    report = client.get("/report.json").json()
    assert report["changes"]["total"] == 4 and report["validation"]["state"] in ("never", "stale")


def test_changes_and_blame_errors_say_how_to_fix(client):
    r = client.get("/changes", params={"since": "yesterday-ish"})
    assert r.status_code == 400 and "7d" in r.json()["detail"]
    r = client.get("/changes", params={"change": "renamed"})
    assert r.status_code == 400 and "change=added" in r.json()["detail"]
    r = client.get("/blame", params={"path": "services/payments/.env", "key": "NOPE"})
    assert r.status_code == 404 and "has no key 'NOPE'" in r.json()["detail"] and "kb show" in r.json()["detail"]
    r = client.get("/blame", params={"path": "nowhere.yaml", "key": "x"})
    assert r.status_code == 404 and "not catalogued" in r.json()["detail"]
    assert client.get("/blame", params={"path": "services/payments/.env"}).status_code == 400


def test_report_page_is_served_self_contained_and_cached_per_generation(client):
    r = client.get("/report")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    html = r.text
    assert "<!doctype html>" in html and "Health score" in html and "Most depended-on files" in html
    assert not re.search(r'<(script|img|link)[^>]*\s(src|href)=(?!"data:)', html)
    data = client.get("/report.json").json()
    assert data["kb"]["files"] == 12
    assert data["generated_at"] in html  # the same build: kept until the next re-ingest
    assert client.get("/report.json").json()["generated_at"] == data["generated_at"]
    rules = {x["rule"] for x in data["findings"]["by_rule"]}
    assert {"parse-error", "plaintext-secret"} <= rules
    assert data["duplicates"]["groups_by_kind"]["exact"] == 1


def test_report_needs_the_read_key_when_set(make_client):
    client = make_client(api_read_key="r3ad")
    assert client.get("/report").status_code == 401
    assert client.get("/changes").status_code == 401
    ok = client.get("/report", headers={"Authorization": "Bearer r3ad"})
    assert ok.status_code == 200
