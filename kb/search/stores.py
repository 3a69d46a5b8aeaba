"""Every access of search to a published generation: its catalogue, keyword index, vectors, and the
query embedder.

The rest of :mod:`kb.search` reads the KB only through the narrow functions here, so how a
generation is opened and shared (:class:`kb.generations.Snapshot`) can change in this one module.
Structures derived from a generation (formats, file counts, chunks per file) are built once per
snapshot and kept in its ``cache``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.errors import ConfigError, EmbedderMismatchError, NotIndexedError
from kb.formats import declare_saved
from kb.keyword import chunk_ordinal

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable, Iterable

    import numpy as np

    from kb.embed import Embedder
    from kb.generations import Snapshot
    from kb.keyword import ChunkDoc, KeywordIndex
    from kb.settings import Settings

__all__ = [
    "Stores",
    "open_stores",
    "keyword_search",
    "fetch_chunks",
    "check_embedder",
    "has_vectors",
    "encode_query",
    "vector_search",
    "files_matching",
    "file_chunk_counts",
    "neighbour_chunks",
    "term_idf",
    "word_forms",
    "file_vector_scores",
    "file_keyword_scores",
    "feedback_vector",
]


@dataclass
class _Handles:
    generation: int
    keyword: KeywordIndex | None
    embedder_meta: dict[str, Any] | None
    formats: set[str] = field(default_factory=set)
    n_files: int = 0
    chunk_counts: dict[str, int] = field(default_factory=dict)
    """Chunks per file, filled in as searches meet the files (:func:`file_chunk_counts`)."""
    idf: dict[str, float] = field(default_factory=dict)
    forms: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Stores:
    """One snapshot's stores and the query embedder, for the length of one search."""

    snapshot: Snapshot
    settings: Settings
    handles: _Handles
    embedder: Callable[[], Embedder] | Embedder | None = None

    @property
    def formats(self) -> set[str]:
        return self.handles.formats

    @property
    def n_files(self) -> int:
        return self.handles.n_files


def open_stores(
    snapshot: Snapshot, settings: Settings, embedder: Callable[[], Embedder] | Embedder | None = None
) -> Stores:
    """The snapshot's stores; :class:`~kb.errors.NotIndexedError` when its keyword index is missing."""
    h = snapshot.cache.get("search_handles")
    if h is None:
        declare_saved(snapshot.gen.formats)  # a plugin's format reads its lines its own way
        catalogue = snapshot.catalogue
        formats = {r[0] for r in catalogue.query("SELECT DISTINCT format FROM files") if r[0]}
        n_files = int(catalogue.query("SELECT count(*) FROM files")[0][0])
        h = _Handles(snapshot.gen.number, snapshot.keyword, snapshot.gen.embedder, formats, n_files)
        snapshot.cache["search_handles"] = h
    if h.keyword is None:
        raise NotIndexedError(f"The keyword index of '{snapshot.db}' is missing. Re-run `kb ingest` to rebuild it.")
    return Stores(snapshot, settings, h, embedder)


def keyword_search(
    st: Stores,
    terms: list[str],
    n: int,
    *,
    format: str | None,
    paths: list[str] | None,
    boosts: dict[str, float] | None = None,
) -> list[tuple[float, ChunkDoc]]:
    """BM25 top ``n`` chunks for ``terms`` (analysed), filtered by format and paths; ``boosts``
    weighs some terms (the query's word-form variants)."""
    assert st.handles.keyword is not None
    return st.handles.keyword.search(terms, n, format=format, paths=paths, boosts=boosts)


def word_forms(st: Stores, root: str, limit: int = 12) -> list[str]:
    """Index terms that start with ``root`` (the candidates for other forms of a word), most
    frequent first. Cached per snapshot."""
    h = st.handles
    hit = h.forms.get(root)
    if hit is not None:
        return hit
    kw = h.keyword
    if kw is None:
        return []
    terms = [t for t, _ in kw.index.searcher().terms_with_prefix("body", root, limit=limit)]
    h.forms[root] = terms
    return terms


def fetch_chunks(st: Stores, chunk_ids: list[str]) -> dict[str, ChunkDoc]:
    """Stored chunk rows by id (the keyword index stores them)."""
    assert st.handles.keyword is not None
    return st.handles.keyword.fetch(chunk_ids)


