"""The CLI's catalogue commands: output shapes, --json everywhere, exit codes, read-only SQL."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from kb.cli import cli


@pytest.fixture
def kbdir(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    root = make_tree(
        {
            "svc/config.yaml": "server:\n  port: 8080\n  host: 0.0.0.0\n",
            "svc/.env": "DATABASE_URL=postgres://db/app\n",
            "bad.json": "{",
        }
    )
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "-q", "--workers", "1"])
    assert res.exit_code == 0, res.output
    assert "Files by format" in res.output and "parse-error" in res.output
    return db


def run(*args, code=0):
    res = CliRunner().invoke(cli, list(args))
    assert res.exit_code == code, res.output
    return res.output


def test_ingest_json_summary(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    root = make_tree({"a.yaml": "a: 1\n", "b.toml": "x = 1\n"})
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(tmp_path / "k"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)  # progress lines go to stderr
    assert out["added"] == 2 and out["by_format"] == {"toml": 1, "yaml": 1} and out["status"] == "complete"


def test_stats_show_history_findings(kbdir):
    st = json.loads(run("stats", "--db", str(kbdir), "--json"))
    assert st["files"] == 3 and st["findings_by_rule"] == {"parse-error": 1}
    shown = json.loads(run("show", "svc/config.yaml", "--db", str(kbdir), "--json"))
    assert [(r["key_path"], r["value"], r["line"]) for r in shown["records"]] == [
        ("server.port", "8080", 2),
        ("server.host", "0.0.0.0", 3),
    ]
    assert "server.port" in run("show", "svc/config.yaml", "--db", str(kbdir))
    hist = json.loads(run("history", "--db", str(kbdir), "--json"))
    assert hist[0]["added"] == 3
    changes = json.loads(run("history", "--run", str(hist[0]["id"]), "--db", str(kbdir), "--json"))
    assert {c["path"] for c in changes} == {"svc/config.yaml", "svc/.env", "bad.json"}
    missing = run("history", "--run", str(hist[0]["id"] + 98), "--db", str(kbdir), code=2)
    assert f"No ingest run {hist[0]['id'] + 98}" in missing and f"the last is run {hist[0]['id']}" in missing
    page = json.loads(run("findings", "--db", str(kbdir), "--json"))
    f = page["findings"]
    assert page["total"] == len(f) == 1 and page["offset"] == 0
    assert f[0]["rule"] == "parse-error" and f[0]["path"] == "bad.json" and f[0]["line"] == 1
    run("findings", "--db", str(kbdir), "--fail-on", "error", code=1)
    run("findings", "--db", str(kbdir), "--fail-on", "error", "--rule", "plaintext-secret", code=0)


def test_show_unknown_file_suggests(kbdir):
    out = run("show", "config.yaml", "--db", str(kbdir), code=2)
    assert "not a catalogued file" in out and "Did you mean: svc/config.yaml" in out


def test_sql_table_csv_json_and_read_only(kbdir):
    q = "SELECT format, count(*) AS n FROM files GROUP BY 1 ORDER BY 1"
    assert json.loads(run("sql", q, "--db", str(kbdir), "--json")) == [
        {"format": "dotenv", "n": 1},
        {"format": "json", "n": 1},
        {"format": "yaml", "n": 1},
    ]
    assert run("sql", q, "--db", str(kbdir), "--csv").splitlines()[:2] == ["format,n", "dotenv,1"]
    assert "dotenv" in run("sql", q, "--db", str(kbdir))
    out = run("sql", "DELETE FROM files", "--db", str(kbdir), code=2)
    assert "read-only" in out
    out = run("sql", "SELEC 1", "--db", str(kbdir), code=2)
    assert "SQL error" in out


def test_missing_kb_is_a_clear_error(tmp_path):
    out = run("stats", "--db", str(tmp_path / "nope"), code=2)
    assert "No knowledge base" in out and "kb ingest" in out


def test_every_command_has_json_and_an_example():
    from kb.cli import _discover

    _discover(cli)
    for name, cmd in cli.commands.items():
        assert "Example:" in (cmd.help or ""), name
        opts = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if isinstance(cmd, click.Group):  # a group: its subcommands
            for sub in cmd.commands.values():
                assert "--json" in {o for p in sub.params for o in getattr(p, "opts", [])} or sub.name == "export", (
                    name,
                    sub.name,
                )
        else:
            assert "--json" in opts, name


def test_sql_cannot_touch_other_files_and_config_takes_db(kbdir, tmp_path):
    run("sql", f"COPY files TO '{tmp_path / 'x.csv'}'", "--db", str(kbdir), code=2)
    assert not (tmp_path / "x.csv").exists()
    run("sql", "SELECT * FROM read_csv('/etc/passwd')", "--db", str(kbdir), code=2)
    assert json.loads(run("config", "--db", str(kbdir), "--json"))["settings"]["db"] == str(kbdir)


def test_a_search_from_the_shell_loads_no_dataframe_or_arrow_library(make_tree, tmp_path):
    """A cold ``kb search`` reads through DuckDB alone: pyarrow (~70 MB of its memory), pandas and
    torch are for writes, frames and builds."""
    import os
    import subprocess
    import sys

    from kb import KnowledgeBase

    root = make_tree({"payments/prod.yaml": "fraud:\n  review_threshold: 0.85\n"})
    db = tmp_path / "kb"
    KnowledgeBase.build(root, db=db, model="hash", workers=1).close()
    code = (
        "import sys; from kb.cli import main\n"
        f"sys.argv = ['kb', 'search', 'fraud review threshold', '--db', {str(db)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted({m.split('.')[0] for m in sys.modules} & {'pyarrow', 'pandas', 'torch'}))"
    )
    env = {**os.environ, "KB_MODEL": "hash"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120).stdout
    assert "payments/prod.yaml" in out
    assert "LOADED []" in out
