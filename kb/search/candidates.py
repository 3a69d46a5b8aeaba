"""Candidates: the top chunks by BM25 and by cosine similarity, both filtered by format and path.

The files a ``path`` glob matches are looked up in the catalogue; the BM25 query and the exact
vector scan keep only their chunks (however many files), so a filtered search returns the best
matching chunks whenever they exist, never the few that survived a cut of the unfiltered list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb.search import stores
from kb.search.query import ParsedQuery, word_root

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from kb.keyword import ChunkDoc
    from kb.search.stores import Stores

__all__ = [
    "resolve_paths",
    "keyword_candidates",
    "vector_candidates",
    "candidate_count",
    "word_form_boosts",
    "CANDIDATES",
    "FORM_WEIGHT",
]

CANDIDATES = 150
"""Chunks read from each list (``k`` when it is larger). The depth does not depend on ``k`` below
it, so the first ten hits of ``-k 30`` are the hits of ``-k 10``."""


FORM_WEIGHT = 0.0
"""BM25 weight of the other forms of a question's words found in the index (``compiled`` for
"compile", ``healthy`` for "health"); 0 turns the expansion off. Off: measured on
the untuned half, no gain (docs/performance.md, "Five query-side levers")."""
MIN_FORM_CHARS = 5
ABBREVIATION_WEIGHT = 0.0
"""BM25 weight of the abbreviations configuration keys use for a question's words (``db`` for
"database", ``tz`` for "timezone"; :data:`kb.search.answers.ABBREVIATIONS`); 0 turns it off.
Off: measured on the untuned half, no gain (docs/performance.md, "Five query-side levers")."""


def word_form_boosts(st: Stores, q: ParsedQuery) -> dict[str, float]:
    """Index terms that are other forms of the question's plain words (same root), with their weight."""
    if (FORM_WEIGHT <= 0 and ABBREVIATION_WEIGHT <= 0) or q.literal:
        return {}
    out: dict[str, float] = {}
    have = set(q.terms)
    if ABBREVIATION_WEIGHT > 0:
        from kb.search.answers import abbreviations_of

        for t in q.terms:
            for a in abbreviations_of(t):
                if a not in have:
                    out[a] = ABBREVIATION_WEIGHT
    if FORM_WEIGHT <= 0:
        return out
    for t in q.terms:
        if len(t) < MIN_FORM_CHARS or not t.isalpha() or t in q.ident_terms:
            continue
        root = word_root(t)
        for u in stores.word_forms(st, root[:MIN_FORM_CHARS] if len(root) > MIN_FORM_CHARS else root):
            if u not in have and u.isalpha() and word_root(u) == root:
                out[u] = FORM_WEIGHT
    return out


def candidate_count(k: int) -> int:
    return max(CANDIDATES, k)


def _has_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def resolve_paths(st: Stores, path: str | None, format: str | None = None) -> list[str] | None:
    """Every catalogued file ``path`` selects (a glob; without wildcards, a file or a folder), of
    ``format`` when given; None when there is no path filter or it selects every file."""
    if not path:
        return None
    p = path.strip()
    while p.startswith("./"):
        p = p[2:]
    paths = stores.files_matching(st, p, glob=_has_glob(p), format=format)
    if paths and not format and st.n_files and len(paths) >= st.n_files:
        return None  # every file: no filter
    return paths


def keyword_candidates(
    st: Stores,
    terms: list[str],
    n: int,
    format: str | None,
    paths: list[str] | None,
    boosts: dict[str, float] | None = None,
) -> list[tuple[float, ChunkDoc]]:
    """BM25's top ``n``; ``boosts``: extra terms (word forms) and their weights."""
    if boosts:
        terms = [*terms, *(t for t in boosts if t not in terms)]
    return stores.keyword_search(st, terms, n, format=format, paths=paths, boosts=boosts)


def vector_candidates(
    st: Stores, vector: np.ndarray | None, n: int, format: str | None, paths: list[str] | None
) -> list[tuple[str, float]]:
    """The ``n`` chunks nearest to the query's ``vector`` among those of ``format`` in ``paths``
    (None: any), as (chunk id, cosine); none while the generation has no vectors yet."""
    if vector is None:
        return []
    return stores.vector_search(st, vector, n, format=format, paths=paths)
