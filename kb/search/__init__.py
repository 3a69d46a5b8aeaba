"""Search: keyword (BM25), semantic (vectors) and hybrid (fused) over the chunk index.

:func:`search` is the one entry point (the CLI, the HTTP API and ``KnowledgeBase.search`` call it).
The package, one room per step:

============== ===============================================================================
``query``      the query taken apart: BM25 terms, identifiers, literal or question
``stores``     every read of the catalogue, keyword index, vector store and embedder
``candidates`` the top chunks of each list, with the format and path filters applied inside
``fusion``     the two lists become one ranking
``snippets``   a chunk becomes a hit: best lines, key path, snippet
============== ===============================================================================

The request's limits (modes, ``MAX_K``, query length) live in the core module :mod:`kb.limits`,
shared with the CLI and the API; the key path at each line of a chunk comes from
:mod:`kb.linepaths` (shared with ingest).
Modules load no model or store at import: those load inside functions, once per process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kb.errors import BadRequestError
from kb.limits import DEFAULT_K, MAX_K, MAX_QUERY_CHARS, MODES, validate_request
from kb.search import candidates, fusion, stores
from kb.search.answers import term_weights
from kb.search.query import ParsedQuery, is_literal_query, query_identifiers
from kb.search.snippets import SPLIT_PIECES, join_hits, make_hit, near_hits
from kb.types import Hit, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from kb.embed import Embedder
    from kb.generations import Snapshot
    from kb.keyword import ChunkDoc
    from kb.settings import Settings

__all__ = [
    "search",
    "MODES",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "DEFAULT_K",
    "ALL_SHARE",
    "query_identifiers",
    "is_literal_query",
]

NEIGHBOUR_AHEAD = 5
"""Chunks read ahead, past the hits still wanted, when fetching neighbours (one catalogue query
usually serves a whole search)."""
ALL_SHARE = 0.5
"""``all_files``: files whose best chunk scores at least this share of the best hit's score."""


