"""Whole files in the keyword index (issue 21): one document per file, kept in step by every
ingest, and the hybrid ranking's file-level BM25 (:func:`kb.search.fusion.file_keyword_boost`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from kb.keyword import FILES_DIR, KEYWORD_DIR, ChunkDoc, FileIndex, file_terms, query_terms
from kb.search import fusion


def file_index(db: Path) -> FileIndex:
    head = json.loads((db / "HEAD.json").read_text(encoding="utf-8"))
    return FileIndex(db / KEYWORD_DIR / head["keyword"] / FILES_DIR, create=False)


def top_file(db: Path, words: str) -> str | None:
    found = file_index(db).search(query_terms(words), 5)
    return next(iter(found), None)


def test_a_files_document_is_its_path_words_and_its_chunks_bodies_without_context_lines():
    terms = file_terms(
        "charts/mongodb/values.yaml",
        ["values.yaml | yaml | arbiter | MongoDB chart\narbiter:\n  enabled: false", "values.yaml | yaml\nvotes: 1"],
    ).split()
    assert {"chart", "mongodb", "value", "arbiter", "enabled", "false", "vote"} <= set(terms)
    assert terms.count("arbiter") == 1  # from the body; the context line repeated per chunk is left out


def test_a_build_indexes_each_file_once(tiny_kb, tmp_path: Path):
    db = tmp_path / "kb"
    files = int(tiny_kb.sql("SELECT count(DISTINCT path) AS n FROM chunks")["n"][0])
    assert file_index(db).count() == files == 6
    assert top_file(db, "review threshold block") == "services/payments/config/production.yaml"
    assert top_file(db, "runbooks") == "docs/runbooks/fraud-review.md"  # a word of the path only
    # a search's path filter: the best files among those it selects (the boost's scale is theirs)
    assert list(file_index(db).search(query_terms("payments"), 5, paths=["deploy/compose.yml"])) == [
        "deploy/compose.yml"
    ]
    assert file_index(db).search(query_terms("payments"), 5, paths=[]) == {}


@pytest.mark.parametrize("in_place", [False, True], ids=["rebuilt", "updated-in-place"])
def test_an_ingest_keeps_the_file_index_in_step_with_changed_and_removed_files(
    tiny_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
):
    from kb import KnowledgeBase
    from kb import index as kb_index

    if in_place:  # the path of KBs over 250,000 chunks: documents replaced, not the index rebuilt
        monkeypatch.setattr(kb_index, "EXACT_REBUILD_MAX", 0)
    db = tmp_path / "kb"
    KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1).close()
    assert top_file(db, "zebracorn") is None
    settings = tiny_tree / "services/orders/settings.toml"
    settings.write_text(settings.read_text(encoding="utf-8") + "\n[zebracorn]\nstripes = 12\n", encoding="utf-8")
    (tiny_tree / "docs/runbooks/fraud-review.md").unlink()
    reads: list[list[str] | None] = []  # the chunks each pass read: a list of paths in place, None for all
    original = kb_index._add_chunks
    monkeypatch.setattr(kb_index, "_add_chunks", lambda *a, **kw: (reads.append(kw["chunks"]), original(*a, **kw)))
    KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1).close()
    changed = ["docs/runbooks/fraud-review.md", "services/orders/settings.toml"]
    assert [r if r is None else sorted(r) for r in reads] == ([changed] if in_place else [None])  # no fallback
    assert top_file(db, "zebracorn stripes") == "services/orders/settings.toml"
    assert top_file(db, "runbooks") is None
    assert file_index(db).count() == 5


def test_a_kb_from_before_the_file_index_searches_and_gets_one_at_its_next_ingest(tiny_tree: Path, tmp_path: Path):
    from kb import KnowledgeBase

    db = tmp_path / "kb"
    KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1).close()
    head = json.loads((db / "HEAD.json").read_text(encoding="utf-8"))
    shutil.rmtree(db / KEYWORD_DIR / head["keyword"] / FILES_DIR)
    with KnowledgeBase.open(db, read_only=True, model="hash") as kb:
        hits = kb.search("fraud review threshold", mode="hybrid", as_frame=False)
        assert hits and hits[0].path == "services/payments/config/production.yaml"
    KnowledgeBase.build(tiny_tree, db=db, model="hash", workers=1).close()  # nothing changed in the tree
    assert file_index(db).count() == 6


def doc(path: str, n: int) -> ChunkDoc:
    return ChunkDoc(f"{path}#{n}", path, "yaml", "", n * 10 + 1, n * 10 + 5, f"{path} | yaml\nwords")


def test_whole_files_move_the_first_files_and_keep_each_files_chunks_in_order(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(fusion, "FILE_KEYWORD_AMONG", 4)
    a0, b0, b1, c0, d0 = doc("a.yaml", 0), doc("b.yaml", 0), doc("b.yaml", 1), doc("c.yaml", 0), doc("d.yaml", 0)
    ranked = [(1.0, a0), (0.9, b0), (0.8, b1), (0.7, c0), (0.6, d0)]
    scores = {"b.yaml": 10.0, "d.yaml": 20.0, "elsewhere.yaml": 40.0}  # d is past the first 4 chunks
    out = fusion.file_keyword_boost(ranked, scores, 0.5)
    # b's chunks gain the same amount: b passes a, its second chunk only as far as its own score goes
    assert [d.chunk_id for _, d in out] == ["b.yaml#0", "a.yaml#0", "b.yaml#1", "c.yaml#0", "d.yaml#0"]
    assert out[0][0] == pytest.approx(0.9 + 0.5 * 1.0 * 10 / 40)  # scaled to the best file of the KB
    assert fusion.file_keyword_boost(ranked, scores, 0.0) == ranked
    assert fusion.file_keyword_boost(ranked, {}, 0.5) == ranked


N = 30
SPREAD: dict[str, str] = {
    # the question's three words in three chunks of one file...
    "charts/db/values.yaml": (
        "arbiter:\n  enabled: false\n  resources: {}\n"
        + "".join(f"filler{i}:\n  key{i}: value{i}\n" for i in range(N))
        + "replicaset:\n  name: rs0\n"
        + "".join(f"more{i}:\n  key{i}: value{i}\n" for i in range(N))
        + "elections:\n  timeout: 10s\n"
    ),
    # ...and two of them in one chunk of another
    "charts/other/values.yaml": "arbiter:\n  replicaset: rs0\n"
    + "".join(f"x{j}:\n  key{j}: value{j}\n" for j in range(2 * N)),
    # and files without them, as a real tree has (BM25's idf needs a corpus)
    **{
        f"charts/app{i}/values.yaml": "".join(f"app{j}:\n  key{j}: value{j}\n" for j in range(2 * N)) for i in range(12)
    },
}


def test_a_question_whose_words_fall_in_different_chunks_of_one_file_ranks_that_file_first(
    make_tree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from kb import KnowledgeBase

    tree = make_tree(SPREAD, name="spread")
    q = "how do I add an arbiter to the replicaset for elections"
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        together = kb.sql(
            "SELECT count(*) AS n FROM chunks WHERE path = 'charts/db/values.yaml' "
            "AND text LIKE '%arbiter%' AND text LIKE '%elections%'"
        )
        assert int(together["n"][0]) == 0  # no chunk of the file holds the question's words
        assert kb.search(q, mode="hybrid", as_frame=False)[0].path == "charts/db/values.yaml"
        monkeypatch.setattr(fusion, "FILE_KEYWORD_WEIGHT", 0.0)
        assert kb.search(q, mode="hybrid", as_frame=False)[0].path == "charts/other/values.yaml"


def test_a_kb_of_the_first_layout_is_extended_with_its_file_index(tiny_tree: Path, tmp_path: Path, settings, ingest):
    """A single-catalogue KB (``catalogue.duckdb``, its keyword index in ``keyword/`` itself, now
    with ``keyword/files/``): the next build links it into ``keyword/000001`` (inside the folder it
    copies) without following that folder into itself."""
    from kb import KnowledgeBase
    from kb.index import sync_keyword
    from kb.keyword import open_keyword_index

    cat, _ = ingest(tiny_tree)
    legacy = open_keyword_index(settings.db)
    sync_keyword(cat, legacy, paths=None)
    cat.close()
    assert (settings.db / KEYWORD_DIR / FILES_DIR / "meta.json").is_file()
    KnowledgeBase.build(tiny_tree, db=settings.db, embed=False, workers=1).close()
    assert file_index(settings.db).count() == 6
    assert not (settings.db / KEYWORD_DIR / "000001" / "000001").exists()
