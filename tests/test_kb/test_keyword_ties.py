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
