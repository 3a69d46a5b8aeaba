"""Golden tests of the change log on scripted git repositories.

Each ``tests/changelog_golden/<case>.json`` scripts commits (files written, deleted, moved; fixed
authors and dates). The test replays the script twice:

* ``ingest``: ``kb ingest`` after every step (the first is the baseline), so changes are seen by
  ingests and attributed with ``git blame``;
* ``history``: one new KB built after the last step with ``--git-history``;

and compares both change logs, and ``kb blame`` of the listed keys, with ``<case>.expected.json``
(commits named by their message, since shas depend on nothing but the script, but are unreadable).
Adding a case adds a file. ``KB_UPDATE_GOLDEN=1`` rewrites the expected files (then review them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from tests.gitrepo import ScriptedRepo

CASES = sorted((Path(__file__).resolve().parents[1] / "changelog_golden").glob("*.json"))
CASES = [c for c in CASES if not c.name.endswith(".expected.json")]
_KEEP = (
    "run_id",
    "change",
    "path",
    "doc",
    "key_path",
    "old_value",
    "new_value",
    "old_type",
    "new_type",
    "line",
    "old_path",
    "commit",
    "author",
    "committed_at",
    "source",
)


def _kb(*args: str) -> dict:
    res = CliRunner().invoke(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _norm(rows: list[dict], subjects: dict[str, str]) -> list[dict]:
    out = []
    for r in rows:
        row = {k: r[k] for k in _KEEP}
        if row["commit"] is not None:
            row["commit"] = subjects.get(row["commit"], "?unknown commit")
        out.append(row)
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_change_log_golden(case: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    monkeypatch.setenv("KB_WORKERS", "1")
    script = json.loads(case.read_text(encoding="utf-8"))
    repo = ScriptedRepo(tmp_path / "repo")
    subjects: dict[str, str] = {}
    db = tmp_path / "kb-ingest"
    n_commits = 0
    for step in script["steps"]:
        sha = repo.step(
            message=step.get("message"),
            write=step.get("write"),
            delete=step.get("delete"),
            move=step.get("move"),
            author=step.get("author", "Alice <alice@example.com>"),
            date=step.get("date", "2024-01-01T10:00:00Z"),
            commit=step.get("commit", True),
        )
        if sha:
            subjects[sha] = step["message"]
            n_commits += 1
        _kb("ingest", str(repo.root), "--db", str(db), "-q")
    got: dict = {"ingest": _norm(_kb("changes", "--db", str(db), "-n", "10000")["changes"], subjects)}

    hist_db = tmp_path / "kb-history"
    summary = _kb("ingest", str(repo.root), "--db", str(hist_db), "-q", "--git-history", str(n_commits + 5))
    assert summary["history_commits"] == n_commits
    got["history"] = _norm(_kb("changes", "--db", str(hist_db), "-n", "10000")["changes"], subjects)
    got["blame"] = []
    for b in script.get("blame", []):
        for name, where in (("ingest", db), ("history", hist_db)):
            h = _kb("blame", b["path"], b["key"], "--db", str(where))
            got["blame"].append(
                {
                    "kb": name,
                    "path": h["path"],
                    "key": h["key_path"],
                    "value": h["value"],
                    "line": h["line"],
                    "earlier_paths": h["paths"],
                    "last_touched_by": subjects.get(h["commit"]) if h["commit"] else None,
                    "history": [
                        (
                            x["change"],
                            x["path"],
                            x["old_value"],
                            x["new_value"],
                            subjects.get(x["commit"]) if x["commit"] else None,
                        )
                        for x in h["history"]
                    ],
                }
            )
    got = json.loads(json.dumps(got))  # tuples -> lists, as in the file

    expected_file = case.with_suffix(".expected.json")
    if os.environ.get("KB_UPDATE_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    expected = json.loads(expected_file.read_text(encoding="utf-8"))
    assert got["ingest"] == expected["ingest"]
    assert got["history"] == expected["history"]
    assert got["blame"] == expected["blame"]
