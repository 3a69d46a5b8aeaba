"""Layering, checked on the source by module, on every import (inside functions too).

Four layers, each importing only from those below it:

1. **core** (:data:`CORE`): kb's types, settings, errors, key paths, the catalogue, the stores
   (vectors, keyword, embed, index) and the small shared facts (findings, globs, Markdown
   structure). Core imports only core.
2. **kb services** (:data:`SERVICES`): search, duplicates, drift, over the core.
3. **ingest** and **graph**: import only the core (and themselves); they talk through catalogue
   rows, not calls.
4. **the façade** (``kb/knowledge.py``, re-exported by ``kb/__init__.py``; ``kb/report.py`` builds
   on it): the one service object. It imports ingest and graph only inside function bodies, so
   ``import kb`` stays fast (no torch).
5. **the doors**: the CLI (``kb/cli``), the HTTP API and the MCP server (``api``). A door imports
   only :data:`DOOR_MAY` (the façade, the types, the errors, the limits, and the settings it builds
   the façade from) and other doors (``kb serve`` starts the HTTP door): every read and write is
   a ``KnowledgeBase`` call, never SQL or a service of its own. The CLI imports the façade and
   the other doors only inside function bodies, so ``kb --help`` stays fast.

Each third-party library that kb wraps lives in one module (:data:`OWNERS`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("kb",)
"""What is installed at the top of site-packages: only ``kb`` (issue 23)."""
FOLDERS = ("kb", "ingest", "graph", "api")
"""The source folders: ``ingest/``, ``graph/`` and ``api/`` are installed as ``kb.ingest``, ``kb.graph``
and ``kb.api`` (``kb/ingest`` etc. are links to them)."""
LINKED = ("ingest", "graph", "api")

CORE = {
    "kb.types",
    "kb.settings",
    "kb.errors",
    "kb.keypaths",
    "kb.linepaths",
    "kb.formats",
    "kb.limits",
    "kb.catalogue",
    "kb.vectors",
    "kb.keyword",
    "kb.embed",
    "kb.index",
    "kb.generations",
    "kb.findings",
    "kb.globs",
    "kb.markdown",
    "kb.git",
    "kb.charts",
    "kb.schemastore",
    "kb.cluster",
}
SERVICES = {"kb.search", "kb.duplicates", "kb.drift", "kb.changelog", "kb.reads"}
FACADE = {"kb.knowledge", "kb.report"}  # and the package ``kb`` itself, which re-exports it
DOORS = {"cli", "api"}
DOOR_MAY = {"kb", "kb.knowledge", "kb.types", "kb.errors", "kb.limits", "kb.settings"}
"""What a door may import of kb besides the doors themselves: the façade, the types, the errors,
the limits and the settings (what the façade is built from)."""

# Imports that break the layering today, each in a file another change owns. Remove the entry when
# that change lands (the test then holds the rule for it too).
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()

OWNERS = {
    "duckdb": {"kb/catalogue.py"},
    "chromadb": {"kb/vectors.py"},
    "ray": {"kb/cluster.py"},
    "tantivy": {"kb/keyword.py"},
    "onnxruntime": {"kb/embed.py"},
    "tokenizers": {"kb/embed.py"},
    "sentence_transformers": {"kb/embed.py"},
    "torch": {"kb/embed.py"},
    "networkx": {"graph/build.py"},
    "markdown_it": {"kb/markdown.py"},
    "mdit_py_plugins": {"kb/markdown.py"},
    "jsonschema": {"graph/schema/validator.py"},
    "regress": {"graph/schema/regex_helper.py"},
    # JSON pointers in $refs are looked up as the validator resolves them
    "referencing": {"graph/schema/validator.py", "graph/refs/pointers.py"},
    "prometheus_client": {"api/metrics.py"},
    "watchfiles": {"api/watch.py"},
    "mcp": {"api/mcp/server.py"},
}


def _module(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] in LINKED:
        parts.insert(0, "kb")
    return ".".join(parts)


def _exists(module: str) -> bool:
    base = REPO.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _sources() -> Iterator[tuple[str, Path]]:
    """Every source file once, by its real path (not through the links under ``kb/``)."""
    for folder in FOLDERS:
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO).parts
            if rel[0] == "kb" and len(rel) > 2 and rel[1] in LINKED:
                continue
            yield _module(f), f


def imports(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[str, int]]:
    """(module imported, line) for every import in ``path`` outside ``if TYPE_CHECKING:``.

    ``from kb import errors`` names ``kb.errors``; ``from kb import KnowledgeBase`` names ``kb``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    tree.body = [n for n in tree.body if not _is_type_checking(n)]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                yield (sub if node.module.split(".")[0] in PACKAGES and _exists(sub) else node.module), node.lineno


