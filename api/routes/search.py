"""``GET /search``: hybrid, semantic or keyword search; the CLI's hit fields."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

from kb.api.routes._params import MAX_K, MAX_QUERY, PathFilter, Service, read
from kb.api.schemas import SearchResponse
from kb.errors import BadRequestError
from kb.limits import DEFAULT_K

__all__ = ["search"]


@read("/search", 404, 409, tags=["search"])
def search(
    service: Service,
    q: Annotated[
        str,
        Parameter(
            min_length=1, max_length=MAX_QUERY, description=f"The question or identifier, 1 to {MAX_QUERY} characters."
        ),
    ],
    k: Annotated[int, Parameter(ge=1, le=MAX_K, description=f"Hits to return, 1 to {MAX_K}.")] = DEFAULT_K,
    mode: Annotated[
        Literal["hybrid", "semantic", "keyword"],
        Parameter(description="hybrid fuses keyword and vector results; semantic and keyword use one of them."),
    ] = "hybrid",
    format: Annotated[
        str | None, Parameter(max_length=100, description="Only files of this format (yaml, json, ...).")
    ] = None,
    path: PathFilter = None,
    all: Annotated[
        bool,
        Parameter(description="Every matching file once (up to 100), instead of the k best chunks."),
    ] = False,
) -> SearchResponse:
    """Search the knowledge base. Each hit has path, score, line_start, line_end, key_path, snippet, format,
    and answer: the lines that answer (line, key_path, value), which line_start..line_end cover."""
    text = q.replace("\x00", " ")
    if not text.strip():
        raise BadRequestError("q is blank: send a question or an identifier, e.g. ?q=DATABASE_URL.")
    result = service.search(text, k=k, mode=mode, format=format or None, path=path or None, all_files=all)
    shared = SearchResponse.model_fields.keys() & type(result).model_fields.keys()  # one list of fields
    return SearchResponse(**{**{name: getattr(result, name) for name in shared}, "query": q, "mode": mode})
