"""The key-level change log, written at ingest: what changed per key path, and who changed it.

Two writers fill the ``changes`` table (columns in :data:`kb.catalogue.TABLE_COLUMNS`):

* :class:`ChangeRecorder`, inside :func:`kb.ingest.pipeline.run_ingest`. For each batch of parsed
  files it diffs every changed file's new records against the records the catalogue still holds
  for it (read just before the batch's transaction, which then replaces them), and writes the
  differences as ordinary rows of that same transaction: a batch's files and its change log land
  together or not at all. A new file records its keys as ``added``; a file gone from the tree its
  keys as ``removed``; a file that disappears while a new one with the same bytes (sha256) appears
  is one ``moved`` row, with no key rows, and its history follows it (:mod:`kb.changelog`). A file
  that stops parsing is one ``broken`` row: its keys are not compared until it parses again. The
  first ingest of a tree is the baseline: it records no key changes (``kb history`` lists its
  files as added). In a git work tree each row is attributed to the commit that last touched its
  line; a removal to the last commit that touched the file, when the working file is committed.
  When exactly one commit since the previous ingest (whose HEAD is kept in meta ``git_head``)
  touched a committed file, that commit made all its changes and no blame is run (one ``git log``
  for the run instead of one ``git blame`` per file); otherwise ``git blame``.
* :func:`replay_git_history` (``kb ingest --git-history N``): the last N commits of the repository,
  newest first, each diffed against its first parent (moves found by git's rename detection),
  every changed blob parsed and redacted exactly as an ingest would. Bounded by N and by
  ``git_history_timeout`` seconds; commits already in the log are skipped, so it is idempotent.

Values are the catalogue's record values, so secrets are already redacted everywhere here.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from kb.catalogue import Catalogue
from kb.git import Commit, GitRepo
from kb.ingest.parsers.base import Limits, format_for, parse_text, strip_bom
from kb.ingest.secrets import redact_file
from kb.ingest.walk import SKIP_DIRS
from kb.settings import Settings

__all__ = ["ChangeRecorder", "diff_records", "replay_git_history", "HistoryResult", "parse_records"]

Progress = Callable[[str, int, int], None]
# (doc, key_path, value, value_type, line)
KeyRecord = tuple[int, str, Any, str, int]
# (change, doc, key_path, old_value, new_value, old_type, new_type, line)
KeyDiff = tuple[str, int, str, Any, Any, Any, Any, Any]

_BLAME_THREADS = 4


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def diff_records(old: Iterable[KeyRecord], new: Iterable[KeyRecord]) -> list[KeyDiff]:
    """Key-level differences between two versions of a file's records, in line order.

    A key is ``(doc, key_path)``; a value differs when its text or its type differs. An added or
    changed key carries its new line, a removed key its old line.
    """
    before = {(r[0], r[1]): r for r in old}
    after = {(r[0], r[1]): r for r in new}
    out: list[KeyDiff] = []
    for k, n in after.items():
        o = before.get(k)
        if o is None:
            out.append(("added", k[0], k[1], None, n[2], None, n[3], n[4]))
        elif o[2] != n[2] or o[3] != n[3]:
            out.append(("changed", k[0], k[1], o[2], n[2], o[3], n[3], n[4]))
    for k, o in before.items():
        if k not in after:
            out.append(("removed", k[0], k[1], o[2], None, o[3], None, o[4]))
    out.sort(key=lambda d: (d[1], d[7] if d[7] is not None else 0, d[2]))
    return out


def _row(run_id: int, at: datetime, path: str, d: KeyDiff, commit: Commit | None, source: str) -> tuple:
    change, doc, key, old_v, new_v, old_t, new_t, line = d
    return (
        run_id,
        at,
        path,
        doc,
        key,
        change,
        old_v,
        new_v,
        old_t,
        new_t,
        line,
        None,
        commit.sha if commit else None,
        commit.author if commit else None,
        commit.date if commit else None,
        source,
    )


def _file_row(
    run_id: int, at: datetime, path: str, change: str, commit: Commit | None, source: str, old_path: str | None = None
) -> tuple:
    return (
        run_id,
        at,
        path,
        0,
        None,
        change,
        None,
        None,
        None,
        None,
        None,
        old_path,
        commit.sha if commit else None,
        commit.author if commit else None,
        commit.date if commit else None,
        source,
    )


# ---------------------------------------------------------------------------------------------
# At ingest
# ---------------------------------------------------------------------------------------------


class ChangeRecorder:
    """The change rows of one ingest run, batch by batch (see the module docstring).

    The pipeline calls :meth:`note` for each parsed file, puts :meth:`rows` into the batch's
    ``changes`` rows just before the batch's transaction, and :meth:`removed_rows` into the
    transaction that drops the files gone from the tree.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        settings: Settings,
        run_id: int,
        *,
        states: dict[str, tuple[int, float, str | None]],
        removed: Sequence[str],
        baseline: bool,
    ) -> None:
        self.catalogue = catalogue
        self.run_id = run_id
        self.enabled = bool(settings.record_changes) and not baseline
        self.attribute = bool(settings.git_attribution)
        self.root = settings.root
        self.at = _utcnow()
        self.count = 0
        self.pending: list[tuple[str, bool, str | None, str, list[tuple]]] = []
        self.moved_from: set[str] = set()
        self._by_sha: dict[str, list[str]] = {}
        if self.enabled:
            for p in removed:
                sha = states[p][2] if p in states else None
                if sha:
                    self._by_sha.setdefault(sha, []).append(p)
        self._git: GitRepo | None = None
        self._git_looked = False
        self._wants_git = bool(settings.record_changes) and self.attribute
        self._base = catalogue.get_meta("git_head") if self._wants_git else None  # HEAD at the last ingest
        self._head: str | None = None
        self._touched: dict[str, list[Commit]] | None = None
        self._touched_done = False
        self._dirty: set[str] | None = None
        self.parsed = 0

    # -- what the pipeline calls ----------------------------------------------------------------

    def note(self, rel: str, is_new: bool, file_row: tuple | None, records: list[tuple] | None) -> None:
        """A parsed file of the current batch: ``file_row`` and ``records`` as the catalogue stores them."""
        self.parsed += 1
        if not self.enabled or file_row is None:
            return
        self.pending.append((rel, is_new, file_row[3], file_row[5], records or []))

    def rows(self) -> list[tuple]:
        """The change rows of the files noted since the last call."""
        if not self.pending:
            return []
        pending, self.pending = self.pending, []
        changed = [p[0] for p in pending if not p[1]]
        old_records, old_status = self._old(changed)
        out: list[tuple] = []
        diffs: list[tuple[str, list[KeyDiff]]] = []
        whole: list[tuple[str, str, str | None]] = []  # (path, change, old_path)
        for rel, is_new, sha, status, records in pending:
            if is_new and sha and self._by_sha.get(sha):
                src = self._by_sha[sha].pop(0)
                self.moved_from.add(src)
                whole.append((rel, "moved", src))
                continue
            if status == "error":
                if old_status.get(rel) != "error":
                    whole.append((rel, "broken", None))
                continue
            d = diff_records(old_records.get(rel, ()), ((r[1], r[2], r[3], r[4], r[5]) for r in records))
            if d:
                diffs.append((rel, d))
        new_files = {p[0] for p in pending if p[1]}
        blame = self._attribution(diffs, [w[0] for w in whole], new_files)
        for rel, change, old_path in whole:
            out.append(_file_row(self.run_id, self.at, rel, change, blame.get((rel, None)), "ingest", old_path))
        for rel, d in diffs:
            for item in d:
                out.append(_row(self.run_id, self.at, rel, item, blame.get((rel, _blame_key(item))), "ingest"))
        self.count += len(out)
        return out

    def removed_rows(self, gone: Sequence[str]) -> list[tuple]:
        """Rows for files gone from the tree (every key ``removed``; nothing for a moved file)."""
        if not self.enabled:
            return []
        paths = [p for p in gone if p not in self.moved_from]
        if not paths:
            return []
        old_records, _ = self._old(paths)
        diffs = [(p, diff_records(old_records.get(p, ()), ())) for p in paths]
        diffs = [(p, d) for p, d in diffs if d]
        blame = self._attribution(diffs, [])
        out = [
            _row(self.run_id, self.at, p, item, blame.get((p, _blame_key(item))), "ingest")
            for p, d in diffs
            for item in d
        ]
        self.count += len(out)
        return out

    def finish(self) -> None:
        """After the run's last batch: remember HEAD, so the next run knows which commits are new.

        Skipped when nothing was parsed and a HEAD is already known (a no-change run costs no git).
        """
        if not self._wants_git or (self.parsed == 0 and self._base is not None):
            return
        repo = self._repo()
        head = self._head or (repo.head() if repo is not None else None)
        if head and head != self._base:
            self.catalogue.set_meta("git_head", head)

    # -- helpers --------------------------------------------------------------------------------

    def _old(self, paths: list[str]) -> tuple[dict[str, list[KeyRecord]], dict[str, str]]:
        if not paths:
            return {}, {}
        recs: dict[str, list[KeyRecord]] = {}
        for path, doc, key, value, vtype, line in self.catalogue.query(
            "SELECT path, doc, key_path, value, value_type, line FROM records WHERE path IN (SELECT unnest(?))", [paths]
        ):
            recs.setdefault(path, []).append((doc, key, value, vtype, line))
        status = dict(self.catalogue.query("SELECT path, status FROM files WHERE path IN (SELECT unnest(?))", [paths]))
        return recs, status

    def _repo(self) -> GitRepo | None:
        if not self._git_looked:
            self._git_looked = True
            if self.attribute and self.root is not None:
                self._git = GitRepo.find(Path(self.root))
                if self._git is not None:
                    self._head = self._git.head()  # the commit this run ingests (plus any uncommitted edit)
        return self._git

    def _single_commits(self, repo: GitRepo, paths: list[str]) -> dict[str, Commit]:
        """Files that exactly one commit touched since the last ingest and that are committed now:
        that commit made all their changes, no blame needed (the common case: a pull, then an ingest)."""
        if not self._touched_done:
            self._touched_done = True
            if self._base and self._head:
                self._touched = repo.touched_since(self._base)
        if not self._touched:
            return {}
        single = {p: c[0] for p in paths if len(c := self._touched.get(p, [])) == 1}
        if not single:
            return {}
        if self._dirty is None:
            self._dirty = repo.uncommitted()  # once per run: one stat-cached pass over the index
        if self._dirty is None:
            return {}
        return {p: c for p, c in single.items() if p not in self._dirty}

    def _attribution(
        self,
        diffs: list[tuple[str, list[KeyDiff]]],
        whole: list[str],
        new_files: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> dict[tuple[str, Any], Commit | None]:
        """(path, line) -> commit for added/changed keys; (path, None) -> the file's last commit
        (removals, whole-file rows) when its working copy is committed. Empty outside git.

        A file changed in place by the one commit since the last ingest gets that commit without a
        blame; a file new to the catalogue is blamed (its lines may come from older commits: a move
        with an edit, a copy)."""
        if not diffs and not whole:
            return {}
        repo = self._repo()
        if repo is None:
            return {}
        out: dict[tuple[str, Any], Commit | None] = {}
        try:
            single = self._single_commits(repo, [rel for rel, _ in diffs if rel not in new_files] + list(whole))
        except Exception:
            single = {}
        for rel, d in diffs:
            if rel in single:
                for x in d:
                    out[(rel, _blame_key(x))] = single[rel]
        for w in whole:
            if w in single:
                out[(w, None)] = single[w]

        def one(job: tuple[str, list[KeyDiff] | None]) -> dict[tuple[str, Any], Commit | None]:
            rel, d = job
            got: dict[tuple[str, Any], Commit | None] = {}
            try:
                if d is not None:
                    lines = [x[7] for x in d if x[0] != "removed" and x[7]]
                    for n, c in repo.blame_lines(rel, lines).items():
                        got[(rel, n)] = c
                if (d is None or any(x[0] == "removed" for x in d)) and repo.committed(rel):
                    got[(rel, None)] = repo.last_commit(rel)
            except Exception:
                pass
            return got

        jobs: list[tuple[str, list[KeyDiff] | None]] = [(rel, d) for rel, d in diffs if rel not in single] + [
            (w, None) for w in whole if w not in single
        ]
        if not jobs:
            return out
        workers = min(_BLAME_THREADS, len(jobs))
        if workers <= 1:
            for j in jobs:
                out.update(one(j))
        else:
            with ThreadPoolExecutor(workers) as pool:
                for got in pool.map(one, jobs):
                    out.update(got)
        return out


def _blame_key(d: KeyDiff) -> int | None:
    return None if d[0] == "removed" else d[7]


# ---------------------------------------------------------------------------------------------
# Parsing a blob as an ingest would
# ---------------------------------------------------------------------------------------------


def parse_records(rel: str, fmt: str, data: bytes, limits: Limits) -> tuple[list[KeyRecord], bool]:
    """A file's records (redacted) from its bytes, as :func:`kb.ingest.pipeline.process_file` would
    catalogue them, and whether it parsed (a file that does not keeps the records its parser got
    before the error, as the catalogue does; a binary file has none)."""
    from kb.ingest.pipeline import value_text

    head = data[:8192]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in head:
        return [], True
    else:
        text = data.decode("utf-8", errors="replace")
    text = strip_bom(text)
    if not text.strip():
        return [], True
    parsed = parse_text(fmt, text, PurePosixPath(rel), limits)
    parsed = redact_file(parsed, text, rel, fmt)
    out: list[KeyRecord] = []
    for r in parsed.records:
        v, t = value_text(r.value)
        out.append((r.doc, r.key_path, v, t, r.line))
    return out, not any(p.rule == "parse-error" for p in parsed.problems)


# ---------------------------------------------------------------------------------------------
# git history
# ---------------------------------------------------------------------------------------------


@dataclass
class HistoryResult:
    """What :func:`replay_git_history` did."""

    commits: int = 0
    changes: int = 0
    skipped: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class _PathFilter:
    """Which repository paths an ingest of the root would catalogue: not under a skipped folder
    (``.git``, ``node_modules``, the KB), not matched by ``ignore`` or a ``.kbignore`` of the tree."""

    def __init__(self, repo: GitRepo, root: Path, settings: Settings) -> None:
        import pathspec

        self.specs: list[tuple[str, Any]] = []
        if settings.ignore:
            self.specs.append(("", pathspec.GitIgnoreSpec.from_lines(settings.ignore)))
        listed = repo.run(
            "ls-files",
            "-z",
            "--",
            repo.repo_path(".kbignore") if repo.prefix else ".kbignore",
            f":(glob){repo.prefix + '/' if repo.prefix else ''}**/.kbignore",
        )
        for name in sorted(set((listed or b"").split(b"\0"))):
            rel = repo.rel_path(name.decode("utf-8", "replace")) if name else None
            if rel is None:
                continue
            try:
                lines = (root / rel).read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError:
                continue
            lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
            if lines:
                self.specs.append((posix_dir(rel), pathspec.GitIgnoreSpec.from_lines(lines)))
        db = Path(settings.db).resolve()
        try:
            self.db_rel: str | None = db.relative_to(root.resolve()).as_posix()
        except ValueError:
            self.db_rel = None

    def keep(self, rel: str) -> bool:
        parts = rel.split("/")
        if any(p in SKIP_DIRS for p in parts[:-1]) or parts[-1] in (".gitignore", ".kbignore"):
            return False
        if self.db_rel and (rel == self.db_rel or rel.startswith(self.db_rel + "/")):
            return False
        for base, spec in self.specs:
            if base and not rel.startswith(base + "/"):
                continue
            sub = rel[len(base) + 1 :] if base else rel
            if spec.match_file(sub):
                return False
        return True


def posix_dir(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


class _Blobs:
    """Parsed blobs, cached by (blob, format): a blob is the new side of one commit and the old
    side of the next."""

    def __init__(self, reader: Any, limits: Limits, max_size: int, formats: dict[str, str]) -> None:
        self.reader = reader
        self.limits = limits
        self.max_size = max_size
        self.formats = formats
        self.cache: OrderedDict[tuple[str, str], tuple[list[KeyRecord], bool]] = OrderedDict()

    def format(self, rel: str) -> str:
        fmt = self.formats.get(rel)
        if fmt is None:
            parts = rel.split("/")
            in_tpl = any(
                p == "templates" and "/".join(parts[:i] + ["Chart.yaml"]) in self.formats
                for i, p in enumerate(parts[:-1])
            )
            fmt = format_for(PurePosixPath(rel), in_helm_templates=in_tpl)
        return fmt

    def records(self, rel: str, blob: str | None) -> tuple[list[KeyRecord], bool]:
        """(records, parsed) of a blob; an absent, missing or oversized blob has no records."""
        if blob is None:
            return [], True
        fmt = self.format(rel)
        key = (blob, fmt)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        data = self.reader.read(blob)
        recs = ([], True) if data is None or len(data) > self.max_size else parse_records(rel, fmt, data, self.limits)
        self.cache[key] = recs
        if len(self.cache) > 4096:
            self.cache.popitem(last=False)
        return recs


def replay_git_history(
    catalogue: Catalogue, settings: Settings, run_id: int, n: int, *, progress: Progress | None = None
) -> HistoryResult:
    """Replay the last ``n`` commits touching ``settings.root`` into the change log (run ``run_id``).

    Newest first, so a run cut short by ``git_history_timeout`` keeps the most recent history.
    Never raises for git's sake: outside a work tree it returns with a note.
    """
    t0 = time.perf_counter()
    result = HistoryResult()
    tick = progress or (lambda phase, done, total: None)
    if settings.root is None or n <= 0:
        return result
    root = Path(settings.root)
    repo = GitRepo.find(root)
    if repo is None:
        result.notes.append(f"{root} is not in a git work tree (or git is not installed): no history replayed")
        return result
    commits = repo.log(n)
    known = {r[0] for r in catalogue.query("SELECT DISTINCT commit FROM changes WHERE commit IS NOT NULL")}
    todo = [c for c in commits if c.sha not in known]
    result.skipped = len(commits) - len(todo)
    keep = _PathFilter(repo, root, settings)
    formats = dict(catalogue.query("SELECT path, format FROM files"))
    limits = Limits(max_records=settings.max_records_per_file, max_depth=settings.max_depth)
    deadline = t0 + float(settings.git_history_timeout)
    pending: list[tuple] = []

    def flush() -> None:
        nonlocal pending
        if pending:
            with catalogue.transaction() as con:
                catalogue.insert_rows("changes", pending, con)
            result.changes += len(pending)
            pending = []

    tick("history", 0, len(todo))
    with repo.blobs() as reader:
        blobs = _Blobs(reader, limits, settings.max_file_size, formats)
        for i, commit in enumerate(todo):
            if time.perf_counter() > deadline:
                result.notes.append(
                    f"git history stopped after {i} of {len(todo)} commits: it ran past "
                    f"git_history_timeout ({settings.git_history_timeout:g} s)"
                )
                break
            entries = repo.changes(commit)
            if entries is None:
                result.notes.append(f"git could not diff commit {commit.sha[:12]}; skipped")
                continue
            pending.extend(_commit_rows(commit, entries, repo, keep, blobs, run_id))
            result.commits += 1
            if len(pending) >= 50_000:
                flush()
            tick("history", i + 1, len(todo))
    flush()
    result.seconds = round(time.perf_counter() - t0, 3)
    return result


def _commit_rows(
    commit: Commit, entries: list, repo: GitRepo, keep: _PathFilter, blobs: _Blobs, run_id: int
) -> list[tuple]:
    rows: list[tuple] = []
    at = commit.date
    for e in entries:
        old_rel = repo.rel_path(e.old_path) if e.old_path else None
        new_rel = repo.rel_path(e.new_path) if e.new_path else None
        old_rel = old_rel if old_rel is not None and keep.keep(old_rel) else None
        new_rel = new_rel if new_rel is not None and keep.keep(new_rel) else None
        old_blob = e.old_blob if old_rel else None
        new_blob = e.new_blob if new_rel else None
        if old_rel is None and new_rel is None:
            continue
        path = new_rel or old_rel
        assert path is not None
        if e.status == "R" and old_rel and new_rel and old_rel != new_rel:
            rows.append(_file_row(run_id, at, new_rel, "moved", commit, "git", old_rel))
        new, new_ok = blobs.records(new_rel, new_blob) if new_rel else ([], True)
        old, old_ok = blobs.records(old_rel, old_blob) if old_rel else ([], True)
        if not new_ok:  # as at ingest: one row when it breaks, keys not compared until it parses
            if old_ok:
                rows.append(_file_row(run_id, at, path, "broken", commit, "git"))
            continue
        for d in diff_records(old, new):
            rows.append(_row(run_id, at, path, d, commit, "git"))
    return rows
