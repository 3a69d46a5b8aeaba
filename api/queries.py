"""Paged reads over the catalogue for the API (findings, files, one file's records).

Every query takes a read view (:meth:`api.service.KBService.reading`), binds every value as a
parameter and pages in SQL, so a page costs the same whatever the size of the tree.
"""

from __future__ import annotations

from typing import Any

from kb.catalogue import Catalogue
from kb.findings import FindingFilter, count_findings, read_findings
from kb.globs import path_clause
from kb.types import FileInfo, Finding

__all__ = ["findings_page", "files_page", "file_records", "file_info", "counts"]

_FILE_COLS = "path, format, size, sha256, mtime, status, records"


def _filters(equal: dict[str, str | None], path: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters: ``column = value`` for each given value, and ``path``
    as an exact path or a glob."""
    clauses: list[str] = []
    params: list[Any] = []
    for col, val in equal.items():
        if val:
            clauses.append(f"{col} = ?")
            params.append(val)
    if path:
        clauses.append(path_clause(path))
        params.append(path)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def findings_page(
    view: Catalogue, *, rule: str | None, severity: str | None, path: str | None, offset: int, limit: int
) -> tuple[int, list[Finding]]:
    flt = FindingFilter(rule=rule, severity=severity, path=path)
    return count_findings(view, flt), read_findings(view, flt, limit=limit, offset=offset)


def files_page(
    view: Catalogue, *, format: str | None, path: str | None, status: str | None, offset: int, limit: int
) -> tuple[int, list[FileInfo]]:
    where, params = _filters({"format": format, "status": status}, path)
    total = view.query(f"SELECT count(*) FROM files {where}", params)[0][0]
    rows = view.query_dicts(
        f"SELECT {_FILE_COLS} FROM files {where} ORDER BY path LIMIT ? OFFSET ?", [*params, limit, offset]
    )
    return int(total), [FileInfo(**_file_row(r)) for r in rows]


def _file_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **r,
        "size": r["size"] or 0,
        "records": r["records"] or 0,
        "format": r["format"] or "unknown",
        "status": r["status"] or "ok",
    }


def file_info(view: Catalogue, path: str) -> FileInfo | None:
    rows = view.query_dicts(f"SELECT {_FILE_COLS} FROM files WHERE path = ?", [path])
    return FileInfo(**_file_row(rows[0])) if rows else None


def file_records(
    view: Catalogue, path: str, *, offset: int, limit: int
) -> tuple[int, list[dict[str, Any]], list[Finding]]:
    total = view.query("SELECT count(*) FROM records WHERE path = ?", [path])[0][0]
    records = view.query_dicts(
        "SELECT doc, key_path, value, value_type, line FROM records WHERE path = ? "
        "ORDER BY doc, line, key_path LIMIT ? OFFSET ?",
        [path, limit, offset],
    )
    return int(total), records, read_findings(view, FindingFilter(file=path))


def counts(view: Catalogue) -> dict[str, int]:
    """Index size: files, chunks, records, findings."""
    row = view.query(
        "SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM chunks), "
        "(SELECT count(*) FROM records), (SELECT count(*) FROM findings)"
    )[0]
    return {"files": int(row[0]), "chunks": int(row[1]), "records": int(row[2]), "findings": int(row[3])}
