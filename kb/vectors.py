"""The vector store: one Chroma collection of chunk embeddings. The only module importing chromadb.

Embedded ``PersistentClient`` at ``<db>/chroma`` by default; with ``settings.chroma_url``
(``KB_CHROMA_URL=http://127.0.0.1:8123``) the same code talks to a Chroma server through
``HttpClient`` (one collection per KB, named after the KB's id so several KBs can share a
server). Cosine space; flat metadata per chunk: ``path``, ``format``, ``key_path``,
``line_start``, ``line_end``, ``text_sha``. Telemetry is off: nothing leaves the machine.

Every call is batched below Chroma's maximum batch size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from kb.errors import ConfigError, NotIndexedError

__all__ = ["VectorStore", "VectorHit", "open_vector_store", "forget_vector_stores", "CHROMA_DIR"]

CHROMA_DIR = "chroma"
META_FIELDS = ("path", "format", "key_path", "line_start", "line_end", "text_sha")


class VectorHit(tuple):
    """(chunk_id, similarity, metadata) from :meth:`VectorStore.query`."""

    __slots__ = ()

    def __new__(cls, chunk_id: str, similarity: float, meta: dict[str, Any]) -> "VectorHit":
        return super().__new__(cls, (chunk_id, similarity, meta))

    @property
    def chunk_id(self) -> str:
        return self[0]

    @property
    def similarity(self) -> float:
        return self[1]

    @property
    def meta(self) -> dict[str, Any]:
        return self[2]


def _settings() -> Any:
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _client(db: Path, chroma_url: str | None) -> Any:
    import chromadb

    if chroma_url:
        u = urlparse(chroma_url if "://" in chroma_url else f"http://{chroma_url}")
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"Bad KB_CHROMA_URL '{chroma_url}': expected http://HOST:PORT, e.g. http://127.0.0.1:8000.")
        port = u.port or (443 if u.scheme == "https" else 8000)
        try:
            return chromadb.HttpClient(host=u.hostname, port=port, ssl=u.scheme == "https", settings=_settings())
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise NotIndexedError(
                f"Cannot reach the Chroma server at {chroma_url}: {str(exc).splitlines()[0] if str(exc) else exc!r}. "
                "Start it (`chroma run --path DIR --port PORT`) or unset KB_CHROMA_URL."
            ) from exc
    path = db / CHROMA_DIR
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=_settings())


def _batches(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


class VectorStore:
    """The chunk collection of one KB.

    ``collection`` names the Chroma collection (``kb_chunks`` in an embedded store; on a server,
    ``kb_<kb id>`` so that KBs do not collide).
    """

    def __init__(self, db: Path | str, *, chroma_url: str | None = None, collection: str = "kb_chunks") -> None:
        self.db = Path(db)
        self.chroma_url = chroma_url
        self.client = _client(self.db, chroma_url)
        self.name = collection
        self._lock = threading.RLock()
        try:
            self.collection = self.client.get_or_create_collection(
                collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )
        except Exception as exc:  # noqa: BLE001
            if chroma_url:
                raise NotIndexedError(
                    f"Chroma server at {chroma_url} refused the collection '{collection}': {exc}. "
                    "Check that it is running and reachable, or unset KB_CHROMA_URL."
                ) from exc
            raise
        try:
            self.max_batch = max(1, min(5000, int(self.client.get_max_batch_size())))
        except Exception:  # noqa: BLE001 - older servers
            self.max_batch = 1000

    # -- writes ---------------------------------------------------------------------------------

    def upsert(self, ids: Sequence[str], embeddings: np.ndarray, metadatas: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for s in _batches(len(ids), self.max_batch):
                self.collection.upsert(ids=list(ids[s]), embeddings=np.asarray(embeddings[s], dtype=np.float32),
                                       metadatas=[_clean(m) for m in metadatas[s]])

    def update_metadata(self, ids: Sequence[str], metadatas: Sequence[dict[str, Any]]) -> None:
        with self._lock:
            for s in _batches(len(ids), self.max_batch):
                self.collection.update(ids=list(ids[s]), metadatas=[_clean(m) for m in metadatas[s]])

    def delete(self, ids: Sequence[str]) -> None:
        with self._lock:
            for s in _batches(len(ids), self.max_batch):
                self.collection.delete(ids=list(ids[s]))

    def reset(self) -> None:
        """Drop every vector (the collection is recreated empty)."""
        with self._lock:
            try:
                self.client.delete_collection(self.name)
            except Exception:  # noqa: BLE001 - not there
                pass
            self.collection = self.client.get_or_create_collection(
                self.name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
            )

    # -- reads ----------------------------------------------------------------------------------

    def count(self) -> int:
        return int(self.collection.count())

    def get_embeddings(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for s in _batches(len(ids), self.max_batch):
                got = self.collection.get(ids=list(ids[s]), include=["embeddings"])
                embs = got.get("embeddings")
                if embs is None:
                    continue
                for cid, vec in zip(got["ids"], embs):
                    out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def iter_metadata(self, page: int = 5000) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every (id, metadata) in the store, page by page (used to recover a lost state file)."""
        offset = 0
        while True:
            with self._lock:
                got = self.collection.get(include=["metadatas"], limit=page, offset=offset)
            ids = got.get("ids") or []
            if not ids:
                return
            yield from zip(ids, got.get("metadatas") or [{}] * len(ids))
            offset += len(ids)

    def query(self, vector: np.ndarray, n: int, *, format: str | None = None,
              paths: Sequence[str] | None = None, with_metadata: bool = True) -> list[VectorHit]:
        """Nearest ``n`` chunks to ``vector`` (cosine similarity), optionally filtered.

        ``with_metadata=False`` returns ids and similarities only (search reads the rows from the
        keyword index, which stores them; this saves a third of Chroma's per-query cost)."""
        if n <= 0:
            return []
        clauses: list[dict[str, Any]] = []
        if format:
            clauses.append({"format": format})
        if paths is not None:
            if not paths:
                return []
            clauses.append({"path": {"$in": list(paths)}})
        where = None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}
        with self._lock:
            res = self.collection.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1), n_results=n,
                where=where, include=["metadatas", "distances"] if with_metadata else ["distances"],
            )
        ids = res["ids"][0] if res.get("ids") else []
        dists = res["distances"][0] if res.get("distances") else []
        metas = (res.get("metadatas") or [None])[0] or [{}] * len(ids)
        return [VectorHit(cid, 1.0 - float(d), dict(m or {})) for cid, d, m in zip(ids, dists, metas)]


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Chroma metadata is flat and non-null: None becomes ''."""
    return {k: ("" if v is None else v) for k, v in meta.items()}


# ---------------------------------------------------------------------------------------------
# A per-process cache, invalidated when the KB's index generation changes
# ---------------------------------------------------------------------------------------------

_STORES: dict[tuple[str, str | None, str], tuple[str | None, VectorStore]] = {}
_STORES_LOCK = threading.Lock()


def open_vector_store(db: Path | str, *, chroma_url: str | None = None, collection: str = "kb_chunks",
                      generation: str | None = None) -> VectorStore:
    """A cached :class:`VectorStore`; a different ``generation`` (another process wrote the index,
    or the KB directory was rebuilt) reopens the client so that it sees the new data."""
    key = (str(Path(db).resolve()), chroma_url, collection)
    with _STORES_LOCK:
        hit = _STORES.get(key)
        if hit is not None and (generation is None or hit[0] == generation):
            return hit[1]
        if hit is not None and not chroma_url:
            _clear_chroma_cache()
        store = VectorStore(db, chroma_url=chroma_url, collection=collection)
        _STORES[key] = (generation, store)
        return store


def note_generation(store: VectorStore, generation: str) -> None:
    """Record that ``store`` already reflects ``generation`` (it wrote it)."""
    key = (str(store.db.resolve()), store.chroma_url, store.name)
    with _STORES_LOCK:
        _STORES[key] = (generation, store)


def forget_vector_stores() -> None:
    """Drop every cached client (tests; a KB directory deleted and rebuilt in one process)."""
    with _STORES_LOCK:
        _STORES.clear()
        _clear_chroma_cache()


def _clear_chroma_cache() -> None:
    # Chroma shares one "system" per path across clients in a process; a stale one keeps
    # serving the old segments. Clearing it means every cached client must be recreated.
    try:
        from chromadb.api.client import SharedSystemClient

        SharedSystemClient.clear_system_cache()
    except Exception:  # noqa: BLE001 - internal API; best effort
        pass
    for k in [k for k, (_, s) in _STORES.items() if not s.chroma_url]:
        _STORES.pop(k, None)
