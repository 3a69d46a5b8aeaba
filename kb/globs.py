"""Globs and path filters, defined once.

A glob here has DuckDB's ``GLOB`` meaning, which :func:`fnmatch.fnmatchcase` shares: ``*`` and
``?`` match any characters (``/`` too), ``[...]`` a class; matching is case-sensitive. A pattern
without ``*``, ``?`` or ``[`` is not a glob.

A :class:`PathFilter` is what every door's ``path`` filter means (``kb findings --path``,
``GET /files?path=``, the MCP tools' ``path``, ``kb validate FILES``, ``kb changes --path``, the
Python API's ``path=``): a path relative to the corpus root names that file, or the folder and
every file under it; a glob matches paths as above. It gives the SQL test and the same test in
Python, so a filter in a query and a filter in memory cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["GLOB_CHARS", "is_glob", "glob_match", "PathFilter"]

GLOB_CHARS = "*?["


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has a wildcard (else it names one path)."""
    return any(c in pattern for c in GLOB_CHARS)


def glob_match(text: str, pattern: str) -> bool:
    """Whether ``text`` matches ``pattern`` (as SQL ``text GLOB pattern`` would)."""
    return fnmatchcase(text, pattern)


def _clean(pattern: str) -> str:
    p = pattern.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p if is_glob(p) else p.rstrip("/")


@dataclass(frozen=True, slots=True)
class PathFilter:
    """Paths matching any of ``patterns``: each a file, a folder (the files under it) or a glob.

    Build one with :meth:`of`, which cleans what a person typed (spaces, a leading ``./``,
    backslashes, a trailing ``/``) and gives ``None`` when there is nothing to filter on.
    """

    patterns: tuple[str, ...]

    @classmethod
    def of(cls, patterns: str | Iterable[str] | None) -> PathFilter | None:
        given = [patterns] if isinstance(patterns, str) else list(patterns or [])
        cleaned = tuple(dict.fromkeys(p for p in (_clean(g) for g in given if g is not None) if p))
        return cls(cleaned) if cleaned else None

    def matches(self, path: str) -> bool:
        """Whether ``path`` (a catalogue path) passes the filter."""
        for p in self.patterns:
            if is_glob(p):
                if fnmatchcase(path, p):
                    return True
            elif path == p or path.startswith(p + "/"):
                return True
        return False

    def sql(self, column: str = "path") -> tuple[str, list[Any]]:
        """The SQL test of ``column`` (one parenthesised clause) and its parameters."""
        parts: list[str] = []
        params: list[Any] = []
        for p in self.patterns:
            if is_glob(p):
                parts.append(f"{column} GLOB ?")
                params.append(p)
            else:
                parts.append(f"{column} = ? OR starts_with({column}, ?)")
                params += [p, p + "/"]
        return "(" + " OR ".join(f"({x})" for x in parts) + ")", params

    def __str__(self) -> str:
        return ", ".join(self.patterns)
