"""The CLI beside grep, jq and sqlite-utils: real pipes (subprocesses), exit codes, progress lines,
Ctrl-C, answer lines, highlighting, kb config's sources."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli
from tests.conftest import write_tree

REPO = Path(__file__).resolve().parents[1]
LONG = "a_key_whose_name_is_long_enough_to_push_a_finding_message_past_eighty_columns"


def kb(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the CLI as a user's shell would, stdout and stderr both pipes (not terminals)."""
    full = {**os.environ, "KB_EMBED": "0", "KB_WORKERS": "1", "PYTHONPATH": str(REPO), **(env or {})}
    full.pop("FORCE_COLOR", None)
    return subprocess.run(
        [sys.executable, "-c", "from kb.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipes")
    root = write_tree(
        tmp / "tree",
        {
            "svc/config.yaml": f"server:\n  port: 8080\n  {LONG}: ${{UNDEFINED_VARIABLE_WITH_A_LONG_NAME}}\n",
            "svc/retry.yaml": "retry:\n  max_attempts: 5\n  backoff: other\n  theme: dark\n",
            "docs/guide.md": "# Guide\n\nThe retry policy lives in svc/retry.yaml.\n",
        },
    )
    db = tmp / "kb"
    res = kb("ingest", str(root), "--db", str(db), env={"KB_PROGRESS_EVERY": "0"})
    assert res.returncode == 0, res.stderr
    return root, db, res


def test_progress_lines_on_a_pipe(piped):
    """Not a terminal: plain lines on stderr with phase, done/total, percentage and a last "done"."""
    _, _, res = piped
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("kb ingest: ")]
    assert lines, res.stderr
    pattern = re.compile(r"kb ingest: [\w-]+ [\d,]+/[\d,]+ \(\d+\.\d%\)(, [\d.,]+/s)?(, ETA \d+:\d\d)?(, done)?$")
    assert all(pattern.match(ln) for ln in lines), lines
    assert any(ln.endswith("done") for ln in lines)
    assert "\x1b[" not in res.stderr and "\r" not in res.stderr  # no cursor movement, no colour


