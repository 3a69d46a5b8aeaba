"""Walk a configuration tree: which files to catalogue, and what is wrong with the rest.

* honours ``.gitignore`` files (nested, gitignore semantics); when the root is a git repository's
  top level, for the files git does not track only, as git does: a tracked file is part of the tree
  even where a pattern matches it (mailcow ships ``data/conf/rspamd/local.d/*`` and ignores local
  edits to it). A root inside another project's repository (a fixture, kb's own sample) keeps
  every pattern: that project's index says nothing about the tree's own ``.gitignore``.
  ``.kbignore`` files and ``Settings.ignore`` patterns leave out any file;
* skips ``.git``, ``node_modules``, virtualenvs (a folder with ``pyvenv.cfg``), a package
  manager's ``vendor`` folder (Composer's ``autoload.php``, Go's ``modules.txt``, Bundler's
  ``bundle``: other projects' code), caches and the KB directory itself;
* follows a symlink only when it stays inside the root and does not loop; others become findings;
* leaves out files whose name says they are binary (``.png``, ``.jar``, ``.pdf``... :data:`BINARY_SUFFIXES`):
  not configuration, and no finding about them;
* stats every file once (an unchanged file costs a stat, nothing more); a file that vanishes
  mid-walk is a finding, not a crash.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from kb.types import Problem

__all__ = ["WalkEntry", "WalkResult", "walk_tree", "SKIP_DIRS", "BINARY_SUFFIXES"]

_VENDOR_MARKS = ("autoload.php", "modules.txt", "bundle", "composer")


def _dependency_vendor(path: str) -> bool:
    """A ``vendor`` folder a package manager fills (Composer, Go modules, Bundler)."""
    return any(os.path.exists(os.path.join(path, m)) for m in _VENDOR_MARKS)


SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        "__pycache__",
        ".venv",
        "venv",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".idea",
        ".kb",
        ".ipynb_checkpoints",
    }
)

# names that say "binary": images, fonts, archives, documents, compiled code, databases
BINARY_SUFFIXES = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".bmp",
        ".ico",
        ".icns",
        ".webp",
        ".tif",
        ".tiff",
        ".psd",
        ".avif",
        ".heic",
        ".woff",
        ".woff2",
        ".ttf",
        ".otf",
        ".eot",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".jar",
        ".war",
        ".ear",
        ".whl",
        ".egg",
        ".pdf",
        ".doc",
        ".docx",
        ".xls",
        ".xlsx",
        ".ppt",
        ".pptx",
        ".odt",
        ".ods",
        ".class",
        ".pyc",
        ".pyo",
        ".o",
        ".a",
        ".so",
        ".dylib",
        ".dll",
        ".exe",
        ".bin",
        ".wasm",
        ".db",
        ".sqlite",
        ".sqlite3",
        ".duckdb",
        ".mp3",
        ".mp4",
        ".wav",
        ".ogg",
        ".webm",
        ".mov",
        ".avi",
        ".p12",
        ".pfx",
        ".jks",
        ".keystore",
        ".der",
    ]
)


@dataclass(slots=True)
class WalkEntry:
    rel: str  # POSIX path relative to the root
    abs: str
    size: int
    mtime: float
    in_helm_templates: bool = False


@dataclass
class WalkResult:
    entries: list[WalkEntry] = field(default_factory=list)
    problems: list[tuple[str, Problem]] = field(default_factory=list)  # (rel path, problem)


def _spec(path: str) -> pathspec.PathSpec | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return None
    return pathspec.GitIgnoreSpec.from_lines(lines)


class _Tracked:
    """The files git tracks under a root that is a repository's top level, and their folders: asked
    once, when a ``.gitignore`` pattern first matches (no repository, no git, a root inside a
    larger repository: none)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.files: set[str] | None = None
        self.dirs: set[str] = set()

    def __call__(self, rel: str, is_dir: bool) -> bool:
        if self.files is None:
            self.files = set()
            from kb.git import GitRepo

            repo = GitRepo.find(self.root)
            out = repo.run("ls-files", "-z") if repo is not None and not repo.prefix else None
            for path in filter(None, os.fsdecode(out or b"").split("\0")):  # relative to the root
                self.files.add(path)
                parts = path.split("/")
                self.dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        return rel in (self.dirs if is_dir else self.files)


