"""Ingest worker processes that hold every file to a time budget and a memory bound.

:func:`supervised_map` runs ``fn(*task)`` for each task in forked worker processes, like
``Pool.imap_unordered`` with chunks, and yields ``(index, result)`` as results arrive. Unlike a
pool, no single task can hold the run hostage:

* **Time**: before each task a worker arms a timer (``setitimer``); when it fires, the task is
  interrupted where it stands (Python code and regular expressions check for signals) and
  ``on_timeout(task)`` stands for its result. If the worker does not answer (stuck inside a C call
  that never returns to Python), the parent, which sees in shared memory which task each worker
  started and when, kills it after ``timeout + grace`` seconds, records ``on_timeout(task)`` and
  starts a fresh worker; the other tasks of its chunk are handed out again.
* **Memory**: each worker's address space may grow by at most ``memory`` bytes past what it had
  when forked (``RLIMIT_AS``; Linux). An allocation past it raises ``MemoryError`` inside the task
  (``on_memory(task)`` stands for its result, unless ``fn`` turned it into a result itself), and a
  worker whose peak resident size grew past half the bound is replaced after its chunk, so
  fragmentation left by one big file never carries over.
* **Crashes**: a worker that dies (a segfault in a C extension, the OOM killer) costs only the
  task it was running (``on_crash(task)``); the rest of its chunk is handed out again.

The normal path costs one ``setitimer`` pair and two stores to shared memory per task.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["supervised_map", "worker_context", "main_left_alone", "FileTooSlowError", "GRACE_SECONDS", "MEMORY_LIMIT"]

GRACE_SECONDS = 5.0
"""How long past its budget a worker may take to answer before the parent kills it."""
MEMORY_LIMIT = 500 * 1024 * 1024
"""Bytes one file may add to a worker's address space (the per-file memory bound)."""
_POLL = 0.25
_QUEUED = 2
"""Chunks handed to a worker ahead of its answers."""


class FileTooSlowError(BaseException):
    """Raised inside a worker when the current task's time budget runs out (a BaseException, so
    a task's own ``except Exception`` cannot swallow it)."""


class _Alarm:
    armed = False


def _on_alarm(signum: int, frame: Any) -> None:
    if _Alarm.armed:
        _Alarm.armed = False
        raise FileTooSlowError


def _vm_size() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _limit_memory(memory: int) -> None:
    try:
        import resource

        vm = _vm_size()
        if vm is None:
            return
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = vm + memory
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ImportError, ValueError, OSError):
        pass  # not Linux: the bound is not enforced


def _peak_rss() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux
    except ImportError:
        return 0


START_METHOD = "forkserver"
"""How workers start. Tests that patch a parser in the calling process set it to ``fork`` so the
workers see the patch."""


def worker_context() -> Any:
    """The multiprocessing context workers start from: ``forkserver`` where there is one.

    Workers are forked from a small server process that imported only the parsers, never from the
    calling process itself: that one may be ``kb serve`` or a notebook, with threads, a model and
    open databases, and a child forked from it can crash collecting objects it inherited in the
    middle of other threads' work (seen: a segfault in the garbage collector of a worker forked
    after an MCP session and a torch model had run in the same process)."""
    import multiprocessing as mp

    if START_METHOD != "forkserver":
        return mp.get_context(START_METHOD)
    try:
        ctx = mp.get_context("forkserver")
    except ValueError:  # no forkserver on this platform
        return mp.get_context("spawn")
    ctx.set_forkserver_preload(["kb.ingest.pipeline", "kb.ingest.workers"])
    # The fork server is a new `python -c`, whose import path starts with the working directory:
    # a folder there named `kb` (a KB made with `--db kb`) would shadow kb itself and every file
    # would fail in its worker. PYTHONSAFEPATH (3.11+) keeps the working directory off the path.
    os.environ.setdefault("PYTHONSAFEPATH", "1")
    return ctx


_MAIN_LOCK = threading.Lock()


def _helper_pids() -> tuple[int | None, int | None]:
    """The pids of this process's fork server and resource tracker (None: not running)."""
    from multiprocessing import forkserver, resource_tracker

    return (
        getattr(forkserver._forkserver, "_forkserver_pid", None),
        getattr(resource_tracker._resource_tracker, "_pid", None),
    )


_HELPERS_LOCK = threading.Lock()
_HELPERS: dict[str, Any] = {"maps": 0, "before": None}
"""Maps running in this process, and the helpers' pids before the first of them started."""


def _helpers_enter() -> None:
    with _HELPERS_LOCK:
        if _HELPERS["maps"] == 0:
            _HELPERS["before"] = _helper_pids()
        _HELPERS["maps"] += 1


def _helpers_leave() -> None:
    """The last map of this process to end stops the helpers none had found running."""
    with _HELPERS_LOCK:
        _HELPERS["maps"] -= 1
        if _HELPERS["maps"] == 0:
            _stop_helpers(_HELPERS["before"])