@pytest.mark.parametrize("args", [("search", "retry"), ("search", "retry", "-l"), ("sql", "SELECT * FROM chunks")])
def test_a_reader_that_leaves_ends_the_command_with_141_not_1(piped, args):
    """``kb search ... | head``: 1 would read as "nothing found" under ``set -o pipefail``; a pipe
    nobody reads any more ends the command quietly with 141, as a shell reports SIGPIPE."""
    _, db, _ = piped
    full = {**os.environ, "KB_EMBED": "0", "PYTHONPATH": str(REPO)}
    full.pop("FORCE_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kb.cli import main; main()", *args, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full,
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err


def test_an_output_file_that_cannot_be_written_is_named_without_blaming_the_kb(piped, tmp_path):
    _, db, _ = piped
    target = tmp_path / "missing" / "graph.dot"
    res = kb("graph", "export", "--format", "dot", "-o", str(target), "--db", str(db))
    assert res.returncode == 2
    assert f"No such file or directory: '{target}'. Check that the path exists" in res.stderr


def test_serve_on_a_port_another_process_holds_says_so_and_exits_2(piped):
    import socket

    _, db, _ = piped
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        res = kb("serve", "--db", str(db), "--port", str(port))
    assert res.returncode == 2, res.stderr  # not 3, which kb's codes keep for a damaged KB
    assert f"cannot listen on 127.0.0.1:{port}" in res.stderr and "--port (0 picks a free one)" in res.stderr


def test_progress_lines_come_every_few_seconds_not_per_update():
    from io import StringIO

    from kb.cli.progress import LineProgress

    now = [0.0]
    out = StringIO()
    p = LineProgress("ingest", every=5.0, stream=out, clock=lambda: now[0])
    for i in range(1, 101):
        now[0] = i * 0.5
        p("embed", i * 10, 1000)
    p("embed", 1000, 1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # the first (0.5 s), one per 5 s until 45.5 s, the end: not 101
    assert lines[5] == "kb ingest: embed 510/1,000 (51.0%), 20/s, ETA 0:24"
    assert lines[-1].endswith("done")


def test_piped_output_is_not_wrapped(piped):
    _, db, _ = piped
    assert kb("validate", "--db", str(db)).returncode == 1
    out = kb("findings", "--db", str(db)).stdout
    line = next(ln for ln in out.splitlines() if "UNDEFINED_VARIABLE_WITH_A_LONG_NAME" in ln)
    assert len(line) > 120 and line.startswith("svc/config.yaml:3  error  undefined-variable")
    hist = kb("history", "--db", str(db)).stdout
    assert "…" not in hist and "complete" in hist


def test_search_exit_status_files_plain_and_context(piped):
    _, db, _ = piped
    base = ("--db", str(db), "--mode", "keyword")
    none = kb("search", "zzzznothing", *base)
    assert none.returncode == 1 and none.stdout == "" and "No hits" in none.stderr
    assert kb("search", "zzzznothing", *base, "--json").returncode == 1
    assert kb("search", "zzzznothing", *base, "-l").returncode == 1
    files = kb("search", "retry", *base, "-l")
    assert files.returncode == 0 and files.stdout.splitlines()[0] in ("svc/retry.yaml", "docs/guide.md")
    assert len(set(files.stdout.splitlines())) == len(files.stdout.splitlines())
    plain = kb("search", "max_attempts", *base, "--plain", "-k", "1")
    assert plain.returncode == 0 and "svc/retry.yaml:2:  max_attempts: 5" in plain.stdout.splitlines()
    ctx = kb("search", "max_attempts", *base, "--plain", "-k", "1", "--context", "2")
    assert ctx.returncode == 0 and "svc/retry.yaml:2:  max_attempts: 5" in ctx.stdout.splitlines()
    assert "Exit status" in kb("search", "--help").stdout
    every = kb("search", "retry", *base, "--all", "--json")
    data = json.loads(every.stdout)
    assert every.returncode == 0 and data["grouped"] is True
    assert sorted(h["path"] for h in data["hits"]) == ["docs/guide.md", "svc/retry.yaml"]


def test_context_lines_surround_the_hit_and_read_as_grep_context():
    from kb.cli.commands import search
    from kb.types import Hit

    hit = Hit(path="a.yaml", score=1.0, line_start=3, line_end=3, snippet="  port: 80")
    around = {"a.yaml": {1: "server:", 2: "  host: x", 3: "  port: 80", 4: "  tls: true", 5: "db:"}}
    runner = CliRunner()
    with runner.isolation() as (out, _err, *_):
        search._print_plain([hit], around, 2)
    assert out.getvalue().decode().splitlines() == [
        "a.yaml:1-server:",
        "a.yaml:2-  host: x",
        "a.yaml:3:  port: 80",
        "a.yaml:4-  tls: true",
        "a.yaml:5-db:",
    ]
    # the stored lines are whole sections (and every hit's of the file): -C 1 shows one line a side
    with runner.isolation() as (out, _err, *_):
        search._print_plain([hit], around, 1)
    assert out.getvalue().decode().splitlines() == ["a.yaml:2-  host: x", "a.yaml:3:  port: 80", "a.yaml:4-  tls: true"]


def test_answer_lines_come_first_and_plain_keeps_them():
    from kb.cli.commands import search
    from kb.types import AnswerLine, Hit

    hit = Hit(
        path="charts/web/values.yaml",
        score=1.0,
        line_start=3,
        line_end=4,
        key_path="controller",
        snippet="  replicaCount: 3\n  image: web",
        answer=[AnswerLine(line=3, key_path="controller.replicaCount", value="3")],
    )
    assert search.answer_lines(hit) == ["charts/web/values.yaml:3  controller.replicaCount = 3"]
    assert search.answer_lines(hit.model_copy(update={"answer": []})) == []
    runner = CliRunner()
    with runner.isolation() as (out, _err, *_):
        search._print_plain([hit], {}, 0)
        search.print_hits("replicas", [hit])
    text = out.getvalue().decode()
    lines = text.splitlines()
    assert lines[:3] == [
        "charts/web/values.yaml:3:controller.replicaCount = 3",
        "charts/web/values.yaml:3:  replicaCount: 3",
        "charts/web/values.yaml:4:  image: web",
    ]
    human = lines[3:]
    assert human[0].startswith("charts/web/values.yaml:3-4  controller")
    assert human[1] == "charts/web/values.yaml:3  controller.replicaCount = 3"  # before the snippet
    assert "replicaCount: 3" in human[2]


def test_highlighting_matches_words_not_letters_inside_words():
    from kb.cli.commands.search import word_spans

    line = "The theme of the other fraudReview: max_retries"
    hits = [line[a:b] for a, b in word_spans(line, {"the", "review", "max"})]
    assert hits == ["The", "the", "Review", "max"]


def test_the_search_page_highlights_whole_words(tmp_path):
    """The page's own wordSpans, run by node when present (the browser test covers the page)."""
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed; tests/test_api/test_page.py drives the page in Chromium")
    page = (REPO / "api/static/index.html").read_text(encoding="utf-8")
    fn = page[page.index("  function wordSpans") : page.index("  // Append `text`")]
    script = fn + (
        "const line = 'The theme of the other fraudReview: max_retries';"
        "console.log(JSON.stringify(wordSpans(line, ['the', 'review', 'max']).map(s => line.slice(s[0], s[1]))));"
    )
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["The", "the", "Review", "max"]


def test_ctrl_c_exits_130_and_says_what_was_kept(tmp_path, monkeypatch):
    from kb.knowledge import KnowledgeBase

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(KnowledgeBase, "ingest", interrupted)
    root = write_tree(tmp_path / "t", {"a.yaml": "a: 1\n"})
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(tmp_path / "kb"), "-q"])
    assert res.exit_code == 130
    assert "interrupted: the last published generation is intact" in res.stderr and "Aborted" not in res.output


