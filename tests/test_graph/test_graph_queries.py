"""The networkx graph, deps/impact/cycles/stats, and exports."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from kb.errors import NotIndexedError
from tests.test_graph.conftest import FIXTURES

FILES = {
    "schemas/common.json": '{"$defs": {"port": {"type": "integer"}}}',
    "schemas/svc.json": '{"properties": {"port": {"$ref": "common.json#/$defs/port"}}}',
    "svc/a.json": '{"$schema": "../schemas/svc.json", "port": 1, "include": "./b.yaml"}',
    "svc/b.yaml": "include: ./c.yaml\n",
    "svc/c.yaml": "include: ./b.yaml\n",
    "docs/readme.md": "# Readme\n\nSee [a](../svc/a.json).\n",
    "lonely.toml": "x = 1\n",
}


@pytest.fixture
def graph(tree, build_kb):
    from kb.graph.build import build_graph
    from kb.graph.rules import validate

    cat, settings = build_kb(tree(FILES))
    validate(cat, settings)
    return build_graph(cat, settings)


def test_nodes_are_files_and_edges_are_typed(graph):
    assert set(graph.nodes) == set(FILES)
    assert graph.nodes["svc/a.json"]["format"] == "json"
    e = graph.edges["svc/a.json", "schemas/svc.json"]
    assert (e["kind"], e["line"], e["key_path"]) == ("schema", 1, "$schema")
    assert graph.edges["schemas/svc.json", "schemas/common.json"]["kind"] == "json-ref"
    assert graph.edges["docs/readme.md", "svc/a.json"]["kind"] == "markdown-link"


def test_dependencies_direct_and_transitive(graph):
    from kb.graph.queries import dependencies

    assert [r["path"] for r in dependencies(graph, "svc/a.json")] == ["schemas/svc.json", "svc/b.yaml"]
    deep = {r["path"]: r["depth"] for r in dependencies(graph, "./svc/a.json", transitive=True)}
    assert deep == {"schemas/svc.json": 1, "svc/b.yaml": 1, "schemas/common.json": 2, "svc/c.yaml": 2}


def test_impact_lists_transitive_dependents(graph):
    from kb.graph.queries import impact

    rows = impact(graph, "schemas/common.json")
    assert [(r["path"], r["depth"]) for r in rows] == [
        ("schemas/svc.json", 1),
        ("svc/a.json", 2),
        ("docs/readme.md", 3),
    ]
    assert rows[0]["kind"] == "json-ref" and rows[1]["via"] == "schemas/svc.json"


def test_unknown_file_names_the_fix(graph):
    from kb.graph.queries import impact

    with pytest.raises(NotIndexedError, match="relative to the corpus root"):
        impact(graph, "nope/a.json")


def test_cycles_and_stats(graph):
    from kb.graph.queries import cycles, stats

    assert cycles(graph) == [["svc/b.yaml", "svc/c.yaml", "svc/b.yaml"]]
    s = stats(graph)
    assert s["files"] == len(FILES) and s["edges"] == 6 and s["isolated_files"] == 1
    assert s["edges_by_kind"]["include"] == 3 and s["file_cycles"] == 1
    assert s["most_depended_on"][0] == {"path": "svc/b.yaml", "dependents": 2}


@pytest.mark.parametrize("fmt", ["graphml", "json", "dot"])
def test_exports_parse(graph, fmt):
    from kb.graph.build import export_graph

    text = export_graph(graph, fmt)
    if fmt == "graphml":
        root = ET.fromstring(text.encode())
        assert len(root.findall(".//{http://graphml.graphdrawing.org/xmlns}edge")) == 6
    elif fmt == "json":
        data = json.loads(text)
        assert len(data["nodes"]) == len(FILES) and len(data["edges"]) == 6
    else:
        assert text.startswith("digraph kb {") and text.count("->") == 6


def test_graph_without_validate_extracts_references_in_memory(tree, build_kb):
    from kb.graph.build import build_graph

    cat, settings = build_kb(tree(FILES))
    g = build_graph(cat, settings)
    assert g.number_of_edges() == 6
    assert "references" not in cat.tables()


def test_stored_references_are_used_when_fresh_and_ignored_after_ingest(tree, build_kb):
    from kb.graph.rules import references_fresh, validate
    from kb.ingest.pipeline import run_ingest

    root = tree(FILES)
    cat, settings = build_kb(root)
    validate(cat, settings)
    assert references_fresh(cat, settings)
    (root / "svc" / "d.yaml").write_text("x: 1\n", encoding="utf-8")
    run_ingest(cat, settings)
    assert not references_fresh(cat, settings)


def test_knowledge_base_api_hands_back_networkx(build_kb):
    from kb.knowledge import KnowledgeBase

    cat, settings = build_kb(FIXTURES / "planted", known_env=["CI_*"])
    cat.close()
    with KnowledgeBase(settings) as kb:
        g = kb.graph()
        df = kb.validate()
    assert type(g).__name__ == "DiGraph" and g.number_of_nodes() > 10
    assert {"rule", "severity", "path", "line", "message", "target"} <= set(df.columns)
    assert (df["rule"] == "reference-cycle").sum() == 2
