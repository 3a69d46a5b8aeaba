"""Globs, defined once: what counts as one, how one matches, and the SQL test on a path column.

A glob here has DuckDB's ``GLOB`` meaning, which :func:`fnmatch.fnmatchcase` shares: ``*`` and
``?`` match any characters (``/`` too), ``[...]`` a class; matching is case-sensitive. A pattern
without ``*``, ``?`` or ``[`` is an exact path.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

__all__ = ["GLOB_CHARS", "is_glob", "glob_match", "path_clause"]

GLOB_CHARS = "*?["


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` has a wildcard (else it names one path)."""
    return any(c in pattern for c in GLOB_CHARS)


def glob_match(text: str, pattern: str) -> bool:
    """Whether ``text`` matches ``pattern`` (as SQL ``text GLOB pattern`` would)."""
    return fnmatchcase(text, pattern)


def path_clause(pattern: str, column: str = "path") -> str:
    """The SQL test of ``column`` against ``pattern`` (bound as one parameter): ``GLOB`` for a glob,
    ``=`` for a plain path."""
    return f"{column} GLOB ?" if is_glob(pattern) else f"{column} = ?"