def _stop_helpers(before: tuple[int | None, int | None]) -> None:
    """Stop the fork server and resource tracker that were not running ``before``.

    In a Jupyter kernel only (see :func:`supervised_map`), once no map of the kernel runs: on
    shutdown ipykernel signals its child processes, the resource tracker ignores SIGINT and
    SIGTERM, and the kernel outlives the client's grace period and is killed with SIGTERM, so
    ``atexit`` never runs: a notebook's ``TemporaryDirectory`` (the KB it built) stays on disk, and
    each restart takes 2.5 s."""
    from multiprocessing import forkserver, resource_tracker

    server, tracker = _helper_pids()
    with contextlib.suppress(Exception):  # private, and best effort: the build itself is done
        if before[0] is None and server is not None:
            getattr(forkserver._forkserver, "_stop")()  # noqa: B009 (private, not in the stubs)
        if before[1] is None and tracker is not None:
            getattr(resource_tracker._resource_tracker, "_stop")()  # noqa: B009


@contextlib.contextmanager
def main_left_alone() -> Iterator[None]:
    """Start worker processes without running the caller's script again.

    A ``spawn`` or ``forkserver`` child imports the parent's ``__main__`` module (by path or name,
    as ``__mp_main__``) before its target runs. Workers need nothing from it, and a script that
    calls ``KnowledgeBase.build()`` at top level, without ``if __name__ == "__main__":``, would
    build again in every worker, each waiting for the writer role its parent holds: the call
    would never return. While processes start, ``__main__`` hides its file and spec, so children
    leave it alone."""
    main = sys.modules.get("__main__")
    if main is None or START_METHOD == "fork":
        yield
        return
    with _MAIN_LOCK:
        saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
        main.__dict__.pop("__file__", None)
        main.__dict__["__spec__"] = None
        try:
            yield
        finally:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that forked it dies (a ``kill -9`` of
    ``kb ingest`` must not leave orphans holding its files)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker(
    wid: int,
    conn: Any,
    slots: Any,
    fn: Callable,
    timeout: float,
    memory: int,
    on_timeout: Callable,
    on_memory: Callable,
    initializer: Callable | None,
    initargs: tuple,
) -> None:
    _die_with_parent()
    if initializer is not None:
        initializer(*initargs)
    if memory:
        _limit_memory(memory)
    base_rss = _peak_rss()
    if timeout:
        signal.signal(signal.SIGALRM, _on_alarm)
    while True:
        try:
            chunk = conn.recv()
        except (EOFError, OSError):
            return
        if chunk is None:
            return
        out = []
        recycle = False
        for idx, task in chunk:
            slots[2 * wid + 1] = time.monotonic()
            slots[2 * wid] = idx
            try:
                if timeout:
                    _Alarm.armed = True
                    signal.setitimer(signal.ITIMER_REAL, timeout)
                try:
                    result = fn(*task)
                finally:
                    _Alarm.armed = False
                    if timeout:
                        signal.setitimer(signal.ITIMER_REAL, 0)
            except FileTooSlowError:
                result = on_timeout(task)
            except MemoryError:
                result = on_memory(task)
                recycle = True
            out.append((idx, result))
        slots[2 * wid] = -1
        recycle = recycle or bool(memory and _peak_rss() - base_rss > memory // 2)
        try:
            conn.send((out, recycle))
        except MemoryError:
            # a result too big to pickle within the bound: it becomes its memory finding, the
            # others go as they are (if even that cannot be sent, the parent retries file by file)
            out = _sendable(out, chunk, on_memory)
            try:
                conn.send((out, True))
            except MemoryError:
                return
            recycle = True
        if recycle:
            return  # the parent, told so, hands the chunks queued behind this one to another worker


def _sendable(out: list[tuple[int, Any]], chunk: list[tuple[int, tuple]], on_memory: Callable) -> list:
    import pickle

    tasks = dict(chunk)
    safe = []
    for n, (idx, result) in enumerate(out):
        try:
            pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except MemoryError:
            out[n] = (idx, None)  # free it before the next one is tried
            result = on_memory(tasks[idx])
        safe.append((idx, result))
    return safe


def supervised_map(
    fn: Callable[..., Any],
    tasks: Sequence[tuple],
    *,
    workers: int,
    timeout: float,
    on_timeout: Callable[[tuple], Any],
    on_crash: Callable[[tuple], Any],
    on_memory: Callable[[tuple], Any] | None = None,
    memory: int = MEMORY_LIMIT,
    initializer: Callable | None = None,
    initargs: tuple = (),
    chunksize: int = 32,
    grace: float | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, fn(*tasks[index]))`` for every task, in completion order (see the module)."""
    from multiprocessing.connection import wait

    grace = GRACE_SECONDS if grace is None else grace
    if not tasks:
        return
    ctx = worker_context()
    n = max(1, min(workers, (len(tasks) + chunksize - 1) // chunksize))
    slots = ctx.RawArray("d", 2 * n)
    for i in range(n):
        slots[2 * i] = -1
    on_memory = on_memory or on_crash
    todo: deque[list[tuple[int, tuple]]] = deque(
        [(i, t) for i, t in enumerate(tasks[s : s + chunksize], s)] for s in range(0, len(tasks), chunksize)
    )
    procs: list[Any] = [None] * n
    conns: list[Any] = [None] * n
    # the chunks sent to each worker and not answered yet, oldest (the one it works on) first; a
    # second one queued behind it keeps the worker busy while this process stores results
    busy: list[deque[list[tuple[int, tuple]]]] = [deque() for _ in range(n)]
    remaining = len(tasks)

    def start(i: int) -> None:
        parent, child = ctx.Pipe()
        p = ctx.Process(
            target=_worker,
            args=(i, child, slots, fn, timeout, memory, on_timeout, on_memory, initializer, initargs),
            daemon=True,
        )
        with main_left_alone():
            p.start()
        child.close()
        procs[i], conns[i] = p, parent
        busy[i] = deque()
        slots[2 * i] = -1

    def stop(i: int, kill: bool) -> None:
        p = procs[i]
        if p is not None:
            if kill and p.is_alive():
                p.kill()
            p.join(timeout=5)
            conns[i].close()
        procs[i] = conns[i] = None

    returned: dict[int, int] = {}

    def lost(i: int, why: Callable[[tuple], Any]) -> Iterator[tuple[int, Any]]:
        """Worker ``i`` is gone mid-chunk: its current task fails with ``why``; the rest go back.

        A worker gone between tasks (while sending its results) blames none of them: its tasks go
        back one per chunk, and a task handed back that way twice fails with ``on_memory``, so no
        task is handed out forever."""
        queued = busy[i]
        busy[i] = deque()
        chunk = queued.popleft() if queued else []
        while queued:  # never started: back as they were
            todo.appendleft(queued.pop())
        current = int(slots[2 * i])
        rest = []
        for idx, task in chunk:
            if idx == current:
                yield idx, why(task)
            else:
                rest.append((idx, task))
        if current >= 0:
            if rest:
                todo.appendleft(rest)
            return
        for idx, task in reversed(rest):
            returned[idx] = returned.get(idx, 0) + 1
            if returned[idx] > 2 or (returned[idx] > 1 and len(chunk) == 1):
                yield idx, on_memory(task)
            else:
                todo.appendleft([(idx, task)])

    in_kernel = "ipykernel" in sys.modules  # see _stop_helpers
    if in_kernel:
        _helpers_enter()
    try:
        for i in range(n):
            start(i)
        while remaining:
            for i in range(n):
                while len(busy[i]) < _QUEUED and todo:
                    if not busy[i] and (procs[i] is None or not procs[i].is_alive()):
                        stop(i, kill=True)
                        start(i)
                    chunk = todo.popleft()
                    try:
                        conns[i].send(chunk)
                        busy[i].append(chunk)
                    except (OSError, ValueError):
                        todo.appendleft(chunk)
                        if busy[i]:
                            break  # gone with chunks out: reading its pipe below tells what happened
                        stop(i, kill=True)
                        start(i)
            live = [conns[i] for i in range(n) if busy[i]]
            ready = wait(live, timeout=_POLL) if live else []
            for i in range(n):
                c = conns[i]
                if c is None or c not in ready:
                    continue
                try:
                    out, recycled = c.recv()
                except (EOFError, OSError):
                    for item in lost(i, on_crash):
                        remaining -= 1
                        yield item
                    stop(i, kill=True)
                    continue
                busy[i].popleft()
                if recycled:  # it exits now: what was queued behind goes to the others
                    while busy[i]:
                        todo.appendleft(busy[i].pop())
                    stop(i, kill=False)
                    start(i)
                for item in out:
                    remaining -= 1
                    yield item
            if timeout:
                now = time.monotonic()
                for i in range(n):
                    if not busy[i]:
                        continue
                    current, began = slots[2 * i], slots[2 * i + 1]
                    if current >= 0 and now - began > timeout + grace and slots[2 * i] == current:
                        stop(i, kill=True)
                        for item in lost(i, on_timeout):
                            remaining -= 1
                            yield item
    finally:
        for i in range(n):
            if conns[i] is not None:
                try:
                    conns[i].send(None)
                except (OSError, ValueError):
                    pass
        for i in range(n):
            if procs[i] is not None:
                procs[i].join(timeout=2)
                if procs[i].is_alive():
                    procs[i].kill()
                    procs[i].join(timeout=2)
                conns[i].close()
        if in_kernel:
            _helpers_leave()
