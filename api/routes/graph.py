"""``GET /graph/deps?path=`` and ``GET /graph/impact?path=``: a file's dependencies and dependents.

The graph is built once per catalogue generation (:meth:`kb.knowledge.KnowledgeBase.graph`); the
rows are those of ``kb graph deps|impact --json``.
"""

from __future__ import annotations

from typing import Annotated

from litestar.params import Parameter

from kb.api.routes._params import Service, read
from kb.api.routes.files import catalogue_path
from kb.api.schemas import GraphResponse

__all__ = ["graph_deps", "graph_impact"]

GraphPath = Annotated[
    str, Parameter(min_length=1, max_length=1000, description="A catalogued path relative to the corpus root.")
]


@read("/graph/deps", 404, tags=["graph"])
def graph_deps(
    service: Service,
    path: GraphPath,
    transitive: Annotated[bool, Parameter(description="Also what the dependencies depend on, recursively.")] = False,
) -> GraphResponse:
    """What the file references (files it needs), with the reference's kind and line."""
    rel = catalogue_path(path)
    files = service.ready().links(rel, "deps", transitive=transitive)
    return GraphResponse(path=rel, direction="deps", transitive=transitive, files=files)


@read("/graph/impact", 404, tags=["graph"])
def graph_impact(service: Service, path: GraphPath) -> GraphResponse:
    """Every file that depends on this one, directly (depth 1) or through others: what a change could break."""
    rel = catalogue_path(path)
    return GraphResponse(path=rel, direction="impact", transitive=True, files=service.ready().links(rel, "impact"))
