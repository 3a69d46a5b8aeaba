"""``GET /changes`` (the key-level change log, newest first, paged) and ``GET /blame`` (one key's history)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

from kb.api.routes._params import Limit, Offset, PageNo, PathFilter, Service, read, resolve_offset
from kb.api.schemas import ChangesPage
from kb.types import KeyHistory

__all__ = ["changes", "blame"]

KeyFilter = Annotated[
    str | None,
    Parameter(
        max_length=1000,
        description=("A key path (and the keys under it), or a pattern where * matches anything: *timeout*."),
    ),
]
Since = Annotated[
    str | None,
    Parameter(
        max_length=64, description=("A run id (that run and later), a date or time (UTC), or an age: 7d, 12h, 30m, 2w.")
    ),
]


@read("/changes", tags=["changes"])
def changes(
    service: Service,
    key: KeyFilter = None,
    path: PathFilter = None,
    since: Since = None,
    change: Annotated[
        Literal["added", "removed", "changed", "moved", "broken"] | None,
        Parameter(description="Only this kind of change."),
    ] = None,
    offset: Offset = 0,
    limit: Limit = 100,
    page: PageNo = None,
) -> ChangesPage:
    """Key-level changes recorded at ingest, newest first: old and new values (secrets redacted),
    file and line, run and time, and the git commit and author when known. A moved file keeps its
    history: path= a file includes its earlier paths."""
    start = resolve_offset(offset, limit, page)
    return service.ready().change_page(key=key, path=path, since=since, change=change, offset=start, limit=limit)


@read("/blame", 404, tags=["changes"])
def blame(
    service: Service,
    path: Annotated[str, Parameter(min_length=1, max_length=1000, description="A path relative to the corpus root.")],
    key: Annotated[
        str, Parameter(min_length=1, max_length=1000, description="A key path, as GET /files/{path} lists it.")
    ],
    doc: Annotated[int | None, Parameter(ge=0, le=100_000, description="Document index (multi-document YAML).")] = None,
) -> KeyHistory:
    """The history of one key: its value now, who last touched its line (git), every recorded change."""
    return service.ready().blame(path, key, doc=doc)
