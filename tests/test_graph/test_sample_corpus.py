"""The bundled sample (kb/sample): every planted reference, variable, cycle and schema problem in
kb/sample_truth.json is found, at its line, and nothing else is an error or a warning."""

from __future__ import annotations

import json

import pytest

from tests.test_graph.conftest import SAMPLE_TRUTH

GRAPH_KINDS = ("broken-reference", "undefined-variable", "reference-cycle", "schema-violation")


def planted() -> list[dict]:
    truth = json.loads(SAMPLE_TRUTH.read_text(encoding="utf-8"))
    return [p for p in truth["problems"] if p["kind"] in GRAPH_KINDS]


def test_sample_truth_plants_every_graph_rule():
    assert {p["kind"] for p in planted()} == set(GRAPH_KINDS)


@pytest.mark.parametrize("problem", planted(), ids=lambda p: f"{p['kind']}:{p['path']}")
def test_sample_planted_problem_is_found(problem, sample_kb):
    _, _, found = sample_kb
    hits = [f for f in found if f.rule == problem["kind"] and f.path == problem["path"]]
    assert hits, f"{problem['kind']} in {problem['path']} not found"
    assert any(f.line == problem["line"] for f in hits), [(f.line, f.message) for f in hits]
    if problem.get("target"):
        assert any(f.target == problem["target"] for f in hits), [f.target for f in hits]


def test_sample_reports_nothing_else_as_error_or_warning(sample_kb):
    _, _, found = sample_kb
    expected = {(p["kind"], p["path"], p["line"]) for p in planted()}
    extra = [f for f in found if f.severity in ("error", "warning") and (f.rule, f.path, f.line) not in expected]
    assert not extra, [f"{f.path}:{f.line} {f.rule} {f.message}" for f in extra]


def test_sample_references_table_and_refs_view(sample_kb):
    cat, _, _ = sample_kb
    kinds = dict(cat.query('SELECT kind, count(*) FROM "references" GROUP BY 1'))
    for kind in (
        "markdown-link",
        "json-ref",
        "schema",
        "compose-depends-on",
        "compose-extends",
        "compose-env-file",
        "variable",
        "k8s-configmap",
        "helm-value",
        "include",
    ):
        assert kinds.get(kind, 0) > 0, f"no {kind} references in the sample"
    assert cat.query("SELECT count(*) FROM refs")[0][0] == sum(kinds.values())
    # the yaml-language-server modeline in routes.yaml is a schema reference
    rows = cat.query(
        "SELECT resolved, status FROM refs WHERE path = 'services/gateway/config/routes.yaml' AND kind = 'schema'"
    )
    assert rows == [("schemas/gateway-routes.schema.json", "ok")]


def test_sample_findings_are_stored_with_source_validate(sample_kb):
    cat, _, found = sample_kb
    stored = cat.query("SELECT count(*) FROM findings WHERE source = 'validate'")[0][0]
    assert stored == len(found)
    assert cat.query("SELECT count(*) FROM findings WHERE source = 'ingest'")[0][0] >= 3
