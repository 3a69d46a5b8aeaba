"""Dependency graph and cross-reference validation over the catalogue.

``graph`` reads catalogue rows (never ``ingest``): :mod:`kb.graph.refs` extracts references,
:mod:`kb.graph.build` turns them into a ``networkx.DiGraph`` (the only networkx import),
:mod:`kb.graph.rules` turns references, cycles and schemas into findings, :mod:`kb.graph.schema` validates
documents against JSON Schemas offline, :mod:`kb.graph.queries` answers deps/impact/stats questions and
:mod:`kb.graph.sarif` writes SARIF 2.1.0. Heavy imports stay in those modules; importing ``graph`` is
cheap.
"""

from __future__ import annotations

__all__ = ["build_graph", "validate", "extract_references"]


def __getattr__(name: str):
    if name == "build_graph":
        from kb.graph.build import build_graph

        return build_graph
    if name == "validate":
        from kb.graph.rules import validate

        return validate
    if name == "extract_references":
        from kb.graph.refs import extract_references

        return extract_references
    raise AttributeError(name)
