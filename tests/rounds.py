"""Readers beside one writer, the shared parts: a tree whose files all change every round, and
``kb serve`` on loopback (``tests/test_concurrency.py``, ``tests/test_replicas.py``).

Every file of round ``r`` holds the word ``roundr``: an answer's hits name the round they came from,
so an answer whose hits mix rounds, or name a round no ingest published, came from no published
generation.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

__all__ = ["FILES", "KB_CMD", "REPO", "kb_env", "rounds_in", "serve", "stop", "write_round"]

REPO = Path(__file__).resolve().parents[1]
KB_CMD = [sys.executable, "-c", "from kb.cli import main; main()"]
FILES = 400
ROUND = re.compile(r"round(\d+)")


def write_round(root: Path, r: int) -> None:
    """Write (or rewrite) the ``FILES`` files of round ``r`` under ``root``."""
    for i in range(FILES):
        p = root / f"svc{i:03d}" / "config.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"service:\n  name: svc{i}\n  note: roundtoken round{r}\n  port: {8000 + i}\n")


def rounds_in(snippets: list[str]) -> set[int]:
    """The rounds the hits' snippets name."""
    return {int(m) for s in snippets for m in ROUND.findall(s)}


def kb_env(**extra: str) -> dict[str, str]:
    """The environment of the ``kb`` processes: the hash embedder, one parser process."""
    return {
        **os.environ,
        "KB_MODEL": "hash",
        "KB_WORKERS": "1",
        "KB_BATCH_FILES": "40",
        "HF_HUB_OFFLINE": "1",
        **extra,
    }


def serve(db: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, list[str]]:
    """Start ``kb serve`` on a free loopback port: the process, its URL and its stderr (a list that
    fills as it runs: both pipes are drained, a full pipe would block the server)."""
    proc = subprocess.Popen(
        [*KB_CMD, "serve", "--db", str(db), "--port", "0", "--json", "--log-level", "warning"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    try:
        url = json.loads(line)["url"]
    except (ValueError, KeyError):
        stop(proc)
        raise AssertionError(f"kb serve printed no URL: {line!r}\n{proc.stderr.read()[-2000:]}") from None
    err: list[str] = []
    for stream, sink in ((proc.stdout, []), (proc.stderr, err)):
        threading.Thread(target=lambda st=stream, sk=sink: sk.extend(st), daemon=True).start()
    return proc, url, err


def stop(*procs: subprocess.Popen) -> None:
    """SIGTERM each process, then wait for it (SIGKILL after 15 s)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
