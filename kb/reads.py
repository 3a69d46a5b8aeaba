"""Paged reads of the catalogue for the façade: files, one file's records, keys, lines, counts.

Every query binds its values as parameters and pages in SQL, so a page costs the same whatever the
size of the tree. Path filters are :class:`~kb.globs.PathFilter` (a file, a folder or a glob), as
everywhere. The doors reach these through :class:`~kb.knowledge.KnowledgeBase`, never directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kb.catalogue import SHOWN_FINDINGS, Catalogue
from kb.errors import NotIndexedError
from kb.findings import FindingFilter, read_findings
from kb.globs import PathFilter
from kb.types import FileDetail, FileInfo, FilesPage, KeyRecord, RecordRow

__all__ = [
    "files_page",
    "file_info",
    "file_detail",
    "similar_paths",
    "not_catalogued",
    "key_records",
    "key_records_query",
    "records_query",
    "records_where",
    "stored_lines",
    "counts",
]

_FILE_COLS = "path, format, size, sha256, mtime, status, records"
_RECORD_COLS = "doc, key_path, value, value_type, line"


def _file_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "size": r["size"] or 0,
        "records": r["records"] or 0,
        "format": r["format"] or "unknown",
        "status": r["status"] or "ok",
    }


def files_page(
    cat: Catalogue,
    *,
    format: str | None = None,
    status: str | None = None,
    path: PathFilter | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> FilesPage:
    """Catalogued files in path order, with the total across pages (``limit=None``: all)."""
    clauses: list[str] = []
    params: list[Any] = []
    for col, val in (("format", format), ("status", status)):
        if val:
            clauses.append(f"{col} = ?")
            params.append(val)
    if path is not None:
        clause, more = path.sql()
        clauses.append(clause)
        params += more
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    total = int(cat.query(f"SELECT count(*) FROM files {where}", params)[0][0])
    page = " LIMIT ? OFFSET ?" if limit is not None else " OFFSET ?"
    rows = cat.query_dicts(
        f"SELECT {_FILE_COLS} FROM files {where} ORDER BY path{page}",
        [*params, *([limit] if limit is not None else []), offset],
    )
    return FilesPage(
        total=total,
        offset=offset,
        limit=limit if limit is not None else total,
        files=[FileInfo(**_file_row(r)) for r in rows],
    )


def file_info(cat: Catalogue, path: str) -> FileInfo | None:
    rows = cat.query_dicts(f"SELECT {_FILE_COLS} FROM files WHERE path = ?", [path])
    return FileInfo(**_file_row(rows[0])) if rows else None


def similar_paths(cat: Catalogue, path: str, n: int = 5) -> list[str]:
    """Up to ``n`` catalogued paths whose name contains the last segment of ``path``."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return [r[0] for r in cat.query("SELECT path FROM files WHERE path LIKE ? ORDER BY path LIMIT ?", [f"%{name}%", n])]


def not_catalogued(cat: Catalogue, given: str, rel: str) -> NotIndexedError:
    """The one error for a path that is not catalogued (``kb show``, ``GET /files/{path}``, the MCP
    ``show_file``, ``impact`` and ``dependencies``): what was asked and the paths it may have meant."""
    like = similar_paths(cat, rel)
    tail = (
        f" Did you mean: {', '.join(like)}?"
        if like
        else ' List the catalogued paths with `kb sql "SELECT path FROM files"` or GET /files.'
    )
    return NotIndexedError(
        f"'{given}' is not a catalogued file; give its path relative to the corpus root, as catalogued.{tail}"
    )


def file_detail(cat: Catalogue, info: FileInfo, *, offset: int = 0, limit: int | None = None) -> FileDetail:
    """A page of one file's records (document, line, key order) and every finding stored on it."""
    path = info.path
    total = int(cat.query("SELECT count(*) FROM records WHERE path = ?", [path])[0][0])
    page = " LIMIT ? OFFSET ?" if limit is not None else " OFFSET ?"
    rows = cat.query_dicts(
        f"SELECT {_RECORD_COLS} FROM records WHERE path = ? ORDER BY doc, line, key_path{page}",
        [path, *([limit] if limit is not None else []), offset],
    )
    return FileDetail(
        file=info,
        total=total,
        offset=offset,
        limit=limit if limit is not None else total,
        records=[RecordRow(**r) for r in rows],
        findings=read_findings(cat, FindingFilter(file=path)),
    )


