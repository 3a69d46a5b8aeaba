"""A scripted git repository for tests: commits with fixed authors and dates (so the history is
the same on every machine), files written, deleted and moved between commits."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

__all__ = ["ScriptedRepo", "git_env"]


def git_env(author: str = "Alice <alice@example.com>", date: str = "2024-01-01T10:00:00Z") -> dict[str, str]:
    name, _, mail = author.partition(" <")
    env = dict(os.environ)
    env.update(
        {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": mail.rstrip(">"),
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": mail.rstrip(">"),
            "GIT_COMMITTER_DATE": date,
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }
    )
    return env


class ScriptedRepo:
    """``ScriptedRepo(path)`` runs ``git init``; :meth:`step` applies one scripted change."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        out = subprocess.run(["git", *args], cwd=self.root, env=env or git_env(), capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)}: {out.stderr}")
        return out.stdout

    def step(
        self,
        *,
        message: str | None = None,
        write: dict[str, str] | None = None,
        delete: list[str] | None = None,
        move: dict[str, str] | None = None,
        author: str = "Alice <alice@example.com>",
        date: str = "2024-01-01T10:00:00Z",
        commit: bool = True,
    ) -> str | None:
        """Move, delete, then write files; commit them (unless ``commit`` is false); the sha."""
        for old, new in (move or {}).items():
            (self.root / new).parent.mkdir(parents=True, exist_ok=True)
            self.git("mv", old, new)
        for rel in delete or []:
            self.git("rm", "-q", rel)
        for rel, text in (write or {}).items():
            p = self.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        if not commit:
            return None
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message or "change", env=git_env(author, date))
        return self.git("rev-parse", "HEAD").strip()
