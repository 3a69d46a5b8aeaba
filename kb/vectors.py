"""Vectors: content-addressed segments that readers scan, and Chroma, the durable copy.

Every distinct chunk text is embedded once and stored under its sha256 (``text_sha``), whatever
file or chunk it appears in. Two stores hold those vectors:

* **Segments** (``<db>/vectors/seg-NNNNNN.f32`` + ``.sha``): append-only files of float32 rows and
  their 32-byte text hashes, written by the one writer (:class:`SegmentWriter`). A published
  generation records how many rows of each segment it covers, so a reader sees exactly the vectors
  of the generation it reads, whatever the writer appends meanwhile; no lock, no copy. Rows past
  the recorded count (a writer killed before it published) are kept by the next writer: they are
  whole rows of known texts, so an interrupted embedding loses nothing. Readers scan the rows
  exactly (:class:`VectorView`): a matrix-vector product, block by block, over every row of the
  generation (its cost per query: ``bench/search_latency.py``) — exact nearest neighbours, no ANN
  graph to build or load, and nothing to import but numpy.
* **Chroma** (:class:`ChromaMirror`, the only chromadb import): the writer mirrors every vector
  into a Chroma collection keyed by text hash — an embedded ``PersistentClient`` under
  ``<db>/chroma``, or a Chroma server with ``KB_CHROMA_URL`` (one collection per KB). It is the
  durable copy the segments are rebuilt from without re-embedding when they are lost, and the
  vectors other tools query. Chroma's embedded store cannot be read safely by other processes
  while a writer updates it, which is why readers scan the segments. Telemetry is off.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kb.errors import ConfigError, NotIndexedError

__all__ = [
    "SegmentWriter",
    "VectorView",
    "ChromaMirror",
    "VECTORS_DIR",
    "CHROMA_DIR",
    "SHA_BYTES",
    "sha_bytes",
    "segment_rows",
]

VECTORS_DIR = "vectors"
CHROMA_DIR = "chroma"
SHA_BYTES = 32
SEGMENT_MAX_ROWS = 1_000_000
"""A segment is closed (a new one started) past this many rows."""
BLOCK_ROWS = 8192
"""Rows per block of a scan: bounds a one-shot search's memory, and fixes the arithmetic, so a
scan of a memory-mapped and of a read segment give bit-identical scores."""


def sha_bytes(hex_shas: Sequence[str]) -> np.ndarray:
    """Hex text hashes as a ``(n,)`` array of 32-byte strings (``S32``)."""
    return np.array([bytes.fromhex(h) for h in hex_shas], dtype=f"S{SHA_BYTES}")


def _seg_name(n: int) -> str:
    return f"seg-{n:06d}"


def segment_rows(directory: Path, name: str, dim: int) -> int:
    """Whole rows present on disk in segment ``name`` (vectors and their hashes both written)."""
    f32, sha = directory / f"{name}.f32", directory / f"{name}.sha"
    if not f32.exists() or not sha.exists():
        return 0
    return min(f32.stat().st_size // (4 * dim), sha.stat().st_size // SHA_BYTES)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


class SegmentWriter:
    """Appends vectors to the newest segment under ``directory`` (the writer's side).

    ``committed`` maps segment name to the rows the last published generation covers. On open,
    rows on disk past that count are adopted when whole (a killed writer's work), and a torn last
    row is cut off.
    """

    def __init__(self, directory: Path | str, dim: int, committed: dict[str, int]) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dim = int(dim)
        self.rows: dict[str, int] = {}
        names = sorted({*committed, *(p.stem for p in self.dir.glob("seg-*.f32"))})
        for name in names:
            n = segment_rows(self.dir, name, self.dim)
            if name not in committed and n == 0:
                continue
            n = max(n, 0)
            for ext, width in ((".f32", 4 * self.dim), (".sha", SHA_BYTES)):
                path = self.dir / f"{name}{ext}"
                if path.exists() and path.stat().st_size != n * width:
                    with open(path, "r+b") as fh:
                        fh.truncate(n * width)
            self.rows[name] = n
        self.current = names[-1] if names else _seg_name(1)
        self.rows.setdefault(self.current, 0)
        if self.rows[self.current] >= SEGMENT_MAX_ROWS:
            self._roll()

    def _roll(self) -> None:
        self.current = _seg_name(int(self.current[4:]) + 1)
        self.rows[self.current] = 0

    def known(self) -> np.ndarray:
        """The ``S32`` hashes of every row on disk (to skip texts already embedded)."""
        parts = [np.fromfile(self.dir / f"{n}.sha", dtype=f"S{SHA_BYTES}", count=r) for n, r in self.rows.items() if r]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=f"S{SHA_BYTES}")

    def append(self, shas: np.ndarray, vectors: np.ndarray) -> None:
        """Append rows: vectors first, then hashes, so a hash on disk always has its vector."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(shas) != len(vectors):
            raise ValueError(f"expected ({len(shas)}, {self.dim}) vectors, got {vectors.shape}")
        start = 0
        while start < len(shas):
            room = SEGMENT_MAX_ROWS - self.rows[self.current]
            if room <= 0:
                self._roll()
                continue
            end = min(len(shas), start + room)
            with open(self.dir / f"{self.current}.f32", "ab") as fh:
                fh.write(vectors[start:end].tobytes())
                fh.flush()
            with open(self.dir / f"{self.current}.sha", "ab") as fh:
                fh.write(np.asarray(shas[start:end], dtype=f"S{SHA_BYTES}").tobytes())
                fh.flush()
            self.rows[self.current] += end - start
            start = end

    def sync(self) -> dict[str, int]:
        """fsync what was appended; the rows to record in the next published generation."""
        for name, n in self.rows.items():
            if not n:
                continue
            for ext in (".f32", ".sha"):
                with contextlib.suppress(FileNotFoundError), open(self.dir / f"{name}{ext}", "rb+") as fh:
                    os.fsync(fh.fileno())
        return {k: v for k, v in self.rows.items() if v}


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class _Segment:
    name: str
    rows: int
    offset: int  # global row of its first row
    data: np.ndarray | None = None  # memory map, when kept


class VectorView:
    """The vectors of one published generation, for exact nearest-neighbour scans.

    ``rows`` maps segment name to the rows the generation covers. ``keep_mapped=True`` (servers,
    notebooks) memory-maps the segments once and reuses the maps; ``False`` (one search from the
    shell) reads them block by block into one reused buffer, so a search's memory stays small.
    Both compute the same scores, block by block.
    """

    def __init__(self, directory: Path | str, dim: int, rows: dict[str, int], *, keep_mapped: bool = True) -> None:
        self.dir = Path(directory)
        self.dim = int(dim)
        self.keep_mapped = keep_mapped
        self.segments: list[_Segment] = []
        offset = 0
        for name in sorted(rows):
            n = int(rows[name])
            if n <= 0:
                continue
            self.segments.append(_Segment(name, n, offset))
            offset += n
        self.total = offset
        self._shas: np.ndarray | None = None
        self._order: np.ndarray | None = None
        self._lock = threading.Lock()

    # -- hashes ---------------------------------------------------------------------------------

    def shas(self) -> np.ndarray:
        """``S32`` hash of every row, in global row order."""
        if self._shas is None:
            parts = [
                np.fromfile(self.dir / f"{s.name}.sha", dtype=f"S{SHA_BYTES}", count=s.rows) for s in self.segments
            ]
            got = np.concatenate(parts) if parts else np.zeros(0, dtype=f"S{SHA_BYTES}")
            if len(got) != self.total:
                raise NotIndexedError(
                    f"The vector segments under '{self.dir}' are shorter than the KB's "
                    "generation records; re-run `kb ingest` to repair them."
                )
            self._shas = got
        return self._shas

    def rows_of(self, shas: np.ndarray) -> np.ndarray:
        """Global row of each ``S32`` hash, -1 where the generation has no vector for it."""
        all_shas = self.shas()
        if self._order is None:
            self._order = np.argsort(all_shas, kind="stable")
        if not len(all_shas) or not len(shas):
            return np.full(len(shas), -1, dtype=np.int64)
        sorted_shas = all_shas[self._order]
        pos = np.searchsorted(sorted_shas, shas)
        pos = np.minimum(pos, len(sorted_shas) - 1)
        hit = sorted_shas[pos] == shas
        return np.where(hit, self._order[pos], -1).astype(np.int64)

    # -- scans ----------------------------------------------------------------------------------

    def _mapped(self, seg: _Segment) -> np.ndarray:
        if seg.data is None:
            seg.data = np.memmap(self.dir / f"{seg.name}.f32", dtype=np.float32, mode="r", shape=(seg.rows, self.dim))
        return seg.data

    def _blocks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(global row of the block's first row, block) over every row."""
        if self.keep_mapped:
            for seg in self.segments:
                data = self._mapped(seg)
                for s in range(0, seg.rows, BLOCK_ROWS):
                    yield seg.offset + s, data[s : s + BLOCK_ROWS]
            return
        buf = np.empty((BLOCK_ROWS, self.dim), dtype=np.float32)
        for seg in self.segments:
            with open(self.dir / f"{seg.name}.f32", "rb") as fh:
                for s in range(0, seg.rows, BLOCK_ROWS):
                    n = min(BLOCK_ROWS, seg.rows - s)
                    view = buf[:n]
                    if fh.readinto(view.data.cast("B")) != n * 4 * self.dim:
                        raise NotIndexedError(f"Vector segment {seg.name} is truncated; re-run `kb ingest`.")
                    yield seg.offset + s, view

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Cosine similarity (vectors are normalised) of ``query`` to every row."""
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(-1)
        out = np.empty(self.total, dtype=np.float32)
        with self._lock:
            for start, block in self._blocks():
                np.dot(block, q, out=out[start : start + len(block)])
        return out

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the given global rows (for duplicates and recovery)."""
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for seg in self.segments:
            sel = np.nonzero((rows >= seg.offset) & (rows < seg.offset + seg.rows))[0]
            if len(sel):
                data = np.memmap(self.dir / f"{seg.name}.f32", dtype=np.float32, mode="r", shape=(seg.rows, self.dim))
                out[sel] = data[rows[sel] - seg.offset]
        return out

    def close(self) -> None:
        for seg in self.segments:
            seg.data = None


# ---------------------------------------------------------------------------------------------
# Chroma: the durable copy
# ---------------------------------------------------------------------------------------------


def _chroma_settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _chroma_client(db: Path, chroma_url: str | None) -> Any:
    import chromadb

    if chroma_url:
        u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError("Bad KB_CHROMA_URL: expected http://HOST:PORT, e.g. http://127.0.0.1:8000.")
        port = u.port or (443 if u.scheme == "https" else 8000)
        try:
            return chromadb.HttpClient(host=u.hostname, port=port, ssl=u.scheme == "https", settings=_chroma_settings())
        except Exception as exc:
            raise NotIndexedError(
                f"Cannot reach the Chroma server at {u.hostname}:{port}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. "
                "Start it (`chroma run --path DIR --port PORT`) or unset KB_CHROMA_URL."
            ) from exc
    path = db / CHROMA_DIR
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "chroma.sqlite3").exists():
        # chroma/ deleted while this process had it open: chromadb caches one system per path, which
        # would go on writing to the deleted files ("readonly database"); start a fresh one
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(path), None)
    return chromadb.PersistentClient(path=str(path), settings=_chroma_settings())


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class ChromaMirror:
    """The KB's Chroma collection: one record per distinct text, id = its hex sha256.

    Written only by the KB's writer. ``collection`` is ``kb_vectors`` in the embedded store and
    ``kb_<kb id>`` on a server, so several KBs can share one.
    """

    def __init__(self, db: Path | str, *, chroma_url: str | None = None, collection: str = "kb_vectors") -> None:
        self.db = Path(db)
        self.chroma_url = chroma_url
        self.client = _chroma_client(self.db, chroma_url)
        self.name = collection
        try:
            self.collection = self.client.get_or_create_collection(
                collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        except Exception as exc:
            if chroma_url:
                raise NotIndexedError(
                    f"The Chroma server refused the collection '{collection}': {exc}. "
                    "Check that it is running and reachable, or unset KB_CHROMA_URL."
                ) from exc
            raise
        try:
            self.max_batch = max(1, min(5000, int(self.client.get_max_batch_size())))
        except Exception:
            self.max_batch = 1000

    def upsert(self, shas: Sequence[str], vectors: np.ndarray) -> None:
        for s in _batches(len(shas), self.max_batch):
            self.collection.upsert(ids=list(shas[s]), embeddings=np.asarray(vectors[s], dtype=np.float32))

    def delete(self, shas: Sequence[str]) -> None:
        for s in _batches(len(shas), self.max_batch):
            self.collection.delete(ids=list(shas[s]))

    def count(self) -> int:
        return int(self.collection.count())

    def ids(self, page: int = 10_000) -> set[str]:
        """Every id in the collection."""
        out: set[str] = set()
        offset = 0
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)
            ids = got.get("ids") or []
            if not ids:
                return out
            out.update(ids)
            offset += len(ids)

    def get(self, shas: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for s in _batches(len(shas), self.max_batch):
            got = self.collection.get(ids=list(shas[s]), include=["embeddings"])
            embs = got.get("embeddings")
            if embs is None:
                continue
            for sha, vec in zip(got["ids"], embs):
                out[sha] = np.asarray(vec, dtype=np.float32)
        return out

    def query(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Nearest ``n`` texts (hex sha, cosine similarity) by Chroma's own index."""
        res = self.collection.query(
            query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
            n_results=max(1, n),
            include=["distances"],
        )
        ids = res["ids"][0] if res.get("ids") else []
        dists = res["distances"][0] if res.get("distances") else []
        return [(i, 1.0 - float(d)) for i, d in zip(ids, dists)]