def search(
    snapshot: Snapshot,
    settings: Settings,
    query: str,
    *,
    k: int = DEFAULT_K,
    mode: str = "hybrid",
    format: str | None = None,
    path: str | None = None,
    embedder: Callable[[], Embedder] | Embedder | None = None,
    all_files: bool = False,
) -> SearchResult:
    """Search one published generation; at most ``k`` hits, best first (see :mod:`kb.search.fusion`).

    ``embedder`` (or a callable returning it, called only when vectors are needed) encodes the
    query. While a KB is still being embedded, semantic candidates come from the vectors published
    so far; the result says what share that is.

    Raises :class:`~kb.errors.BadRequestError` for a bad mode, ``k`` outside 1..100, an empty
    query or one over 1000 characters, or an unknown ``format``;
    :class:`~kb.errors.NotIndexedError` when the KB has no index;
    :class:`~kb.errors.EmbedderMismatchError` when ``settings`` name another embedder than the
    KB's vectors (semantic and hybrid modes).

    A question that asks for several things ("Which stacks wait for their database?") gets each
    matching file once (its best chunk), not several chunks of the first file; ``all_files`` does
    the same for any query and returns every file scoring at least :data:`ALL_SHARE` of the best
    one (up to ``MAX_K``), ignoring ``k``.
    """
    query = validate_request(query, k, mode)
    st = stores.open_stores(snapshot, settings, embedder)
    if format is not None:
        format = format.strip().lower() or None
    if format and format not in st.formats:
        known = ", ".join(sorted(st.formats)) or "none"
        raise BadRequestError(f"Unknown format '{format}' (formats in this KB: {known}).")
    gen = snapshot.gen
    result = SearchResult(
        query=query,
        mode=mode,
        hits=[],
        generation=gen.number,
        embedded=gen.embedded,
        embeddable=gen.embeddable,
        embedded_share=gen.embedded_share,
    )
    if mode != "keyword" and gen.embedded_share < 1.0:
        result.notice = (
            f"{gen.embedded} of {gen.embeddable} texts are embedded so far "
            f"({gen.embedded_share:.0%}); semantic results cover those. `kb ingest` completes it."
        )
    q = ParsedQuery.parse(query)
    paths = candidates.resolve_paths(st, path, format)
    if paths is not None and not paths:
        return result
    n = candidates.candidate_count(k)

    kw_hits: list[tuple[float, ChunkDoc]] = []
    vec_hits: list[tuple[str, float]] = []
    if mode in ("hybrid", "keyword"):
        kw_hits = candidates.keyword_candidates(st, q.terms, n, format, paths, candidates.word_form_boosts(st, q))
    file_sims: dict[str, float] | None = None
    if mode in ("hybrid", "semantic"):
        stores.check_embedder(st)
        qvec = stores.encode_query(st, query) if stores.has_vectors(st) else None
        vec_hits = candidates.vector_candidates(st, qvec, n, format, paths)
        if qvec is not None and mode == "hybrid" and fusion.FILE_VECTOR_WEIGHT > 0:
            file_sims = stores.file_vector_scores(st, qvec)

    ranked: list[tuple[float, ChunkDoc]]
    if mode == "keyword":
        ranked = list(kw_hits)
    else:
        docs = {d.chunk_id: d for _, d in kw_hits}
        missing = [cid for cid, _ in vec_hits if cid not in docs]
        docs.update(stores.fetch_chunks(st, missing))
        if mode == "semantic":
            ranked = [(sim, docs[cid]) for cid, sim in vec_hits if cid in docs]
        else:

            def fused() -> list[tuple[float, ChunkDoc]]:
                counts = stores.file_chunk_counts(st, (d.path for d in docs.values()))
                return fusion.fuse(q, kw_hits, vec_hits, docs, counts, file_sims)

            ranked = fused()
            if fusion.FEEDBACK_WEIGHT > 0 and qvec is not None and ranked:
                # pseudo-relevance feedback: the query moved towards the first chunks, searched again
                top = [d.chunk_id for _, d in ranked[: fusion.FEEDBACK_TOP]]
                qvec2 = stores.feedback_vector(st, qvec, top, fusion.FEEDBACK_WEIGHT)
                vec_hits = candidates.vector_candidates(st, qvec2, n, format, paths)
                docs.update(stores.fetch_chunks(st, [cid for cid, _ in vec_hits if cid not in docs]))
                if file_sims is not None:
                    file_sims = stores.file_vector_scores(st, qvec2)
                ranked = fused()

    if mode == "hybrid" and fusion.FILE_KEYWORD_WEIGHT > 0 and ranked:
        scores = stores.file_keyword_scores(st, q.terms, fusion.FILE_KEYWORD_TOP, paths)  # no stop words
        ranked = fusion.file_keyword_boost(ranked, scores, fusion.FILE_KEYWORD_WEIGHT)
    if mode == "hybrid":
        ranked = fusion.prefer_configuration(q, ranked)
    weights = term_weights(q, stores.term_idf(st))
    if mode == "hybrid" and fusion.LINE_WEIGHT > 0:
        ranked = fusion.rerank_by_lines(q, ranked, weights)
    result.grouped = all_files or q.asks_for_many
    limit = MAX_K if all_files else k
    floor = ALL_SHARE * ranked[0][0] if all_files and ranked and ranked[0][0] > 0 else None
    seen: set[tuple[str, int, int]] = set()
    files: set[str] = set()
    around: dict[str, tuple[ChunkDoc | None, ChunkDoc | None]] = {}
    made_of: list[list[ChunkDoc]] = []  # the chunks each hit was read from (a joined hit: several)
    for i, (score, doc) in enumerate(ranked):
        if floor is not None and score < floor:
            break
        if result.grouped and doc.path in files:
            continue
        if doc.chunk_id not in around:  # the neighbours of this chunk and of the next few, in one query
            ahead = [d for _, d in ranked[i : i + limit - len(result.hits) + NEIGHBOUR_AHEAD]]
            around.update(dict.fromkeys((d.chunk_id for d in ahead), (None, None)))
            around.update(stores.neighbour_chunks(st, ahead))
        hit = make_hit(doc, score, q, weights, around[doc.chunk_id])
        sig = (hit.path, hit.line_start, hit.line_end)
        if sig in seen:
            continue
        seen.add(sig)
        pieces = [doc, *(d for d in around[doc.chunk_id] if d is not None)]
        j = next((j for j, h in enumerate(result.hits) if near_hits(h, hit)), None)
        if j is not None and _overlaps_another(result.hits, j, hit):
            j = None  # joined, it would cover a third hit between them: shown on its own, as before
        if j is not None:  # near an earlier hit of its file: one hit shows both
            made_of[j] += pieces
            made_of[j] += stores.chunks_between(st, made_of[j], SPLIT_PIECES)
            result.hits[j] = join_hits(result.hits[j], hit, made_of[j], q)
            continue
        files.add(doc.path)
        result.hits.append(hit)
        made_of.append(pieces)
        if len(result.hits) >= limit:
            break
    return result


def _overlaps_another(hits: list[Hit], j: int, hit: Hit) -> bool:
    """Whether ``hit`` joined to ``hits[j]`` would cover a third hit of the file that neither
    covers alone (one lying in the lines between them)."""

    def meet(a: tuple[int, int], b: Hit) -> bool:
        return b.path == hit.path and b.line_start <= a[1] and a[0] <= b.line_end

    joined = (min(hits[j].line_start, hit.line_start), max(hits[j].line_end, hit.line_end))
    return any(
        k != j
        and meet(joined, h)
        and not meet((hits[j].line_start, hits[j].line_end), h)
        and not meet((hit.line_start, hit.line_end), h)
        for k, h in enumerate(hits)
    )
