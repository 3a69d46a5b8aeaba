"""Which chunk texts are embedded: data, hashes and lock files are not; they stay keyword-searchable."""

from __future__ import annotations

import base64

import pytest

from kb.ingest.meaning import LOCK_FILES, embeddable, is_release_history

B64 = base64.b64encode(bytes(range(256)) * 3).decode()


@pytest.mark.parametrize(
    "text",
    [
        "app.yaml | yaml | server\nserver:\n  port: 8080",
        "x.env | dotenv | REPLICAS\nREPLICAS=3",
        "README.md | markdown | Setup\n# Setup\n\nRun the installer, then restart the service.",
        "values.yaml | yaml | image\nimage:\n  repository: bitnami/redis\n  tag: 7.2.4-debian-12-r9\n  digest: sha256:"
        + "ab" * 32,
        "big.json | json | services\n" + ", ".join(f'"service{i}": {{"port": {8000 + i}}}' for i in range(40)),
    ],
)
def test_configuration_and_prose_are_embedded(text):
    assert embeddable("dir/file.yaml", text)


@pytest.mark.parametrize(
    "text",
    [
        f"certs.yaml | yaml | ca\nca: |\n  {B64[:64]}\n  {B64[64:128]}\n  {B64[128:192]}",
        "sums.txt | text\n" + "\n".join(f"{'%064x' % (i * 7919)}  dist/file-{i}.tgz" for i in range(12)),
        "hosts.yaml | yaml | allow\nallow:\n" + "\n".join(f"  - 10.0.{i}.{i * 7 % 255}" for i in range(20)),
        "blob.json | json\n" + "[" + ",".join(str(i * 31 % 997) for i in range(300)) + "]",
        "empty.yaml | yaml\n   \n",
    ],
)
def test_data_hashes_and_numbers_are_not(text):
    assert not embeddable("dir/file.yaml", text)


@pytest.mark.parametrize("name", sorted(LOCK_FILES)[:6] + ["package-lock.json", "yarn.lock", "go.sum"])
def test_lock_files_are_never_embedded(name):
    assert not embeddable(f"web/{name}", f'web/{name} | json\n{{"name": "a readable package name with words"}}')


def test_skipped_chunks_are_catalogued_and_keyword_searchable_but_not_embedded(make_tree, tmp_path):
    from kb import KnowledgeBase

    root = make_tree(
        {
            "app/config.yaml": "server:\n  port: 8080\n  name: payments gateway\n",
            "app/package-lock.json": '{"name": "payments-web", "lockfileVersion": 3, "packages": {}}\n',
            "certs/ca.yaml": f"ca: |\n  {B64[:64]}\n  {B64[64:128]}\n",
        }
    )
    with KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1) as kb:
        flags = dict(kb.sql("SELECT path, bool_and(embed) AS e FROM chunks GROUP BY path").itertuples(index=False))
        assert flags == {"app/config.yaml": True, "app/package-lock.json": False, "certs/ca.yaml": False}
        gen = kb.generation()
        assert gen.embeddable == 1 and gen.embedded == 1 and gen.vector_rows == 1
        summary = kb.ingest(root)
        assert summary.chunks_skipped == 2 and summary.chunks_embedded == 0 and summary.embedded_share == 1.0
        assert kb.stats()["chunk_texts_not_embedded"] == 2
        hits = kb.search("lockfileVersion", mode="keyword", as_frame=False)
        assert hits and hits[0].path == "app/package-lock.json"
        assert all(h.path == "app/config.yaml" for h in kb.search("payments", mode="semantic", as_frame=False))


@pytest.mark.parametrize(
    "path",
    ["charts/kafka/CHANGELOG.md", "CHANGES.rst", "lib/HISTORY.md", "NEWS", "docs/releases.md", "Release-Notes.md"],
)
def test_release_histories_are_never_embedded(path):
    assert is_release_history(path)
    assert not embeddable(path, f"{path} | markdown | 12.3.1\n## 12.3.1\n\n* Update the image to the latest version.")


@pytest.mark.parametrize(
    "path",
    ["changelog.yaml", "config/history.json", "news/README.md", "charts/changes/values.yaml", "CHANGELOG.md.bak"],
)
def test_configuration_named_like_a_history_is_embedded(path):
    assert not is_release_history(path)
    assert embeddable(path, f"{path} | yaml | retention\nretention:\n  days: 30\n  keep drafts for review")


def test_a_release_history_stays_keyword_searchable(make_tree, tmp_path):
    from kb import KnowledgeBase

    root = make_tree(
        {
            "charts/kafka/CHANGELOG.md": "# Changelog\n\n## 12.3.1\n\n* Raised heapOpts for the broker.\n",
            "charts/kafka/values.yaml": "heapOpts: -Xmx1024m -Xms1024m\n",
        }
    )
    with KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1) as kb:
        flags = dict(kb.sql("SELECT path, bool_and(embed) AS e FROM chunks GROUP BY path").itertuples(index=False))
        assert flags == {"charts/kafka/CHANGELOG.md": False, "charts/kafka/values.yaml": True}
        found = {h.path for h in kb.search("heapOpts", mode="keyword", as_frame=False)}
        assert found == {"charts/kafka/CHANGELOG.md", "charts/kafka/values.yaml"}
