"""The health report (kb/report.py, kb/charts.py): the numbers, the score, the self-contained page."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from kb.report import WEIGHTS, build_report, health_score, render_html

LOGGING = '"logging": {"level": "info", "format": "json", "sink": "stdout", "sample": 1, "redact": true}'
XSS_KEY = "<img src=x onerror=alert(1)>"

TREE = {
    "schemas/service.schema.json": json.dumps(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
        }
    ),
    "services/a/config.json": '{"$schema": "../../schemas/service.schema.json", "name": "a", "port": 80, '
    + LOGGING
    + "}\n",
    "services/b/config.json": '{"$schema": "../../schemas/service.schema.json", "port": "eighty", ' + LOGGING + "}\n",
    "services/c/config.json": '{"name": "c", ' + LOGGING + "}\n",
    "services/a/.env": "APP_ENV=dev\nLOG_LEVEL=info\nCACHE=on\n",
    "services/a/.env.production": "APP_ENV=prod\nLOG_LEVEL=warn\nCACHE=on\nFEATURE_Y=on\n",
    "services/a/.env.staging": "APP_ENV=staging\nLOG_LEVEL=info\n",
    "broken/bad.json": '{"a": 1,,}\n',
    "docs/readme.md": "# Readme\n\nSee [the missing guide](missing.md).\n",
    "odd.yaml": f'"{XSS_KEY}": "</script><script>window.__pwned=1</script>"\n',
}


def bump(path, text):
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 5))


@pytest.fixture
def reported(make_tree, ingest, settings):
    root = make_tree(TREE)
    cat, _ = ingest(root)
    s = settings.replace(root=root)
    first = build_report(cat, s, validate=True, record=True)
    bump(root / "services/c/config.json", '{"name": "c", "port": 81, ' + LOGGING + "}\n")
    bump(root / "odd.yaml", f'"{XSS_KEY}": "</script><script>window.__pwned=2</script>"\n')
    cat, _ = ingest(root)
    second = build_report(cat, s, validate=True, record=True)
    return cat, first, second


def test_report_numbers(reported):
    _, first, r = reported
    assert r["validation"] == {"state": "fresh", "ran_now": True, "seconds": r["validation"]["seconds"]}
    f = r["findings"]
    rules = {(x["rule"], x["severity"]): x["count"] for x in f["by_rule"]}
    assert rules[("parse-error", "error")] == 1
    assert rules[("broken-reference", "error")] == 1
    assert rules[("schema-violation", "error")] >= 1
    assert f["files_with_errors"] == 3  # broken/bad.json, services/b/config.json, docs/readme.md
    folders = {x["folder"]: x for x in f["by_folder"]}
    assert folders["broken"]["error"] == 1 and folders["services/b"]["error"] >= 1

    d = r["duplicates"]
    assert d["largest_blocks"][0]["key_path"] == "logging" and d["largest_blocks"][0]["copies"] == 3
    assert d["duplicated_leaf_values"] == 10  # two removable copies of a 5-leaf block
    assert d["duplication_ratio"] == pytest.approx(10 / d["leaf_values"], abs=1e-4)

    dr = r["drift"]
    assert dr["groups"] == 1 and dr["by_group"][0]["folder"] == "services/a"
    # FEATURE_Y is missing from staging; APP_ENV and LOG_LEVEL differ; CACHE is inherited from .env (the base)
    assert dr["missing"] == 1 and dr["differing"] == 2 and dr["keys"] == 4

    sc = r["schemas"]
    assert (sc["with_schema"], sc["validated"], sc["violating"]) == (2, 2, 1)
    assert sc["structured_files"] == 6 and sc["without_schema"] == 4 and sc["by_source"] == {"$schema": 2}

    g = r["graph"]
    assert g["most_depended_on"][0] == {"path": "schemas/service.schema.json", "dependents": 2}

    c = r["changes"]
    assert c["total"] == 2 and {x["key_path"] for x in c["recent"]} == {"port", f'["{XSS_KEY}"]'}
    assert c["by_run"] == [{"run_id": 2, "added": 1, "changed": 1}]

    t = r["trends"]
    assert [h["run_id"] for h in t["health"]] == [1, 2] and [x["run_id"] for x in t["runs"]] == [1, 2]
    assert t["health"][0]["score"] == first["score"]["value"]


def test_score_is_the_weighted_mean_of_its_components(reported):
    _, _, r = reported
    comp = {c["name"]: c for c in r["score"]["components"]}
    files = r["kb"]["files"]
    f = r["findings"]
    assert comp["clean_files"]["value"] == pytest.approx(
        1 - (f["files_with_errors"] + 0.5 * f["files_with_warnings_only"]) / files, abs=1e-4
    )
    assert comp["unique_data"]["value"] == pytest.approx(1 - r["duplicates"]["duplication_ratio"], abs=1e-4)
    assert comp["consistent_environments"]["value"] == pytest.approx(1 - 3 / 4)
    # files checked against their schema / files that have or declare one (not all structured files)
    sc = r["schemas"]
    due = sc["with_schema"] + sc["declared_unresolved"]
    assert comp["schema_coverage"]["value"] == pytest.approx(sc["validated"] / due, abs=1e-4)
    for c in comp.values():  # each component says what it loses and how to earn it back
        assert c["lost"] == pytest.approx(100 * c["effective_weight"] * (1 - c["value"]), abs=0.01) and c["how"]
    want = sum(100 * WEIGHTS[k] * comp[k]["value"] for k in WEIGHTS)
    assert r["score"]["value"] == pytest.approx(want, abs=0.05)
    assert sum(c["points"] for c in comp.values()) == pytest.approx(r["score"]["value"], abs=0.1)


def test_intended_differences_and_unpublished_schemas_cost_no_points(tmp_path):
    """drift_ignore declares a dev/prod difference intended; a file nobody publishes a schema for
    does not lower schema coverage."""
    from kb import KnowledgeBase
    from tests.conftest import write_tree

    root = write_tree(
        tmp_path / "t",
        {
            "chart/values-dev.yaml": "replicaCount: 1\nimage: web\n",
            "chart/values-prod.yaml": "replicaCount: 5\nimage: web\n",
            "app/settings.json": '{"a": 1}',
        },
    )
    plain = KnowledgeBase.build(root, db=tmp_path / "kb1", embed=False, workers=1)
    r1 = plain.report(validate=True)
    plain.close()
    declared = KnowledgeBase.build(root, db=tmp_path / "kb2", embed=False, workers=1, drift_ignore=["replicaCount"])
    r2 = declared.report(validate=True)
    declared.close()
    c1 = {c["name"]: c for c in r1["score"]["components"]}
    c2 = {c["name"]: c for c in r2["score"]["components"]}
    assert c1["consistent_environments"]["value"] < 1 and c2["consistent_environments"]["value"] == 1
    assert r2["drift"]["intended"] == 1 and "drift_ignore" in c1["consistent_environments"]["how"]
    assert "schema_coverage" in r2["score"]["left_out"]  # no file has or declares a schema
    assert r2["score"]["value"] > r1["score"]["value"]


def test_health_score_leaves_unknown_components_out():
    full = health_score(dict.fromkeys(WEIGHTS, 1.0))
    assert full["value"] == 100.0 and full["grade"] == "A" and full["left_out"] == []
    part = health_score(
        {"clean_files": 0.5, "unique_data": 1.0, "consistent_environments": 1.0, "schema_coverage": None}
    )
    assert part["left_out"] == ["schema_coverage"]
    w = WEIGHTS["clean_files"] + WEIGHTS["unique_data"] + WEIGHTS["consistent_environments"]
    assert part["value"] == pytest.approx(
        round(100 * (0.5 * WEIGHTS["clean_files"] + WEIGHTS["unique_data"] + WEIGHTS["consistent_environments"]) / w, 1)
    )
    assert [health_score(dict.fromkeys(WEIGHTS, v))["grade"] for v in (0.95, 0.85, 0.75, 0.65, 0.2)] == list("ABCDF")


def test_the_page_is_self_contained_and_escapes_what_the_tree_holds(reported):
    _, _, r = reported
    html = render_html(r)
    assert html.startswith("<!doctype html>")
    # nothing fetched at view time: no external script, style sheet, image, font or import
    assert not re.search(r'<(script|img|link|iframe)[^>]*\s(src|href)=(?!"data:)', html, re.I)
    assert "url(" not in html and "@import" not in html
    assert re.findall(r"https?://[^\s\"'<]+", html) == ["http://www.w3.org/2000/svg"] * html.count("<svg")
    # exactly the page's two scripts: the embedded data and the sorter; the tree's text never makes markup
    assert html.count("<script") == 2
    assert XSS_KEY not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    data = re.search(r'<script type="application/json" id="kb-report-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(data)["score"]["value"] == r["score"]["value"]
    for name in (
        "score",
        "components",
        "findings-by-rule",
        "findings-by-folder",
        "duplication",
        "largest-blocks",
        "drift",
        "schemas",
        "most-depended-on",
        "score-trend",
        "runs",
        "changes-per-run",
    ):
        m = re.search(rf'<svg class="chart" data-chart="{name}" data-points="(\d+)"', html)
        assert m and int(m.group(1)) > 0, name


def test_a_read_only_report_neither_validates_nor_records(reported, settings):
    from kb.catalogue import Catalogue

    cat, _, _ = reported
    cat.invalidate_validation()
    cat.close()
    with Catalogue(settings.db, read_only=True) as ro:
        r = build_report(ro, settings, validate=True, record=True)
        assert r["validation"]["state"] == "stale" and not r["validation"]["ran_now"]
        assert r["schemas"]["stale"] is True
        assert len(r["trends"]["health"]) == 2  # the stored two; this one shown (same run), not stored
        assert ro.query("SELECT count(*) FROM health")[0][0] == 2
        assert "older than the last ingest" in render_html(r)


# ---------------------------------------------------------------------------------------------
# End to end with the real model on the bundled sample
# ---------------------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_sample_kb_change_search_blame_and_report(tmp_path):
    """Build the sample with the real embedder, change a value, and see it everywhere: re-embedded
    and found by a natural-language search, in the change log and the key's history, and in the
    health report, whose findings are exactly the sample's planted problems."""
    import shutil
    from collections import Counter

    from kb.knowledge import KnowledgeBase

    repo = Path(__file__).resolve().parents[2]
    root = tmp_path / "sample"
    shutil.copytree(repo / "kb" / "sample", root)
    truth = json.loads((repo / "kb" / "sample_truth.json").read_text())
    prod = "services/payments/config/production.yaml"
    with KnowledgeBase.build(root, db=tmp_path / "kb", workers=1) as kb:
        assert kb.settings.model != "hash"
        text = (root / prod).read_text()
        assert "review_threshold: 0.85" in text
        bump(root / prod, text.replace("review_threshold: 0.85", "review_threshold: 0.91"))
        summary = kb.ingest(root)
        assert summary.key_changes == 1 and summary.chunks_embedded >= 1

        hits = kb.search("Where is the fraud-review threshold for payments in production?", k=3, as_frame=False)
        top = next(h for h in hits if h.path == prod)
        assert "review_threshold: 0.91" in top.snippet

        h = kb.blame(prod, "fraud.review_threshold")
        assert h.value == "0.91" and [(c.old_value, c.new_value) for c in h.history] == [("0.85", "0.91")]
        changes = kb.changes(key="*threshold*")
        assert list(changes["new_value"]) == ["0.91"] and list(changes["path"]) == [prod]

        report = kb.report()
        planted = Counter(p["kind"] for p in truth["problems"])
        errors = {x["rule"]: x["count"] for x in report["findings"]["by_rule"] if x["severity"] == "error"}
        error_rules = (
            "broken-reference",
            "plaintext-secret",
            "undefined-variable",
            "reference-cycle",
            "schema-violation",
            "parse-error",
        )
        assert errors == {k: planted[k] for k in error_rules}  # the planted problems, nothing else
        assert report["duplicates"]["largest_blocks"][0]["key_path"] == "logging"
        assert report["duplicates"]["groups_by_kind"]["canonical"] == planted["canonical-duplicate"]
        assert report["drift"]["groups"] > 0 and report["schemas"]["with_schema"] > 0
        assert report["changes"]["recent"][0]["key_path"] == "fraud.review_threshold"
        assert [x["run_id"] for x in report["trends"]["runs"]] == [1, 2]
        html = kb.report_html(tmp_path / "report.html")
        assert "fraud.review_threshold" in html and 'data-chart="changes-per-run"' in html