def check_embedder(st: Stores) -> None:
    """The configured embedder is the one the KB's vectors were made with, or a clear error."""
    from kb.embed import embedder_name, queries_fit
    from kb.index import mismatch_message

    meta = st.handles.embedder_meta
    name = embedder_name(st.settings)
    if meta is not None and not queries_fit(meta.get("name"), name):
        raise EmbedderMismatchError(mismatch_message(meta, name, st.settings))


def has_vectors(st: Stores) -> bool:
    """Whether the generation has any vectors yet (an embedding may still be running)."""
    return bool(st.snapshot.gen.embedded)


def encode_query(st: Stores, query: str) -> np.ndarray:
    """The query's vector, by the embedder given to :func:`open_stores` (loaded only now)."""
    from kb.index import mismatch_message

    if st.embedder is None:
        from kb.embed import create_embedder

        emb = create_embedder(st.settings, purpose="query")
    elif callable(st.embedder) and not hasattr(st.embedder, "encode"):
        emb = st.embedder()
    else:
        emb = st.embedder  # type: ignore[assignment]
    dim = st.snapshot.gen.dim
    if dim is not None and int(dim) != emb.dim:
        raise EmbedderMismatchError(
            mismatch_message(st.snapshot.gen.embedder or {}, f"{emb.name} (dim {emb.dim})", st.settings)
        )
    return emb.encode([query])[0]


def vector_search(
    st: Stores, vector: np.ndarray, n: int, *, format: str | None = None, paths: list[str] | None = None
) -> list[tuple[str, float]]:
    """The ``n`` chunks nearest to ``vector`` (chunk id, cosine), best first: an exact scan of the
    generation's vectors, filtered by format and paths; with ``vector_reads = server``, the
    neighbours the Chroma server at ``chroma_url`` finds (:meth:`ChunkVectors.nearest_on_server`)."""
    from kb.index import chunk_vectors

    cv = chunk_vectors(st.snapshot)
    reads = st.settings.vector_reads
    if reads == "local":
        return cv.nearest(vector, n, format=format, paths=paths)
    if reads != "server":
        raise ConfigError(f"vector_reads is '{reads}': use local (the KB's vector segments) or server (Chroma).")
    if not st.settings.chroma_url or not st.snapshot.gen.kb_id:
        raise ConfigError(
            "vector_reads = server needs a Chroma server the KB was built with: set KB_CHROMA_URL "
            "(as for `kb ingest`), or KB_VECTOR_READS=local to scan the KB's own vectors."
        )
    mirror = st.snapshot.cache.get("chroma_server")
    if mirror is None:
        from kb.vectors import ChromaMirror

        mirror = ChromaMirror(
            st.snapshot.db, chroma_url=st.settings.chroma_url, collection=f"kb_{st.snapshot.gen.kb_id}"
        )
        st.snapshot.cache["chroma_server"] = mirror
    return cv.nearest_on_server(mirror, vector, n, format=format, paths=paths)


def files_matching(st: Stores, path: str, *, glob: bool, format: str | None) -> list[str]:
    """Catalogued files matching ``path``: a glob, or (``glob=False``) the file or folder of that name."""
    if glob:
        where, params = "path GLOB ?", [path]
    else:
        where, params = "(path = ? OR starts_with(path, ?))", [path.rstrip("/"), path.rstrip("/") + "/"]
    if format:
        where, params = where + " AND format = ?", [*params, format]
    return [r[0] for r in st.snapshot.catalogue.query(f"SELECT path FROM files WHERE {where}", params)]


def file_chunk_counts(st: Stores, paths: Iterable[str]) -> dict[str, int]:
    """Chunks per file, for the files of ``paths`` (a search's candidates; kept for the snapshot).
    Counted in the keyword index, only the files asked for: a catalogue query counting every file
    held a second copy of every path (23 MB of a cold search's 304 MB peak at 50,000 files)."""
    h = st.handles
    missing = sorted({p for p in paths if p not in h.chunk_counts})
    if missing:
        assert h.keyword is not None
        h.chunk_counts.update(h.keyword.chunk_counts(missing))
    return h.chunk_counts


