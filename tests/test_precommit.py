"""The ``kb-validate`` pre-commit hook, run by pre-commit itself (``pre-commit try-repo``, the way a
hook author tries a hook) on a scratch git repository: a commit adding a broken reference is refused,
the one fixing it passes, and errors already in untouched files do not block either."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, write_tree

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

BIN = Path(sys.executable).parent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=kb", "-c", "user.email=kb@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def try_hook(repo: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "KB_WORKERS": "1",
    }
    env.pop("KB_DB", None)
    return subprocess.run(
        [str(BIN / "pre-commit"), "try-repo", str(REPO), "kb-validate", "--verbose"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_manifest_declares_a_system_hook_running_the_installed_kb():
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "kb-validate" and hook["language"] == "system" and hook["require_serial"] is True
    assert hook["entry"] == "kb validate --ingest ."


def test_commit_adding_a_broken_reference_is_refused_and_the_fix_passes(tmp_path):
    repo = write_tree(
        tmp_path / "repo",
        {
            ".gitignore": ".kb/\n",
            "docs/index.md": "# Index\n\nSee [setup](setup.md).\n",
            "docs/setup.md": "# Setup\n\nRun it.\n",
            "legacy/old.md": "# Old\n\nSee [gone](gone.md).\n",  # an error already committed, in a file left alone
        },
    )
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    home = tmp_path / "pre-commit-home"

    (repo / "docs" / "guide.md").write_text("# Guide\n\nRead [the runbook](runbook.md) first.\n")
    (repo / "docs" / "setup.md").write_text("# Setup\n\nRun it twice.\n")
    git(repo, "add", "-A")
    refused = try_hook(repo, home)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "docs/guide.md:3  error  broken-reference" in refused.stdout
    assert "legacy/old.md" not in refused.stdout

    (repo / "docs" / "guide.md").write_text("# Guide\n\nRead [the setup](setup.md) first.\n")
    git(repo, "add", "-A")
    passed = try_hook(repo, home)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "kb validate" in passed.stdout and "Passed" in passed.stdout
    git(repo, "commit", "-qm", "guide")
    assert not (repo / ".kb").exists() or ".kb" not in git(repo, "status", "--porcelain")
