"""The server's long-lived state: the catalogue, the warmed embedder, the ingest worker, the watcher.

Consistency while an ingest runs
--------------------------------
An ingest runs in one worker thread (:class:`IngestWorker`), never in a request, in two phases:

1. **catalogue** — ``run_ingest`` with the search-index step switched off. It commits a batch of
   files per DuckDB transaction through the catalogue's own connection. Before it starts, the
   service *pins* a snapshot: a second DuckDB connection with an open read transaction. Until the
   index is synced, every request reads that snapshot (DuckDB MVCC), so what a search finds in the
   vector store and keyword index matches the chunk rows it reads back: the pre-ingest view.
2. **index** — ``kb.index.sync_index`` (embeddings into Chroma, the keyword index rebuilt) runs
   holding the write side of a readers-writer lock; requests hold the read side. Neither Chroma
   nor the keyword index is ever read mid-update. When the sync is done the snapshot is released,
   still under the write lock, and the next request sees the new catalogue and the new index
   together.

Readers therefore wait only for phase 2 (for an incremental change: milliseconds to seconds); a
reader that cannot get in within ``request_timeout`` gets a 503, never a half-built answer.

Outside an ingest every request gets its own cursor (``Catalogue.cursor()``), so reads run in
parallel threads.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from api.errors import ServiceUnavailableError
from kb.catalogue import CATALOGUE_FILE, Catalogue
from kb.errors import ConfigError, NotIndexedError
from kb.settings import Settings
from kb.types import RunSummary

__all__ = ["KBService", "RWLock", "IngestWorker"]

log = logging.getLogger("kb.api")


class RWLock:
    """A writer-preferring readers-writer lock; readers may give up after a timeout."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float | None = None) -> bool:
        with self._cv:
            ok = self._cv.wait_for(lambda: not self._writer and not self._writers_waiting, timeout)
            if ok:
                self._readers += 1
            return ok

    def release_read(self) -> None:
        with self._cv:
            self._readers -= 1
            if not self._readers:
                self._cv.notify_all()

    def acquire_write(self) -> None:
        with self._cv:
            self._writers_waiting += 1
            try:
                self._cv.wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writer = True

    def release_write(self) -> None:
        with self._cv:
            self._writer = False
            self._cv.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()


