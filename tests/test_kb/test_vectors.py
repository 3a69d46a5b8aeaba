"""The Chroma vector store: embedded by default, a Chroma server with KB_CHROMA_URL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from kb.vectors import VectorStore, forget_vector_stores, open_vector_store


def unit(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def meta(path: str, fmt: str = "yaml", key: str | None = "k", line: int = 1) -> dict:
    return {"path": path, "format": fmt, "key_path": key, "line_start": line, "line_end": line + 1, "text_sha": path}


@pytest.fixture
def store(tmp_path):
    s = VectorStore(tmp_path / "kb")
    yield s
    forget_vector_stores()


def test_embedded_store_lives_under_the_kb_dir_in_cosine_space(store, tmp_path):
    assert (tmp_path / "kb" / "chroma").is_dir()
    store.upsert(["a#0", "b#0"], unit([[1, 0, 0], [0, 1, 0]]), [meta("a.yaml"), meta("b.json", "json", None)])
    hits = store.query(unit([[1, 0.1, 0]])[0], 2)
    assert [h.chunk_id for h in hits] == ["a#0", "b#0"]
    assert hits[0].similarity == pytest.approx(0.995, abs=1e-3)  # cosine similarity, not L2
    assert hits[0].meta == meta("a.yaml")
    assert hits[1].meta["key_path"] == ""  # flat, non-null metadata


def test_filters_by_format_and_paths(store):
    store.upsert(["a#0", "b#0", "c#0"], unit([[1, 0], [1, 0.1], [1, 0.2]]),
                 [meta("a.yaml"), meta("b.json", "json"), meta("c.yaml")])
    q = unit([[1, 0]])[0]
    assert [h.chunk_id for h in store.query(q, 5, format="json")] == ["b#0"]
    assert [h.chunk_id for h in store.query(q, 5, paths=["c.yaml", "b.json"])] == ["b#0", "c#0"]
    assert [h.chunk_id for h in store.query(q, 5, format="yaml", paths=["c.yaml"])] == ["c#0"]
    assert store.query(q, 5, paths=[]) == []


def test_add_update_delete_in_batches(store):
    store.max_batch = 7  # force several round trips
    n = 30
    ids = [f"f{i}#0" for i in range(n)]
    vecs = unit(np.random.default_rng(0).normal(size=(n, 8)).tolist())
    store.upsert(ids, vecs, [meta(f"f{i}") for i in range(n)])
    assert store.count() == n
    store.update_metadata(ids[:10], [meta(f"f{i}", line=50) for i in range(10)])
    got = store.get_embeddings(ids[:3])
    assert np.allclose(got["f1#0"], vecs[1], atol=1e-6)
    assert {m["line_start"] for cid, m in store.iter_metadata(page=9) if cid in ids[:10]} == {50}
    store.delete(ids[::2])
    assert store.count() == n // 2
    store.reset()
    assert store.count() == 0


def test_store_cache_reopens_on_a_new_generation(tmp_path):
    a = open_vector_store(tmp_path / "kb", generation="g1")
    assert open_vector_store(tmp_path / "kb", generation="g1") is a
    b = open_vector_store(tmp_path / "kb", generation="g2")
    assert b is not a
    forget_vector_stores()


# ---------------------------------------------------------------------------------------------
# A real Chroma server on loopback (KB_CHROMA_URL)
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chroma_cli() -> str | None:
    exe = Path(sys.executable).parent / "chroma"
    return str(exe) if exe.exists() else shutil.which("chroma")


@pytest.fixture
def chroma_server(tmp_path):
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("the `chroma` CLI is not installed")
    port = _free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [cli, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited early: {(tmp_path / 'chroma.log').read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_ingest_and_search_against_a_chroma_server(chroma_server, tiny_tree, tmp_path):
    from kb import KnowledgeBase

    db = tmp_path / "kb"
    with KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1, chroma_url=chroma_server) as kb:
        assert not (db / "chroma").exists()  # nothing embedded locally
        hits = kb.search("DATABASE_URL", k=3, mode="semantic", as_frame=False)
        assert hits and all(h.path for h in hits)
        both = kb.search("review_threshold", k=3, as_frame=False)
        assert (both[0].path, both[0].key_path) == ("services/payments/config/production.yaml", "fraud.review_threshold")
        store = VectorStore(db, chroma_url=chroma_server, collection=f"kb_{kb.catalogue.get_meta('index_id')}")
        assert store.count() == int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
        # a no-change re-ingest talks to the server and embeds nothing
        assert kb.ingest(tiny_tree).chunks_embedded == 0


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    from kb.errors import NotIndexedError

    with pytest.raises(NotIndexedError, match="Chroma server"):
        VectorStore(tmp_path / "kb", chroma_url=f"http://127.0.0.1:{_free_port()}")
