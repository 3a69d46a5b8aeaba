"""Issue 22, item 8: a full disk and a damaged KB give a one-line error with its own exit code,
never a traceback; the previous generation stays readable and a resumed KB equals a fresh one.

The full-disk test mounts a small tmpfs when it may (root with the capability), else it bounds the
file size (RLIMIT_FSIZE) of the ingest process, which fails the same writes with EFBIG.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def kb(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def bound() -> None:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KB_MODEL": "hash"}
    return subprocess.run(
        [sys.executable, "-c", "from kb.cli import main; main()", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=bound,
        timeout=300,
    )


def write_files(root: Path, first: int, last: int, note: int = 0) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(first, last):
        extra = f"  note: {'x' * note}\n" if note else ""
        (root / f"f{i}.yaml").write_text(f"svc_{i}:\n  port: {i}\n  host: h{i}.example\n{extra}")


@contextlib.contextmanager
def small_fs(tmp_path: Path, kib: int):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mnt)], capture_output=True)
    try:
        yield mnt, mounted.returncode == 0
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def records(db: Path) -> list[tuple]:
    res = kb(
        "sql", "SELECT path, key_path, value FROM records ORDER BY 1, 2", "--db", str(db), "--json", "--limit", "0"
    )
    assert res.returncode == 0, res.stderr
    return [tuple(r.values()) for r in json.loads(res.stdout)]


@pytest.mark.slow
@pytest.mark.parametrize("free_kib", [40, 900, 2200])
def test_a_full_disk_is_one_line_exit_4_and_the_kb_resumes(tmp_path: Path, free_kib: int):
    with small_fs(tmp_path, 14000) as (mnt, mounted):
        tree, db = mnt / "tree", mnt / "kb"
        write_files(tree, 0, 300)
        assert kb("ingest", str(tree), "--db", str(db), "--no-embed").returncode == 0
        write_files(tree, 300, 700, note=300)
        filler = mnt / "filler"
        limit = None
        if mounted:
            st = os.statvfs(mnt)
            free = st.f_bavail * st.f_frsize - free_kib * 1024
            if free > 0:
                filler.write_bytes(b"\0" * free)
        else:  # no mount allowed: a file-size bound in the writer instead
            limit = (db / "catalogue-000001.duckdb").stat().st_size + free_kib * 1024
        res = kb("ingest", str(tree), "--db", str(db), "--no-embed", limit=limit)
        assert res.returncode == 4, (res.returncode, res.stderr[-2000:])
        assert "Traceback" not in res.stderr and res.stderr.strip().startswith("Error: ")
        assert len(res.stderr.strip().splitlines()) == 1 and "Free space" in res.stderr
        assert not [p.name for p in db.rglob("*.tmp")]
        assert len({r[0] for r in records(db)}) == 300  # the previous generation answers
        filler.unlink(missing_ok=True)
        assert kb("ingest", str(tree), "--db", str(db), "--no-embed").returncode == 0
        resumed = records(db)
    fresh_tree = tmp_path / "fresh"
    write_files(fresh_tree, 0, 300)
    write_files(fresh_tree, 300, 700, note=300)
    assert kb("ingest", str(fresh_tree), "--db", str(tmp_path / "fresh-kb"), "--no-embed").returncode == 0
    assert resumed == records(tmp_path / "fresh-kb")


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xfe{not utf-8",
        b'{"number": 1, "catalogue": "catalogue-000001.duckdb", "dim": "abc"}',
        b"[1, 2]",
        b'{"number": 1, "catalogue": "catalogue-000001.duckdb", "formats": {"hcl": "braces"}}',
    ],
)
def test_a_damaged_head_is_one_line_exit_3_naming_kb_doctor(tmp_path: Path, head: bytes):
    from kb.cli import cli
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "tree", {"a.yaml": "a: 1\n"})
    db = tmp_path / "kb"
    assert CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"]).exit_code == 0
    (db / "HEAD.json").write_bytes(head)
    for args in (["stats"], ["sql", "SELECT 1"], ["search", "a", "--mode", "keyword"], ["ingest", str(root)]):
        res = CliRunner().invoke(cli, [*args, "--db", str(db)])
        assert res.exit_code == 3, (args, res.output)
        assert "kb doctor" in res.output and "Traceback" not in res.output


def test_kb_doctor_says_what_is_damaged_and_what_to_do(tmp_path: Path):
    import shutil

    from kb.cli import cli
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "tree", {"a.yaml": "a: 1\n", "b.json": '{"b": 2}\n'})
    db = tmp_path / "kb"
    assert CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db), "--no-embed"]).exit_code == 0
    res = CliRunner().invoke(cli, ["doctor", "--db", str(db)])
    assert res.exit_code == 0 and "PROBLEM" not in res.output and "2 files" in res.output
    shutil.rmtree(next((db / "keyword").iterdir()))
    (db / next(p.name for p in db.glob("catalogue-*.duckdb"))).write_bytes(b"not a duckdb file" * 100)
    res = CliRunner().invoke(cli, ["doctor", "--db", str(db), "--json"])
    assert res.exit_code == 1
    bad = {c["name"]: c for c in json.loads(res.output) if not c["ok"]}
    assert set(bad) == {"catalogue", "keyword index"} and all(c["fix"] for c in bad.values())
    (db / "HEAD.json").write_bytes(b"\xff")
    res = CliRunner().invoke(cli, ["doctor", "--db", str(db)])
    assert res.exit_code == 1 and "HEAD.json" in res.output and "not UTF-8" in res.output
