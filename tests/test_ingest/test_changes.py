"""The change log written at ingest (ingest/changes.py): what is recorded, when, and with whose name."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kb.catalogue import Catalogue
from kb.ingest.changes import diff_records, replay_git_history
from tests.gitrepo import ScriptedRepo


def rows(cat: Catalogue, where: str = "", params: list | None = None) -> list[dict]:
    return cat.query_dicts(
        "SELECT run_id, path, doc, key_path, change, old_value, new_value, old_type, new_type, line, old_path, commit, "
        f"author, source FROM changes {where} ORDER BY run_id, path, doc, line NULLS FIRST, key_path",
        params,
    )


def bump(path: Path, text: str) -> None:
    """Rewrite a file so its mtime surely differs (the walk compares size and mtime)."""
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 5))


# -- diffing ------------------------------------------------------------------------------------


def test_diff_records_finds_added_removed_changed_and_type_changes_in_line_order():
    old = [(0, "a", "1", "int", 1), (0, "b", "x", "str", 2), (0, "c", "3", "int", 3), (1, "a", "1", "int", 6)]
    new = [(0, "a", "1", "str", 1), (0, "c", "3", "int", 2), (0, "d", "y", "str", 3), (1, "a", "2", "int", 6)]
    assert diff_records(old, new) == [
        ("changed", 0, "a", "1", "1", "int", "str", 1),
        ("removed", 0, "b", "x", None, "str", None, 2),
        ("added", 0, "d", None, "y", None, "str", 3),
        ("changed", 1, "a", "1", "2", "int", "int", 6),
    ]
    assert diff_records(new, new) == []


# -- at ingest ----------------------------------------------------------------------------------


def test_first_ingest_is_the_baseline_and_later_runs_record_key_changes(make_tree, ingest):
    root = make_tree(
        {
            "svc/prod.yaml": "database:\n  host: db\n  timeout: 30\n  pool: 5\n",
            "svc/.env": "LOG_LEVEL=info\n",
            "gone.json": '{"x": 1}\n',
        }
    )
    cat, first = ingest(root)
    assert first.key_changes == 0 and rows(cat) == []
    bump(root / "svc/prod.yaml", "database:\n  host: db\n  timeout: 60\n  replicas: 2\n")
    (root / "gone.json").unlink()
    (root / "new.toml").write_text("[server]\nport = 8080\n")
    cat, second = ingest(root)
    got = [(r["path"], r["key_path"], r["change"], r["old_value"], r["new_value"], r["line"]) for r in rows(cat)]
    assert got == [
        ("gone.json", "x", "removed", "1", None, 1),
        ("new.toml", "server.port", "added", None, "8080", 2),
        ("svc/prod.yaml", "database.timeout", "changed", "30", "60", 3),
        ("svc/prod.yaml", "database.pool", "removed", "5", None, 4),
        ("svc/prod.yaml", "database.replicas", "added", None, "2", 4),
    ]
    assert second.key_changes == 5
    assert {r["run_id"] for r in rows(cat)} == {second.run_id}
    assert {r["source"] for r in rows(cat)} == {"ingest"}
    assert all(r["commit"] is None for r in rows(cat))  # not a git work tree: no attribution, no failure
    stamp = cat.query("SELECT min(changed_at), max(changed_at) FROM changes")[0]
    assert stamp[0] == stamp[1] and stamp[0] is not None  # the run's time
    _, third = ingest(root)  # nothing changed: nothing recorded
    assert third.key_changes == 0 and len(rows(cat)) == 5


def test_secret_values_are_redacted_in_the_change_log(make_tree, ingest):
    root = make_tree({".env": "DB_PASSWORD=Sup3rS3cretValue1\n", "app.yaml": "password: Sup3rS3cretValue1\n"})
    cat, _ = ingest(root)
    bump(root / ".env", "DB_PASSWORD=An0therS3cretValue2\n")
    bump(root / "app.yaml", "password: An0therS3cretValue2\n")
    cat, _ = ingest(root)
    got = rows(cat)
    assert [r["change"] for r in got] == ["changed", "changed"]
    for r in got:
        assert r["old_value"].startswith("[REDACTED:plaintext-secret:") and r["new_value"].startswith("[REDACTED:")
        assert r["old_value"] != r["new_value"]  # the fingerprint tells that it changed, never to what
    dump = str(cat.query("SELECT * FROM changes"))
    assert "S3cretValue" not in dump


def test_a_moved_file_is_one_moved_row_and_keeps_its_history(make_tree, ingest, settings):
    root = make_tree({"a/app.yaml": "port: 80\nname: app\n"})
    cat, _ = ingest(root)
    bump(root / "a/app.yaml", "port: 81\nname: app\n")
    ingest(root)
    (root / "b").mkdir()
    (root / "a/app.yaml").rename(root / "b/app.yaml")
    cat, third = ingest(root)
    moved = rows(cat, "WHERE run_id = ?", [third.run_id])
    assert [(r["change"], r["path"], r["old_path"], r["key_path"]) for r in moved] == [
        ("moved", "b/app.yaml", "a/app.yaml", None)
    ]  # no per-key removals and additions
    from kb.changelog import key_history, query_changes

    h = key_history(cat, settings.replace(root=root), "b/app.yaml", "port")
    assert h.paths == ["a/app.yaml"] and h.value == "81"
    assert [(x.change, x.path, x.old_value, x.new_value) for x in h.history] == [("changed", "a/app.yaml", "80", "81")]
    total, by_path = query_changes(cat, path="b/app.yaml")
    assert total == 2 and [c.change for c in by_path] == ["moved", "changed"]


def test_a_file_that_stops_parsing_is_one_broken_row(make_tree, ingest):
    root = make_tree({"d.json": '{"a": 1, "b": 2}\n'})
    cat, _ = ingest(root)
    bump(root / "d.json", '{"a": 1,, "b": 2}\n')
    cat, second = ingest(root)
    bump(root / "d.json", '{"a": 1,,, "b": 2}\n')  # still broken: nothing more
    cat, third = ingest(root)
    got = rows(cat)
    assert [(r["run_id"], r["change"], r["key_path"]) for r in got] == [(second.run_id, "broken", None)]
    assert third.key_changes == 0


def test_record_changes_off_records_nothing(make_tree, ingest):
    root = make_tree({"a.yaml": "x: 1\n"})
    cat, _ = ingest(root, record_changes=False)
    bump(root / "a.yaml", "x: 2\n")
    cat, second = ingest(root, record_changes=False)
    assert second.changed == 1 and second.key_changes == 0 and rows(cat) == []


def test_change_rows_land_in_the_batch_transaction_or_not_at_all(make_tree, ingest, monkeypatch):
    """The change log is written with the file's new rows: a batch that fails leaves neither."""
    root = make_tree({"a.yaml": "x: 1\n"})
    cat, _ = ingest(root)
    bump(root / "a.yaml", "x: 2\n")
    real = Catalogue.insert_rows

    def failing(self, table, table_rows, con=None):
        if table == "run_changes":  # the last insert of the batch's transaction
            raise RuntimeError("disk full")
        return real(self, table, table_rows, con)

    monkeypatch.setattr(Catalogue, "insert_rows", failing)
    with pytest.raises(RuntimeError):
        ingest(root)
    monkeypatch.setattr(Catalogue, "insert_rows", real)
    assert rows(cat) == []
    assert cat.query("SELECT value FROM records WHERE key_path = 'x'") == [("1",)]
    cat, again = ingest(root)  # the next run records it
    assert [(r["change"], r["old_value"], r["new_value"]) for r in rows(cat)] == [("changed", "1", "2")]


