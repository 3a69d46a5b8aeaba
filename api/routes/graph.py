"""``GET /graph/deps?path=`` and ``GET /graph/impact?path=``: a file's dependencies and dependents.

The graph is built once per catalogue generation (:meth:`api.service.KBService.graph`); the rows
are those of ``kb graph deps|impact --json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.params import Parameter

from api import queries
from api.auth import require_read
from api.routes._params import Service, problems
from api.routes.files import catalogue_path
from api.schemas import GraphDirection, GraphLink, GraphResponse
from kb.errors import NotIndexedError

__all__ = ["graph_deps", "graph_impact"]

GraphPath = Annotated[
    str, Parameter(min_length=1, max_length=1000, description="A catalogued path relative to the corpus root.")
]
_LINK_FIELDS = frozenset(GraphLink.model_fields)


def _link(row: dict[str, Any]) -> GraphLink:
    values = {k: v for k, v in row.items() if k in _LINK_FIELDS}
    if values.get("kinds") is not None and not isinstance(values["kinds"], str):
        values["kinds"] = ",".join(map(str, values["kinds"]))
    return GraphLink(**values)


def _answer(service: Any, path: str, direction: GraphDirection, transitive: bool) -> GraphResponse:
    rel = catalogue_path(path)
    with service.reading() as view:
        if queries.file_info(view, rel) is None:
            raise NotIndexedError(f"No catalogued file {rel!r}. List the catalogued paths with GET /files.")
        from graph import queries as graph_queries

        g = service.graph(view)
    if direction == "deps":
        rows = graph_queries.dependencies(g, rel, transitive=transitive)
    else:
        rows = graph_queries.impact(g, rel)
    return GraphResponse(path=rel, direction=direction, transitive=transitive, files=[_link(r) for r in rows])


@get("/graph/deps", guards=[require_read], sync_to_thread=True, responses=problems(401, 403, 404), tags=["graph"])
def graph_deps(
    service: Service,
    path: GraphPath,
    transitive: Annotated[bool, Parameter(description="Also what the dependencies depend on, recursively.")] = False,
) -> GraphResponse:
    """What the file references (files it needs), with the reference's kind and line."""
    return _answer(service, path, "deps", transitive)


@get("/graph/impact", guards=[require_read], sync_to_thread=True, responses=problems(401, 403, 404), tags=["graph"])
def graph_impact(service: Service, path: GraphPath) -> GraphResponse:
    """Every file that depends on this one, directly (depth 1) or through others: what a change could break."""
    return _answer(service, path, "impact", True)