class IngestWorker:
    """One background thread that runs ingests one at a time.

    :meth:`submit` asks for a run and returns a future for it. Requests that arrive while a run is
    in progress are coalesced into the one run that follows it (a burst of saves costs two runs,
    not one per save).
    """

    def __init__(self, run: Callable[[], RunSummary]) -> None:
        self._run = run
        self._cv = threading.Condition()
        self._pending: Future[RunSummary] | None = None
        self._running = False
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="kb-ingest", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._running or self._pending is not None

    def submit(self) -> "Future[RunSummary]":
        with self._cv:
            if self._stopping:
                raise ServiceUnavailableError("The server is shutting down; no new ingest can start.")
            if self._pending is None:
                self._pending = Future()
                self._cv.notify_all()
            return self._pending

    def _loop(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending is not None or self._stopping)
                if self._stopping:
                    if self._pending is not None:
                        self._pending.cancel()
                        self._pending = None
                    return
                fut, self._pending = self._pending, None
                self._running = True
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(self._run())
                    except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                        fut.set_exception(exc)
            finally:
                with self._cv:
                    self._running = False
                    self._cv.notify_all()

    def stop(self, timeout: float = 120.0) -> bool:
        """Finish the run in progress (if any), drop pending ones; True when the thread ended."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()


def _reader_view(catalogue: Catalogue, con: Any, lock: Any) -> Catalogue:
    """A ``Catalogue`` that reads through ``con`` (a cursor of ``catalogue``'s database).

    Library functions take a ``Catalogue``; this hands them one bound to a per-request cursor or to
    the pinned snapshot, with its own lock, so readers never queue behind the ingest's connection.
    """
    return catalogue.view(con, lock)


class KBService:
    """Everything a request needs, opened once at startup and closed at shutdown."""

    def __init__(self, settings: Settings, *, watch: bool = False, writable: bool | None = None) -> None:
        self.settings = settings
        self.watch = watch
        self.writable = (bool(settings.api_key) or watch) if writable is None else writable
        self.catalogue: Catalogue | None = None
        self.rw = RWLock()
        self.generation = 0
        self.ingests = 0
        self.ingest_failures = 0
        self.last_ingest: RunSummary | None = None
        self.last_ingest_error: str | None = None
        self.last_ingest_at: float | None = None
        self.worker: IngestWorker | None = None
        self.watcher: Any = None
        self.embedder_name: str | None = None
        self._pinned: tuple[Any, threading.RLock] | None = None
        self._graph: tuple[int, Any] | None = None
        self._graph_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Fail early, with a message that says what to do, when the server could not start."""
        s = self.settings
        if not (Path(s.db) / CATALOGUE_FILE).exists() and not (self.writable and s.root is not None):
            raise NotIndexedError(
                f"No knowledge base at '{s.db}'. Build one with `kb ingest PATH --db {s.db}`, or start "
                f"`kb serve --root PATH --watch` to build and follow it."
            )
        if self.watch and s.root is None and not (Path(s.db) / CATALOGUE_FILE).exists():
            raise ConfigError("--watch needs a corpus root: `kb serve --root PATH --watch`.")

    def open(self) -> None:
        self.preflight()
        s = self.settings
        self.catalogue = Catalogue(s.db, read_only=not self.writable)
        if s.root is None:
            recorded = self.catalogue.get_meta("root")
            if recorded:
                self.settings = s = s.replace(root=Path(recorded))
        if s.embed:
            self._warm_embedder()
        if self.writable:
            self.worker = IngestWorker(self._ingest_once)
            files = self.catalogue.query("SELECT count(*) FROM files")[0][0]
            if not files and s.root is not None:
                self.worker.submit()  # a new KB: build it in the background
        if self.watch:
            if s.root is None:
                raise ConfigError("--watch needs a corpus root: `kb serve --root PATH --watch`.")
            from api.watch import Watcher

            self.watcher = Watcher(Path(s.root), on_change=self.request_ingest, ignore=[Path(s.db)])
            self.watcher.start()

    def _warm_embedder(self) -> None:
        """Load the model once, at startup, so the first search does not pay for it."""
        try:
            from kb.embed import get_embedder
        except ImportError:  # pragma: no cover - the search layer is optional at this level
            return
        emb = get_embedder(self.settings)
        self.embedder_name = emb.name
        emb.encode(["warm up"])

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.worker is not None:
            if not self.worker.stop():
                log.warning("an ingest is still running at shutdown; the catalogue is left open")
                return
            self.worker = None
        with self.rw.write():
            self._unpin()
        if self.catalogue is not None:
            self.catalogue.close()
            self.catalogue = None

    # -- reads ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self) -> Iterator[Catalogue]:
        """A consistent read view for one request (see the module docstring)."""
        cat = self._require_open()
        if not self.rw.acquire_read(self.settings.request_timeout or None):
            raise ServiceUnavailableError("The search index is being updated; retry in a moment.")
        try:
            pinned = self._pinned
            if pinned is not None:
                yield _reader_view(cat, pinned[0], pinned[1])
                return
            con = cat.cursor()
            try:
                yield _reader_view(cat, con, threading.RLock())
            finally:
                con.close()
        finally:
            self.rw.release_read()

    def graph(self, view: Catalogue) -> Any:
        """The dependency graph, built once per catalogue generation."""
        with self._graph_lock:
            if self._graph is None or self._graph[0] != self.generation:
                from graph.build import build_graph

                self._graph = (self.generation, build_graph(view, self.settings))
            return self._graph[1]

    @property
    def ingesting(self) -> bool:
        return self.worker is not None and self.worker.busy

    def _require_open(self) -> Catalogue:
        if self.catalogue is None:
            raise ServiceUnavailableError("The server is starting or stopping; retry in a moment.")
        return self.catalogue

    # -- ingest ---------------------------------------------------------------------------------

    def request_ingest(self) -> "Future[RunSummary]":
        """Queue an incremental re-ingest of the root; the future resolves to its summary."""
        if self.worker is None:
            raise ConfigError("This server is read-only: set KB_API_KEY (or pass --watch) to allow re-ingests.")
        if self.settings.root is None:
            raise ConfigError("No corpus root to ingest: start the server with `kb serve --root PATH`.")
        return self.worker.submit()

    def _pin(self) -> None:
        cat = self._require_open()
        con = cat.cursor()
        con.execute("BEGIN TRANSACTION")
        con.execute("SELECT count(*) FROM files").fetchall()  # DuckDB starts the snapshot lazily
        self._pinned = (con, threading.RLock())

    def _unpin(self) -> None:
        pinned, self._pinned = self._pinned, None
        if pinned is not None:
            with contextlib.suppress(Exception):
                pinned[0].execute("ROLLBACK")
            with contextlib.suppress(Exception):
                pinned[0].close()

    def _ingest_once(self) -> RunSummary:
        """Phase 1 against a pinned snapshot, phase 2 under the write lock (module docstring)."""
        from ingest.pipeline import run_ingest

        cat = self._require_open()
        s = self.settings
        t0 = time.perf_counter()
        with self.rw.write():
            self._pin()
        try:
            # One process: forking a server that holds threads (and maybe torch) is asking for a
            # deadlock, and a server's re-ingests are incremental.
            summary = run_ingest(cat, s.replace(embed=False, workers=1))
            embedded = 0
            with self.rw.write():
                try:
                    if s.embed:
                        embedded = self._sync_index(cat, s)
                finally:
                    self._unpin()
                    self.generation += 1
        except BaseException as exc:
            with self.rw.write():
                self._unpin()
                self.generation += 1
            self.ingest_failures += 1
            self.last_ingest_error = f"{type(exc).__name__}: {exc}"
            raise
        summary = summary.model_copy(update={"chunks_embedded": embedded,
                                             "seconds": round(time.perf_counter() - t0, 3)})
        self.ingests += 1
        self.last_ingest, self.last_ingest_error, self.last_ingest_at = summary, None, time.time()
        return summary

    @staticmethod
    def _sync_index(cat: Catalogue, s: Settings) -> int:
        try:
            from kb.index import sync_index
        except ImportError:  # pragma: no cover - the search layer is optional at this level
            return 0
        info = sync_index(cat, s)
        return int((info or {}).get("embedded", 0)) if isinstance(info, dict) else 0
