"""The search index of a generation: the keyword index, the vectors, and the chunk → vector map.

Writer side (inside a :class:`~kb.generations.WriteSession`):

* :func:`sync_keyword` brings the session's keyword index in step with its catalogue: the chunks of
  the files this run added, changed or removed are replaced (a full rebuild when there is no index
  yet, or when the counts disagree afterwards).
* :func:`embed_pending` runs after the catalogue and keyword index are published: it embeds every
  distinct chunk text that the generation wants a vector for and that has none yet — each text
  once, whatever the number of chunks or files holding it — appends the vectors to the segments,
  mirrors them into Chroma, and publishes progress every few seconds, so the KB is searchable
  from the first second and the share embedded grows. Killed, it resumes on the next run.

Reader side: :class:`ChunkVectors` maps a snapshot's chunks to vector rows and answers the
nearest chunks to a query vector, filtered by format and paths, exactly.

The embedder's identity (name, dimension) is recorded in the generation. A run or a search with an
embedder of another identity raises :class:`~kb.errors.EmbedderMismatchError`; backends with the
same identity (ONNX and torch fp32, bf16, fp16) share vectors.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from kb.errors import EmbedderMismatchError, NotIndexedError

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.embed import Embedder
    from kb.generations import Generation, Snapshot, WriteSession
    from kb.keyword import FileIndex, KeywordIndex
    from kb.settings import Settings

__all__ = [
    "sync_keyword",
    "heal_mirror",
    "embed_pending",
    "embedding_counts",
    "check_embedder",
    "mismatch_message",
    "ChunkVectors",
    "chunk_vectors",
    "write_chunk_map",
    "chunk_map_path",
]

Progress = Callable[[str, int, int], None]
BATCH = 2048
"""Most texts per encode call during a build (128 model batches of 16; the backends sort each
call's texts by word pieces)."""
MIRROR_BATCH = 2048
"""Vectors copied into Chroma per upsert during a build: 24,000 vectors went in 25-30% faster in
calls of 2,000 than of 120 (about an encode call's worth). The segments are the truth: a build
that fails copies what it embedded before the error propagates; vectors a killed build had not yet
copied are copied by the next build that embeds (:func:`heal_mirror`). With a Chroma server
(``chroma_url``) the vectors are copied before each publication, for replicas that read from it."""
PUBLISH_EVERY = 5.0
"""Seconds between progress publications of vectors during a long embedding."""


def _model_option(name: str, folder: str | None = None) -> tuple[str, str]:
    """The ``--model`` that gives the embedder ``name`` again, and the options ``kb ingest`` also
    needs for it (``--precision``, ``--backend``; a search reads them from the KB); ``folder``: the
    path of a model of one's own (its identity is only the folder's name)."""
    import shlex

    from kb.embed import DEFAULT_NAME
    from kb.settings import DEFAULT_MODEL

    if name.startswith("hash-"):
        return "hash:" + name[5:], ""
    base, _, suffix = name.partition("+")
    if base == DEFAULT_NAME:
        option = DEFAULT_MODEL
    else:
        option = shlex.quote(folder) if folder else base
    if suffix == "int8-onnx":  # ONNX Runtime's dynamic int8
        return option, "--precision int8 --backend onnx"
    return option, f"--precision {suffix}" if suffix else ""


def mismatch_message(meta: dict[str, Any], configured: str, settings: Settings) -> str:
    from kb.embed import DISTINCT_PRECISIONS, ONNX_INT8_SUFFIX

    built = meta.get("name", "?")
    dim = meta.get("dim")
    model, extra = _model_option(built, meta.get("model"))
    hint = ""
    if built.endswith(DISTINCT_PRECISIONS["int8"]) and configured.endswith(ONNX_INT8_SUFFIX):
        hint = " Its int8 vectors are OpenVINO's (NNCF): install NNCF (pip install nncf) to extend it here."
    return (
        f"This KB was built with the embedder '{built}'{f' (dimension {dim})' if dim else ''}, but the "
        f"configured one is '{configured}'. Vectors from different models or precisions cannot be compared."
        f"{hint} Either use the original (--model {model}{f'; kb ingest also needs {extra}' if extra else ''}), "
        f"or re-ingest into a fresh KB directory (--db NEW_DIR) to use '{configured}'."
    )


def check_embedder(gen: Generation | None, settings: Settings) -> None:
    """Raise :class:`EmbedderMismatchError` when ``gen``'s vectors come from another embedder."""
    from kb.embed import embedder_name

    if gen is None or not gen.embedder:
        return
    name = embedder_name(settings)
    if gen.embedder.get("name") != name:
        raise EmbedderMismatchError(mismatch_message(gen.embedder, name, settings))


# ---------------------------------------------------------------------------------------------
# Writer side
# ---------------------------------------------------------------------------------------------


def _chunk_docs(rows: list[tuple]) -> list[Any]:
    from kb.keyword import ChunkDoc

    return [
        ChunkDoc(cid, path, fmt or "", key or "", int(ls or 0), int(le or 0), text, sha or "")
        for cid, path, fmt, key, ls, le, text, sha in rows
    ]


_DOC_SQL = """SELECT c.chunk_id, c.path, coalesce(f.format, ''), c.key_path, c.line_start, c.line_end, c.text, c.text_sha
              FROM chunks c LEFT JOIN files f USING (path)"""


EXACT_REBUILD_MAX = 250_000
"""A keyword index of at most this many chunks is rebuilt, not updated in place, when files
changed: BM25 statistics then count no deleted documents. Larger indexes are updated in place (the
statistics drift by the deleted share until tantivy merges the segments)."""


def sync_keyword(
    catalogue: Catalogue, keyword: KeywordIndex, *, paths: Sequence[str] | None, progress: Progress | None = None
) -> dict[str, Any]:
    """Replace the keyword documents of ``paths`` with their current chunks (``None``: rebuild all),
    in the chunk index and in its file index (:class:`~kb.keyword.FileIndex`).

    Commits both. Falls back to a full rebuild when the index's document count does not match the
    catalogue's chunks afterwards; a file index that is missing (a KB from before it existed) is
    built whole. Returns ``{"full": bool, "documents": n, "files": n}``.
    """
    tick = progress or (lambda phase, done, total: None)
    total = int(catalogue.query("SELECT count(*) FROM chunks")[0][0])
    files = keyword.files(create=True)
    assert files is not None  # created when missing, recreated when of another schema
    full = paths is None
    if not full and paths and keyword.count() and total <= EXACT_REBUILD_MAX:
        # tantivy keeps deleted documents in its BM25 statistics until segments merge, so an index
        # updated in place scores differently from a fresh one: rebuild, and the same tree always
        # gives the same answers (a full rebuild of the dev corpus's 98,590 chunks: bench/full_build.py)
        full = True
    if not full:
        changed = list(dict.fromkeys(paths or []))
        keyword.delete_paths(changed)
        rebuild_files = files.created
        if rebuild_files:
            files.clear()
        else:
            files.delete_paths(changed)
        if changed or rebuild_files:
            _add_chunks(catalogue, keyword, files, None if rebuild_files else changed, chunks=changed)
        keyword.commit()
        files.commit()
        if keyword.count() != total or files.count() != _files_with_chunks(catalogue):
            full = True
    if full:
        keyword.clear()
        files.clear()
        tick("keyword", 0, total)
        _add_chunks(catalogue, keyword, files, None, chunks=None, tick=lambda n: tick("keyword", n, total))
        keyword.commit()
        files.commit()
    return {"full": full, "documents": keyword.count(), "files": files.count()}


def _files_with_chunks(catalogue: Catalogue) -> int:
    return int(catalogue.query("SELECT count(DISTINCT path) FROM chunks")[0][0])


def _add_chunks(
    catalogue: Catalogue,
    keyword: KeywordIndex,
    files: FileIndex,
    file_paths: list[str] | None,
    *,
    chunks: list[str] | None,
    tick: Callable[[int], None] | None = None,
) -> None:
    """Queue the chunks of ``chunks`` (paths; ``None``: all) in ``keyword`` and the documents of
    ``file_paths`` (``None``: all) in ``files``, reading each chunk once, in path order."""
    from kb.keyword import file_terms

    every = file_paths is None
    wanted = None if every else set(file_paths or [])
    chunk_set = None if chunks is None else set(chunks)
    where = ""
    params: list[Any] = []
    if chunks is not None and not every:  # the same files' chunks and documents
        where = " WHERE c.path IN (SELECT unnest(?))"
        params = [chunks]
    con = catalogue.cursor()
    done = 0
    current: str | None = None
    bodies: list[str] = []

    def flush() -> None:
        if current is not None and (wanted is None or current in wanted):
            files.add(current, file_terms(current, bodies))

    try:
        con.execute(f"{_DOC_SQL}{where} ORDER BY c.path, c.line_start, c.chunk_id", params)
        while rows := con.fetchmany(4096):
            docs = _chunk_docs(rows)
            keyword.add(d for d in docs if chunk_set is None or d.path in chunk_set)
            for d in docs:
                if d.path != current:
                    flush()
                    current, bodies = d.path, []
                bodies.append(d.text)
            done += len(rows)
            if tick is not None:
                tick(done)
        flush()
    finally:
        con.close()


def embedding_counts(catalogue: Catalogue, known: np.ndarray | None = None) -> tuple[int, int, int]:
    """(distinct embeddable texts, distinct skipped texts, embeddable texts with a vector in ``known``)."""
    embeddable = int(catalogue.query("SELECT count(DISTINCT text_sha) FROM chunks WHERE embed")[0][0])
    skipped = int(
        catalogue.query(
            "SELECT count(*) FROM (SELECT DISTINCT text_sha FROM chunks EXCEPT SELECT DISTINCT text_sha FROM chunks WHERE embed)"
        )[0][0]
    )
    have = 0
    if known is not None and len(known):
        from kb.vectors import sha_bytes

        shas = sha_bytes([r[0] for r in catalogue.query("SELECT DISTINCT text_sha FROM chunks WHERE embed")])
        have = int(np.isin(shas, known).sum())
    return embeddable, skipped, have


def embed_pending(
    session: WriteSession,
    embedder: Embedder | Callable[[], Embedder],
    settings: Settings,
    *,
    progress: Progress | None = None,
    publish_every: float = PUBLISH_EVERY,
    mirror: Any = None,
) -> dict[str, Any]:
    """Embed the published generation's texts that have no vector yet (see the module docstring).

    ``embedder`` may be a callable that returns one: it is called only when there is something to
    embed, so a run with nothing new loads no model. ``mirror`` is the
    :class:`~kb.vectors.ChromaMirror` to copy vectors into (or a callable returning it; None: none).
    Returns ``{"embedded": texts encoded now, "embeddable": n, "skipped": n, "seconds": s}``.
    """
    from kb.catalogue import Catalogue
    from kb.vectors import CHROMA_DIR, SHA_BYTES, VECTORS_DIR, SegmentWriter, sha_bytes

    t0 = time.perf_counter()
    tick = progress or (lambda phase, done, total: None)
    head = session.head
    if head is None:
        raise NotIndexedError("Nothing published to embed.")
    writer = SegmentWriter(session.db / VECTORS_DIR, head.dim, head.vectors) if head.dim else None
    known = writer.known() if writer is not None else np.zeros(0, dtype=f"S{SHA_BYTES}")
    cat = Catalogue(session.db / head.catalogue, read_only=True, external_access=False)
    try:
        embeddable, skipped, have = embedding_counts(cat, known)
        todo: list[tuple[bytes, str]] = []
        con = cat.cursor()
        try:
            con.execute("SELECT text_sha, any_value(text) FROM chunks WHERE embed GROUP BY text_sha ORDER BY text_sha")
            while rows := con.fetchmany(8192):
                shas = sha_bytes([r[0] for r in rows])
                new = ~np.isin(shas, known) if len(known) else np.ones(len(rows), dtype=bool)
                todo.extend((bytes.fromhex(rows[i][0]), rows[i][1]) for i in np.nonzero(new)[0])
        finally:
            con.close()
    finally:
        cat.close()
    if not todo:
        rows_now = writer.sync() if writer is not None else {}
        if head.vectors != rows_now or head.embedded != have or head.embeddable != embeddable:
            session.publish_vectors(vectors=rows_now, embedded=have, embeddable=embeddable)
        if mirror is not None and head.dim and rows_now and not (session.db / CHROMA_DIR).is_dir():
            heal_mirror(mirror() if callable(mirror) else mirror, session.db, int(head.dim), rows_now)
        return {
            "embedded": 0,
            "embeddable": embeddable,
            "skipped": skipped,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    # a factory (callable, no encode) is called only now that there is something to embed
    emb: Embedder = embedder() if callable(embedder) and not hasattr(embedder, "encode") else cast("Embedder", embedder)
    if head.dim is not None and int(head.dim) != emb.dim:
        raise EmbedderMismatchError(
            mismatch_message(head.embedder or {}, f"{emb.name} (dimension {emb.dim})", settings)
        )
    if writer is None:
        writer = SegmentWriter(session.db / VECTORS_DIR, emb.dim, head.vectors)
    identity = {
        "name": emb.name,
        "dim": emb.dim,
        "backend": getattr(emb, "backend", ""),
        "precision": getattr(emb, "precision", ""),
    }
    from kb.embed import DEFAULT_NAME, TORCH_BATCH, _model_location, text_pieces

    location, name = _model_location(settings.model)
    if name != DEFAULT_NAME and Path(location).is_dir():
        identity["model"] = str(Path(location).resolve())  # a model folder of one's own: its way back
    fields: dict[str, Any] = {"dim": emb.dim, "embedder": identity, "embeddable": embeddable}
    if callable(mirror):
        mirror = mirror()
    tick("embed", 0, len(todo))
    # longest texts first: an ETA from the first minutes is then an upper bound, not a hope; by
    # word pieces where the embedder counts them, so each encode call holds texts of about one width
    order = np.argsort(-text_pieces(emb, [t for _, t in todo]), kind="stable")
    todo = [todo[i] for i in order]
    done = 0
    mirror_s = 0.0
    pending_ids: list[str] = []  # vectors not yet copied to Chroma
    pending_vecs: list[np.ndarray] = []
    last_publish = time.monotonic()
    # Each encode call is sized to take about a quarter of the publish interval at the rate
    # measured so far (the first one: one model batch), so vectors are published every few
    # seconds even while the longest texts go first; a kill loses at most one interval's work.
    step = max(1, int(getattr(emb, "batch_size", 0) or settings.embed_batch_size or TORCH_BATCH))
    call = step
    start = 0

    def flush() -> None:  # the vectors not yet in Chroma, in one upsert
        nonlocal mirror_s
        if mirror is not None and pending_ids:
            m0 = time.perf_counter()
            mirror.upsert(pending_ids, np.concatenate(pending_vecs))
            mirror_s += time.perf_counter() - m0
            pending_ids.clear()
            pending_vecs.clear()

    try:
        while start < len(todo):
            batch = todo[start : start + call]
            start += len(batch)
            c0 = time.perf_counter()
            vecs = emb.encode([t for _, t in batch])
            took = max(time.perf_counter() - c0, 1e-6)
            fit = int(len(batch) / took * publish_every / 4)
            call = max(step, min(BATCH, fit, 2 * len(batch)))  # grows at most twofold a call
            call -= call % step  # whole model batches: no odd-sized last batch, one more shape held in memory
            shas = np.array([s for s, _ in batch], dtype="S32")
            writer.append(shas, vecs)
            if mirror is not None:
                pending_ids.extend(s.hex() for s, _ in batch)
                pending_vecs.append(vecs)
                if len(pending_ids) >= MIRROR_BATCH:
                    flush()
            done += len(batch)
            tick("embed", done, len(todo))
            if time.monotonic() - last_publish >= publish_every or done == len(todo):
                if settings.chroma_url:  # a server's readers (vector_reads=server) see what is published
                    flush()
                session.publish_vectors(vectors=writer.sync(), embedded=have + done, **fields)
                last_publish = time.monotonic()
    except BaseException:
        with contextlib.suppress(Exception):  # keep what was embedded; the error that stopped it wins
            flush()
        raise
    if mirror is not None:
        flush()
        m0 = time.perf_counter()
        heal_mirror(mirror, session.db, emb.dim, writer.sync())
        mirror_s += time.perf_counter() - m0
    return {
        "embedded": done,
        "embeddable": embeddable,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
        "mirror_seconds": round(mirror_s, 3),
    }


def heal_mirror(mirror: Any, db: Any, dim: int, rows: dict[str, int], batch: int = 4096) -> int:
    """Copy into Chroma the segment vectors it lacks (a deleted or older ``chroma/``); returns how
    many. One ``count`` when nothing is missing; the segments are the source of truth."""
    from kb.vectors import VECTORS_DIR, VectorView

    total = sum(rows.values())
    if mirror.count() >= total:
        return 0
    view = VectorView(db / VECTORS_DIR, dim, rows, keep_mapped=False)
    try:
        have = mirror.ids()
        shas = view.shas()
        missing = np.array([i for i, s in enumerate(shas) if s.hex() not in have], dtype=np.int64)
        for start in range(0, len(missing), batch):
            part = missing[start : start + batch]
            mirror.upsert([shas[i].hex() for i in part], view.vectors(part))
    finally:
        view.close()
    return len(missing)


def new_kb_id() -> str:
    return uuid.uuid4().hex[:16]


# ---------------------------------------------------------------------------------------------
# Reader side
# ---------------------------------------------------------------------------------------------


_MAP_SQL = """
    WITH p AS (SELECT path, (row_number() OVER (ORDER BY path) - 1)::INTEGER AS pcode
               FROM (SELECT DISTINCT path FROM chunks)),
         f AS (SELECT fmt, (row_number() OVER (ORDER BY fmt) - 1)::INTEGER AS fcode
               FROM (SELECT DISTINCT coalesce(format, '') AS fmt FROM files)),
         ff AS (SELECT path, any_value(coalesce(format, '')) AS fmt FROM files GROUP BY path)
    SELECT c.chunk_id, p.pcode, coalesce(f.fcode, -1)::INTEGER AS fcode, unhex(c.text_sha) AS sha
    FROM chunks c JOIN p USING (path) LEFT JOIN ff USING (path) LEFT JOIN f USING (fmt)
    WHERE c.embed ORDER BY c.chunk_id"""


def _pack(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Strings as one UTF-8 blob and the offsets of their ends (no pickling, no Python objects)."""
    encoded = [s.encode("utf-8", "surrogatepass") for s in strings]
    ends = np.cumsum([len(b) for b in encoded], dtype=np.int64) if encoded else np.zeros(0, np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), ends


class _Packed:
    """Read side of :func:`_pack`: strings decoded one at a time, on demand."""

    def __init__(self, blob: np.ndarray, ends: np.ndarray) -> None:
        self.blob, self.ends = blob.tobytes(), ends

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: int) -> str:
        start = int(self.ends[i - 1]) if i > 0 else 0
        return self.blob[start : int(self.ends[i])].decode("utf-8", "surrogatepass")

    def all(self) -> list[str]:
        return [self[i] for i in range(len(self))]


def chunk_map_path(db: Any, catalogue_name: str) -> Any:
    """The chunk map written beside a published catalogue file."""
    from pathlib import Path

    return Path(db) / catalogue_name.replace(".duckdb", ".chunks.npz")


def write_chunk_map(catalogue: Catalogue, path: Any) -> None:
    """The embeddable chunks of ``catalogue`` (ids, file and format codes, text hashes) as one
    compact file, so a reader maps chunks to vectors without a catalogue query: a search from the
    shell then reads one small file instead of building the query results (the cold ``kb search``
    row of ``docs/performance.md``)."""
    import os

    cols = catalogue.numpy(_MAP_SQL)
    paths = [r[0] for r in catalogue.query("SELECT DISTINCT path FROM chunks ORDER BY path")]
    formats = [r[0] for r in catalogue.query("SELECT DISTINCT coalesce(format, '') FROM files ORDER BY 1")]
    ids_blob, ids_ends = _pack([str(c) for c in cols["chunk_id"]])
    paths_blob, paths_ends = _pack(paths)
    fmt_blob, fmt_ends = _pack(formats)
    shas = np.array([bytes(b) for b in cols["sha"]], dtype="S32") if len(cols["sha"]) else np.zeros(0, "S32")
    tmp = f"{path}.{os.getpid()}.tmp.npz"
    with open(tmp, "wb") as fh:
        np.savez(
            fh,
            ids_blob=ids_blob,
            ids_ends=ids_ends,
            paths_blob=paths_blob,
            paths_ends=paths_ends,
            fmt_blob=fmt_blob,
            fmt_ends=fmt_ends,
            pcode=np.asarray(cols["pcode"], dtype=np.int32),
            fcode=np.asarray(cols["fcode"], dtype=np.int32),
            sha=shas,
        )
    os.replace(tmp, path)


class ChunkVectors:
    """A snapshot's chunks mapped to vector rows, for exact filtered nearest-neighbour search.

    Read from the chunk map the writer published beside the catalogue (:func:`write_chunk_map`),
    or built from the catalogue when there is none (a KB from before the maps)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        path = chunk_map_path(snapshot.db, snapshot.gen.catalogue)
        try:
            with np.load(path, allow_pickle=False) as z:
                self.chunk_ids: Any = _Packed(z["ids_blob"], z["ids_ends"])
                self.path_names = _Packed(z["paths_blob"], z["paths_ends"]).all()
                self.format_names = _Packed(z["fmt_blob"], z["fmt_ends"]).all()
                self.path_codes = z["pcode"].astype(np.int64)
                self.format_codes = z["fcode"].astype(np.int64)
                shas = z["sha"]
        except (OSError, KeyError, ValueError):
            cat = snapshot.catalogue
            self.path_names = [r[0] for r in cat.query("SELECT DISTINCT path FROM chunks ORDER BY path")]
            self.format_names = [r[0] for r in cat.query("SELECT DISTINCT coalesce(format, '') FROM files ORDER BY 1")]
            cols = cat.numpy(_MAP_SQL)
            self.chunk_ids = cols["chunk_id"]
            self.path_codes = np.asarray(cols["pcode"], dtype=np.int64)
            self.format_codes = np.asarray(cols["fcode"], dtype=np.int64)
            shas = np.array([bytes(b) for b in cols["sha"]], dtype="S32") if len(cols["sha"]) else np.zeros(0, "S32")
        self.shas = shas

    @property
    def rows(self) -> np.ndarray:
        """Each chunk's row in the generation's vector segments (-1: none), read on first use: a
        replica reading vectors from a Chroma server (:meth:`nearest_on_server`) never opens them."""
        rows = getattr(self, "_rows", None)
        if rows is None:
            view = self.snapshot.vectors
            shas = self.shas
            rows = self._rows = view.rows_of(shas) if view is not None else np.full(len(shas), -1, dtype=np.int64)
        return rows

    @property
    def embedded(self) -> int:
        return int((self.rows >= 0).sum())

    def _filter(self, keep: np.ndarray, format: str | None, paths: Sequence[str] | None) -> np.ndarray:
        if format:
            if format not in self.format_names:
                return np.zeros(len(keep), dtype=bool)
            keep &= self.format_codes == self.format_names.index(format)
        if paths is not None:
            lookup = {p: i for i, p in enumerate(self.path_names)}
            mask = np.zeros(len(self.path_names), dtype=bool)
            mask[[lookup[p] for p in paths if p in lookup]] = True
            keep &= mask[self.path_codes]
        return keep

    SERVER_FETCH = 4
    """Neighbours asked of the Chroma server per hit wanted (20 times that with a filter): texts
    shared by many chunks, and hits a filter drops, still leave ``n``."""

    def nearest_on_server(
        self, mirror: Any, query: np.ndarray, n: int, *, format: str | None = None, paths: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` chunks nearest to ``query`` by the Chroma server's index (``vector_reads =
        server``): its neighbours are text shas; each maps to this generation's chunks with that
        text (a vector is the vector of its text, whichever generation wrote it), filtered like
        :meth:`nearest`. Texts the server does not hold yet are simply not found."""
        if n <= 0 or not len(self.shas):
            return []
        keep = self._filter(np.ones(len(self.shas), dtype=bool), format, paths)
        filtered = format is not None or paths is not None
        fetch = min(10_000, n * self.SERVER_FETCH * (20 if filtered else 1))
        by_sha: dict[str, list[int]] | None = getattr(self, "_by_sha", None)
        if by_sha is None:
            by_sha = {}
            for i, sha in enumerate(self.shas):
                by_sha.setdefault(bytes(sha).hex(), []).append(i)
            self._by_sha = by_sha
        found: list[tuple[float, int]] = []
        for sha, score in mirror.query(query, fetch):
            found.extend((score, i) for i in by_sha.get(sha, ()) if keep[i])
        found.sort(key=lambda t: (-t[0], t[1]))
        return [(str(self.chunk_ids[i]), float(score)) for score, i in found[:n]]

    def nearest(
        self, query: np.ndarray, n: int, *, format: str | None = None, paths: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` chunks nearest to ``query`` (chunk id, cosine similarity), best first."""
        view = self.snapshot.vectors
        if view is None or n <= 0 or not len(self.rows):
            return []
        keep = self._filter(self.rows >= 0, format, paths)
        idx = np.nonzero(keep)[0]
        if not len(idx):
            return []
        scores = self._row_scores(query)[self.rows[idx]]
        m = min(n, len(idx))
        if m < len(idx):
            kth = np.partition(scores, len(scores) - m)[len(scores) - m]  # the m-th best score
            top = np.nonzero(scores >= kth)[0]  # ties at the cut all compete, on chunk order
        else:
            top = np.arange(len(idx))
        order = top[np.lexsort((idx[top], -scores[top]))][:m]
        return [(str(self.chunk_ids[int(idx[i])]), float(scores[i])) for i in order]

    def _row_scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine of ``query`` to every vector row (the last query's are kept)."""
        key = np.asarray(query, dtype=np.float32).tobytes()
        last = getattr(self, "_last", None)
        if last is not None and last[0] == key:
            return last[1]
        view = self.snapshot.vectors
        assert view is not None
        scores = view.scores(query)
        self._last = (key, scores)
        return scores

    def vectors_of(self, chunk_ids: Sequence[str]) -> np.ndarray:
        """The vectors of the given chunks (those embedded), one row each."""
        view = self.snapshot.vectors
        if view is None or not chunk_ids:
            return np.zeros((0, 0), dtype=np.float32)
        index = getattr(self, "_index", None)
        if index is None:
            index = self._index = {str(self.chunk_ids[i]): i for i in range(len(self.rows))}
        rows = np.array([self.rows[index[c]] for c in chunk_ids if c in index], dtype=np.int64)
        rows = rows[rows >= 0]
        return view.vectors(rows) if len(rows) else np.zeros((0, view.dim), dtype=np.float32)

    def file_scores(self, query: np.ndarray, top: int = 3) -> dict[str, float]:
        """Per file, the mean cosine of its ``top`` best chunks to ``query`` (every embedded file):
        how close the file as a whole is to the query, not only its best chunk."""
        view = self.snapshot.vectors
        if view is None or not len(self.rows):
            return {}
        idx = np.nonzero(self.rows >= 0)[0]
        if not len(idx):
            return {}
        scores = self._row_scores(query)[self.rows[idx]]
        codes = self.path_codes[idx]
        order = np.lexsort((-scores, codes))  # by file, best first within a file
        codes_o, scores_o = codes[order], scores[order]
        starts = np.r_[0, np.nonzero(np.diff(codes_o))[0] + 1]
        rank = np.arange(len(codes_o)) - np.repeat(starts, np.diff(np.r_[starts, len(codes_o)]))
        keep = rank < top
        sums = np.bincount(codes_o[keep], weights=scores_o[keep], minlength=len(self.path_names))
        counts = np.bincount(codes_o[keep], minlength=len(self.path_names))
        present = np.nonzero(counts)[0]
        return {self.path_names[int(c)]: float(sums[c] / counts[c]) for c in present}


def chunk_vectors(snapshot: Snapshot) -> ChunkVectors:
    """The snapshot's :class:`ChunkVectors`, built once per snapshot."""
    cv = snapshot.cache.get("chunk_vectors")
    if cv is None:
        cv = ChunkVectors(snapshot)
        snapshot.cache["chunk_vectors"] = cv
    return cv
