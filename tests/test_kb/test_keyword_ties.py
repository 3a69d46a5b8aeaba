"""Issue 22, item 9: tied BM25 hits come in the same order whatever order the index was built in."""

from __future__ import annotations

import random
from pathlib import Path

from kb.keyword import ChunkDoc, KeywordIndex, query_terms


def docs() -> list[ChunkDoc]:
    # twelve files holding the same chunk (copied configs): their scores tie exactly
    same = [
        ChunkDoc(f"svc{i}/db.yaml#0", f"svc{i}/db.yaml", "yaml", "db", 1, 2, "db:\n  pool_size: 10") for i in range(12)
    ]
    other = [ChunkDoc(f"x{i}.yaml#0", f"x{i}.yaml", "yaml", "x", 1, 1, f"x: {i} pool") for i in range(20)]
    return same + other


def build(directory: Path, seed: int) -> KeywordIndex:
    index = KeywordIndex(directory)
    rows = docs()
    random.Random(seed).shuffle(rows)
    for start in range(0, len(rows), 5):  # several commits: several segments
        index.add(rows[start : start + 5])
        index.commit()
    return index


def test_two_builds_in_different_orders_rank_tied_hits_alike(tmp_path: Path):
    a, b = build(tmp_path / "a", 1), build(tmp_path / "b", 2)
    for k in (3, 5, 12, 20):
        ids_a = [d.chunk_id for _, d in a.search(query_terms("pool_size"), k)]
        ids_b = [d.chunk_id for _, d in b.search(query_terms("pool_size"), k)]
        assert ids_a == ids_b and len(ids_a) == k
    assert [d.chunk_id for _, d in a.search(query_terms("pool_size"), 3)] == [f"svc{i}/db.yaml#0" for i in (0, 1, 10)]


def test_an_updated_kb_scores_bm25_like_a_fresh_build_of_the_same_tree(tmp_path: Path):
    """Deleted documents stay in tantivy's statistics until its segments merge: an ingest that
    changed files rebuilds the keyword index, so the same tree gives the same scores."""
    from kb import KnowledgeBase

    tree = tmp_path / "tree"
    for i in range(30):
        (tree / f"svc{i}").mkdir(parents=True)
        (tree / f"svc{i}" / "db.yaml").write_text(f"db:\n  pool_size: {i}\n  host: db{i}\n  timeout: 30\n")
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        for i in range(0, 30, 2):  # half the files change: their old chunks are deleted documents
            (tree / f"svc{i}" / "db.yaml").write_text(f"cache:\n  pool_size: {i}\n  ttl: 60\n")
        kb.ingest(tree)
        updated = kb.search_result("pool_size timeout cache", k=30, mode="keyword").hits
    with KnowledgeBase.build(tree, db=tmp_path / "fresh", model="hash", workers=1) as fresh:
        again = fresh.search_result("pool_size timeout cache", k=30, mode="keyword").hits
    assert [(h.path, h.score) for h in updated] == [(h.path, h.score) for h in again]