# -- git attribution ----------------------------------------------------------------------------


def test_changes_in_a_git_work_tree_carry_the_commit_and_author(tmp_path, ingest):
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(message="init", write={"conf/app.yaml": "a: 1\nb: 2\n"}, date="2024-05-01T10:00:00Z")
    cat, _ = ingest(repo.root)
    sha = repo.step(
        message="change a",
        write={"conf/app.yaml": "a: 5\nc: 3\n"},
        author="Bob <bob@example.com>",
        date="2024-05-02T09:30:00Z",
    )
    cat, _ = ingest(repo.root)
    got = {r["key_path"]: r for r in rows(cat)}
    assert set(got) == {"a", "b", "c"}
    for r in got.values():
        assert r["commit"] == sha and r["author"] == "Bob <bob@example.com>"
    when = cat.query("SELECT DISTINCT committed_at FROM changes")
    assert [w[0].isoformat() for w in when] == ["2024-05-02T09:30:00"]
    # an edit not committed yet: recorded, with no commit
    bump(repo.root / "conf/app.yaml", "a: 6\nc: 3\n")
    cat, third = ingest(repo.root)
    last = rows(cat, "WHERE run_id = ?", [third.run_id])
    assert [(r["key_path"], r["new_value"], r["commit"]) for r in last] == [("a", "6", None)]


def test_a_root_inside_a_repository_uses_repository_paths(tmp_path, ingest):
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(message="init", write={"platform/svc.yaml": "x: 1\n", "other/y.yaml": "y: 1\n"})
    cat, _ = ingest(repo.root / "platform")
    sha = repo.step(message="edit", write={"platform/svc.yaml": "x: 2\n"}, date="2024-01-02T00:00:00Z")
    cat, _ = ingest(repo.root / "platform")
    assert [(r["path"], r["commit"]) for r in rows(cat)] == [("svc.yaml", sha)]


