"""``kb serve --watch``: re-ingest when files under the root change.

A thread runs :func:`watchfiles.watch` (inotify, or polling where the platform has no events) with
a short debounce: changes are grouped until 50 ms pass without a new one, at most 300 ms, then one
incremental re-ingest is queued. Editor droppings (swap files, ``~`` backups), VCS folders and the
KB directory itself (when it lies under the root) are ignored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["Watcher", "DEBOUNCE_MS", "STEP_MS"]

log = logging.getLogger("kb.api")

DEBOUNCE_MS = 300
"""Longest time changes are grouped before one re-ingest is queued."""
STEP_MS = 50
"""Quiet time after the last change that ends a group early."""


class Watcher:
    def __init__(
        self,
        root: Path,
        on_change: Callable[[], Any],
        *,
        ignore: Sequence[Path] = (),
        debounce_ms: int = DEBOUNCE_MS,
        step_ms: int = STEP_MS,
        force_polling: bool | None = None,
    ) -> None:
        self.root = Path(root)
        self.on_change = on_change
        self.ignore = [Path(p).resolve() for p in ignore]
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.force_polling = force_polling
        self.batches = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kb-watch", daemon=True)

    def start(self, wait: float = 5.0) -> None:
        self._thread.start()
        self._ready.wait(wait)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _filter(self):
        from watchfiles import DefaultFilter

        ignored = tuple(str(p) for p in self.ignore)
        default = DefaultFilter(ignore_paths=ignored)
        return default

    def _loop(self) -> None:
        from watchfiles import watch

        self._ready.set()
        try:
            for changes in watch(
                self.root,
                watch_filter=self._filter(),
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self._stop,
                force_polling=self.force_polling,
                raise_interrupt=False,
                rust_timeout=500,
                yield_on_timeout=False,
            ):
                if self._stop.is_set():
                    break
                if not changes:
                    continue
                self.batches += 1
                log.info("watch: %d change(s) under %s; re-ingesting", len(changes), self.root)
                try:
                    self.on_change()
                except Exception:
                    log.exception("watch: could not queue a re-ingest")
        except Exception:
            log.exception("watch: the file watcher stopped")
