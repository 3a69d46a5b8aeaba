"""The ingest pipeline's catalogue phase: walk -> (stat, hash) -> parse -> redact -> chunk -> catalogue.

The search index (keyword index and vectors) is brought up to date afterwards, by
:meth:`kb.knowledge.KnowledgeBase.ingest` (see :mod:`kb.index`).

Incremental: a file whose size and mtime match the catalogue costs one ``stat``; a file whose
bytes hash the same costs a read and an mtime update; only changed files are parsed, and the files
whose folder about (:mod:`kb.ingest.about`, in their chunks' context line) changed. Work is
committed a batch of files per transaction, each file's rows replaced together, so a run killed
with ``kill -9`` leaves the previous state queryable and the next run finishes the job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import kb.ingest.chunk
from kb.catalogue import Catalogue
from kb.errors import ConfigError
from kb.findings import problem_row
from kb.formats import formats_with
from kb.ingest.about import about_for, folder_abouts, takes_folder_about
from kb.ingest.changes import ChangeRecorder
from kb.ingest.chunk import chunk_sections, own_about
from kb.ingest.meaning import embeddable
from kb.ingest.parsers.base import Limits, format_for, parse_text, strip_bom
from kb.ingest.secrets import redact_file
from kb.ingest.walk import WalkEntry, walk_tree
from kb.settings import Settings
from kb.types import Problem, RunSummary

__all__ = ["run_ingest", "process_file", "STRUCTURED_FORMATS", "value_text"]

Progress = Callable[[str, int, int], None]

STRUCTURED_FORMATS = formats_with(lambda t: t.structured)
"""Formats whose secrets are judged by key as well as by shape (``structured``, :mod:`kb.formats`)."""
_SNIFF = 8192


@dataclass(slots=True)
class FileResult:
    """What a worker hands back for one file (plain tuples: cheap to pickle)."""

    rel: str
    kind: str  # "parsed" | "touch" | "vanished"
    mtime: float
    file_row: tuple | None = None
    rows: dict[str, list[tuple]] | None = None
    walk_problem: Problem | None = None


def value_text(value: Any) -> tuple[str | None, str]:
    """A record value as catalogue text plus its type name."""
    if value is None:
        return None, "null"
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, str):
        return value, "str"
    if isinstance(value, dict):
        return "{}", "object"
    if isinstance(value, list):
        return "[]", "array"
    return str(value), "str"


def _canonical_sha(documents: list[Any]) -> str | None:
    docs = [d for d in documents if d not in (None, {}, [], "")]
    if not docs:
        return None
    data = docs[0] if len(docs) == 1 else docs
    try:
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        return None
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def _size(n: int) -> str:
    if n >= 1048576:
        return f"{n / 1048576:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _first_bad_line(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data.count(b"\n", 0, exc.start) + 1
    return 1


_MAX_PENDING_ROWS = 150_000  # rows held before a commit, whatever the file count (bounds memory)
_READ_CAP = 2**62  # a max_file_size past what read() takes means "no cap"
_LIMITS = Limits()
_MAX_SIZE = 10 * 1024 * 1024


def _init_worker(limits: Limits, max_size: int) -> None:
    global _LIMITS, _MAX_SIZE
    _LIMITS, _MAX_SIZE = limits, max_size


# files that are empty by convention: a folder kept in git, a Python package marker
_EMPTY_BY_CONVENTION = frozenset({".gitkeep", ".keep", "__init__.py", "py.typed", ".nojekyll", ".gitkeep.txt"})
# chart-testing installs a Helm chart once per ci/*-values.yaml: an empty one installs its defaults;
# an emptied templates/NOTES.txt (every `helm create` scaffolds one) prints no notes
_EMPTY_IN_CHARTS = re.compile(r"(?:^|/)ci/[^/]*values\.ya?ml$|(?:^|/)templates/NOTES\.txt$")


def _content_expected(rel: str, fmt: str) -> bool:
    """Whether an empty file is worth a finding: a configuration or document format, not a
    ``.gitkeep``, a package's ``__init__.py``, a Helm chart's ``ci/default-values.yaml`` or
    ``templates/NOTES.txt``, or an empty stylesheet or script read as text."""
    name = PurePosixPath(rel).name.lower()
    if _EMPTY_IN_CHARTS.search(rel):
        return False
    return name not in _EMPTY_BY_CONVENTION and (
        fmt != "text" or PurePosixPath(name).suffix in ("", ".txt", ".conf", ".cfg")
    )


def process_file(entry: WalkEntry, old_sha: str | None, run_id: int, folder_about: str = "") -> FileResult:
    """Read, hash, decode, parse, redact and chunk one file. Never raises.

    ``folder_about``: what the file's folder says it is (:func:`kb.ingest.about.about_for`), for its
    chunks when the file says nothing itself; the file row keeps it when its chunks carry it."""
    try:
        return _process_file(entry, old_sha, run_id, folder_about)
    except MemoryError:
        return _too_big((entry, old_sha, run_id))
    except Exception as exc:
        msg = f"internal error while ingesting this file ({type(exc).__name__}); please report it"
        row = (entry.rel, "unknown", entry.size, None, entry.mtime, "error", 0, None, run_id, None)
        finding = problem_row(Problem("internal-error", "error", msg), entry.rel, "ingest")
        return FileResult(entry.rel, "parsed", entry.mtime, row, {"findings": [finding]})


def _process_file(entry: WalkEntry, old_sha: str | None, run_id: int, folder_about: str) -> FileResult:
    rel = entry.rel
    problems: list[Problem] = []
    fmt = format_for(PurePosixPath(rel), in_helm_templates=entry.in_helm_templates)
    about_used: str | None = None  # the folder about the chunks carry (None: they depend on none)

    def result(
        status: str,
        sha: str | None,
        n_records: int = 0,
        canonical: str | None = None,
        rows: dict[str, list[tuple]] | None = None,
    ) -> FileResult:
        rows = rows or {}
        rows.setdefault("findings", [])
        rows["findings"].extend(problem_row(p, rel, "ingest") for p in problems)
        file_row = (rel, fmt, entry.size, sha, entry.mtime, status, n_records, canonical, run_id, about_used)
        return FileResult(rel, "parsed", entry.mtime, file_row, rows)

    if entry.size > _MAX_SIZE:
        problems.append(
            Problem(
                "file-too-large",
                "warning",
                f"file is {_size(entry.size)}, over the {_size(_MAX_SIZE)} cap; not read. "
                f"Raise max_file_size (KB_MAX_FILE_SIZE) to catalogue it, or add it to .kbignore",
            )
        )
        return result("skipped", None)
    try:
        with open(entry.abs, "rb") as fh:
            data = fh.read(_MAX_SIZE + 1 if _MAX_SIZE < 2**31 else -1)  # read(n) allocates n up front
    except FileNotFoundError:
        return FileResult(
            rel,
            "vanished",
            entry.mtime,
            walk_problem=Problem(
                "unreadable", "warning", "file vanished during the walk (deleted or renamed); re-run to pick it up"
            ),
        )
    except OSError as exc:
        problems.append(Problem("unreadable", "warning", f"cannot read: {exc.strerror}; check its permissions"))
        return result("skipped", None)
    if len(data) > _MAX_SIZE:  # grew since the stat
        problems.append(
            Problem(
                "file-too-large",
                "warning",
                f"file grew over the {_size(_MAX_SIZE)} cap while being read; not catalogued",
            )
        )
        return result("skipped", None)
    sha = hashlib.sha256(data).hexdigest()
    if old_sha is not None and sha == old_sha:
        return FileResult(rel, "touch", entry.mtime)

    head = data[:_SNIFF]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
        problems.append(Problem("non-utf8", "warning", "file is UTF-16; decoded, but re-save it as UTF-8", line=1))
    elif b"\x00" in head:
        if fmt == "text":  # no format claims the name: a binary file, not a broken config
            problems.append(
                Problem("binary-file", "info", "binary content (NUL bytes); not catalogued. Add it to .kbignore")
            )
        else:
            problems.append(
                Problem(
                    "binary-file",
                    "warning",
                    f"binary content (NUL bytes) in a file named like {fmt}; not parsed. "
                    "Remove it or add it to .kbignore",
                )
            )
        return result("skipped", sha)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            line = _first_bad_line(data)
            text = data.decode("utf-8", errors="replace")
            problems.append(
                Problem(
                    "non-utf8",
                    "warning",
                    f"not valid UTF-8 (first bad byte on line {line}); decoded with replacement characters. "
                    "Re-save the file as UTF-8",
                    line=line,
                )
            )
    text = strip_bom(text)
    if not text.strip():
        if _content_expected(rel, fmt):
            problems.append(Problem("empty-file", "info", "file is empty; nothing to catalogue"))
        return result("ok", sha)

    parsed = parse_text(fmt, text, PurePosixPath(rel), _LIMITS)
    parsed = redact_file(parsed, text, rel, fmt)
    problems.extend(parsed.problems)
    status = "error" if any(p.rule == "parse-error" for p in parsed.problems) else "ok"

    records = []
    for r in parsed.records:
        v, t = value_text(r.value)
        records.append((rel, r.doc, r.key_path, v, t, r.line))
    sections = [(rel, s.key_path, s.kind, s.line_start, s.line_end, s.text) for s in parsed.sections]
    documents = []
    for i, d in enumerate(parsed.documents):
        try:
            documents.append((rel, i, json.dumps(d, ensure_ascii=False, default=str)))
        except (TypeError, ValueError, RecursionError):
            pass
    chunks = []
    if parsed.sections:
        if takes_folder_about(rel) and not own_about(fmt, parsed.sections):
            about_used = folder_about
        for c in chunk_sections(rel, fmt, parsed.sections, about_used or ""):
            chunks.append(
                (
                    f"{rel}#{c.ordinal}",
                    rel,
                    c.ordinal,
                    c.key_path,
                    c.line_start,
                    c.line_end,
                    c.text,
                    hashlib.sha256(c.text.encode("utf-8", "surrogatepass")).hexdigest(),
                    embeddable(rel, c.text),
                )
            )
    if not chunks:
        about_used = None
    rows: dict[str, list[tuple]] = {"records": records, "sections": sections, "documents": documents, "chunks": chunks}
    return result(status, sha, len(records), _canonical_sha(parsed.documents), rows)


def _process_star(args: tuple) -> FileResult:
    return process_file(*args)


def _skipped(task: tuple, rule: str, severity: str, message: str) -> FileResult:
    """A file given up on: catalogued as skipped (no records, no chunks) with one finding. No
    sha is kept, so the next run reads it again."""
    entry, run_id = task[0], task[2]  # (entry, old_sha, run_id[, folder_about])
    fmt = format_for(PurePosixPath(entry.rel), in_helm_templates=entry.in_helm_templates)
    row = (entry.rel, fmt, entry.size, None, entry.mtime, "skipped", 0, None, run_id, None)
    finding = problem_row(Problem(rule, severity, message), entry.rel, "ingest")
    return FileResult(entry.rel, "parsed", entry.mtime, row, {"findings": [finding]})


def _too_slow(task: tuple) -> FileResult:
    return _skipped(
        task,
        "file-too-slow",
        "warning",
        f"reading this file took longer than the {_TIMEOUT:g} s budget; skipped, the run went on. "
        "Raise file_timeout (KB_FILE_TIMEOUT) to catalogue it, or add it to .kbignore",
    )


def _too_big(task: tuple) -> FileResult:
    from kb.ingest.workers import MEMORY_LIMIT

    return _skipped(
        task,
        "file-too-large",
        "warning",
        f"reading this file needs more than the {MEMORY_LIMIT // 1048576} MB per-file memory bound; "
        "skipped. Split it, or add it to .kbignore",
    )


def _crashed(task: tuple) -> FileResult:
    return _skipped(
        task,
        "internal-error",
        "error",
        "the worker reading this file died (a crash in a parser library); skipped, the run went on. Please report it",
    )


_TIMEOUT = 0.0


def _budgeted_results(
    tasks: list[tuple], workers: int, limits: Limits, max_size: int, timeout: float
) -> Iterator[tuple[int, FileResult]]:
    """Each file in a worker process under a time budget and the memory bound (ingest/workers.py)."""
    global _TIMEOUT
    from kb.ingest.workers import supervised_map

    _TIMEOUT = timeout
    n = workers if len(tasks) >= 200 else 1
    yield from supervised_map(
        process_file,
        tasks,
        workers=n,
        timeout=timeout,
        on_timeout=_too_slow,
        on_crash=_crashed,
        on_memory=_too_big,
        initializer=_init_worker,
        initargs=(limits, max_size),
    )


def parse_batch(batch: list[tuple], root: str, limits: Limits, max_size: int, timeout: float) -> list[FileResult]:
    """One Ray task of a build on a cluster (:mod:`kb.cluster`): the files of ``batch`` through the
    same code as a local build's workers — under the time budget and memory bound of
    :func:`kb.ingest.workers.supervised_map` when there is a budget, else in this process."""
    if not os.path.isdir(root):
        from kb.cluster import RootNotVisibleError

        raise RootNotVisibleError(
            f"A Ray worker on '{os.uname().nodename}' cannot see the tree at '{root}'. Every node of the "
            "cluster needs the tree at the same path (shared storage, or a checkout there); or build on "
            "this machine: drop --ray (and unset KB_RAY_ADDRESS)."
        )
    if timeout > 0:
        return [res for _idx, res in _budgeted_results(batch, 1, limits, max_size, timeout)]
    _init_worker(limits, max_size)
    return [process_file(*t) for t in batch]


def _ray_results(
    tasks: list[tuple], cluster: Any, root: Path, limits: Limits, max_size: int, timeout: float
) -> Iterator[FileResult]:
    """The files parsed as Ray tasks, batches sized to give each CPU about eight."""
    cpus = cluster.cpus()
    size = max(8, min(256, -(-len(tasks) // (8 * cpus))))
    yield from cluster.map(
        parse_batch,
        tasks,
        args=(str(root.resolve()), limits, min(max_size, _READ_CAP), timeout),
        batch_size=size,
        on_crash=_crashed,
    )


def _results(
    tasks: list[tuple], workers: int, limits: Limits, max_size: int, timeout: float = 0.0
) -> Iterator[FileResult]:
    max_size = min(max_size, _READ_CAP)
    if timeout > 0 and tasks:
        for _idx, res in _budgeted_results(tasks, workers, limits, max_size, timeout):
            yield res
        return
    if workers <= 1 or len(tasks) < 200:
        _init_worker(limits, max_size)
        for t in tasks:
            yield process_file(*t)
        return

    from kb.ingest.workers import main_left_alone, worker_context

    ctx = worker_context()
    with main_left_alone():
        pool = ctx.Pool(workers, initializer=_init_worker, initargs=(limits, max_size))
    with pool:
        yield from pool.imap_unordered(_process_star, tasks, chunksize=32)


def run_ingest(
    catalogue: Catalogue, settings: Settings, *, progress: Progress | None = None, cluster: Any = None
) -> RunSummary:
    """Ingest ``settings.root`` into ``catalogue`` incrementally (the catalogue only; no search
    index); return what the run did. ``cluster`` (a :class:`kb.cluster.Cluster`) parses the files
    as Ray tasks instead of local worker processes; this process writes every row either way."""
    if settings.root is None:
        raise ConfigError("No corpus root given: `kb ingest PATH`.")
    root = Path(settings.root)
    if not root.is_dir():
        raise ConfigError(f"'{root}' is not a folder. Give the root of a configuration tree: `kb ingest PATH`.")
    t0 = time.perf_counter()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    catalogue.close_interrupted_runs()
    run_id = catalogue.start_run(str(root.resolve()))
    previous_root = catalogue.get_meta("root")
    catalogue.set_meta("root", str(root.resolve()))
    tick = progress or (lambda phase, done, total: None)

    walked = walk_tree(root, extra_ignore=settings.ignore, skip=settings.db)
    states = catalogue.file_states() if previous_root else {}
    # Skipped and failed files are read again when the limits that decided their fate changed
    # (a raised max_file_size must pick up the file although its size and mtime did not change).
    limits_sig = (
        f"{settings.max_file_size}/{settings.max_depth}/{settings.max_records_per_file}/{settings.file_timeout:g}"
    )
    retry: set[str] = set()
    if states and catalogue.get_meta("limits") != limits_sig:
        retry = {r[0] for r in catalogue.query("SELECT path FROM files WHERE status IN ('skipped', 'error')")}
    if states:
        # a file that could not be read is read again: fixing its permissions changes no size or mtime
        retry |= {
            r[0]
            for r in catalogue.query(
                "SELECT path FROM findings WHERE rule = 'unreadable' AND source = 'ingest' AND path IS NOT NULL"
            )
        }
    catalogue.set_meta("limits", limits_sig)
    left_root = 0
    if previous_root and previous_root != str(root.resolve()) and states:
        # A different tree into the same KB: start over rather than mix two roots.
        catalogue.remove_files(run_id, list(states))
        left_root = len(states)
        states = {}
    # What each folder says it is, for the files that say nothing themselves (ingest/about.py). A
    # file whose chunks carry a folder about that is no longer its folder's is chunked again, its
    # bytes unchanged or not; a KB from before folder abouts counts as carrying none.
    abouts = (
        folder_abouts(walked.entries, min(settings.max_file_size, _READ_CAP)) if kb.ingest.chunk.FOLDER_ABOUT else {}
    )
    carried = catalogue.folder_abouts() if states else {}
    seen: set[str] = set()
    tasks: list[tuple] = []
    unchanged = rechunked = 0
    for e in walked.entries:
        seen.add(e.rel)
        old = states.get(e.rel)
        about = about_for(e.rel, abouts)
        if e.rel in retry:
            tasks.append((e, None, run_id, about))
            continue
        if old is not None and e.rel in carried and carried[e.rel] != about:
            rechunked += 1
            tasks.append((e, None, run_id, about))
            continue
        if old is not None and old[0] == e.size and old[1] == e.mtime:
            unchanged += 1
            continue
        tasks.append((e, old[2] if old else None, run_id, about))
    removed = sorted(p for p in states if p not in seen)
    recorder = ChangeRecorder(catalogue, settings, run_id, states=states, removed=removed, baseline=not states)

    walk_findings = [problem_row(p, rel, "walk") for rel, p in walked.problems]
    limits = Limits(max_records=settings.max_records_per_file, max_depth=settings.max_depth)
    workers = settings.workers or (os.cpu_count() or 1)
    added = changed = 0
    batch_paths: list[str] = []
    batch_rows: dict[str, list[tuple]] = {}
    batch_changes: list[tuple[int, str, str]] = []
    touch: list[tuple[str, float]] = []
    vanished: list[str] = []
    done = 0
    pending_rows = 0
    existing = bool(states)

    def flush() -> None:
        nonlocal batch_paths, batch_rows, batch_changes, touch, pending_rows
        if batch_paths or touch:
            batch_rows["changes"] = recorder.rows()
            catalogue.replace_files(run_id, batch_paths, batch_rows, batch_changes, touch=touch, existing=existing)
        batch_paths, batch_rows, batch_changes, touch, pending_rows = [], {}, [], [], 0

    tick("parse", 0, len(tasks))
    if cluster is not None and tasks:
        results = _ray_results(tasks, cluster, root, limits, settings.max_file_size, settings.file_timeout)
    else:
        results = _results(tasks, workers, limits, settings.max_file_size, settings.file_timeout)
    for res in results:
        done += 1
        if res.kind == "touch":
            touch.append((res.rel, res.mtime))
            unchanged += 1
        elif res.kind == "vanished":
            vanished.append(res.rel)
            if res.walk_problem is not None:
                p = res.walk_problem
                walk_findings.append(problem_row(p, res.rel, "walk"))
        else:
            is_new = res.rel not in states
            added += is_new
            changed += not is_new
            batch_paths.append(res.rel)
            for table, rows in (res.rows or {}).items():
                batch_rows.setdefault(table, []).extend(rows)
                pending_rows += len(rows)
            assert res.file_row is not None  # every "parsed" result carries its file row
            batch_rows.setdefault("files", []).append(res.file_row)
            batch_changes.append((run_id, res.rel, "added" if is_new else "changed"))
            recorder.note(res.rel, is_new, res.file_row, (res.rows or {}).get("records"))
        if len(batch_paths) + len(touch) >= settings.batch_files or pending_rows >= _MAX_PENDING_ROWS:
            flush()
        if done % 100 == 0 or done == len(tasks):
            tick("parse", done, len(tasks))
    flush()
    gone = removed + [p for p in vanished if p in states]
    if gone:
        catalogue.remove_files(run_id, gone, {"changes": recorder.removed_rows(gone)})
    catalogue.replace_findings("walk", walk_findings)
    recorder.finish()
    if added or changed or gone:
        catalogue.invalidate_validation()

    seconds = time.perf_counter() - t0
    catalogue.finish_run(
        run_id,
        status="complete",
        files_seen=len(walked.entries),
        added=added,
        changed=changed,
        removed=len(gone) + left_root,
        unchanged=unchanged,
        seconds=seconds,
    )
    st = catalogue.stats()
    return RunSummary(
        run_id=run_id,
        root=str(root.resolve()),
        started_at=started,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        status="complete",
        files_seen=len(walked.entries),
        added=added,
        changed=changed,
        removed=len(gone) + left_root,
        unchanged=unchanged,
        by_format=st["files_by_format"],
        findings_by_rule=st["findings_by_rule"],
        seconds=round(seconds, 3),
        key_changes=recorder.count,
        notes=[
            *(
                [
                    f"this KB held the tree at {previous_root}; it now holds {root.resolve()}, and the "
                    f"{left_root} files of the other tree were removed from it (give --db NEW_DIR to keep "
                    "a KB per tree)"
                ]
                if left_root
                else []
            ),
            *(
                [f"{rechunked} files chunked again (counted as changed): what their folder says it is changed"]
                if rechunked
                else []
            ),
        ],
    )