def neighbour_chunks(st: Stores, docs: list[ChunkDoc]) -> dict[str, tuple[ChunkDoc | None, ChunkDoc | None]]:
    """For each chunk of ``docs`` (by id), the chunks of its file just before and just after it
    (None at either end, and where a neighbour shares a line with it: a long line split into
    several chunks). Chunk ids are ``path#ordinal``: one keyword-index read for all of them."""
    wanted: dict[str, tuple[str, str]] = {}
    for d in docs:
        n = chunk_ordinal(d)
        if n is not None and 0 < d.line_start < d.line_end:
            wanted[d.chunk_id] = (f"{d.path}#{n - 1}", f"{d.path}#{n + 1}")
    if not wanted:
        return {}
    assert st.handles.keyword is not None
    got = st.handles.keyword.fetch([cid for pair in wanted.values() for cid in pair])
    out: dict[str, tuple[ChunkDoc | None, ChunkDoc | None]] = {}
    for d in docs:
        if d.chunk_id not in wanted:
            continue
        prev_id, next_id = wanted[d.chunk_id]
        before, after = got.get(prev_id), got.get(next_id)
        if before is not None and (before.line_start == before.line_end or before.line_end >= d.line_start):
            before = None
        if after is not None and (after.line_start == after.line_end or after.line_start <= d.line_end):
            after = None
        out[d.chunk_id] = (before, after)
    return out


def chunks_between(st: Stores, docs: list[ChunkDoc], split_pieces: int) -> list[ChunkDoc]:
    """The chunks of a file between those of ``docs`` that are not among them (one keyword-index
    read); where one is a piece of a split line, ``split_pieces`` more on either side."""
    have = {d.chunk_id for d in docs}
    ordinals = [n for n in map(chunk_ordinal, docs) if n is not None]
    if not ordinals:
        return []
    pad = split_pieces if any(d.line_start == d.line_end for d in docs) else 0
    path = docs[0].path
    wanted = range(max(0, min(ordinals) - pad), max(ordinals) + pad + 1)
    ids = [f"{path}#{n}" for n in wanted if f"{path}#{n}" not in have]
    return list(fetch_chunks(st, ids).values()) if ids else []


def term_idf(st: Stores) -> Callable[[str], float]:
    """A term's inverse document frequency in the keyword index, scaled to (0, 1] (1: a term of one
    chunk). Cached per snapshot."""
    import math

    h = st.handles
    kw = h.keyword
    if kw is None:
        return lambda term: 1.0
    searcher = None
    n = 0

    def idf(term: str) -> float:
        nonlocal searcher, n
        hit = h.idf.get(term)
        if hit is not None:
            return hit
        if searcher is None:
            searcher = kw.index.searcher()
            n = max(1, int(searcher.num_docs))
        df = int(searcher.doc_freq("body", term))
        value = math.log(1.0 + (n - df + 0.5) / (df + 0.5)) / math.log(1.0 + (n - 0.5) / 1.5)
        h.idf[term] = value = min(1.0, max(0.05, value))
        return value

    return idf


def file_keyword_scores(st: Stores, terms: list[str], limit: int, paths: list[str] | None = None) -> dict[str, float]:
    """BM25 of whole files (:class:`~kb.keyword.FileIndex`): the ``limit`` best (among ``paths``
    when given), path -> score; empty for a KB whose file index was never built (until its next
    ``kb ingest``)."""
    kw = st.handles.keyword
    files = kw.files() if kw is not None else None
    return files.search(terms, limit, paths) if files is not None else {}


def file_vector_scores(st: Stores, vector: np.ndarray) -> dict[str, float]:
    """Per file, how close its best few chunks are to ``vector`` on average."""
    from kb.index import chunk_vectors
    from kb.search.fusion import FILE_VECTOR_TOP

    return chunk_vectors(st.snapshot).file_scores(vector, FILE_VECTOR_TOP)


def feedback_vector(st: Stores, vector: np.ndarray, chunk_ids: list[str], weight: float) -> np.ndarray:
    """``vector`` moved towards the mean of the given chunks' vectors (pseudo-relevance feedback)."""
    import numpy as np

    from kb.index import chunk_vectors

    vs = chunk_vectors(st.snapshot).vectors_of(chunk_ids)
    if not len(vs):
        return vector
    out = np.asarray(vector, dtype=np.float32) + weight * vs.mean(axis=0)
    return (out / (np.linalg.norm(out) or 1.0)).astype(np.float32)
