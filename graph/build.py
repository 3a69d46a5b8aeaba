"""Catalogue rows -> ``networkx.DiGraph``. The only module that imports networkx.

The dependency graph has one node per catalogued file (id: its POSIX path relative to the corpus
root; attribute ``format``) and one edge per pair of files with at least one resolved reference
from the first to the second; the edge carries the first reference's ``kind``, ``line`` and
``key_path``, every kind seen (``kinds``) and how many references it stands for (``count``).
``graph.graph`` holds ``references`` (all references) and ``broken`` (unresolved ones).

Cycles that are errors are looked for in a finer graph (:func:`cycle_graph`): compose services
are nodes of their own (``compose.yaml#services.web``), so ``depends_on`` loops inside one file are
found; only include-like references take part (see :data:`kb.graph.refs.CYCLE_KINDS`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from typing import Any

import networkx as nx

from kb.catalogue import Catalogue
from kb.graph.refs import CYCLE_KINDS, Reference, service_node
from kb.settings import Settings

__all__ = [
    "build_graph",
    "graph_from_references",
    "load_references",
    "cycle_graph",
    "find_cycles",
    "descendants",
    "ancestors",
    "file_cycles",
    "export_graph",
    "weakly_connected_count",
]


def load_references(catalogue: Catalogue, settings: Settings) -> list[Reference]:
    """The stored ``references`` table when it is fresh, else a new extraction (not stored)."""
    from kb.graph.rules import references_fresh, stored_references

    if references_fresh(catalogue, settings):
        return stored_references(catalogue)
    from kb.graph.refs import extract_references

    return extract_references(catalogue, settings)


def build_graph(catalogue: Catalogue, settings: Settings, refs: list[Reference] | None = None) -> nx.DiGraph:
    """The dependency graph of the catalogued tree (see the module docstring)."""
    if refs is None:
        refs = load_references(catalogue, settings)
    files = catalogue.query("SELECT path, format FROM files ORDER BY path")
    return graph_from_references(files, refs)


def _file_part(resolved: str) -> str:
    return resolved.split("#", 1)[0]


def graph_from_references(files: Iterable[tuple[str, str]], refs: Iterable[Reference]) -> nx.DiGraph:
    g = nx.DiGraph()
    for path, fmt in files:
        g.add_node(path, format=fmt)
    total = broken = 0
    for r in refs:
        total += 1
        if r.status in ("broken", "undefined"):
            broken += 1
        if r.status != "ok" or not r.resolved:
            continue
        dst = _file_part(r.resolved)
        if dst == r.path or dst not in g or r.path not in g:
            continue
        if g.has_edge(r.path, dst):
            data = g.edges[r.path, dst]
            data["count"] += 1
            if r.kind not in data["kinds"].split(","):
                data["kinds"] = ",".join(sorted(data["kinds"].split(",") + [r.kind]))
        else:
            g.add_edge(r.path, dst, kind=r.kind, kinds=r.kind, line=r.line or 0, key_path=r.key_path, count=1)
    g.graph["references"] = total
    g.graph["broken"] = broken
    return g


def cycle_graph(refs: Iterable[Reference]) -> nx.DiGraph:
    """Include-like references only; compose services as their own nodes."""
    g = nx.DiGraph()
    for r in refs:
        if r.kind not in CYCLE_KINDS or r.status != "ok" or not r.resolved:
            continue
        if r.kind in ("compose-depends-on", "compose-extends"):
            src, dst = service_node(r.path, r.key_path), r.resolved
        else:
            src, dst = r.path, _file_part(r.resolved)
        if not g.has_edge(src, dst):
            g.add_edge(src, dst, ref=r)
    return g


def find_cycles(refs: Iterable[Reference]) -> list[list[tuple[str, str, Reference]]]:
    """One cycle per strongly connected component (or self-loop): a list of (src, dst, ref)."""
    g = cycle_graph(refs)
    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) == 1:
            (n,) = comp
            if not g.has_edge(n, n):
                continue
        sub = g.subgraph(comp)
        start = min(comp)
        try:
            edges = nx.find_cycle(sub, source=start)
        except nx.NetworkXNoCycle:  # pragma: no cover - an SCC always has one
            continue
        cyc = [(u, v, g.edges[u, v]["ref"]) for u, v in edges]
        # rotate so that the smallest node comes first (stable, readable output)
        i = min(range(len(cyc)), key=lambda k: cyc[k][0])
        out.append(cyc[i:] + cyc[:i])
    out.sort(key=lambda c: c[0][0])
    return out


def file_cycles(g: nx.DiGraph, limit: int = 100) -> list[list[str]]:
    """Cycles between files in the dependency graph (any kind), at most ``limit``."""
    out = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) < 2:
            continue
        sub = g.subgraph(comp)
        try:
            edges = nx.find_cycle(sub, source=min(comp))
        except nx.NetworkXNoCycle:  # pragma: no cover
            continue
        out.append([u for u, _ in edges] + [edges[0][0]])
        if len(out) >= limit:
            break
    return sorted(out)


def descendants(g: nx.DiGraph, node: str) -> set[str]:
    return nx.descendants(g, node)


def ancestors(g: nx.DiGraph, node: str) -> dict[str, int]:
    """Every node that reaches ``node``, with its distance."""
    return dict(nx.single_source_shortest_path_length(g.reverse(copy=False), node))


def weakly_connected_count(g: nx.DiGraph) -> int:
    return nx.number_weakly_connected_components(g) if len(g) else 0


def export_graph(g: nx.DiGraph, fmt: str) -> str:
    """The graph as GraphML, node-link JSON or Graphviz DOT text."""
    if fmt == "graphml":
        buf = io.BytesIO()
        h = nx.DiGraph()
        h.add_nodes_from((n, {k: v for k, v in d.items() if v is not None}) for n, d in g.nodes(data=True))
        h.add_edges_from((u, v, {k: w for k, w in d.items() if w is not None}) for u, v, d in g.edges(data=True))
        nx.write_graphml(h, buf, encoding="utf-8")
        return buf.getvalue().decode("utf-8")
    if fmt == "json":
        data: dict[str, Any] = {
            "directed": True,
            "nodes": [{"id": n, **d} for n, d in g.nodes(data=True)],
            "edges": [{"source": u, "target": v, **d} for u, v, d in g.edges(data=True)],
            "graph": dict(g.graph),
        }
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "dot":

        def q(s: Any) -> str:
            return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"') + '"'

        lines = ["digraph kb {", "  rankdir=LR;", "  node [shape=box, fontsize=10];"]
        for n, d in g.nodes(data=True):
            lines.append(f"  {q(n)} [format={q(d.get('format', ''))}];")
        for u, v, d in g.edges(data=True):
            lines.append(f"  {q(u)} -> {q(v)} [label={q(d.get('kind', ''))}, line={q(d.get('line', ''))}];")
        lines.append("}")
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r} (graphml, json, dot)")
