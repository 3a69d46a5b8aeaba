"""``GET /files`` (paged list) and ``GET /files/{path}`` (one catalogued file's records).

``/files/{path}`` answers from the catalogue only: the file system is never read. A path that is
not catalogued, or that could only mean something outside the tree (``..`` segments, absolute or
drive paths, NUL bytes, percent-encoded forms of those; a backslash is an ordinary name character
but never hides a ``..``), is a 404 with a JSON body.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import unquote

from litestar.params import FromPath, Parameter

from kb.api.routes._params import Limit, Offset, PageNo, PathFilter, Service, read, resolve_offset
from kb.api.schemas import FileDetail, FilesPage
from kb.errors import NotIndexedError

__all__ = ["files", "file_detail", "catalogue_path"]

_DRIVE = re.compile(r"^[A-Za-z]:")


def _not_found(raw: str) -> NotIndexedError:
    shown = raw if len(raw) <= 200 else raw[:200] + "..."
    return NotIndexedError(
        f"No catalogued file {shown!r}. Give a path relative to the corpus root exactly as GET /files lists it "
        "(e.g. /files/services/payments/config/base.yaml)."
    )


def catalogue_path(raw: str) -> str:
    """The catalogue key for a ``/files/{path}`` request, or NotIndexedError when it cannot be one."""
    rel = raw[1:] if raw.startswith("/") else raw
    forms = [rel]
    for _ in range(3):  # undo up to three rounds of percent-encoding to look for hidden traversal
        nxt = unquote(forms[-1])
        if nxt == forms[-1]:
            break
        forms.append(nxt)
    for form in forms:
        # a backslash is an ordinary character in a POSIX file name (names/back\slash.yaml), but not
        # one that may hide a traversal: segments are checked split on both separators
        if (
            not form
            or form.startswith(("/", "\\"))
            or "\x00" in form
            or _DRIVE.match(form)
            or any(seg in ("..", ".", "") for seg in form.split("/"))
            or any(seg in ("..", ".") for seg in re.split(r"[/\\]", form))
        ):
            raise _not_found(raw)
    return unquote(rel) if "%5c" in rel.lower() and "\\" in unquote(rel) else rel


@read("/files", tags=["files"])
def files(
    service: Service,
    format: Annotated[str | None, Parameter(max_length=100, description="Only this format (yaml, json, ...).")] = None,
    status: Annotated[str | None, Parameter(max_length=20, description="Only this status: ok, error, skipped.")] = None,
    path: PathFilter = None,
    offset: Offset = 0,
    limit: Limit = 100,
    page: PageNo = None,
) -> FilesPage:
    """Catalogued files in path order, with the total across pages."""
    start = resolve_offset(offset, limit, page)
    return service.ready().files_page(format=format, status=status, path=path, offset=start, limit=limit)


@read("/files/{file_path:path}", 404, tags=["files"])
def file_detail(
    service: Service,
    file_path: FromPath[str],
    offset: Offset = 0,
    limit: Limit = 500,
    page: PageNo = None,
) -> FileDetail:
    """A catalogued file: its metadata, a page of its records (key path, value, line) and its findings."""
    rel = catalogue_path(file_path)
    start = resolve_offset(offset, limit, page)
    return service.ready().file(rel, offset=start, limit=limit)