def test_without_git_the_ingest_still_records_changes(tmp_path, ingest, monkeypatch):
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(message="init", write={"a.yaml": "x: 1\n"})
    cat, _ = ingest(repo.root)
    bump(repo.root / "a.yaml", "x: 2\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # no git executable to be found
    cat, second = ingest(repo.root)
    assert [(r["change"], r["commit"]) for r in rows(cat)] == [("changed", None)]


def test_attribution_off_leaves_commits_out(tmp_path, ingest):
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(message="init", write={"a.yaml": "x: 1\n"})
    cat, _ = ingest(repo.root, git_attribution=False)
    repo.step(message="edit", write={"a.yaml": "x: 2\n"}, date="2024-01-02T00:00:00Z")
    cat, _ = ingest(repo.root, git_attribution=False)
    assert [(r["change"], r["commit"]) for r in rows(cat)] == [("changed", None)]


# -- git history --------------------------------------------------------------------------------


def _history_repo(tmp_path: Path) -> ScriptedRepo:
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(
        message="one",
        write={"a.yaml": "x: 1\n", "skip/b.yaml": "y: 1\n", ".kbignore": "skip/\n"},
        date="2024-01-01T00:00:00Z",
    )
    repo.step(message="two", write={"a.yaml": "x: 2\n", "skip/b.yaml": "y: 2\n"}, date="2024-01-02T00:00:00Z")
    repo.step(message="three", write={"a.yaml": "x: 3\n"}, date="2024-01-03T00:00:00Z")
    return repo


def test_git_history_replays_the_last_n_commits_newest_first_and_only_once(tmp_path, ingest, settings):
    repo = _history_repo(tmp_path)
    cat, summary = ingest(repo.root)
    s = settings.replace(root=repo.root)
    done = replay_git_history(cat, s, summary.run_id, 2)
    assert done.commits == 2 and done.changes == 2 and not done.notes
    got = cat.query("SELECT key_path, old_value, new_value, source FROM changes ORDER BY changed_at")
    assert got == [("x", "1", "2", "git"), ("x", "2", "3", "git")]  # skip/ is .kbignore'd
    again = replay_git_history(cat, s, summary.run_id, 10)
    assert again.skipped == 2 and again.commits == 1  # only "one" is new
    assert cat.query("SELECT count(*) FROM changes")[0][0] == 3


def test_git_history_is_bounded_by_time(tmp_path, ingest, settings):
    repo = _history_repo(tmp_path)
    cat, summary = ingest(repo.root)
    t0 = time.perf_counter()
    done = replay_git_history(cat, settings.replace(root=repo.root, git_history_timeout=0), summary.run_id, 100)
    assert time.perf_counter() - t0 < 30
    assert done.commits == 0 and "git_history_timeout" in done.notes[0]


def test_git_history_outside_a_repository_is_a_note_not_an_error(make_tree, ingest, settings):
    root = make_tree({"a.yaml": "x: 1\n"})
    cat, summary = ingest(root)
    done = replay_git_history(cat, settings.replace(root=root), summary.run_id, 10)
    assert done.commits == 0 and "not in a git work tree" in done.notes[0]


def test_attribution_uses_the_one_new_commit_or_blames_line_by_line(tmp_path, ingest):
    repo = ScriptedRepo(tmp_path / "repo")
    first = repo.step(message="init", write={"app.yaml": "x: 1\ny: 1\nz: 1\n"}, date="2024-06-01T00:00:00Z")
    cat, _ = ingest(repo.root)
    assert cat.get_meta("git_head") == first  # the baseline remembers the HEAD it saw
    a = repo.step(message="a", write={"app.yaml": "x: 2\ny: 1\nz: 1\n"}, date="2024-06-02T00:00:00Z")
    b = repo.step(
        message="b",
        write={"app.yaml": "x: 2\ny: 2\nz: 1\n"},
        author="Bob <bob@example.com>",
        date="2024-06-03T00:00:00Z",
    )
    cat, second = ingest(repo.root)  # two commits touched the file: blamed line by line
    got = {r["key_path"]: r["commit"] for r in rows(cat, "WHERE run_id = ?", [second.run_id])}
    assert got == {"x": a, "y": b}
    assert cat.get_meta("git_head") == b
    c = repo.step(message="c", write={"app.yaml": "x: 3\ny: 2\n"}, date="2024-06-04T00:00:00Z")
    cat, third = ingest(repo.root)  # one commit: all its changes are that commit's, removals too
    got = {(r["key_path"], r["change"]): r["commit"] for r in rows(cat, "WHERE run_id = ?", [third.run_id])}
    assert got == {("x", "changed"): c, ("z", "removed"): c}
    cat, fourth = ingest(repo.root)  # no change: nothing recorded, HEAD kept
    assert fourth.key_changes == 0 and cat.get_meta("git_head") == c
    d = repo.step(message="d", write={"app.yaml": "x: 4\ny: 2\n"}, date="2024-06-05T00:00:00Z")
    bump(repo.root / "app.yaml", "x: 4\ny: 5\n")  # committed change plus an uncommitted one: blame
    cat, fifth = ingest(repo.root)
    got = {r["key_path"]: r["commit"] for r in rows(cat, "WHERE run_id = ?", [fifth.run_id])}
    assert got == {"x": d, "y": None}
