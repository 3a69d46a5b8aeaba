"""Progress on stderr for long commands, as a ``progress(phase, done, total)`` callback.

In a terminal: a rich bar per phase, refreshed ten times a second, with the rate and an ETA
computed from the phase's own average rate (rich's windowed estimate stays blank when updates come
in large steps). Anywhere else (a pipe, a CI log): one plain line per phase every ``every``
seconds and when the phase ends, ``kb ingest: embed 3,072/10,000 (30.7%), 205/s, ETA 0:34``, so a
ten-minute job is never silent. ``KB_PROGRESS`` forces a style: ``bar``, ``lines`` or ``off``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["progress_reporter", "LineProgress", "eta_text"]

Callback = Callable[[str, int, int], None]


def eta_text(seconds: float | None) -> str:
    """``1:02:03`` / ``4:05`` / ``?``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Phase:
    def __init__(self, now: float, done: int) -> None:
        self.start, self.start_done = now, done
        self.last_line = 0.0
        self.ended = False

    def rate(self, now: float, done: int) -> float | None:
        elapsed = now - self.start
        moved = done - self.start_done
        return moved / elapsed if elapsed > 0.2 and moved > 0 else None


class LineProgress:
    """Plain progress lines (no cursor movement): for pipes, files and CI logs."""

    def __init__(self, command: str, *, every: float = 5.0, stream: TextIO | None = None, clock=time.monotonic):
        self.command = command
        self.every = every
        self.stream = stream or sys.stderr
        self.clock = clock
        self.phases: dict[str, _Phase] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        p = self.phases.get(phase)
        if p is None:
            p = self.phases[phase] = _Phase(now, done)
            p.last_line = now - self.every  # the first update of a phase prints at once
        finished = bool(total) and done >= total
        if p.ended or (not finished and now - p.last_line < self.every):
            return
        p.last_line, p.ended = now, finished
        self.stream.write(self.line(phase, done, total, p.rate(now, done)) + "\n")
        self.stream.flush()

    def line(self, phase: str, done: int, total: int, rate: float | None) -> str:
        parts = [f"kb {self.command}: {phase} {done:,}/{total:,}" if total else f"kb {self.command}: {phase} {done:,}"]
        if total:
            parts[0] += f" ({100 * done / total:.1f}%)"
        if rate:
            parts.append(f"{rate:,.0f}/s" if rate >= 10 else f"{rate:.1f}/s")
            if total and done < total:
                parts.append(f"ETA {eta_text((total - done) / rate)}")
        if total and done >= total:
            parts.append("done")
        return ", ".join(parts)


def _bar(command: str) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn
    from rich.text import Text

    phases: dict[str, _Phase] = {}

    class _RateEta(ProgressColumn):
        """The phase's average rate and the ETA it gives (never blank once work moves)."""

        def render(self, task: Task) -> Text:
            p = phases.get(str(task.description).strip())
            now = time.monotonic()
            rate = p.rate(now, int(task.completed)) if p else None
            if task.finished:
                return Text(f"{eta_text(task.finished_time or task.elapsed)} done", style="dim")
            if not rate:
                return Text("ETA ?", style="dim")
            left = (task.total or 0) - task.completed
            return Text(f"{rate:,.0f}/s ETA {eta_text(left / rate)}", style="cyan")

    class _Bar:
        def __init__(self) -> None:
            self.p = Progress(
                TextColumn("{task.description:<8}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateEta(),
                console=Console(stderr=True),
                transient=True,
                refresh_per_second=10,
            )
            self.tasks: dict[str, Any] = {}

        def __enter__(self) -> _Bar:
            self.p.__enter__()
            return self

        def __exit__(self, *exc: Any) -> None:
            self.p.__exit__(*exc)

        def __call__(self, phase: str, done: int, total: int) -> None:
            if phase not in self.tasks:
                phases[phase] = _Phase(time.monotonic(), done)
                self.tasks[phase] = self.p.add_task(phase, total=total or 1)
            self.p.update(self.tasks[phase], completed=done, total=total or 1)

    return _Bar()


@contextlib.contextmanager
def progress_reporter(command: str, *, enabled: bool = True, every: float = 5.0) -> Iterator[Callback | None]:
    """The progress callback for ``command``: a bar in a terminal, lines elsewhere, None when off."""
    style = os.environ.get("KB_PROGRESS", "").strip().lower()
    if not enabled or style == "off":
        yield None
        return
    if style == "bar" or (style != "lines" and sys.stderr.isatty()):
        with _bar(command) as bar:
            yield bar
        return
    yield LineProgress(command, every=every)
