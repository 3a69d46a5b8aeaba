"""Benchmark: ``kb ingest --git-history 100`` on a 5,000-file repository with 100 commits.

    python bench/git_history.py [--files 5000] [--commits 100]

Generates a tree (``bench/gen_corpus.py``), makes it a git repository whose first commit adds
every file, then scripts the other commits: each edits 1 to 10 files (a number bumped), and every
tenth also adds a file, deletes one and moves one. Then builds two new KBs (``--no-embed``): one
with a plain ``kb ingest``, one with ``--git-history N``, and prints both times, the difference
(the replay), and what the replay recorded. Target: ``--git-history 100`` on 5,000 files <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_NUM = re.compile(r"(?<![\w.])(\d{1,6})(?![\w.])")


def load_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_corpus", HERE / "gen_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def git(repo: Path, *args: str, date: int = 1_700_000_000) -> str:
    stamp = f"@{date} +0000"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_AUTHOR_DATE": stamp,
        "GIT_COMMITTER_DATE": stamp,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True).stdout


def make_repo(repo: Path, files: int, commits: int) -> None:
    load_generator().generate(repo, files, seed=3)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated")
    rng = random.Random(11)
    paths = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts)
    for i in range(1, commits):
        for rel in rng.sample(paths, rng.randint(1, 10)):
            p = repo / rel
            text = p.read_text(encoding="utf-8", errors="replace")
            p.write_text(_NUM.sub(lambda m: str(int(m.group(1)) + 1), text, count=1), encoding="utf-8")
        if i % 10 == 0:
            new = f"added/commit-{i}.yaml"
            (repo / "added").mkdir(exist_ok=True)
            (repo / new).write_text(f"commit: {i}\nowner: team-{i % 7}\nreplicas: {i % 5 + 1}\n")
            paths.append(new)
            gone = paths.pop(rng.randrange(len(paths) - 1))
            git(repo, "rm", "-q", gone)
            src = paths.pop(rng.randrange(len(paths) - 1))
            dst = f"moved/{i}/{Path(src).name}"
            (repo / dst).parent.mkdir(parents=True, exist_ok=True)
            git(repo, "mv", src, dst)
            paths.append(dst)
        git(repo, "commit", "-q", "-a", "-m", f"change {i}", date=1_700_000_000 + i * 3600)


def parse_summary(stdout: str) -> dict:
    """The JSON summary at the end of ``kb ingest --json``'s output. DuckDB prints its own progress
    bar to stdout for queries past 2 s (a busy machine), ahead of the summary: skip it."""
    start = stdout.find("{") if stdout.startswith("{") else stdout.find("\n{") + 1
    return json.loads(stdout[start:])


def ingest(repo: Path, db: Path, *extra: str) -> tuple[float, dict]:
    shutil.rmtree(db, ignore_errors=True)
    cmd = [
        sys.executable,
        "-c",
        "from kb.cli import main; main()",
        "ingest",
        str(repo),
        "--db",
        str(db),
        "--json",
        "--no-embed",
        *extra,
    ]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"ingest failed:\n{out.stderr[-3000:]}")
    return wall, parse_summary(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--commits", type=int, default=100)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()

    repo = args.out / f"git-{args.files}-{args.commits}"
    if not (repo / ".git").exists():
        shutil.rmtree(repo, ignore_errors=True)
        t0 = time.perf_counter()
        make_repo(repo, args.files, args.commits)
        print(f"made {repo} ({args.files} files, {args.commits} commits) in {time.perf_counter() - t0:.1f}s")
    n_commits = int(git(repo, "rev-list", "--count", "HEAD").strip())
    plain, s0 = ingest(repo, args.out / "kb-git-plain")
    hist, s1 = ingest(repo, args.out / "kb-git-history", "--git-history", str(args.commits))
    print(f"\nrepository: {repo}: {s1['files_seen']} files, {n_commits} commits, cores: {os.cpu_count()}")
    print(f"{'kb ingest --no-embed':<44}{plain:>8.1f} s")
    print(f"{'kb ingest --no-embed --git-history ' + str(args.commits):<44}{hist:>8.1f} s   (target <= 60 s)")
    print(f"{'the replay alone (difference)':<44}{hist - plain:>8.1f} s")
    print(f"commits replayed: {s1['history_commits']}, key changes recorded: {s1['key_changes']}, notes: {s1['notes']}")


if __name__ == "__main__":
    main()
