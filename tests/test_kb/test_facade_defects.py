"""Three defects of the façade and the CLI, each held by a test that failed before its fix."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from kb import KnowledgeBase

REPO = Path(__file__).resolve().parents[2]


def test_a_catalogue_handed_out_stays_usable_after_another_writer_publishes(make_tree, tmp_path):
    """``kb.catalogue`` is bound to the generation it was taken from: a publish by another writer
    (here another KnowledgeBase on the same folder) does not close it under the caller."""
    root = make_tree({"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"})
    db = tmp_path / "kb"
    reader = KnowledgeBase.build(root, db=db, embed=False, workers=1)
    cat = reader.catalogue
    assert cat.query("SELECT count(*) FROM files")[0][0] == 2
    (root / "c.yaml").write_text("c: 3\n", encoding="utf-8")
    with KnowledgeBase.open(db, embed=False, workers=1) as writer:
        writer.ingest(root)
    assert reader.generation().number == 2  # the reader sees the new generation...
    # ...and the handle it was given still reads its own one (before: "Connection already closed!")
    assert cat.query("SELECT count(*) FROM files")[0][0] == 2
    assert reader.catalogue.query("SELECT count(*) FROM files")[0][0] == 3
    del cat
    reader.close()


def test_a_bad_setting_in_the_environment_is_one_line_for_every_command(monkeypatch):
    """``KB_WORKERS=abc kb config`` printed a traceback: errors are mapped once, on the group."""
    from kb.cli import cli

    monkeypatch.setenv("KB_WORKERS", "abc")
    for args in (["config"], ["config", "--json"], ["stats"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), (args, res.exception)
        assert "Setting 'workers' expects int, got 'abc'" in res.output
        assert "Traceback" not in res.output


def test_build_from_a_script_without_a_main_guard_returns(tmp_path):
    """Worker processes must not run the calling script again: a notebook-style script that calls
    ``KnowledgeBase.build`` at top level (no ``if __name__ == "__main__":``) finishes."""
    tree = tmp_path / "tree"
    for i in range(240):  # past the 200 files from which ingest uses worker processes
        (tree / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 7}" / f"f{i}.yaml").write_text(f"key{i}: {i}\n", encoding="utf-8")
    script = tmp_path / "build_it.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from kb import KnowledgeBase
            kb = KnowledgeBase.build({str(tree)!r}, db={str(tmp_path / "kb")!r}, embed=False, workers=2)
            print("files", kb.stats()["files"], flush=True)
            kb.close()
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["files", "240"]  # printed once: the workers did not run the script


def test_ctrl_c_during_a_duckdb_query_is_still_ctrl_c():
    """DuckDB answers a Ctrl-C that lands inside a query with ``RuntimeError('Query interrupted')``
    (and the transaction's next statement with a TransactionException): before, ``kb ingest`` hit
    in its last second died with that traceback and exit 1 instead of "interrupted:" and 130."""
    import signal
    import threading

    import duckdb

    from kb.errors import was_interrupted

    con = duckdb.connect()
    con.execute("CREATE TABLE t (x BIGINT)")
    con.execute("BEGIN TRANSACTION")
    # Python's Ctrl-C handler, also where the runner was started with SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    caught: BaseException | None = None
    try:
        try:
            con.execute("INSERT INTO t SELECT count(*) FROM range(20000000000)")  # minutes, no memory
        except RuntimeError:
            con.execute("INSERT INTO t VALUES (1)")  # what the code after it does
    except Exception as exc:
        caught = exc
    finally:
        timer.join()
        signal.signal(signal.SIGINT, previous)
    assert type(caught).__name__ == "TransactionException"
    assert was_interrupted(caught)  # its context is DuckDB's "Query interrupted"
    assert was_interrupted(KeyboardInterrupt())
    assert not was_interrupted(RuntimeError("Query failed"))
    assert not was_interrupted(ValueError("x"))
