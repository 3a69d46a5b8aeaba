"""The limits of a search request, defined once: :mod:`kb.search`, the CLI and the HTTP API read them here.

A core module (it imports only :mod:`kb.errors`), so the CLI builds its options from it without
loading the search stack.
"""

from __future__ import annotations

from kb.errors import BadRequestError

__all__ = ["MODES", "DEFAULT_MODE", "DEFAULT_K", "MAX_K", "MAX_QUERY_CHARS", "validate_request"]

MODES = ("hybrid", "semantic", "keyword")
"""Search modes: fused, vectors only, BM25 only."""
DEFAULT_MODE = "hybrid"
DEFAULT_K = 10
"""Hits returned when the caller does not say."""
MAX_K = 100
"""Most hits one search returns."""
MAX_QUERY_CHARS = 1000
"""Longest query, in characters."""


def validate_request(query: object, k: object, mode: object) -> str:
    """The stripped query, or a :class:`~kb.errors.BadRequestError` that says how to fix it."""
    if mode not in MODES:
        raise BadRequestError(f"Unknown search mode '{mode}': use one of {', '.join(MODES)}.")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_K:
        raise BadRequestError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
    if query is None or not str(query).strip():
        raise BadRequestError('Empty query: give words or an identifier, e.g. kb search "fraud review threshold".')
    text = str(query)
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequestError(f"Query is {len(text)} characters long; the limit is {MAX_QUERY_CHARS}. Shorten it.")
    return text.strip()
