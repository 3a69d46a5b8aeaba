"""Issue 22, item 8 (Chroma): a deleted ``chroma/`` is healed from the vector segments on the next
ingest, with one file changed or none."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_tree


@pytest.mark.parametrize("change", [True, False])
def test_a_deleted_chroma_is_filled_again_from_the_segments(tmp_path: Path, change: bool):
    from kb.cli import cli
    from kb.generations import read_head
    from kb.vectors import ChromaMirror

    files = {f"s{i}.yaml": f"service_{i}:\n  port: {1000 + i}\n  host: h{i}.example\n" for i in range(40)}
    root = write_tree(tmp_path / "tree", files)
    db = tmp_path / "kb"
    env = {"KB_MODEL": "hash-64", "KB_CHROMA_MIRROR": "true"}
    assert CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db)], env=env).exit_code == 0
    rows = read_head(db).vector_rows
    assert rows >= 40 and ChromaMirror(db).count() == rows
    shutil.rmtree(db / "chroma")
    if change:
        (root / "s0.yaml").write_text("service_0:\n  port: 9999\n")
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db)], env=env)
    assert res.exit_code == 0, res.output
    head = read_head(db)
    assert head.embedded == head.embeddable and ChromaMirror(db).count() == head.vector_rows
