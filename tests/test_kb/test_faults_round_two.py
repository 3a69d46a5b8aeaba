"""Issue 22, items 3, 4, 6 and 11: SQL inside its bounds, MCP tools inside the tree, an unreadable
file read again once it can be, and a new root that says how many files left."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import write_tree

TREE = {"a.yaml": "name: a\nport: 1\n", "b.json": '{"name": "b"}\n', "c.env": "HOST=x\n"}


def ingest(root: Path, db: Path):
    from kb.catalogue import Catalogue
    from kb.ingest.pipeline import run_ingest
    from kb.settings import Settings

    with Catalogue(db) as cat:
        return run_ingest(cat, Settings(db=db, root=root, model="hash", workers=1, file_timeout=0))


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    from kb.cli import cli

    root = write_tree(tmp_path / "tree", TREE)
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"])
    assert res.exit_code == 0, res.output
    return db


# -- item 3: one SELECT, configuration locked ---------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "SET memory_limit='20GB'; SELECT count(*) FROM files",
        "SET memory_limit='20GB'",
        "PRAGMA memory_limit='20GB'",
        "SELECT 1; SELECT 2",
        "RESET memory_limit",
        "CALL pragma_version()",
    ],
)
def test_kb_sql_refuses_settings_and_more_than_one_statement(kb_dir: Path, query: str):
    from kb.cli import cli

    res = CliRunner().invoke(cli, ["sql", query, "--db", str(kb_dir)])
    assert res.exit_code == 2 and res.output.startswith("Error: ") and "Traceback" not in res.output, res.output
    assert "SELECT" in res.output  # says what is allowed


def test_kb_sql_locks_the_memory_limit_it_set(kb_dir: Path):
    from kb.catalogue import Catalogue
    from kb.errors import BadRequestError, ReadOnlyError
    from kb.generations import Reader

    with Reader(kb_dir).snapshot() as snap:
        cat: Catalogue = snap.catalogue
        _, rows, _ = cat.sql_limited("SELECT current_setting('memory_limit')", memory_limit="512MB")
        limit = rows[0][0]
        with pytest.raises((BadRequestError, ReadOnlyError)):
            cat.sql_limited("SET memory_limit='20GB'")
        _, rows, _ = cat.sql_limited("SELECT current_setting('memory_limit')", memory_limit="20GB")
        assert rows[0][0] == limit  # the first limit holds: the configuration is locked


def test_kb_sql_leaves_no_timer_thread_holding_the_connection(kb_dir: Path):
    """The query's timeout timer has ended when ``sql_limited`` returns. A cancelled timer still
    running held ``con.interrupt``; when it was the last to drop the connection while Python shut
    down, DuckDB's destructor ran on a dying thread and `kb sql` aborted after printing its answer
    ("FATAL: exception not rethrown", exit -6, about one run in ten)."""
    import threading

    from kb.generations import Reader

    with Reader(kb_dir).snapshot() as snap:
        for _ in range(20):
            snap.catalogue.sql_limited("SELECT count(*) FROM files", timeout=30.0)
            assert not [t for t in threading.enumerate() if isinstance(t, threading.Timer)]


def test_mcp_sql_refuses_a_set_before_a_select(kb_dir: Path):
    from kb.api.mcp.server import KBTools
    from kb.errors import KBError
    from kb.settings import Settings

    tools = KBTools(Settings(db=kb_dir, model="hash"))
    with pytest.raises(KBError, match="SELECT"):
        tools.sql("SET memory_limit='20GB'; SELECT count(*) FROM files")
    assert tools.sql("SELECT count(*) AS n FROM files").rows == [[3]]


# -- item 4: MCP validate reads nothing outside the tree ----------------------------------------


@pytest.mark.parametrize(
    "schema", ["/etc/passwd", "../outside.json", "sub/../../outside.json", "~/x.json", "link/s.json"]
)
def test_mcp_validate_refuses_a_schema_outside_the_tree(tmp_path: Path, schema: str):
    from kb.api.mcp.server import KBTools
    from kb.errors import BadRequestError
    from kb.settings import Settings

    (tmp_path / "outside.json").write_text('{"type": "object", "required": ["SECRET_CONTENT"]}')
    root = write_tree(tmp_path / "tree", TREE)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "s.json").write_text("{}")
    os.symlink(tmp_path / "out", root / "link")
    db = tmp_path / "kb"
    ingest(root, db)
    tools = KBTools(Settings(db=db, root=root, model="hash"))
    with pytest.raises(BadRequestError, match="inside") as exc:
        tools.validate(schema_map=[f"*.json={schema}"])
    assert "SECRET_CONTENT" not in exc.value.message and "passwd:" not in exc.value.message
    assert tools.validate(schema_map=["*.json=schemas/none.json"]).total >= 0  # inside: still allowed


# -- item 6: an unreadable file is read again ---------------------------------------------------


def test_a_file_skipped_as_unreadable_is_read_once_it_can_be(tmp_path: Path, monkeypatch):
    from kb.catalogue import Catalogue

    root = write_tree(tmp_path / "tree", TREE)
    db = tmp_path / "kb"
    real_open = builtins.open
    locked = os.path.realpath(root / "a.yaml")

    def deny(file, *args, **kwargs):  # a permission problem, as a non-root user would meet it
        if isinstance(file, (str, Path)) and os.path.realpath(file) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    ingest(root, db)
    monkeypatch.setattr(builtins, "open", real_open)
    with Catalogue(db, read_only=True) as cat:
        assert cat.query("SELECT rule FROM findings WHERE path = 'a.yaml'") == [("unreadable",)]
    summary = ingest(root, db)  # permissions fixed: size and mtime did not change
    assert summary.changed == 1
    with Catalogue(db, read_only=True) as cat:
        assert cat.query("SELECT status FROM files WHERE path = 'a.yaml'") == [("ok",)]
        assert cat.query("SELECT count(*) FROM findings WHERE path = 'a.yaml'") == [(0,)]


# -- item 11: another root says how many files left ---------------------------------------------


def test_another_root_reports_the_files_that_left(tmp_path: Path):
    db = tmp_path / "kb"
    ingest(write_tree(tmp_path / "one", TREE), db)
    summary = ingest(write_tree(tmp_path / "two", {"x.yaml": "a: 1\n"}), db)
    assert (summary.added, summary.removed) == (1, 3)
