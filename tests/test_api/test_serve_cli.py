"""``kb serve``: help, light imports, a clean error for a missing KB, and a real run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
KB = Path(sys.executable).with_name("kb")


def test_serve_help_has_an_example():
    from kb.cli import cli

    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0
    for flag in ("--db", "--root", "--host", "--port", "--watch"):
        assert flag in r.output
    assert "Example:" in r.output


def test_kb_help_does_not_load_the_web_stack():
    code = (
        "import sys; from kb.cli import main; sys.argv = ['kb', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('litestar', 'uvicorn', 'torch', 'watchfiles', 'kb.api.app') if m in sys.modules]\n"
        "print('LOADED', bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120).stdout
    assert "LOADED []" in out and "serve" in out


def test_serve_without_a_kb_is_a_one_line_error(tmp_path):
    from kb.cli import cli

    r = CliRunner().invoke(cli, ["serve", "--db", str(tmp_path / "missing")])
    assert r.exit_code == 2
    assert "kb ingest" in r.output and "Traceback" not in r.output


def test_kb_serve_runs_uvicorn(built, tmp_path):
    _, db = built
    env = {**os.environ, "KB_MODEL": "hash", "HF_HUB_OFFLINE": "1"}
    exe = [str(KB)] if KB.exists() else [sys.executable, "-c", "from kb.cli import main; main()"]
    proc = subprocess.Popen(
        [*exe, "serve", "--db", str(db), "--port", "0", "--json", "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = json.loads(proc.stdout.readline())  # printed once the app has started
        assert ready["db"] == str(db) and ready["writes"] is False and ready["watch"] is False
        url = ready["url"]
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(url + "/health", timeout=10).json()["files"] == 12
        assert httpx.get(url + "/search", params={"q": "DATABASE_URL"}, timeout=10).json()["hits"]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM (exit status -15)
    assert proc.returncode in (0, -15), err
    assert "Traceback" not in err, err
