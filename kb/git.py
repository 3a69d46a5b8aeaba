"""git, read with git itself (``subprocess``): the only module that runs git.

kb uses git for attribution only: who last touched a line (``git blame --porcelain``), which
commit removed a file, and the last N commits of a repository with the blobs they changed
(``git log``, ``git diff-tree``, ``git cat-file --batch``). Attribution is a bonus, never a reason
to fail: outside a git work tree, without a ``git`` executable, or when a call errs or runs out of
time, every function here answers ``None`` or an empty result.

Times are UTC, as naive ``datetime`` values (the catalogue's ``TIMESTAMP`` columns); authors are
``"Name <email>"``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["Commit", "TreeChange", "GitRepo", "BlobReader", "utc_from_epoch"]

_TIMEOUT = 60.0
_ZERO = "0" * 40
_HEADER = re.compile(rb"^([0-9a-f]{40}) (\d+) (\d+)(?: (\d+))?$")
# ASCII unit separator between log fields; NUL between commits (-z).
_LOG_FORMAT = "%H%x1f%P%x1f%an%x1f%ae%x1f%at%x1f%s"


def utc_from_epoch(seconds: float) -> datetime:
    """Epoch seconds -> a naive UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    author: str
    date: datetime
    subject: str = ""
    parents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TreeChange:
    """One file changed by a commit (``git diff-tree --raw``): status A, M, D or R (a move)."""

    status: str
    old_path: str | None
    new_path: str | None
    old_blob: str | None
    new_blob: str | None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat"})
    return env


