"""The Chroma vector store: embedded by default, a Chroma server with KB_CHROMA_URL."""

from __future__ import annotations

import numpy as np
import pytest

from kb.vectors import ChromaMirror, SegmentWriter, VectorView, sha_bytes
from tests.conftest import free_port as _free_port


def unit(rows) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def shas(*names: str) -> np.ndarray:
    import hashlib

    return sha_bytes([hashlib.sha256(n.encode()).hexdigest() for n in names])


def test_segments_append_and_a_view_sees_only_its_rows(tmp_path):
    d = tmp_path / "vectors"
    w = SegmentWriter(d, 3, {})
    w.append(shas("a", "b"), unit([[1, 0, 0], [0, 1, 0]]))
    first = w.sync()
    w.append(shas("c"), unit([[0, 0, 1]]))
    view = VectorView(d, 3, first)  # the generation published after two rows
    assert view.total == 2
    assert view.rows_of(shas("b", "c", "a")).tolist() == [1, -1, 0]
    assert np.allclose(view.scores(unit([[1, 0.1, 0]])[0]), [0.995, 0.0995], atol=1e-3)
    later = VectorView(d, 3, w.sync())
    assert later.rows_of(shas("c")).tolist() == [2]


def test_mapped_and_read_scans_give_identical_scores(tmp_path, monkeypatch):
    import kb.vectors as kv

    monkeypatch.setattr(kv, "BLOCK_ROWS", 7)  # several blocks
    rng = np.random.default_rng(0)
    vecs = unit(rng.normal(size=(50, 16)))
    w = SegmentWriter(tmp_path, 16, {})
    w.append(shas(*[str(i) for i in range(50)]), vecs)
    rows = w.sync()
    q = unit(rng.normal(size=(1, 16)))[0]
    a = VectorView(tmp_path, 16, rows, keep_mapped=True).scores(q)
    b = VectorView(tmp_path, 16, rows, keep_mapped=False).scores(q)
    assert np.array_equal(a, b)
    assert np.allclose(a, vecs @ q, atol=1e-6)
    assert np.array_equal(VectorView(tmp_path, 16, rows).vectors(np.array([3, 40])), vecs[[3, 40]])


def test_a_killed_writers_whole_rows_are_adopted_and_a_torn_row_is_cut(tmp_path):
    w = SegmentWriter(tmp_path, 4, {})
    w.append(shas("a", "b"), unit(np.eye(4)[:2]))
    committed = w.sync()
    w.append(shas("c"), unit(np.eye(4)[2:3]))  # appended, never published
    with open(tmp_path / "seg-000001.f32", "ab") as fh:  # a torn row: half a vector, no hash
        fh.write(b"\0" * 8)
    again = SegmentWriter(tmp_path, 4, committed)
    assert again.rows == {"seg-000001": 3}
    assert (tmp_path / "seg-000001.f32").stat().st_size == 3 * 16
    assert set(again.known().tolist()) == set(shas("a", "b", "c").tolist())


def test_segments_roll_over(tmp_path, monkeypatch):
    import kb.vectors as kv

    monkeypatch.setattr(kv, "SEGMENT_MAX_ROWS", 3)
    w = SegmentWriter(tmp_path, 2, {})
    w.append(shas(*"abcde"), unit([[1, i] for i in range(5)]))
    rows = w.sync()
    assert rows == {"seg-000001": 3, "seg-000002": 2}
    view = VectorView(tmp_path, 2, rows)
    assert view.rows_of(shas("e", "a")).tolist() == [4, 0]


def test_chroma_mirror_is_keyed_by_text_hash(tmp_path):
    m = ChromaMirror(tmp_path / "kb")
    assert (tmp_path / "kb" / "chroma").is_dir()
    m.max_batch = 2  # several round trips
    ids = [h.hex() for h in shas("a", "b", "c").tolist()]
    vecs = unit([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    m.upsert(ids, vecs)
    assert m.count() == 3 and m.ids() == set(ids)
    assert np.allclose(m.get(ids[:1])[ids[0]], vecs[0], atol=1e-6)
    top = m.query(unit([[1, 0.1, 0]])[0], 1)
    assert top[0][0] == ids[0] and top[0][1] == pytest.approx(0.995, abs=1e-3)  # cosine, not L2
    m.delete(ids[1:])
    assert m.ids() == {ids[0]}


# ---------------------------------------------------------------------------------------------
# A real Chroma server on loopback (KB_CHROMA_URL)
# ---------------------------------------------------------------------------------------------


def test_ingest_and_search_against_a_chroma_server(chroma_server, tiny_tree, tmp_path):
    from kb import KnowledgeBase

    db = tmp_path / "kb"
    with KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1, chroma_url=chroma_server) as kb:
        assert not (db / "chroma").exists()  # the durable copy is on the server
        hits = kb.search("DATABASE_URL", k=3, mode="semantic", as_frame=False)
        assert hits and all(h.path for h in hits)
        both = kb.search("review_threshold", k=3, as_frame=False)
        assert (both[0].path, both[0].key_path) == (
            "services/payments/config/production.yaml",
            "fraud.review_threshold",
        )
        gen = kb.generation()
        mirror = ChromaMirror(db, chroma_url=chroma_server, collection=f"kb_{gen.kb_id}")
        distinct = int(kb.sql("SELECT count(DISTINCT text_sha) AS n FROM chunks WHERE embed")["n"][0])
        assert mirror.count() == distinct == gen.embedded
        # a no-change re-ingest embeds nothing
        assert kb.ingest(tiny_tree).chunks_embedded == 0


def test_an_unreachable_server_is_a_clear_error(tmp_path):
    from kb.errors import NotIndexedError

    with pytest.raises(NotIndexedError, match="Chroma server"):
        ChromaMirror(tmp_path / "kb", chroma_url=f"http://127.0.0.1:{_free_port()}")


def test_a_replica_reads_vectors_from_the_chroma_server(chroma_server, tiny_tree, tmp_path):
    """``vector_reads = server``: semantic hits come from the server's index, the same hits as the
    exact scan of the KB's segments on a small tree, and still there with the segments gone."""
    import shutil

    from kb import KnowledgeBase
    from kb.errors import ConfigError

    db = tmp_path / "kb"
    KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1, chroma_url=chroma_server).close()
    queries = ["DATABASE_URL", "fraud review threshold", "how many retries", "log level"]

    def hits(**settings):
        with KnowledgeBase.open(db, model="hash", chroma_url=chroma_server, **settings) as kb:
            out = {}
            for q in queries:
                r = kb.search_result(q, k=5, mode="semantic")
                out[q] = [(h.path, h.key_path, round(h.score, 4)) for h in r.hits]
            out["filtered"] = [h.path for h in kb.search_result("port", k=3, mode="semantic", format="yaml").hits]
            return out

    local = hits()
    assert all(local.values())
    assert hits(vector_reads="server") == local
    shutil.rmtree(db / "vectors")  # a replica with the catalogue but not the segments
    assert hits(vector_reads="server") == local
    with (
        KnowledgeBase.open(db, model="hash", vector_reads="server") as kb,
        pytest.raises(ConfigError, match="KB_CHROMA_URL"),
    ):
        kb.search_result("port", mode="semantic")
