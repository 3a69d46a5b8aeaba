"""Stored findings, defined once: the severity order, the filters, the query, the row.

Every reader of the ``findings`` table (the façade's ``findings()``, the HTTP API's pages, a
file's findings, the report) asks this module for its SQL, so each one lists findings worst first in
the same order: severity (:data:`SEVERITY_ORDER`), then path, line (none first), rule, message.
A severity kb does not know (a row written by hand, a newer version) reads as
:data:`UNKNOWN_SEVERITY` everywhere: in the models, the order, the filters and the counts.
:func:`store_findings` is the one place a :class:`~kb.types.Finding` becomes a catalogue row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kb.catalogue import SHOWN_FINDINGS, Catalogue
from kb.globs import PathFilter
from kb.types import SEVERITIES, Finding, Problem, Severity

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

INGEST_RULES = (
    "parse-error",
    "plaintext-secret",
    "binary-file",
    "non-utf8",
    "file-too-large",
    "file-too-slow",
    "symlink",
    "unreadable",
    "bad-file-name",
    "duplicate-key",
    "empty-file",
    "internal-error",
)
"""The rules of the findings an ingest records (the README's table "Findings recorded at ingest");
``kb validate``'s are :data:`kb.graph.rules.RULES`."""

__all__ = [
    "INGEST_RULES",
    "SEVERITY_ORDER",
    "UNKNOWN_SEVERITY",
    "severity_of",
    "severity_sql",
    "rank_sql",
    "FINDING_COLUMNS",
    "FindingFilter",
    "severity_rank",
    "finding_sort_key",
    "findings_query",
    "finding",
    "count_query",
    "read_findings",
    "count_findings",
    "findings_frame",
    "store_findings",
    "problem_row",
]

SEVERITY_ORDER: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}
"""``error`` 0, ``warning`` 1, ``info`` 2."""

UNKNOWN_SEVERITY: Severity = "warning"
"""What a stored severity kb does not know reads as: shown, never hidden as ``info``, and not an
``error`` that fails a CI run."""

FINDING_COLUMNS: tuple[str, ...] = ("rule", "severity", "path", "line", "message", "target", "fingerprint")


def severity_of(severity: Any) -> Severity:
    """``severity`` when kb knows it, else :data:`UNKNOWN_SEVERITY`."""
    return severity if severity in SEVERITY_ORDER else UNKNOWN_SEVERITY


def severity_sql(column: str = "severity") -> str:
    """The SQL twin of :func:`severity_of`."""
    known = ", ".join(f"'{s}'" for s in SEVERITY_ORDER)
    return f"(CASE WHEN {column} IN ({known}) THEN {column} ELSE '{UNKNOWN_SEVERITY}' END)"


def rank_sql(column: str = "severity") -> str:
    """The SQL twin of :func:`severity_rank` (0 for the worst)."""
    whens = " ".join(f"WHEN '{s}' THEN {i}" for s, i in SEVERITY_ORDER.items() if s != UNKNOWN_SEVERITY)
    return f"(CASE {column} {whens} ELSE {SEVERITY_ORDER[UNKNOWN_SEVERITY]} END)"


_ORDER_SQL = f"{rank_sql()}, path, line NULLS FIRST, rule, message"
_SELECT = ", ".join(f"{severity_sql()} AS severity" if c == "severity" else c for c in FINDING_COLUMNS)


def severity_rank(severity: str) -> int:
    return SEVERITY_ORDER[severity_of(severity)]


def finding_sort_key(f: Finding) -> tuple[int, str, int, str, str]:
    """The order of :func:`findings_query`, for findings in memory."""
    return (severity_rank(f.severity), f.path, f.line or 0, f.rule, f.message)


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Which findings: ``rule``, ``severity``, ``path`` (a file, folder or glob: a
    :class:`~kb.globs.PathFilter` or its text), ``file`` (exactly this path) and ``not_source``
    (all but the findings of this source, e.g. ``validate``); ``None`` or empty does not filter."""

    rule: str | None = None
    severity: str | None = None
    path: PathFilter | str | None = None
    file: str | None = None
    not_source: str | None = None

    @property
    def paths(self) -> PathFilter | None:
        return self.path if isinstance(self.path, PathFilter) else PathFilter.of(self.path)

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.rule:
            clauses.append("rule = ?")
            params.append(self.rule)
        if self.severity:
            clauses.append(f"{severity_sql()} = ?")
            params.append(self.severity)
        if (paths := self.paths) is not None:
            clause, more = paths.sql()
            clauses.append(clause)
            params += more
        if self.file:
            clauses.append("path = ?")
            params.append(self.file)
        if self.not_source:
            clauses.append("source <> ?")
            params.append(self.not_source)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params

    def matches(self, f: Finding) -> bool:
        """The same test on a finding in memory (which knows no source)."""
        paths = self.paths
        return (
            (not self.rule or f.rule == self.rule)
            and (not self.severity or severity_of(f.severity) == self.severity)
            and (paths is None or paths.matches(f.path))
            and (not self.file or f.path == self.file)
        )


def findings_query(
    flt: FindingFilter = FindingFilter(), *, limit: int | None = None, offset: int = 0
) -> tuple[str, list[Any]]:
    """``SELECT`` of :data:`FINDING_COLUMNS`, worst first, and its parameters; paged with ``limit``."""
    where, params = flt.where()
    sql = f"SELECT {_SELECT} FROM {SHOWN_FINDINGS} {where} ORDER BY {_ORDER_SQL}"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params = [*params, limit, offset]
    return sql, params


def count_query(flt: FindingFilter = FindingFilter()) -> tuple[str, list[Any]]:
    where, params = flt.where()
    return f"SELECT count(*) FROM {SHOWN_FINDINGS} {where}", params


def finding(row: dict[str, Any]) -> Finding:
    """A stored row as a model (its severity read by :func:`severity_of`)."""
    return Finding(**{**row, "severity": severity_of(row["severity"])})


def read_findings(
    catalogue: Catalogue, flt: FindingFilter = FindingFilter(), *, limit: int | None = None, offset: int = 0
) -> list[Finding]:
    """Stored findings as models, worst first."""
    return [finding(r) for r in catalogue.query_dicts(*findings_query(flt, limit=limit, offset=offset))]


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
