"""Shared declarations: the API's limits, parameters and handler defaults live here, once.

A read route is declared with :func:`read` (a GET run in a worker thread, documenting the
Problem answers of the read guard and its own); the guards themselves sit on the routers in
:mod:`kb.api.routes`, not on each handler.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from kb.api.schemas import Problem
from kb.api.service import KBService
from kb.limits import MAX_K, MAX_QUERY_CHARS

__all__ = [
    "Service",
    "problems",
    "MAX_QUERY",
    "MAX_K",
    "MAX_PAGE",
    "Offset",
    "Limit",
    "PageNo",
    "PathFilter",
    "resolve_offset",
    "read",
]

Service = NamedDependency[KBService]
"""The server's :class:`~kb.api.service.KBService`, injected by name (``service``)."""

MAX_QUERY = MAX_QUERY_CHARS
"""Longest search query, in characters (:data:`kb.limits.MAX_QUERY_CHARS`)."""
MAX_PAGE = 500
"""Largest page size (``limit``)."""

Offset = Annotated[int, Parameter(ge=0, le=1_000_000_000, description="Rows to skip (0-based).")]
Limit = Annotated[int, Parameter(ge=1, le=MAX_PAGE, description=f"Page size, 1 to {MAX_PAGE}.")]
PageNo = Annotated[
    int | None,
    Parameter(ge=1, le=10_000_000, description="1-based page number; when given, offset = (page - 1) * limit."),
]
PathFilter = Annotated[
    str | None,
    Parameter(
        max_length=1000,
        description=(
            "A path relative to the corpus root (a file, or a folder and the files under it), or a glob over such "
            "paths (e.g. services/*/config/*.yaml)."
        ),
    ),
]


def resolve_offset(offset: int, limit: int, page: int | None) -> int:
    return (page - 1) * limit if page is not None else offset


_PROBLEM_TEXT = {
    400: "Bad parameter: the detail names it and its allowed values.",
    401: "A bearer token is required (KB_API_READ_KEY for reads, KB_API_KEY for POST /ingest).",
    403: "The bearer token is wrong, or writes are disabled.",
    404: "Not catalogued (or no search index yet).",
    409: "The KB was built with another embedder: the detail says which.",
    500: "Internal error; the server log has the details.",
    503: "The request ran past request_timeout, or the server is starting or stopping.",
}


def problems(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers of a route (all share the Problem body)."""
    wanted = sorted({400, 500, 503, *codes})
    return {c: ResponseSpec(Problem, description=_PROBLEM_TEXT[c]) for c in wanted}


def read(path: str, *codes: int, **options: Any) -> get:
    """The decorator of a read route: ``GET path``, run in a worker thread, documenting the Problem
    answers of the read guard (401, 403) and ``codes``."""
    return get(path, sync_to_thread=True, responses=problems(401, 403, *codes), **options)