def _key_like(pattern: str) -> tuple[str, list[Any]]:
    """``key_path`` against a key glob, case-insensitively (see :meth:`KnowledgeBase.find_key`)."""
    like = "".join({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(c, c) for c in pattern)
    if any(c in pattern for c in "*?"):
        return "(key_path ILIKE ? ESCAPE '\\')", [like]
    return "(key_path ILIKE ? ESCAPE '\\' OR key_path ILIKE ? ESCAPE '\\')", [like, "%." + like]


def records_where(
    *, key_glob: str | None = None, key_like: str | None = None, path: PathFilter | None = None
) -> tuple[str, list[Any]]:
    """The WHERE clause (possibly empty) of a records query: a key glob (:func:`key_records`), a key
    ``LIKE`` pattern (``KnowledgeBase.records``), and a path filter."""
    clauses: list[str] = []
    params: list[Any] = []
    if key_glob:
        clause, more = _key_like(key_glob)
        clauses.append(clause)
        params += more
    if key_like:
        clauses.append("key_path LIKE ?")
        params.append(key_like)
    if path is not None:
        clause, more = path.sql()
        clauses.append(clause)
        params += more
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def records_query(
    *, key_like: str | None = None, path: PathFilter | None = None, limit: int | None = None
) -> tuple[str, list[Any]]:
    """Records (``KnowledgeBase.records``): a key ``LIKE`` pattern, a path filter, the first ``limit``."""
    where, params = records_where(key_like=key_like, path=path)
    lim = f" LIMIT {int(limit)}" if limit else ""
    return f"SELECT path, {_RECORD_COLS} FROM records {where} ORDER BY path, doc, line{lim}", params


def key_records_query(
    pattern: str, *, path: PathFilter | None = None, offset: int = 0, limit: int | None = None
) -> tuple[str, list[Any]]:
    """Records whose key path matches the glob ``pattern``, in path, document and line order."""
    where, params = records_where(key_glob=pattern, path=path)
    page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit else (f"OFFSET {int(offset)}" if offset else "")
    return f"SELECT path, {_RECORD_COLS} FROM records {where} ORDER BY path, doc, line, key_path {page}", params


def key_records(
    cat: Catalogue, pattern: str, *, path: PathFilter | None = None, offset: int = 0, limit: int | None = None
) -> list[KeyRecord]:
    """:func:`key_records_query` as models."""
    return [KeyRecord(**r) for r in cat.query_dicts(*key_records_query(pattern, path=path, offset=offset, limit=limit))]


def stored_lines(cat: Catalogue, ranges: Mapping[str, Iterable[tuple[int, int]]]) -> dict[str, dict[int, str]]:
    """The stored (redacted) text of the lines ``ranges`` asks for, by path and line number, read from
    the catalogue's sections, never from the disk (a secret redacted at ingest stays redacted)."""
    out: dict[str, dict[int, str]] = {}
    for path, spans in ranges.items():
        spans = list(spans)
        lo, hi = min(r[0] for r in spans), max(r[1] for r in spans)
        rows = cat.query(
            "SELECT line_start, line_end, text FROM sections WHERE path = ? AND line_end >= ? AND line_start <= ? "
            "ORDER BY line_start",
            [path, lo, hi],
        )
        lines: dict[int, str] = {}
        for start, end, text in rows:
            parts = (text or "").split("\n")
            if start is None or end is None or len(parts) != end - start + 1:
                continue
            for i, line in enumerate(parts, start=start):
                lines.setdefault(i, line)
        out[path] = lines
    return out


def counts(cat: Catalogue) -> dict[str, int]:
    """Index size: files, chunks, records, findings."""
    row = cat.query(
        "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM chunks), "
        f"(SELECT count(*) FROM records), (SELECT count(*) FROM {SHOWN_FINDINGS})"
    )[0]
    return {"files": int(row[0]), "chunks": int(row[1]), "records": int(row[2]), "findings": int(row[3])}
