"""Searchable at once, embedded progressively: publication as embedding goes, searches from other
processes meanwhile, kill -9 in the middle and resumption (with the hash embedder, slowed so the
kill lands mid-embedding), and the shell's search equal to the in-process one (the real model,
ONNX Runtime: the short real-model check). Bundled sample corpus."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kb import KnowledgeBase
from kb.generations import read_head

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "kb" / "sample"
KB_CMD = [sys.executable, "-c", "from kb.cli import main; main()"]
# ``kb`` with the hash embedder slowed to 10 ms a text, so an ingest of the sample embeds for seconds
SLOW_KB_CMD = [
    sys.executable,
    "-c",
    "import time\n"
    "import kb.embed as e\n"
    "_encode = e.HashEmbedder.encode\n"
    "def encode(self, texts):\n"
    "    time.sleep(0.01 * len(texts))\n"
    "    return _encode(self, texts)\n"
    "e.HashEmbedder.encode = encode\n"
    "from kb.cli import main\n"
    "main()",
]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "KB_WORKERS": "1", **extra}


def _kb(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*KB_CMD, *args], env=env or _env(), capture_output=True, text=True, cwd=REPO, timeout=300)


@pytest.mark.slow
def test_embedding_is_searchable_as_it_goes_survives_kill_9_and_resumes(tmp_path):
    db = tmp_path / "kb"
    env = _env(KB_PUBLISH_EVERY="0.2", KB_EMBED_BATCH_SIZE="2", KB_MODEL="hash")
    proc = subprocess.Popen(
        [*SLOW_KB_CMD, "ingest", str(SAMPLE), "--db", str(db), "-q"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    searched = None
    deadline = time.monotonic() + 240
    head = None
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            head = read_head(db) if (db / "HEAD.json").exists() else None
            if head is not None and searched is None:
                # the catalogue and keyword index are published: another process can search now
                res = _kb("search", "fraud review threshold", "--db", str(db), "--json", env=env)
                assert res.returncode == 0, res.stderr
                searched = json.loads(res.stdout)
            if head is not None and 0 < head.embedded < head.embeddable and searched is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the ingest finished before it could be interrupted; " + proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert searched is not None and searched["hits"], searched
    assert searched["embedded_share"] < 1.0 and searched["notice"]

    head = read_head(db)
    assert 0 < head.embedded < head.embeddable
    with KnowledgeBase.open(db, read_only=True, model="hash") as kb:  # an interrupted KB answers, and says how much
        result = kb.search_result("fraud review threshold")
        assert result.hits and result.embedded_share == head.embedded_share < 1.0
        assert f"{head.embedded} of {head.embeddable}" in result.notice
        assert kb.stats()["embedded"] == head.embedded

    done = _kb("ingest", str(SAMPLE), "--db", str(db), "--json", env=env)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    final = read_head(db)
    assert summary["unchanged"] == summary["files_seen"]  # nothing re-parsed
    assert 0 < summary["chunks_embedded"] <= final.embeddable - head.embedded  # only what was missing
    assert final.embedded == final.embeddable and summary["embedded_share"] == 1.0
    assert final.vector_rows == final.embeddable  # no text embedded twice, none lost


@pytest.mark.model
def test_a_search_from_the_shell_equals_the_same_search_in_process(tmp_path):
    db = tmp_path / "kb"
    with KnowledgeBase.build(SAMPLE, db=db, workers=1) as kb:
        for query, mode in (
            ("Where is the fraud-review threshold for payments in production?", "hybrid"),
            ("how long are sessions kept", "semantic"),
            ("DATABASE_URL", "keyword"),
        ):
            res = _kb("search", query, "--mode", mode, "--db", str(db), "--json", "-k", "8")
            assert res.returncode == 0, res.stderr
            assert res.stderr == ""  # nothing printed while loading the model
            shell = json.loads(res.stdout)["hits"]
            ours = [h.model_dump(mode="json") for h in kb.search(query, mode=mode, k=8, as_frame=False)]
            assert shell == ours, query
