"""Issue 22, item 7: vectors are published every few seconds while embedding, also while the
longest texts go first: encode calls are sized to fit the publish interval."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from kb.embed import HashEmbedder
from tests.conftest import write_tree


class SlowEmbedder:
    """The hash embedder at a model's pace (3 ms a text), noting what HEAD said at each call."""

    def __init__(self, db: Path) -> None:
        self.inner = HashEmbedder(dim=64)
        self.dim, self.name = self.inner.dim, self.inner.name
        self.db = db
        self.seen: list[tuple[int, int]] = []  # (texts in the call, HEAD's embedded count then)

    def encode(self, texts: list[str]) -> np.ndarray:
        from kb.generations import read_head

        head = read_head(self.db)
        self.seen.append((len(texts), head.embedded if head else 0))
        time.sleep(0.003 * len(texts))
        return self.inner.encode(texts)


def test_vectors_are_published_between_encode_calls(tmp_path: Path):
    from kb.cli import cli
    from kb.generations import read_head, write_session
    from kb.index import embed_pending
    from kb.settings import Settings

    root = write_tree(tmp_path / "tree", {f"s{i}.yaml": f"service_{i}:\n  port: {1000 + i}\n" for i in range(600)})
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"], env={"KB_MODEL": "hash-64"})
    assert res.exit_code == 0, res.output
    emb = SlowEmbedder(db)
    with write_session(db) as ws:
        info = embed_pending(ws, emb, Settings(db=db, root=root, model="hash-64"), publish_every=0.4)
    assert info["embedded"] == 600
    # the first call is one model batch, not 1,024 texts; later calls see earlier vectors published
    assert emb.seen[0][0] <= 32
    assert max(n for n, _ in emb.seen) * 0.003 <= 0.4
    published = [e for _, e in emb.seen if e > 0]
    assert len(set(published)) >= 3, emb.seen
    assert read_head(db).embedded == 600


class CountingEmbedder:
    """The hash embedder counting one word piece per ``{`` (JSON's brackets, none in prose): the
    build must order its texts by that count, not by characters."""

    def __init__(self) -> None:
        self.inner = HashEmbedder(dim=64)
        self.dim, self.name = self.inner.dim, self.inner.name
        self.order: list[str] = []

    def pieces(self, texts: list[str]) -> np.ndarray:
        return np.array([t.count("{") for t in texts])

    def encode(self, texts: list[str]) -> np.ndarray:
        self.order += texts
        return self.inner.encode(texts)


def test_a_build_embeds_its_texts_by_word_pieces_longest_first(tmp_path: Path):
    """Texts of one width share encode calls (a batch runs at its longest text's width): JSON has
    far more pieces per character than prose, so the order is the embedder's count, not length."""
    from kb.cli import cli
    from kb.generations import write_session
    from kb.index import embed_pending
    from kb.settings import Settings

    files = {f"p{i}.md": f"# Note {i}\n\n" + "plain words only here " * (20 + i) for i in range(5)}
    files |= {f"j{i}.json": "{" + ", ".join(f'"k{n}": {{}}' for n in range(3 + 6 * i)) + "}" for i in range(5)}
    root = write_tree(tmp_path / "tree", files)
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"], env={"KB_MODEL": "hash-64"})
    assert res.exit_code == 0, res.output
    emb = CountingEmbedder()
    with write_session(db) as ws:
        info = embed_pending(ws, emb, Settings(db=db, root=root, model="hash-64"))
    assert info["embedded"] == len(emb.order) >= 6
    counts = list(emb.pieces(emb.order))
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1]  # the longest prose is not first: pieces decide
    assert max(emb.order, key=len) != emb.order[0]


def catalogued(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """A tree of ``n`` small YAML files and its KB, catalogued but not embedded."""
    from kb.cli import cli

    root = write_tree(tmp_path / "tree", {f"s{i}.yaml": f"service_{i}:\n  port: {1000 + i}\n" for i in range(n)})
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"], env={"KB_MODEL": "hash-64"})
    assert res.exit_code == 0, res.output
    return root, db


class RecordingMirror:
    """A real Chroma mirror that notes the size of each upsert."""

    def __init__(self, db: Path) -> None:
        from kb.vectors import ChromaMirror

        self.inner = ChromaMirror(db)
        self.calls: list[int] = []

    def upsert(self, shas, vectors) -> None:
        self.calls.append(len(shas))
        self.inner.upsert(shas, vectors)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_a_build_copies_its_vectors_into_chroma_in_large_upserts(tmp_path: Path, monkeypatch):
    """Chroma takes vectors faster in calls of thousands than in an encode call's worth: a build
    copies them in batches of MIRROR_BATCH (the last one smaller), and Chroma ends with every
    vector, equal to the KB's own."""
    import kb.index as index
    from kb.generations import write_session
    from kb.settings import Settings

    monkeypatch.setattr(index, "MIRROR_BATCH", 100)
    root, db = catalogued(tmp_path, 450)
    mirror = RecordingMirror(db)
    emb = CountingEmbedder()
    calls: list[int] = []
    encode = emb.encode
    emb.encode = lambda texts: calls.append(len(texts)) or encode(texts)  # type: ignore[method-assign]
    with write_session(db) as ws:
        info = index.embed_pending(ws, emb, Settings(db=db, root=root, model="hash-64"), mirror=mirror)
    assert info["embedded"] == sum(calls) == sum(mirror.calls) == mirror.count() == 450
    assert len(mirror.calls) < len(calls)  # not one upsert per encode call
    assert all(n >= 100 for n in mirror.calls[:-1]), mirror.calls
    import hashlib

    by_sha = {hashlib.sha256(t.encode()).hexdigest(): t for t in emb.order}
    got = mirror.inner.get(sorted(by_sha))
    assert len(got) == 450  # each text's own vector, under its sha
    want = HashEmbedder(dim=64).encode([by_sha[s] for s in got])
    assert np.allclose(np.stack(list(got.values())), want, atol=1e-5)


class FailingEmbedder(CountingEmbedder):
    """Fails on its fourth encode call, as a model out of memory would."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        if self.calls == 4:
            raise MemoryError("out of memory")
        return super().encode(texts)


def test_a_failed_build_still_copies_what_it_embedded_into_chroma(tmp_path: Path, monkeypatch):
    import pytest

    import kb.index as index
    from kb.generations import write_session
    from kb.settings import Settings

    monkeypatch.setattr(index, "MIRROR_BATCH", 10_000)  # nothing copied before the failure
    root, db = catalogued(tmp_path, 300)
    mirror = RecordingMirror(db)
    emb = FailingEmbedder()
    with pytest.raises(MemoryError), write_session(db) as ws:
        index.embed_pending(ws, emb, Settings(db=db, root=root, model="hash-64"), mirror=mirror)
    assert 0 < len(emb.order) < 300
    assert mirror.count() == len(emb.order)  # the embedded vectors reached Chroma before the error