@pytest.mark.slow
def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT to a running `kb ingest` (a pipe, no terminal): exit 130 and the "interrupted" line."""
    import signal
    import time

    # 20,000 files: parsed in ~6 s, so the signal lands mid-run even on a loaded CI machine (2,000
    # were done in 1.5 s, and a slow test runner sometimes signalled a process that had finished)
    root = write_tree(tmp_path / "t", {f"d{i}/f{j}.yaml": f"k{j}: {i}\n" for i in range(200) for j in range(100)})
    env = {**os.environ, "KB_EMBED": "0", "KB_WORKERS": "1", "KB_PROGRESS_EVERY": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from kb.cli import main; main()", "ingest", str(root), "--db", str(tmp_path / "kb")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        # a test runner started in the background of a script ignores SIGINT, and its children
        # inherit that (Python then installs no KeyboardInterrupt): Ctrl-C's default, as in a shell
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it is working
        if proc.stderr.readline().startswith("kb ingest:"):
            break
    assert proc.poll() is None, "the ingest finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and "Traceback" not in err


def test_config_says_where_each_value_comes_from_and_hides_url_tokens(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.kb]\nknown_env = ["CI"]\n')
    res = kb(
        "config",
        "--json",
        "--db",
        str(tmp_path / "kb"),
        env={"KB_CHROMA_URL": "https://chroma.example:8000/?token=s3cr3tvalue&tenant=t1", "KB_MODEL": "hash"},
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert "s3cr3tvalue" not in res.stdout
    assert out["settings"]["chroma_url"] == "https://chroma.example:8000/?token=***&tenant=t1"
    src = out["sources"]
    assert src["db"] == "flag" and src["model"] == "env KB_MODEL" and src["chroma_url"] == "env KB_CHROMA_URL"
    assert src["known_env"] == "pyproject.toml [tool.kb]" and src["max_depth"] == "default"
    human = kb("config", env={"KB_MODEL": "hash"}, cwd=tmp_path).stdout
    line = next(ln for ln in human.splitlines() if ln.startswith("max_depth ="))
    assert "default" in line and "env" not in line.split("(KB_")[0]


@pytest.mark.slow
def test_kb_mcp_exits_cleanly_when_the_client_leaves_at_once(piped):
    """A client that connects and closes stdin at once (while the model may still be loading):
    exit 0, never "terminate called without an active exception" (an abort, exit 134)."""
    _, db, _ = piped
    for _ in range(3):
        res = subprocess.run(
            [sys.executable, "-c", "from kb.cli import main; main()", "mcp", "--db", str(db)],
            input="",
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
            cwd=REPO,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr
        assert "terminate called" not in res.stderr and "Traceback" not in res.stderr


def test_kb_demo_on_a_pipe_has_short_rules_and_answer_lines(tmp_path):
    """Piped, ``kb demo`` draws each section line at 80 columns (not the unbounded width that keeps
    other lines whole: a million dashes on one line) with its whole title, and prints the hits as
    ``kb search`` does: the answer lines first."""
    res = kb("demo", "-q", "--db", str(tmp_path / "demo"), env={"KB_EMBED": "1", "KB_MODEL": "hash"}, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert max(len(ln) for ln in lines) < 1000
    rules = [ln for ln in lines if ln.startswith("─")]
    assert len(rules) == 4 and all(len(r) >= 80 for r in rules)
    assert any("Where is the fraud-review threshold for payments in production?" in r for r in rules)
    assert "services/payments/config/production.yaml:25  fraud.review_threshold = 0.85" in lines


def test_a_hint_to_run_a_command_quotes_a_path_with_a_space(tmp_path):
    """The command a message tells a person to run works when pasted: a folder with a space is
    quoted, and --db is kept."""
    from kb.errors import ingest_command

    db = tmp_path / "my kb"
    res = kb("search", "retry", "--db", str(db))
    assert res.returncode == 2
    assert f"Run `kb ingest PATH --db '{db}'` first." in res.stderr
    assert ingest_command("/kbs/my kb", "/trees/tree with spaces") == (
        "kb ingest '/trees/tree with spaces' --db '/kbs/my kb'"
    )
