"""Stored findings, defined once: the severity order, the filters, the query, the row.

Every reader of the ``findings`` table (the façade's ``findings()``, the HTTP API's pages, a
file's findings) asks :func:`findings_query` for its SQL, so each one lists findings worst first in
the same order: severity (:data:`SEVERITY_ORDER`), then path, line (none first), rule, message.
:func:`store_findings` is the one place a :class:`~kb.types.Finding` becomes a catalogue row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kb.catalogue import Catalogue
from kb.globs import path_clause
from kb.types import SEVERITIES, Finding, Problem

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "SEVERITY_ORDER",
    "FINDING_COLUMNS",
    "FindingFilter",
    "severity_rank",
    "finding_sort_key",
    "findings_query",
    "count_query",
    "read_findings",
    "count_findings",
    "findings_frame",
    "store_findings",
    "problem_row",
]

SEVERITY_ORDER: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
"""``error`` 0, ``warning`` 1, ``info`` 2; anything else ranks after them."""

FINDING_COLUMNS: tuple[str, ...] = ("rule", "severity", "path", "line", "message", "target", "fingerprint")

_RANK_SQL = (
    "CASE severity "
    + " ".join(f"WHEN '{s}' THEN {i}" for s, i in SEVERITY_ORDER.items())
    + f" ELSE {len(SEVERITY_ORDER)} END"
)
_ORDER_SQL = f"{_RANK_SQL}, path, line NULLS FIRST, rule, message"


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER.get(severity, len(SEVERITY_ORDER))


def finding_sort_key(f: Finding) -> tuple[int, str, int, str, str]:
    """The order of :func:`findings_query`, for findings in memory."""
    return (severity_rank(f.severity), f.path, f.line or 0, f.rule, f.message)


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Which findings: ``rule``, ``severity``, ``path`` (a path or a glob, see :mod:`kb.globs`)
    and ``file`` (exactly this path); ``None`` or empty does not filter."""

    rule: str | None = None
    severity: str | None = None
    path: str | None = None
    file: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for col, val in (("rule", self.rule), ("severity", self.severity)):
            if val:
                clauses.append(f"{col} = ?")
                params.append(val)
        if self.path:
            clauses.append(path_clause(self.path))
            params.append(self.path)
        if self.file:
            clauses.append("path = ?")
            params.append(self.file)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def findings_query(
    flt: FindingFilter = FindingFilter(), *, limit: int | None = None, offset: int = 0
) -> tuple[str, list[Any]]:
    """``SELECT`` of :data:`FINDING_COLUMNS`, worst first, and its parameters; paged with ``limit``."""
    where, params = flt.where()
    sql = f"SELECT {', '.join(FINDING_COLUMNS)} FROM findings {where} ORDER BY {_ORDER_SQL}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return sql, params


def count_query(flt: FindingFilter = FindingFilter()) -> tuple[str, list[Any]]:
    where, params = flt.where()
    return f"SELECT count(*) FROM findings {where}", params


def _finding(row: dict[str, Any]) -> Finding:
    if row["severity"] not in SEVERITY_ORDER:
        row = {**row, "severity": "info"}
    return Finding(**row)


def read_findings(
    catalogue: Catalogue, flt: FindingFilter = FindingFilter(), *, limit: int | None = None, offset: int = 0
) -> list[Finding]:
    """Stored findings as models (an unknown severity reads as ``info``)."""
    return [_finding(r) for r in catalogue.query_dicts(*findings_query(flt, limit=limit, offset=offset))]


def count_findings(catalogue: Catalogue, flt: FindingFilter = FindingFilter()) -> int:
    return int(catalogue.query(*count_query(flt))[0][0])


def findings_frame(catalogue: Catalogue, flt: FindingFilter = FindingFilter()) -> pd.DataFrame:
    """Stored findings as a DataFrame with :data:`FINDING_COLUMNS`, worst first."""
    return catalogue.query_df(*findings_query(flt))


def store_findings(catalogue: Catalogue, source: str, findings: Iterable[Finding]) -> None:
    """Replace every stored finding of ``source`` (``validate``, ...) with ``findings``."""
    catalogue.replace_findings(source, [(*(getattr(f, c) for c in FINDING_COLUMNS), source) for f in findings])


def problem_row(problem: Problem, path: str, source: str) -> tuple[Any, ...]:
    """The catalogue row of a :class:`~kb.types.Problem` found in ``path`` by ``source``
    (``ingest``, ``walk``): the one place a file's problem becomes a stored finding."""
    p = problem
    return (p.rule, p.severity, path, p.line, p.message, p.target, p.fingerprint, source)