class GitRepo:
    """A git work tree holding the corpus root; paths in and out are relative to that root.

    Build one with :meth:`find`, which answers ``None`` when there is no usable repository.
    """

    def __init__(self, git: str, toplevel: Path, prefix: str) -> None:
        self.git = git
        self.toplevel = toplevel
        self.prefix = prefix  # the root relative to the top level, '' when they are the same

    @classmethod
    def find(cls, root: Path | str) -> GitRepo | None:
        """The work tree ``root`` lies in, or None (not a repository, no git, any error)."""
        git = shutil.which("git")
        if git is None:
            return None
        try:
            root_real = Path(root).resolve()
            out = subprocess.run(
                [git, "-C", str(root_real), "rev-parse", "--show-toplevel"],
                capture_output=True,
                timeout=_TIMEOUT,
                env=_env(),
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if out.returncode != 0 or not out.stdout.strip():
            return None
        top = Path(os.fsdecode(out.stdout.strip())).resolve()
        try:
            prefix = root_real.relative_to(top).as_posix()
        except ValueError:
            return None
        return cls(git, top, "" if prefix == "." else prefix)

    # -- paths ----------------------------------------------------------------------------------

    def repo_path(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def rel_path(self, repo_path: str) -> str | None:
        """A repository path relative to the corpus root, or None when it lies outside it."""
        if not self.prefix:
            return repo_path
        head = self.prefix + "/"
        return repo_path[len(head) :] if repo_path.startswith(head) else None

    # -- plumbing -------------------------------------------------------------------------------

    def run(self, *args: str, timeout: float = _TIMEOUT) -> bytes | None:
        """stdout of ``git ARGS`` in the top level, or None when it fails."""
        try:
            out = subprocess.run(
                [self.git, "-C", str(self.toplevel), *args],
                capture_output=True,
                timeout=timeout,
                env=_env(),
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    # -- attribution ----------------------------------------------------------------------------

    def blame_lines(self, rel: str, lines: Iterable[int]) -> dict[int, Commit | None]:
        """line -> the commit that last touched it in the working file (None: not committed yet).

        Lines the blame does not cover (past the end, or any failure) are left out.
        """
        wanted = sorted({int(n) for n in lines if n and n > 0})
        if not wanted:
            return {}
        args = ["blame", "--porcelain"]
        for start, end in _ranges(wanted):
            args += ["-L", f"{start},{end}"]
        out = self.run(*args, "--", self.repo_path(rel))
        if out is None:
            return {}
        return {n: c for n, c in parse_blame(out).items() if n in set(wanted)}

    def last_commit(self, rel: str) -> Commit | None:
        """The newest commit that touched ``rel`` (for a file deleted in a commit: that commit)."""
        out = self.run("log", "-1", "-z", f"--format={_LOG_FORMAT}", "--", self.repo_path(rel))
        commits = _parse_log(out) if out else []
        return commits[0] if commits else None

    def committed(self, rel: str) -> bool:
        """Whether the working file ``rel`` is as HEAD has it (no uncommitted change, or deletion)."""
        path = self.repo_path(rel)
        in_head = self.run("cat-file", "-e", f"HEAD:{path}") is not None
        if not Path(self.toplevel, path).exists():
            return not in_head
        if not in_head:
            return False
        return self.run("diff", "--quiet", "HEAD", "--", path) is not None

    def head(self) -> str | None:
        """The commit HEAD names, or None (no commit yet)."""
        out = self.run("rev-parse", "--verify", "-q", "HEAD")
        return out.decode("ascii", "replace").strip() or None if out else None

    def touched_since(self, base: str, limit: int = 2000) -> dict[str, list[Commit]] | None:
        """Root-relative path -> the commits after ``base`` up to HEAD that touched it, newest first;
        None when git cannot tell (an unknown base, more than ``limit`` commits, an error)."""
        out = self.run(
            "-c",
            "core.quotepath=off",
            "log",
            "--first-parent",
            "-n",
            str(limit + 1),
            "--name-only",
            f"--format=%x00{_LOG_FORMAT}",
            f"{base}..HEAD",
            "--",
            self.prefix or ".",
        )
        if out is None:
            return None
        touched: dict[str, list[Commit]] = {}
        entries = [e for e in out.split(b"\0") if e.strip()]
        if len(entries) > limit:
            return None
        for entry in entries:
            head, _, names = entry.partition(b"\n")
            commits = _parse_log(head)
            if not commits:
                return None
            for name in names.decode("utf-8", "surrogateescape").splitlines():
                rel = self.rel_path(name.strip()) if name.strip() else None
                if rel is not None:
                    touched.setdefault(rel, []).append(commits[0])
        return touched

    def uncommitted(self) -> set[str] | None:
        """Root-relative paths that differ from HEAD in the work tree or the index (None: git failed)."""
        got = self.run("diff", "--name-only", "-z", "--no-renames", "HEAD", "--", self.prefix or ".")
        if got is None:
            return None
        out: set[str] = set()
        for name in got.split(b"\0"):
            rel = self.rel_path(name.decode("utf-8", "surrogateescape")) if name else None
            if rel is not None:
                out.add(rel)
        return out

    # -- history --------------------------------------------------------------------------------

    def log(self, n: int) -> list[Commit]:
        """The last ``n`` commits that touched the corpus root, newest first (first parents only)."""
        out = self.run(
            "log", "--first-parent", "-n", str(int(n)), "-z", f"--format={_LOG_FORMAT}", "--", self.prefix or "."
        )
        return _parse_log(out) if out else []

    def changes(self, commit: Commit) -> list[TreeChange] | None:
        """Files under the root that ``commit`` changed against its first parent (moves found
        by git's rename detection), or None when git fails."""
        args = ["diff-tree", "-r", "-z", "-M", "--raw", "--no-commit-id"]
        args += [commit.parents[0], commit.sha] if commit.parents else ["--root", commit.sha]
        out = self.run(*args, "--", self.prefix or ".")
        if out is None:
            return None
        return _parse_raw(out)

    @contextlib.contextmanager
    def blobs(self) -> Iterator[BlobReader]:
        """A ``git cat-file --batch`` process reading blobs by id."""
        reader = BlobReader(self)
        try:
            yield reader
        finally:
            reader.close()


class BlobReader:
    """Reads blobs through one long-lived ``git cat-file --batch``."""

    def __init__(self, repo: GitRepo) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self.proc = subprocess.Popen(
                [repo.git, "-C", str(repo.toplevel), "cat-file", "--batch"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=_env(),
            )
        except OSError:
            self.proc = None

    def read(self, blob: str) -> bytes | None:
        """The blob's bytes, or None (missing, not a blob, the process is gone)."""
        p = self.proc
        if p is None or p.stdin is None or p.stdout is None:
            return None
        try:
            p.stdin.write(blob.encode("ascii") + b"\n")
            p.stdin.flush()
            header = p.stdout.readline()
            parts = header.split()
            if len(parts) != 3 or parts[1] != b"blob":
                return None  # "<id> missing", or not a blob: nothing follows but the header
            size = int(parts[2])
            data = p.stdout.read(size)
            p.stdout.read(1)  # the newline after the contents
            return data
        except (OSError, ValueError):
            self.close()
            return None

    def close(self) -> None:
        p, self.proc = self.proc, None
        if p is None:
            return
        with contextlib.suppress(OSError):
            if p.stdin is not None:
                p.stdin.close()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        if p.stdout is not None:
            p.stdout.close()


# -- parsing ------------------------------------------------------------------------------------


def _ranges(lines: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for n in lines:
        if out and n == out[-1][1] + 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def parse_blame(out: bytes) -> dict[int, Commit | None]:
    """``git blame --porcelain`` output -> final line number -> commit (None: not committed)."""
    info: dict[str, dict[bytes, bytes]] = {}
    line_sha: dict[int, str] = {}
    current: str | None = None
    for raw in out.split(b"\n"):
        if raw.startswith(b"\t"):
            continue
        m = _HEADER.match(raw)
        if m:
            current = m.group(1).decode()
            line_sha[int(m.group(3))] = current  # --porcelain gives every line its own header
            info.setdefault(current, {})
            continue
        if current is not None and b" " in raw:
            k, v = raw.split(b" ", 1)
            info[current].setdefault(k, v)
    commits: dict[str, Commit | None] = {}
    for sha, fields in info.items():
        if sha == _ZERO:
            commits[sha] = None
            continue
        name = fields.get(b"author", b"").decode("utf-8", "replace")
        mail = fields.get(b"author-mail", b"").decode("utf-8", "replace").strip()
        try:
            when = utc_from_epoch(int(fields.get(b"author-time", b"0")))
        except ValueError:
            when = utc_from_epoch(0)
        author = f"{name} {mail}".strip() if mail and mail != "<>" else name
        commits[sha] = Commit(sha, author, when, fields.get(b"summary", b"").decode("utf-8", "replace"))
    return {line: commits[sha] for line, sha in line_sha.items()}


def _parse_log(out: bytes) -> list[Commit]:
    commits = []
    for entry in out.split(b"\0"):
        entry = entry.strip(b"\n")
        if not entry:
            continue
        parts = entry.decode("utf-8", "replace").split("\x1f")
        if len(parts) != 6:
            continue
        sha, parents, name, mail, at, subject = parts
        try:
            when = utc_from_epoch(int(at))
        except ValueError:
            continue
        author = f"{name} <{mail}>" if mail else name
        commits.append(Commit(sha, author, when, subject, tuple(parents.split())))
    return commits


def _parse_raw(out: bytes) -> list[TreeChange]:
    """``git diff-tree -r -z --raw`` -> changes (submodules and symbolic links left out)."""
    fields = out.split(b"\0")
    changes: list[TreeChange] = []
    i = 0
    while i < len(fields):
        head = fields[i]
        if not head.startswith(b":"):
            i += 1
            continue
        parts = head[1:].decode("ascii", "replace").split()
        if len(parts) < 5:
            i += 1
            continue
        old_mode, new_mode, old_blob, new_blob, status = parts[:5]
        kind = status[:1]
        if kind in ("R", "C"):
            old_path, new_path = (
                fields[i + 1].decode("utf-8", "surrogateescape"),
                fields[i + 2].decode("utf-8", "surrogateescape"),
            )
            i += 3
        else:
            old_path = new_path = fields[i + 1].decode("utf-8", "surrogateescape")
            i += 2
        if not (_regular(old_mode) or _regular(new_mode)):
            continue
        old = None if set(old_blob) == {"0"} or not _regular(old_mode) else old_blob
        new = None if set(new_blob) == {"0"} or not _regular(new_mode) else new_blob
        if kind == "A":
            changes.append(TreeChange("A", None, new_path, None, new))
        elif kind == "D":
            changes.append(TreeChange("D", old_path, None, old, None))
        elif kind == "R":
            changes.append(TreeChange("R", old_path, new_path, old, new))
        elif kind == "C":
            changes.append(TreeChange("A", None, new_path, None, new))
        else:  # M, T (type change), U: compare the two blobs
            changes.append(TreeChange("M", old_path, new_path, old, new))
    return changes


def _regular(mode: str) -> bool:
    return mode.startswith("100")
