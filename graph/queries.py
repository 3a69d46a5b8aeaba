"""Questions asked of the dependency graph: what a file needs, what needs it, cycles, totals.

These take the ``networkx.DiGraph`` from :func:`kb.graph.build.build_graph` (any graph with the same
node and edge attributes) and return plain lists and dicts, ready for ``--json``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kb.errors import NotIndexedError
from kb.graph import build

__all__ = ["dependencies", "impact", "cycles", "stats"]


def _check(g: Any, path: str) -> str:
    p = path.strip()
    while p.startswith("./"):
        p = p[2:]
    if p in g:
        return p
    close = sorted(n for n in g if n.endswith("/" + p.rsplit("/", 1)[-1]))[:3]
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise NotIndexedError(
        f"'{path}' is not a catalogued file; give its path relative to the corpus root (as `kb show` lists it).{hint}"
    )


def _edge_row(target: str, data: dict[str, Any], depth: int) -> dict[str, Any]:
    """One row of :func:`dependencies`: the referenced file and how it is referenced."""
    return {
        "path": target,
        "kind": data.get("kind"),
        "kinds": data.get("kinds"),
        "line": data.get("line"),
        "key_path": data.get("key_path"),
        "count": data.get("count", 1),
        "depth": depth,
    }


def dependencies(g: Any, path: str, *, transitive: bool = False) -> list[dict[str, Any]]:
    """What ``path`` references: one row per file, with the reference's kind and line.

    With ``transitive``, every file reachable from it (``depth`` > 1 for indirect ones).
    """
    p = _check(g, path)
    if not transitive:
        return [_edge_row(v, d, 1) for _, v, d in sorted(g.out_edges(p, data=True), key=lambda e: e[1])]
    rows = []
    seen = {p: 0}
    frontier = [p]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for u in frontier:
            for _, v, d in sorted(g.out_edges(u, data=True), key=lambda e: e[1]):
                if v not in seen:
                    seen[v] = depth
                    nxt.append(v)
                    rows.append({**_edge_row(v, d, depth), "via": u})
        frontier = nxt
    return rows


def impact(g: Any, path: str) -> list[dict[str, Any]]:
    """Every file that depends on ``path``, directly (``depth`` 1) or through others."""
    p = _check(g, path)
    dist = build.ancestors(g, p)
    rows = []
    for n, d in sorted(dist.items(), key=lambda x: (x[1], x[0])):
        if n == p:
            continue
        direct = g.get_edge_data(n, p)
        row: dict[str, Any] = {"path": n, "depth": d}
        if direct:
            row.update(kind=direct.get("kind"), line=direct.get("line"), key_path=direct.get("key_path"))
        else:
            # the neighbour on a shortest path towards p
            via = next((s for s in g.successors(n) if dist.get(s) == d - 1), None)
            row.update(kind=None, line=None, key_path=None, via=via)
        rows.append(row)
    return rows


def cycles(g: Any, limit: int = 100) -> list[list[str]]:
    """Cycles between files (any reference kind), each as ``[a, b, ..., a]``."""
    return build.file_cycles(g, limit)


def stats(g: Any) -> dict[str, Any]:
    """Counts: files, edges, references, broken ones, by kind, most depended-on, isolated files."""
    kinds: Counter[str] = Counter()
    for _, _, d in g.edges(data=True):
        for k in str(d.get("kinds") or d.get("kind") or "").split(","):
            if k:
                kinds[k] += 1
    indeg = sorted(((g.in_degree(n), n) for n in g), reverse=True)
    formats = Counter(d.get("format") for _, d in g.nodes(data=True))
    return {
        "files": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "references": g.graph.get("references", 0),
        "broken_references": g.graph.get("broken", 0),
        "edges_by_kind": dict(kinds.most_common()),
        "files_by_format": dict(formats.most_common()),
        "isolated_files": sum(1 for n in g if g.degree(n) == 0),
        "components": build.weakly_connected_count(g),
        "file_cycles": len(build.file_cycles(g, limit=10_000)),
        "most_depended_on": [{"path": n, "dependents": k} for k, n in indeg[:10] if k > 0],
    }