def _in(module: str, group: set[str]) -> bool:
    return any(module == g or module.startswith(g + ".") for g in group)


def layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "kb" and len(parts) > 1 and parts[1] in LINKED:
        return parts[1]
    if _in(module, CORE):
        return "core"
    if _in(module, SERVICES):
        return "services"
    if module == "kb" or _in(module, FACADE):
        return "facade"
    if _in(module, {"kb.cli"}):
        return "cli"
    return "kb (unassigned)"


ALLOWED = {
    "core": {"core"},
    "services": {"core", "services"},
    "ingest": {"core", "ingest"},
    "graph": {"core", "graph"},
    "facade": {"core", "services", "ingest", "graph", "facade"},
    "cli": DOORS,
    "api": DOORS,
}


def allowed(src: str, target: str) -> bool:
    """Whether a module of layer ``src`` may import ``target``."""
    if src in DOORS and target in DOOR_MAY:
        return True
    return layer(target) in ALLOWED[src]


def _violations() -> list[tuple[str, str, str]]:
    out = []
    for mod, f in _sources():
        src = layer(mod)
        for target, line in imports(f):
            if target.split(".")[0] not in PACKAGES:
                continue
            dst = layer(target)
            if not allowed(src, target) and (mod, target) not in KNOWN_EXCEPTIONS:
                out.append(
                    (mod, target, f"{f.relative_to(REPO)}:{line}: {src} module {mod} imports {dst} module {target}")
                )
    return out


def test_one_namespace_the_top_level_folders_are_imported_as_kb_subpackages():
    """``ingest``, ``graph`` and ``api`` are generic names other projects install too: kb installs
    them as ``kb.ingest``, ``kb.graph`` and ``kb.api`` and imports them by that name everywhere
    (source, tests, benchmarks), so one file is never two modules."""
    for name in LINKED:
        link = REPO / "kb" / name
        assert link.is_symlink() and link.resolve() == (REPO / name).resolve(), link
    bad = []
    for folder in (*FOLDERS, "tests", "bench"):
        for f in sorted((REPO / folder).rglob("*.py")):
            rel = f.relative_to(REPO).parts
            if rel[0] == "kb" and len(rel) > 2 and rel[1] in LINKED:
                continue
            for target, line in imports(f):
                if target.split(".")[0] in LINKED:
                    bad.append(f"{f.relative_to(REPO)}:{line} imports {target}: import kb.{target}")
    assert not bad, "\n".join(bad)


def test_every_module_has_a_layer():
    unassigned = [mod for mod, _ in _sources() if layer(mod) == "kb (unassigned)"]
    assert not unassigned, f"add these to CORE, SERVICES or FACADE in tests/test_architecture.py: {unassigned}"


def test_layers_import_only_downwards_at_any_level():
    bad = [msg for _, _, msg in _violations()]
    assert not bad, "\n".join(bad)


def test_known_exceptions_are_still_needed():
    used = set()
    for mod, f in _sources():
        for target, _ in imports(f):
            if (mod, target) in KNOWN_EXCEPTIONS:
                used.add((mod, target))
    assert used == KNOWN_EXCEPTIONS, f"no longer imported, remove from KNOWN_EXCEPTIONS: {KNOWN_EXCEPTIONS - used}"