def walk_tree(root: Path, *, extra_ignore: list[str] | None = None, skip: Path | None = None) -> WalkResult:
    """Walk ``root``; ``skip`` is a directory never to enter (the KB dir when inside the root)."""
    root = Path(root)
    result = WalkResult()
    root_real = os.path.realpath(root)
    skip_key: tuple[int, int] | None = None  # the KB directory, known by device and inode
    if skip is not None:
        with contextlib.suppress(OSError):
            sk = os.stat(skip)
            skip_key = (sk.st_dev, sk.st_ino)
    base_specs: list[tuple[str, pathspec.PathSpec, bool]] = []  # (folder, patterns, from a .gitignore)
    if extra_ignore:
        base_specs.append(("", pathspec.GitIgnoreSpec.from_lines(extra_ignore), False))
    tracked = _Tracked(root_real)

    visited_dirs: set[tuple[int, int]] = set()
    try:
        st = os.stat(root_real)
        visited_dirs.add((st.st_dev, st.st_ino))
    except OSError as exc:
        result.problems.append(("", Problem("unreadable", "error", f"cannot read the root: {exc.strerror}")))
        return result

    # stack of (abs dir, rel dir, specs in force, in helm templates)
    stack: list[tuple[str, str, list[tuple[str, pathspec.PathSpec, bool]], bool]] = [(root_real, "", base_specs, False)]

    def ignored(rel: str, is_dir: bool, specs: list[tuple[str, pathspec.PathSpec, bool]]) -> bool:
        by_git = False
        for base, spec, git in specs:
            sub = rel[len(base) + 1 :] if base else rel
            if spec.match_file(sub + "/" if is_dir else sub):
                if not git:
                    return True
                by_git = True
        return by_git and not tracked(rel, is_dir)

    while stack:
        d_abs, d_rel, specs, in_tpl = stack.pop()
        try:
            with os.scandir(d_abs) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            result.problems.append(
                (
                    d_rel or ".",
                    Problem("unreadable", "warning", f"cannot list folder: {exc.strerror}; check its permissions"),
                )
            )
            continue
        names = {e.name for e in entries}
        local = list(specs)
        for ign in (".gitignore", ".kbignore"):
            if ign in names:
                sp = _spec(os.path.join(d_abs, ign))
                if sp is not None:
                    local.append((d_rel, sp, ign == ".gitignore"))
        is_chart = "Chart.yaml" in names
        for e in entries:
            rel = f"{d_rel}/{e.name}" if d_rel else e.name
            abs_path = os.path.join(d_abs, e.name)
            try:
                e.name.encode("utf-8")
            except UnicodeEncodeError:  # bytes that are not UTF-8, kept by Python as surrogates
                result.problems.append(
                    (rel, Problem("bad-file-name", "warning", "name is not valid UTF-8; not catalogued. Rename it"))
                )
                continue
            try:
                is_link = e.is_symlink()
                if is_link:
                    target = os.path.realpath(abs_path)
                    if target != root_real and not target.startswith(root_real + os.sep):
                        result.problems.append(
                            (
                                rel,
                                Problem(
                                    "symlink", "warning", "symbolic link points outside the corpus root; not followed"
                                ),
                            )
                        )
                        continue
                    try:
                        st = os.stat(abs_path)
                    except OSError:
                        result.problems.append(
                            (
                                rel,
                                Problem(
                                    "symlink",
                                    "warning",
                                    "symbolic link is broken or loops (too many levels); not followed",
                                ),
                            )
                        )
                        continue
                else:
                    st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                result.problems.append(
                    (
                        rel,
                        Problem(
                            "unreadable",
                            "warning",
                            "file vanished during the walk (deleted or renamed); re-run to pick it up",
                        ),
                    )
                )
                continue
            except OSError as exc:
                result.problems.append((rel, Problem("unreadable", "warning", f"cannot stat: {exc.strerror}")))
                continue

            if stat.S_ISDIR(st.st_mode):
                if e.name in SKIP_DIRS or ignored(rel, True, local):
                    continue
                real = os.path.realpath(abs_path) if is_link else abs_path
                key = (st.st_dev, st.st_ino)
                if key == skip_key:
                    continue
                if os.path.exists(os.path.join(real, "pyvenv.cfg")):
                    continue
                if e.name == "vendor" and _dependency_vendor(real):
                    continue
                if key in visited_dirs:
                    result.problems.append(
                        (
                            rel,
                            Problem(
                                "symlink",
                                "warning",
                                "symbolic link loops back to a folder already walked; not followed",
                            ),
                        )
                    )
                    continue
                visited_dirs.add(key)
                stack.append((real, rel, local, in_tpl or (is_chart and e.name == "templates")))
            elif stat.S_ISREG(st.st_mode):
                if e.name in (".gitignore", ".kbignore") or ignored(rel, False, local):
                    continue
                if os.path.splitext(e.name)[1].lower() in BINARY_SUFFIXES:
                    continue
                result.entries.append(WalkEntry(rel, abs_path, st.st_size, st.st_mtime, in_tpl))
            else:
                result.problems.append(
                    (rel, Problem("unreadable", "info", "not a regular file (socket, pipe or device); skipped"))
                )
    result.entries.sort(key=lambda w: w.rel)
    return result
