"""One meaning for each shared idea: the path filter, the severity order, the corpus root; the
report kept on the façade; an MCP tool declared once. Each door answers the same question the same."""

from __future__ import annotations

import inspect
import json

import pytest
from click.testing import CliRunner

from kb import KnowledgeBase
from kb.globs import PathFilter

TREE = {
    "services/a/config.yaml": "url: ${UNDEFINED_A}\n",
    "services/b/config.json": '{"x": ',
    "services-old/c.yaml": "url: ${UNDEFINED_C}\n",
    "deploy/d.yaml": "url: ${UNDEFINED_D}\n",
}


def _build(base):
    from tests.conftest import write_tree

    k = KnowledgeBase.build(write_tree(base / "tree", TREE), db=base / "kb", embed=False, workers=1)
    k.validate()
    return k


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One validated KB of TREE for the tests that only read it."""
    k = _build(tmp_path_factory.mktemp("one_meaning"))
    yield k
    k.close()


@pytest.fixture
def kb(tmp_path):
    """A KB of TREE of the test's own (it may write to it)."""
    k = _build(tmp_path)
    yield k
    k.close()


# -- the path filter ----------------------------------------------------------------------------

CASES = [
    ("services/a/config.yaml", ["services/a/config.yaml"]),
    ("services", ["services/a/config.yaml", "services/b/config.json"]),  # a folder: not services-old/
    ("./services/", ["services/a/config.yaml", "services/b/config.json"]),
    ("services*", ["services-old/c.yaml", "services/a/config.yaml", "services/b/config.json"]),
    ("*/*.yaml", ["deploy/d.yaml", "services-old/c.yaml", "services/a/config.yaml"]),
    ("nowhere", []),
]


@pytest.mark.parametrize(("pattern", "expected"), CASES)
def test_the_path_filter_says_the_same_in_sql_and_in_python(shared, pattern, expected):
    kb = shared
    flt = PathFilter.of(pattern)
    clause, params = flt.sql()
    in_sql = [r[0] for r in kb.catalogue.query(f"SELECT path FROM files WHERE {clause} ORDER BY path", params)]
    in_python = sorted(p for p in kb.files()["path"] if flt.matches(p))
    assert in_sql == in_python == expected


@pytest.mark.parametrize(("pattern", "expected"), CASES)
def test_every_door_filters_findings_by_path_alike(shared, pattern, expected):
    """Stored findings (façade, CLI, HTTP) and a fresh check (façade, CLI validate FILES) keep the same
    paths. Before: MCP findings(path="services") found 0 where validate(paths=["services"]) found 1."""
    from kb.cli import cli

    kb = shared
    stored = {f.path for f in kb.findings_page(path=pattern, limit=None).findings}
    checked = {f.path for f in kb.problems([pattern]).findings}
    assert stored == checked == set(expected)
    db = str(kb.settings.db)
    out = CliRunner().invoke(cli, ["findings", "--db", db, "--path", pattern, "--json"])
    assert {f["path"] for f in json.loads(out.output)["findings"]} == stored
    out = CliRunner().invoke(cli, ["validate", pattern, "--db", db, "--json"])
    assert {f["path"] for f in json.loads(out.output)["findings"]} == checked
    assert {f.path for f in kb.files_page(path=pattern, limit=None).files} == set(expected)


def test_the_http_and_mcp_doors_filter_by_folder_as_the_cli_does(shared):
    from litestar.testing import TestClient

    from kb.api.app import create_app
    from kb.api.mcp.server import KBTools

    kb = shared
    with TestClient(create_app(kb.settings.replace(root=None))) as client:
        r = client.get("/findings", params={"path": "services"})
        assert r.status_code == 200
        http = {f["path"] for f in r.json()["findings"]}
    tools = KBTools(kb.settings.replace(root=None))
    assert {f.path for f in tools.findings(path="services").findings} == http
    assert {f.path for f in tools.validate(paths=["services"]).findings} == http
    assert http == {"services/a/config.yaml", "services/b/config.json"}


# -- the severity order -------------------------------------------------------------------------


def test_an_unknown_severity_reads_as_a_warning_everywhere(kb):
    """A stored severity kb does not know (a row written by hand, a newer version) is a warning in
    the models, the order, the filter, the frames, the report's counts and a fresh check."""
    from kb.catalogue import Catalogue
    from kb.generations import read_head

    db = kb.settings.db
    kb.close()
    cat = Catalogue(db / read_head(db).catalogue)  # the published file, written in place for this test
    cat.query("INSERT INTO findings VALUES ('custom', 'critical', 'deploy/d.yaml', 9, 'odd', NULL, NULL, 'ingest')")
    cat.close()
    kb = KnowledgeBase.open(db, read_only=True)
    page = kb.findings_page(limit=None)
    odd = [f for f in page.findings if f.rule == "custom"]
    assert [f.severity for f in odd] == ["warning"]
    ranks = [{"error": 0, "warning": 1, "info": 2}[f.severity] for f in page.findings]
    assert ranks == sorted(ranks)  # worst first, the unknown among the warnings
    assert "custom" in {f.rule for f in kb.findings_page(severity="warning", limit=None).findings}
    assert "critical" not in set(kb.findings()["severity"])
    assert [f.severity for f in kb.problems().findings if f.rule == "custom"] == ["warning"]
    assert kb.report(validate=False, record=False)["findings"]["by_severity"].get("critical") is None


# -- the corpus root, and what is kept on the façade ---------------------------------------------


def test_the_corpus_root_comes_from_one_place(shared):
    from kb.settings import Settings

    kb = shared
    recorded = kb.settings.root
    assert recorded is not None and recorded.name == "tree"
    bare = Settings(db=kb.settings.db)
    assert bare.root is None
    assert bare.with_root_of(kb.catalogue).root == recorded
    given = bare.replace(root=recorded.parent)
    assert given.with_root_of(kb.catalogue).root == recorded.parent  # a root given wins


def test_the_report_is_built_once_per_generation_and_kept_on_the_kb(kb):
    first = kb.report(validate=False, record=False)
    assert kb.report(validate=False, record=False) is first
    (kb.settings.root / "deploy" / "e.yaml").write_text("e: 1\n", encoding="utf-8")
    kb.ingest(embed=False)
    assert kb.report(validate=False, record=False) is not first


# -- an MCP tool is declared once ---------------------------------------------------------------


def test_each_mcp_tool_is_its_method_as_declared(tmp_path):
    """The tool's input schema is the method's parameters, its description the method's docstring."""
    from kb.api.mcp.server import TOOLS, KBTools, create_server

    KnowledgeBase.build(KnowledgeBase.sample_path(), db=tmp_path / "kb", embed=False, workers=1).close()
    tools = KBTools(KnowledgeBase.open(tmp_path / "kb", read_only=True).settings)
    server = create_server(tools)
    listed = {t.name: t for t in server._tool_manager.list_tools()}
    assert set(listed) == set(TOOLS)
    for name in TOOLS:
        method = getattr(tools, name)
        params = list(inspect.signature(method).parameters)
        assert list(listed[name].parameters["properties"]) == params, name
        assert listed[name].description == method.__doc__, name
