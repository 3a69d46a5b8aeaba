"""Issue 11: no single file can stall or exhaust an ingest; kb sql limits; the smaller items."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.cli import cli


@pytest.fixture
def forked(monkeypatch):
    """Workers forked from this process, so they run the parser this test patches."""
    from kb.ingest import workers

    monkeypatch.setattr(workers, "START_METHOD", "fork")


def test_a_slow_file_is_skipped_with_file_too_slow_and_the_run_goes_on(make_tree, ingest, monkeypatch, forked):
    import kb.ingest.parsers.json_parser as jp

    orig = jp.parse_json

    def slow(text, limits, **kw):
        if "slow" in text:
            while True:
                pass
        return orig(text, limits, **kw)

    monkeypatch.setattr(jp, "parse_json", slow)
    root = make_tree({"ok.json": '{"a": 1}', "slow.json": '{"slow": true}'})
    t0 = time.monotonic()
    cat, summary = ingest(root, file_timeout=1)
    assert time.monotonic() - t0 < 20
    assert cat.query("SELECT rule FROM findings WHERE path = 'slow.json'") == [("file-too-slow",)]
    assert dict(cat.query("SELECT path, status FROM files")) == {"ok.json": "ok", "slow.json": "skipped"}


def test_a_worker_stuck_where_the_alarm_cannot_reach_is_killed_and_replaced(make_tree, ingest, monkeypatch, forked):
    import kb.ingest.parsers.json_parser as jp
    import kb.ingest.workers as workers

    orig = jp.parse_json

    def stuck(text, limits, **kw):
        if "stuck" in text:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # as if inside a C call that never returns
            while True:
                pass
        if "crash" in text:
            os.kill(os.getpid(), signal.SIGSEGV)
        return orig(text, limits, **kw)

    monkeypatch.setattr(jp, "parse_json", stuck)
    monkeypatch.setattr(workers, "GRACE_SECONDS", 0.5)
    files = {f"f{i}.json": json.dumps({"i": i}) for i in range(250)}
    files |= {"stuck.json": '{"stuck": 1}', "crash.json": '{"crash": 1}'}
    cat, summary = ingest(make_tree(files), file_timeout=1, workers=2)
    assert dict(cat.query("SELECT path, rule FROM findings")) == {
        "stuck.json": "file-too-slow",
        "crash.json": "internal-error",
    }
    assert cat.query("SELECT count(*) FROM files WHERE status = 'ok'") == [(250,)]


def test_a_file_needing_more_than_the_memory_bound_is_a_finding_not_a_crash(make_tree, ingest, monkeypatch, forked):
    import kb.ingest.parsers.yaml_parser as yp

    orig = yp.load_yaml

    def hog(text, limits, **kw):
        if "hog" in text:
            blocks = []
            while True:
                blocks.append(bytearray(50 * 1024 * 1024))
        return orig(text, limits, **kw)

    monkeypatch.setattr(yp, "load_yaml", hog)
    cat, _ = ingest(make_tree({"hog.yaml": "hog: 1\n", "ok.yaml": "a: 1\n"}))
    rules = dict(cat.query("SELECT path, rule FROM findings"))
    assert rules["hog.yaml"] in ("parse-error", "file-too-large")
    assert cat.query("SELECT status FROM files WHERE path = 'ok.yaml'") == [("ok",)]


@pytest.mark.parametrize(
    "shape,text",
    [
        ("one json string", '{"description": "' + "a" * 400_000 + '"}'),
        ("hex yaml item", "items:\n  - " + "0123456789abcdef" * 25_000 + "\n"),
        ("ini spaces", "[s]\nkey = a" + " " * 400_000 + "b\n"),
        ("jwt prefixes", "eyJ" * 130_000),
        ("url schemes", "a://b:" * 60_000),
        ("pem begins", "-----BEGIN RSA PRIVATE KEY-----\n" * 12_000),
        ("assignments", 'k:"' * 130_000),
    ],
)
def test_hostile_files_are_read_in_linear_time(tmp_path: Path, shape: str, text: str):
    """400 KB of each shape takes well under a second or two (the quadratic scans took minutes)."""
    from kb.ingest.pipeline import process_file
    from kb.ingest.walk import WalkEntry

    p = tmp_path / (
        "f.json" if shape.startswith("one") else "f.yaml" if "yaml" in shape else "f.ini" if "ini" in shape else "f.md"
    )
    p.write_text(text)
    t0 = time.perf_counter()
    res = process_file(WalkEntry(p.name, str(p), p.stat().st_size, p.stat().st_mtime), None, 1)
    assert time.perf_counter() - t0 < 8, shape
    assert res.file_row[5] == "ok"


def test_long_nested_yaml_keys_are_a_parse_error_not_gigabytes(make_tree, ingest):
    lines, indent = [], ""
    for d in range(300):
        lines.append(f"{indent}{'k' * 996}{d:03d}:")
        indent += " "
    lines += [f"{indent}leaf{i}: v" for i in range(400)]
    cat, _ = ingest(make_tree({"keys.yaml": "\n".join(lines) + "\n"}))
    msg = cat.query("SELECT message FROM findings WHERE path = 'keys.yaml'")[0][0]
    assert "key paths add up to more than" in msg


def test_a_toml_integer_of_5000_hex_digits_is_kept_as_text(make_tree, ingest):
    cat, _ = ingest(make_tree({"big.toml": "n = 0x" + "f" * 5000 + "\n", "big.json": '{"n": ' + "9" * 5000 + "}"}))
    assert cat.query("SELECT count(*) FROM findings") == [(0,)]
    assert cat.query("SELECT value FROM records WHERE path = 'big.toml'")[0][0].startswith("0xfff")


def test_a_max_file_size_past_what_read_takes_is_no_cap(make_tree, ingest):
    cat, _ = ingest(make_tree({"a.yaml": "a: 1\n"}), max_file_size=99999999999999999999)
    assert cat.query("SELECT status FROM files") == [("ok",)]
    assert cat.query("SELECT count(*) FROM findings") == [(0,)]


@pytest.fixture
def small_kb(make_tree, tmp_path):
    root = make_tree({"a.yaml": "a: 1\n", "names/back\\slash.yaml": "b: 2\n", "esc\x1b]0;pwned\x07.yaml": "c: 3\n"})
    db = tmp_path / "kbdir"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"])
    assert res.exit_code == 0, res.output
    return root, db


def test_kb_sql_limits_rows_time_and_result_size(small_kb):
    _, db = small_kb
    run = lambda *a: CliRunner().invoke(cli, ["sql", *a, "--db", str(db)])  # noqa: E731
    res = run("SELECT * FROM range(20000000)", "--csv")
    assert res.exit_code == 0 and res.stdout.count("\n") == 1001 and "--limit" in res.stderr
    res = run("SELECT * FROM range(5000)", "--csv", "--limit", "0")
    assert res.stdout.count("\n") == 5001
    res = run("SELECT repeat('x', 100000000) AS s")
    assert res.exit_code == 2 and "larger than 64 MB" in res.stderr and len(res.stdout) < 1000
    res = run("SELECT count(*) FROM range(10000000000) a, range(10) b", "--timeout", "0.5")
    assert res.exit_code == 2 and "ran past the 0.5 s limit" in res.stderr
    res = run("SELECT 1", "--memory", "lots")
    assert res.exit_code == 2 and "512MB" in res.stderr


def test_kb_sql_csv_ends_lines_with_lf(small_kb):
    _, db = small_kb
    res = CliRunner().invoke(cli, ["sql", "SELECT path FROM files ORDER BY 1", "--csv", "--db", str(db)])
    assert "\r" not in res.output and res.output.startswith("path\n")


def test_control_characters_in_file_names_never_reach_the_terminal(small_kb):
    _, db = small_kb
    for args in (
        ["sql", "SELECT path FROM files"],
        ["sql", "SELECT path FROM files", "--csv"],
        ["stats"],
        ["show", "esc\x1b]0;pwned\x07.yaml"],
    ):
        res = CliRunner().invoke(cli, [*args, "--db", str(db)])
        assert "\x07" not in res.output and "\x1b]" not in res.output, args
    assert (
        "\\x1b]0;pwned\\x07"
        in CliRunner().invoke(cli, ["sql", "SELECT path FROM files", "--csv", "--db", str(db)]).output
    )


@pytest.mark.parametrize("bad", ["file", "proc", "unwritable"])
def test_a_bad_db_path_is_a_one_line_error(tmp_path: Path, make_tree, bad: str):
    root = make_tree({"a.yaml": "a: 1\n"})
    if bad == "file":
        db = tmp_path / "afile"
        db.write_text("x")
    elif bad == "proc":
        db = Path("/proc/kb-nowhere/x")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        db = ro / "kb"
        if os.access(ro, os.W_OK):  # root ignores permissions: a folder under a file instead
            (tmp_path / "f").write_text("x")
            db = tmp_path / "f" / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"])
    assert res.exit_code == 2 and "Traceback" not in res.stderr + res.stdout and "--db" in res.stderr


def test_kb_config_hides_a_password_in_the_chroma_url():
    res = CliRunner().invoke(cli, ["config", "--json"], env={"KB_CHROMA_URL": "http://admin:hunter2pw@chroma:8000"})
    assert res.exit_code == 0 and "hunter2pw" not in res.output
    assert json.loads(res.output)["settings"]["chroma_url"] == "http://admin:***@chroma:8000"


def test_a_catalogued_file_with_a_backslash_in_its_name_is_served(small_kb):
    from litestar.testing import TestClient

    from kb.api.app import create_app
    from kb.settings import Settings

    root, db = small_kb
    with TestClient(create_app(Settings(db=db, root=root, model="hash"), watch=False)) as client:
        assert client.get("/files/names/back%5cslash.yaml").status_code == 200
        assert client.get("/files/names/..%5c..%5cetc%5cpasswd").status_code == 404


def test_a_malformed_request_line_is_a_json_400():
    import socket
    import threading

    import uvicorn

    from kb.api.http_protocol import protocol_class

    async def app(scope, receive, send):  # never reached
        raise AssertionError

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical", http=protocol_class())
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    th = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        with socket.create_connection(sock.getsockname()[:2], timeout=5) as c:
            c.sendall(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while chunk := c.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
        assert json.loads(body)["status_code"] == 400
    finally:
        server.should_exit = True
        th.join(5)


def test_workers_start_clean_not_as_copies_of_the_calling_process(make_tree, ingest, monkeypatch):
    """Workers come from a fork server, not from this process (which, in `kb serve` or a notebook,
    holds threads, a model and databases that a forked child could crash on): a change made here is
    not seen by them."""
    import kb.ingest.parsers.json_parser as jp

    def broken(*args, **kwargs):
        raise AssertionError("the worker ran this process's patched parser")

    monkeypatch.setattr(jp, "parse_json", broken)
    files = {f"f{i:03d}.json": f'{{"n": {i}}}' for i in range(250)}  # enough for worker processes
    cat, summary = ingest(make_tree(files), workers=2)
    assert summary.added == 250
    assert cat.query("SELECT count(*) FROM findings WHERE rule = 'internal-error'")[0][0] == 0
    assert cat.query("SELECT count(*) FROM records")[0][0] == 250


class _DiesWhenSent:
    """A result whose pickling ends the worker process: it dies between tasks, blaming none."""

    def __reduce__(self):
        os._exit(3)


def _result_for(kind: str):
    if kind == "huge":
        return "x" * (150 * 1024 * 1024)
    if kind == "dies":
        return _DiesWhenSent()
    return kind


def _run_map(tasks: list[tuple], memory: int) -> dict:
    from kb.ingest.workers import supervised_map

    return dict(
        supervised_map(
            _result_for,
            tasks,
            workers=1,
            timeout=0,
            on_timeout=lambda t: "slow",
            on_crash=lambda t: "crash",
            on_memory=lambda t: "memory",
            memory=memory,
            chunksize=len(tasks),
        )
    )


def test_a_result_too_big_to_send_within_the_bound_is_a_memory_finding(forked):
    # a 150 MB result is made within a 200 MB bound, but pickling it needs as much again
    assert _run_map([("a",), ("huge",), ("b",)], 200 * 1024 * 1024) == {0: "a", 1: "memory", 2: "b"}


def test_a_worker_dying_between_tasks_never_makes_the_map_loop(forked):
    # the chunk is lost after its tasks ran: each goes back alone, and the one that kills its
    # worker again is given up on (it used to be handed out forever)
    assert _run_map([("a",), ("dies",), ("b",)], 0) == {0: "a", 1: "memory", 2: "b"}


def _task_outcome(kind: str):
    if kind == "memerr":
        raise MemoryError  # its worker is replaced after this chunk
    if kind == "crash":
        os._exit(7)  # its worker dies in the middle of the chunk
    return kind


def test_chunks_queued_behind_a_replaced_or_dead_worker_are_all_answered_once(forked):
    # two chunks are handed to each worker ahead of its answers; when a worker is replaced (memory)
    # or dies (crash), the chunks queued behind go to a worker again, each task answered once
    from kb.ingest.workers import supervised_map

    kinds = [f"t{i}" for i in range(40)]
    kinds[5] = "memerr"
    kinds[12] = "crash"
    kinds[31] = "memerr"

    results: list = []
    run = threading.Thread(
        target=lambda: results.extend(
            supervised_map(
                _task_outcome,
                [(k,) for k in kinds],
                workers=2,
                timeout=0,
                on_timeout=lambda t: "slow",
                on_crash=lambda t: "crash-finding",
                on_memory=lambda t: "memory-finding",
                memory=0,
                chunksize=3,
            )
        ),
        daemon=True,
    )
    run.start()
    run.join(60)
    assert not run.is_alive(), "a task was never answered: the map is still waiting for it"
    assert sorted(i for i, _ in results) == list(range(40))  # each exactly once
    expected = dict(enumerate(kinds))
    expected.update({5: "memory-finding", 12: "crash-finding", 31: "memory-finding"})
    assert dict(results) == expected


@pytest.mark.slow
def test_a_folder_named_kb_in_the_working_directory_does_not_shadow_kb_in_the_workers(tmp_path):
    """`kb ingest tree --db kb`, run again beside its KB: the fork server's import path started with
    the working directory, so the KB's folders (`kb/keyword`) shadowed kb's modules and every file
    of a change big enough for worker processes became a file-too-large finding."""
    import os
    import subprocess
    import sys

    tree = tmp_path / "tree"
    tree.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"} | {"KB_MODEL": "hash", "KB_WORKERS": "2"}

    def kb(*args: str) -> subprocess.CompletedProcess:
        cmd = [str(Path(sys.executable).parent / "kb"), *args]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    (tree / "a.yaml").write_text("a: 1\n")
    assert kb("ingest", "tree", "--db", "kb", "--no-embed", "-q").returncode == 0
    assert (tmp_path / "kb" / "keyword").is_dir()
    for i in range(240):
        (tree / f"f{i}.yaml").write_text(f"svc_{i}:\n  port: {i}\n")
    run = kb("ingest", "tree", "--db", "kb", "--no-embed", "-q")
    assert run.returncode == 0, run.stderr[-2000:]
    out = kb("sql", "SELECT count(*) FROM findings WHERE rule = 'file-too-large'", "--db", "kb", "--csv")
    assert out.stdout.strip().splitlines()[-1] == "0", (out.stdout, out.stderr[-2000:])
