"""Every access of search to the catalogue, the keyword index, the vector store and the embedder.

The rest of :mod:`kb.search` reads the KB only through the narrow functions here, so how stores are
opened, cached and shared (today: a per-process cache keyed by the KB directory, reopened when the
index generation changes) can change in this one module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import EmbedderMismatchError, NotIndexedError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from kb.catalogue import Catalogue
    from kb.keyword import ChunkDoc, KeywordIndex
    from kb.settings import Settings
    from kb.vectors import VectorHit

__all__ = [
    "Stores",
    "open_stores",
    "keyword_search",
    "fetch_chunks",
    "check_embedder",
    "encode_query",
    "vector_search",
    "vector_count",
    "files_matching",
    "file_chunk_counts",
]


VECTOR_DEPTH = 1000
"""Neighbours asked of the vector index per query, of which the best ``n`` are kept. Chroma's HNSW
search explores ``max(ef_search, n)`` candidates; at its default (100) it found only 74% of the true
ten nearest chunks of the benchmark questions on the 94,000-chunk dev corpus (near-duplicate
configuration texts make a hard graph). Asking for 1,000 finds 93% (2,000: 98%, for 5 ms more and
no better answers) and lifted semantic MRR@10 on the 40 questions from 0.34 to 0.47, for about 6 ms
per query at 100,000 chunks."""


@dataclass
class _Handles:
    generation: str
    keyword: "KeywordIndex | None"
    embedder_meta: dict[str, Any] | None
    index_id: str | None
    formats: set[str] = field(default_factory=set)
    n_files: int = 0
    chunk_counts: dict[str, int] | None = None


_HANDLES: dict[str, _Handles] = {}
_HANDLES_LOCK = threading.Lock()


@dataclass
class Stores:
    """The stores of one KB at one index generation, for the length of one search."""

    catalogue: "Catalogue"
    settings: "Settings"
    handles: _Handles

    @property
    def formats(self) -> set[str]:
        return self.handles.formats

    @property
    def n_files(self) -> int:
        return self.handles.n_files


def open_stores(catalogue: "Catalogue", settings: "Settings") -> Stores:
    """The KB's stores; :class:`~kb.errors.NotIndexedError` when it has no search index."""
    from kb.index import GENERATION_KEY, INDEX_ID_KEY, read_embedder_meta
    from kb.keyword import open_keyword_index

    generation = catalogue.get_meta(GENERATION_KEY)
    if generation is None:
        raise NotIndexedError(
            f"The KB at '{catalogue.db_dir}' has no search index. Run `kb ingest PATH --db {catalogue.db_dir}` "
            "with embedding on (KB_EMBED=true, the default) to build it."
        )
    db = str(Path(catalogue.db_dir).resolve())
    with _HANDLES_LOCK:
        h = _HANDLES.get(db)
        if h is None or h.generation != generation:
            try:
                kw = open_keyword_index(catalogue.db_dir, create=False)
            except (FileNotFoundError, ValueError, OSError):
                kw = None
            formats = {r[0] for r in catalogue.query("SELECT DISTINCT format FROM files") if r[0]}
            n_files = int(catalogue.query("SELECT count(*) FROM files")[0][0])
            h = _Handles(generation, kw, read_embedder_meta(catalogue), catalogue.get_meta(INDEX_ID_KEY),
                         formats, n_files)
            _HANDLES[db] = h
    if h.keyword is None:
        raise NotIndexedError(
            f"The keyword index under '{catalogue.db_dir}/keyword' is missing. Re-run `kb ingest` to rebuild it."
        )
    return Stores(catalogue, settings, h)


def keyword_search(st: Stores, terms: list[str], n: int, *, format: str | None,
                   paths: list[str] | None) -> "list[tuple[float, ChunkDoc]]":
    """BM25 top ``n`` chunks for ``terms`` (analysed), filtered by format and paths."""
    assert st.handles.keyword is not None
    return st.handles.keyword.search(terms, n, format=format, paths=paths)


def fetch_chunks(st: Stores, chunk_ids: list[str]) -> "dict[str, ChunkDoc]":
    """Stored chunk rows by id (the keyword index stores them)."""
    assert st.handles.keyword is not None
    return st.handles.keyword.fetch(chunk_ids)


def check_embedder(st: Stores) -> None:
    """The configured embedder is the one the KB was built with, or a clear error."""
    from kb.embed import embedder_name
    from kb.index import mismatch_message

    meta = st.handles.embedder_meta
    name = embedder_name(st.settings)
    if meta is None:
        raise NotIndexedError("This KB has no vectors yet: re-run `kb ingest` with embedding on, or use --mode keyword.")
    if meta.get("name") != name:
        raise EmbedderMismatchError(mismatch_message(meta, name, st.settings))


def encode_query(st: Stores, query: str) -> "np.ndarray":
    """The query's vector (the model loads once per process)."""
    from kb.embed import get_embedder

    embedder = get_embedder(st.settings)
    meta = st.handles.embedder_meta or {}
    dim = meta.get("dim")
    if dim is not None and int(dim) != embedder.dim:
        from kb.index import mismatch_message

        raise EmbedderMismatchError(mismatch_message(meta, f"{embedder.name} (dim {embedder.dim})", st.settings))
    return embedder.encode([query])[0]


def _vector_store(st: Stores) -> Any:
    from kb.index import vector_store_for

    return vector_store_for(st.catalogue, st.settings, generation=st.handles.generation, index_id=st.handles.index_id)


def vector_search(st: Stores, vector: "np.ndarray", n: int, *, format: str | None = None,
                  paths: list[str] | None = None, with_metadata: bool = False) -> "list[VectorHit]":
    """The ``n`` chunks nearest to ``vector`` (cosine), filtered by format and up to a few thousand paths
    (``VECTOR_DEPTH`` neighbours are searched, so the answer is close to the exact nearest ``n``)."""
    hits = _vector_store(st).query(vector, max(n, VECTOR_DEPTH), format=format, paths=paths, with_metadata=with_metadata)
    return hits[:n]


def vector_count(st: Stores) -> int:
    return int(_vector_store(st).count())


def files_matching(st: Stores, path: str, *, glob: bool, format: str | None) -> list[str]:
    """Catalogued files matching ``path``: a glob, or (``glob=False``) the file or folder of that name."""
    if glob:
        where, params = "path GLOB ?", [path]
    else:
        where, params = "(path = ? OR starts_with(path, ?))", [path.rstrip("/"), path.rstrip("/") + "/"]
    if format:
        where, params = where + " AND format = ?", [*params, format]
    return [r[0] for r in st.catalogue.query(f"SELECT path FROM files WHERE {where}", params)]


def file_chunk_counts(st: Stores) -> dict[str, int]:
    """Chunks per file (read once per index generation)."""
    h = st.handles
    if h.chunk_counts is None:
        rows = st.catalogue.query("SELECT path, count(*) FROM chunks GROUP BY path")
        h.chunk_counts = {p: int(n) for p, n in rows}
    return h.chunk_counts
