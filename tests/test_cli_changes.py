"""The CLI of the change log and the report: kb changes, kb blame, kb report, kb ingest --git-history."""

from __future__ import annotations

import json

from click.testing import CliRunner

from kb.cli import cli
from tests.gitrepo import ScriptedRepo


def run(*args, code=0):
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == code, res.output
    return res.output


def test_ingest_changes_blame_report_on_a_git_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    monkeypatch.setenv("KB_WORKERS", "1")
    repo = ScriptedRepo(tmp_path / "repo")
    repo.step(
        message="init",
        write={"svc/prod.yaml": "database:\n  timeout: 30\n", "svc/.env": "A=1\n"},
        date="2024-04-01T10:00:00Z",
    )
    repo.step(
        message="slower",
        write={"svc/prod.yaml": "database:\n  timeout: 45\n"},
        author="Bob <bob@example.com>",
        date="2024-04-02T10:00:00Z",
    )
    db = str(tmp_path / "kb")
    out = run("ingest", str(repo.root), "--db", db, "--git-history", "5", "-q")
    assert "3 key changes recorded, 2 git commits replayed" in out
    sha = repo.step(
        message="slowest",
        write={"svc/prod.yaml": "database:\n  timeout: 90\n"},
        author="Carol <carol@example.com>",
        date="2024-04-03T10:00:00Z",
    )
    assert "1 key changes recorded" in run("ingest", str(repo.root), "--db", db, "-q")

    listed = json.loads(run("changes", "--db", db, "--key", "*timeout*", "--json"))
    assert listed["total"] == 3
    assert [(c["old_value"], c["new_value"], c["author"], c["source"]) for c in listed["changes"]] == [
        ("45", "90", "Carol <carol@example.com>", "ingest"),
        ("30", "45", "Bob <bob@example.com>", "git"),
        (None, "30", "Alice <alice@example.com>", "git"),
    ]
    assert listed["changes"][0]["commit"] == sha
    table = " ".join(run("changes", "--db", db, "--since", "2024-04-02").split())
    assert "45 → 90" in table and "Carol" in table
    assert json.loads(run("changes", "--db", db, "--since", "2024-04-02T12:00", "--json"))["total"] == 1
    assert "No recorded changes match" in run("changes", "--db", db, "--path", "nowhere/")
    assert "not a run id" in run("changes", "--db", db, "--since", "soon", code=2)

    blame = json.loads(run("blame", "svc/prod.yaml", "database.timeout", "--db", db, "--json"))
    assert blame["value"] == "90" and blame["commit"] == sha and len(blame["history"]) == 3
    text = " ".join(run("blame", "svc/prod.yaml", "database.timeout", "--db", db).split())
    assert "last touched by Carol <carol@example.com>" in text and "slowest" not in text
    assert "has no key" in run("blame", "svc/prod.yaml", "database.nope", "--db", db, code=2)

    page = tmp_path / "out" / "health.html"
    page.parent.mkdir()
    out = run("report", "--db", db, "-o", str(page))
    assert "Health" in out and page.exists()
    html = page.read_text(encoding="utf-8")
    assert "<!doctype html>" in html and "database.timeout" in html
    data = json.loads(run("report", "--db", db, "--json"))
    assert data["changes"]["total"] == 4 and data["validation"]["state"] == "fresh"
    assert data["score"]["value"] == float(html.split('data-score="')[1].split('"')[0])


def test_report_without_a_kb_says_how_to_build_one(tmp_path):
    out = run("report", "--db", str(tmp_path / "none"), "-o", str(tmp_path / "r.html"), code=2)
    assert "kb ingest" in out and not (tmp_path / "none").exists()


def test_git_history_outside_a_repository_is_a_note(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    root = make_tree({"a.yaml": "x: 1\n"})
    out = run("ingest", str(root), "--db", str(tmp_path / "kb"), "--git-history", "10", "-q")
    assert "not in a git work tree" in " ".join(out.split())
    assert json.loads(run("changes", "--db", str(tmp_path / "kb"), "--json")) == {"total": 0, "changes": []}
