"""Package dependency rules, checked on the source: ingest -> kb, graph -> kb, api -> kb/ingest/graph.

``kb`` never imports the others at module level; only the composition roots (``kb/cli``,
``kb/knowledge.py``) may, inside function bodies. Each third-party library lives in one module.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {"kb": set(), "ingest": {"kb"}, "graph": {"kb"}, "api": {"kb", "ingest", "graph"}}
OWNERS = {"duckdb": {"kb/catalogue.py"}, "chromadb": {"kb/vectors.py"}, "networkx": {"graph/build.py"},
          "mcp": {"api/mcp/server.py"}}


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, top_level_only: bool):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not _is_type_checking(n)]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def test_package_import_directions():
    bad = []
    for pkg, allowed in ALLOWED.items():
        for f in (REPO / pkg).rglob("*.py"):
            for mod in imports(f, top_level_only=True):
                if mod in ALLOWED and mod != pkg and mod not in allowed:
                    bad.append(f"{f.relative_to(REPO)} imports {mod}")
    assert not bad, bad


def test_third_party_libraries_live_in_one_module():
    bad = []
    for pkg in ALLOWED:
        for f in (REPO / pkg).rglob("*.py"):
            rel = f.relative_to(REPO).as_posix()
            for mod in set(imports(f, top_level_only=False)):
                if mod in OWNERS and rel not in OWNERS[mod]:
                    bad.append(f"{rel} imports {mod}")
    assert not bad, bad