def test_facade_and_cli_import_the_heavy_layers_lazily():
    """``import kb`` and ``kb --help`` load neither ingest, graph, api nor the search stack; the
    CLI loads the façade itself (duckdb) only when a command runs."""
    bad = []
    for mod, f in _sources():
        if layer(mod) not in ("facade", "cli"):
            continue
        for target, line in imports(f, top_level_only=True):
            if (
                layer(target) in ("ingest", "graph", "api", "services")
                or _in(target, {"kb.index", "kb.embed", "kb.vectors", "kb.keyword"})
                or (layer(mod) == "cli" and target in ("kb", "kb.knowledge"))
            ):
                bad.append(f"{f.relative_to(REPO)}:{line} imports {target} at module level")
    assert not bad, bad


def test_the_layering_rules_catch_a_violation(tmp_path):
    """The checker itself: an import inside a function body counts."""
    f = tmp_path / "probe.py"
    f.write_text("def f():\n    from kb.graph.rules import validate\n    import kb.api.app\n", encoding="utf-8")
    targets = {t for t, _ in imports(f)}
    assert targets == {"kb.graph.rules", "kb.api.app"}
    assert "graph" not in ALLOWED[layer("kb.catalogue")] and "api" not in ALLOWED[layer("kb.graph.refs.corpus")]


def test_a_door_may_import_only_the_facade_types_errors_limits_and_other_doors(tmp_path):
    """The rule for the CLI, the HTTP API and the MCP server, on a probe of each door."""
    for door in ("kb.cli.commands.probe", "kb.api.routes.probe", "kb.api.mcp.probe"):
        src = layer(door)
        for ok in ("kb", "kb.knowledge", "kb.types", "kb.errors", "kb.limits", "kb.settings", "kb.api.app", "kb.cli"):
            assert allowed(src, ok), (door, ok)
        for bad in ("kb.catalogue", "kb.findings", "kb.globs", "kb.search", "kb.drift", "kb.reads", "kb.report"):
            assert not allowed(src, bad), (door, bad)
        for bad in ("kb.graph.queries", "kb.graph.sarif", "kb.ingest.pipeline", "kb.generations", "kb.embed"):
            assert not allowed(src, bad), (door, bad)


def test_third_party_libraries_live_in_one_module():
    bad = []
    for _mod, f in _sources():
        rel = f.relative_to(REPO).as_posix()
        for target, line in imports(f):
            lib = target.split(".")[0]
            if lib in OWNERS and rel not in OWNERS[lib]:
                bad.append(f"{rel}:{line} imports {lib}")
    assert not bad, bad


def _declared_distributions() -> set[str]:
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
    # the run-time dependencies and the extras a user asks for (kb[ray]); not the dev tools
    extras = [
        spec for extra, specs in project.get("optional-dependencies", {}).items() if extra != "dev" for spec in specs
    ]
    specs = [*project["dependencies"], *extras]
    return {m.group(0).lower().replace("_", "-") for spec in specs if (m := name.match(spec))}


def test_every_third_party_import_is_a_declared_dependency():
    """A module the package imports at run time is installed because pyproject.toml asks for it,
    not because some other dependency happens to pull it in."""
    import sys
    from importlib.metadata import packages_distributions

    dists = packages_distributions()
    declared = _declared_distributions()
    undeclared = []
    for _mod, f in _sources():
        rel = f.relative_to(REPO).as_posix()
        for target, line in imports(f):
            top = target.split(".")[0]
            if top in PACKAGES or top in sys.stdlib_module_names or top not in dists:
                continue
            if not {d.lower().replace("_", "-") for d in dists[top]} & declared:
                undeclared.append(
                    f"{rel}:{line} imports {top} ({', '.join(dists[top])}, not in [project] dependencies)"
                )
    assert not undeclared, undeclared
    # the check sees a missing declaration: pydantic_settings must come from a declared distribution
    assert any(d.lower().replace("_", "-") in declared for d in dists["pydantic_settings"])
