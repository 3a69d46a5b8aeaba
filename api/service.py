"""The server's long-lived state: one :class:`~kb.knowledge.KnowledgeBase`, the ingest worker, the watcher.

Consistency
-----------
Every request is one call on :class:`~kb.knowledge.KnowledgeBase` (:meth:`KBService.ready`),
which reads one published generation of the KB (:mod:`kb.generations`): the newest snapshot when
the call starts, kept to its end, with its own DuckDB cursor, so reads run in parallel threads and
never wait for a writer. A re-ingest (``POST /ingest``, ``--watch``)
runs in one worker thread through :meth:`KnowledgeBase.ingest`, which works on a private copy and
publishes it; so does a ``kb ingest`` started from the shell or a scheduled job while the server
runs (the two take turns for the writer role). Requests that start after a publish see it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from kb.api.errors import ServiceUnavailableError
from kb.errors import ConfigError, NotIndexedError
from kb.knowledge import KnowledgeBase
from kb.settings import Settings
from kb.types import RunSummary, SearchResult

__all__ = ["KBService", "IngestWorker"]

log = logging.getLogger("kb.api")


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

    def submit(self) -> Future[RunSummary]:
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
                assert fut is not None  # the wait ends on a pending future or on stopping (returned above)
                self._running = True
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(self._run())
                    except BaseException as exc:
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


class KBService:
    """Everything a request needs, opened once at startup and closed at shutdown."""

    def __init__(self, settings: Settings, *, watch: bool = False, writable: bool | None = None) -> None:
        self.watch = watch
        self.writable = (bool(settings.api_key) or watch) if writable is None else writable
        # One process for the server's re-ingests: forking a server that holds threads (and a
        # model) is asking for a deadlock, and a server's re-ingests are incremental.
        self.kb = KnowledgeBase(settings.replace(workers=1), read_only=not self.writable)
        self.kb.notify = lambda msg: log.warning("%s", msg)
        self.opened = False
        self.ingests = 0
        self.ingest_failures = 0
        self.last_ingest: RunSummary | None = None
        self.last_ingest_error: str | None = None
        self.last_ingest_at: float | None = None
        self.worker: IngestWorker | None = None
        self.watcher: Any = None
        self.embedder_name: str | None = None

    @property
    def settings(self) -> Settings:
        return self.kb.settings

    @property
    def generation(self) -> int:
        gen = self.kb.generation()
        return gen.number if gen else 0

    # -- lifecycle ------------------------------------------------------------------------------

    def preflight(self) -> None:
        """Fail early, with a message that says what to do, when the server could not start."""
        s = self.kb._settings
        built = self.kb.generation() is not None
        if not built and not (self.writable and s.root is not None):
            raise NotIndexedError(
                f"No knowledge base at '{s.db}'. Build one with `kb ingest PATH --db {s.db}`, or start "
                f"`kb serve --root PATH --watch` to build and follow it."
            )
        if self.watch and s.root is None and not built:
            raise ConfigError("--watch needs a corpus root: `kb serve --root PATH --watch`.")

    def open(self) -> None:
        self.preflight()
        s = self.settings
        if s.embed:
            self._warm_embedder()
        if self.writable:
            self.worker = IngestWorker(self._ingest_once)
            if self.kb.generation() is None and s.root is not None:
                self.worker.submit()  # a new KB: build it in the background
        if self.watch:
            if s.root is None:
                raise ConfigError("--watch needs a corpus root: `kb serve --root PATH --watch`.")
            from kb.api.watch import Watcher

            self.watcher = Watcher(Path(s.root), on_change=self.request_ingest, ignore=[Path(s.db)])
            self.watcher.start()
        self.opened = True

    def _warm_embedder(self) -> None:
        """Load the query model once, at startup, so the first search does not pay for it."""
        emb = self.kb.embedder("query")
        self.embedder_name = emb.name
        emb.encode(["warm up"])

    def close(self) -> None:
        self.opened = False
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.worker is not None:
            if not self.worker.stop():
                log.warning("an ingest is still running at shutdown")
                return
            self.worker = None
        self.kb.close()

    # -- reads ----------------------------------------------------------------------------------

    def ready(self) -> KnowledgeBase:
        """The KB, for one request: a 503 while the server starts or stops, or before its first
        generation is published (a KB the server is building). Every read is then one call on it
        (each opens the newest generation with its own cursor, so requests run side by side)."""
        if not self.opened:
            raise ServiceUnavailableError("The server is starting or stopping; retry in a moment.")
        try:
            with self.kb.snapshot():
                pass
        except NotIndexedError as exc:
            raise ServiceUnavailableError(f"The KB is not ready yet: {exc.message}") from exc
        return self.kb

    def search(self, query: str, **options: Any) -> SearchResult:
        return self.ready().search_result(query, **options)

    @property
    def ingesting(self) -> bool:
        return self.worker is not None and self.worker.busy

    # -- ingest ---------------------------------------------------------------------------------

    def request_ingest(self) -> Future[RunSummary]:
        """Queue an incremental re-ingest of the root; the future resolves to its summary."""
        if self.worker is None:
            raise ConfigError("This server is read-only: set KB_API_KEY (or pass --watch) to allow re-ingests.")
        if self.settings.root is None:
            raise ConfigError("No corpus root to ingest: start the server with `kb serve --root PATH`.")
        return self.worker.submit()

    def _ingest_once(self) -> RunSummary:
        try:
            summary = self.kb.ingest(self.settings.root)
        except BaseException as exc:
            self.ingest_failures += 1
            self.last_ingest_error = f"{type(exc).__name__}: {exc}"
            raise
        self.ingests += 1
        self.last_ingest, self.last_ingest_error, self.last_ingest_at = summary, None, time.time()
        return summary
