"""Many readers and one writer, in separate processes, for over a minute: never a lock error.

At once: a process holding ``KnowledgeBase.open``, ``kb serve`` under five clients of ``/search``,
a loop of ``kb search`` from the shell, and repeated ``kb ingest`` of a tree whose files all change
between runs — one of those runs killed with ``kill -9`` half-way. Every file of round ``r`` holds
the word ``roundr``: an answer whose hits mix rounds, or name a round no ingest published, would
come from no committed generation. After the last ingest every reader returns the last round.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.rounds import FILES, KB_CMD, REPO, kb_env, rounds_in, serve, stop, write_round

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

MIN_SECONDS = 60

HOLDER = r"""
import json, sys, time
from kb import KnowledgeBase
kb = KnowledgeBase.open(sys.argv[1])            # held for the whole test, like a notebook
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        r = kb.search_result("roundtoken", mode="hybrid", k=50)
        n = int(kb.sql("SELECT count(*) AS n FROM files")["n"][0])
        print(json.dumps({"gen": r.generation, "snippets": [h.snippet for h in r.hits], "files": n}), flush=True)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
    time.sleep(0.05)
"""


def test_readers_and_one_writer_for_a_minute_without_a_lock_error(tmp_path):
    mixed_readers_and_writer(tmp_path, MIN_SECONDS, {})


def test_the_same_with_a_chroma_server(tmp_path, chroma_server):
    """With ``KB_CHROMA_URL`` the writer mirrors vectors into a Chroma server; the readers' guarantees
    are the same (a shorter run: the minute-long one above covers time)."""
    mixed_readers_and_writer(tmp_path, 20, {"KB_CHROMA_URL": chroma_server})
    from kb import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb", model="hash", chroma_url=chroma_server) as kb:
        r = kb.search_result("roundtoken", mode="semantic", k=5)
        assert r.embedded_share == 1.0 and r.hits
    from kb.generations import read_head
    from kb.vectors import ChromaMirror

    head = read_head(tmp_path / "kb")
    mirror = ChromaMirror(tmp_path / "kb", chroma_url=chroma_server, collection=f"kb_{head.kb_id}")
    assert mirror.count() == sum(head.vectors.values())  # every published vector is in the server


def mixed_readers_and_writer(tmp_path: Path, min_seconds: float, extra_env: dict[str, str]) -> None:
    env = kb_env(**extra_env)
    root, db = tmp_path / "tree", tmp_path / "kb"

    def kb(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([*KB_CMD, *args], env=env, capture_output=True, text=True, cwd=REPO, timeout=120)
        assert not check or res.returncode == 0, (args, res.stderr[-2000:])
        return res

    write_round(root, 0)
    kb("ingest", str(root), "--db", str(db), "-q")
    published = {0}
    lock = threading.Lock()
    answers: list[tuple[str, int | None, set[int]]] = []
    errors: list[str] = []
    done = threading.Event()

    def record(who: str, gen: int | None, snippets: list[str], share: float = 1.0) -> None:
        rs = rounds_in(snippets)
        with lock:
            if not rs and share < 1.0:
                return  # semantic hits while the new texts are still being embedded: none yet, and it says so
            answers.append((who, gen, rs))
            if len(rs) != 1:
                errors.append(f"{who}: an answer mixing rounds {sorted(rs)} (generation {gen})")

    server, url, server_err = serve(db, env)
    holder_err: list[str] = []
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(min_seconds + 60)],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    threads: list[threading.Thread] = []
    try:
        # drain the holder's stderr: a full pipe would block it
        threading.Thread(target=lambda: holder_err.extend(holder.stderr), daemon=True).start()

        def client(n: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as http:
                while not done.is_set():
                    try:
                        r = http.get(
                            "/search",
                            params={"q": "roundtoken", "k": 50, "mode": ["hybrid", "keyword", "semantic"][n % 3]},
                        )
                        if r.status_code != 200:
                            errors.append(f"http {r.status_code}: {r.text[:300]}")
                            continue
                        body = r.json()
                        record(
                            f"http{n}", body["generation"], [h["snippet"] for h in body["hits"]], body["embedded_share"]
                        )
                    except Exception as exc:
                        errors.append(f"http{n}: {type(exc).__name__}: {exc}")

        def shell() -> None:
            while not done.is_set():
                res = kb("search", "roundtoken", "--db", str(db), "--json", "-k", "50", check=False)
                if res.returncode != 0:
                    errors.append(f"kb search exited {res.returncode}: {res.stderr[-300:]}")
                    continue
                body = json.loads(res.stdout)
                record("shell", body["generation"], [h["snippet"] for h in body["hits"]], body["embedded_share"])

        def hold() -> None:
            for line in holder.stdout:
                data = json.loads(line)
                if "error" in data:
                    errors.append(f"holder: {data['error']}")
                else:
                    record("holder", data["gen"], data["snippets"])
                    if data["files"] != FILES:
                        errors.append(f"holder: {data['files']} files")

        threads = [threading.Thread(target=client, args=(n,)) for n in range(5)]
        threads += [threading.Thread(target=shell), threading.Thread(target=hold, daemon=True)]
        for t in threads:
            t.start()

        started = time.monotonic()
        r = 0
        killed = False
        while time.monotonic() - started < min_seconds or not killed:
            r += 1
            write_round(root, r)
            if r == 3:  # this run is killed half-way; the next one finishes the job
                proc = subprocess.Popen(
                    [*KB_CMD, "ingest", str(root), "--db", str(db), "-q"],
                    env=env,
                    cwd=REPO,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                deadline = time.monotonic() + 60
                while not list(db.glob("catalogue-*.tmp.wal")) and time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.3)
                assert proc.poll() is None, "the run to kill ended too soon"
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed = True
                r += 1
                write_round(root, r)
            res = kb("ingest", str(root), "--db", str(db), "--json")
            assert "lock" not in res.stderr.lower(), res.stderr
            with lock:
                published.add(r)
        last = r
        # every reader returns the new content within 5 s of the last publication
        t0 = time.monotonic()
        seen: dict[str, float] = {}
        while time.monotonic() - t0 < 5 and len(seen) < 7:
            with lock:
                for who, _, rs in answers:
                    if rs == {last} and who not in seen:
                        seen[who] = time.monotonic() - t0
            time.sleep(0.05)
        done.set()
        for t in threads[:-1]:
            t.join(60)
    finally:
        done.set()
        holder.kill()
        stop(server, holder)
    time.sleep(0.5)
    server_log, holder_log = "".join(server_err), "".join(holder_err)
    assert not errors, errors[:10]
    assert "lock" not in server_log.lower() and "Traceback" not in server_log, server_log[-2000:]
    assert "Traceback" not in holder_log, holder_log[-2000:]
    readers = {"holder", "shell", *(f"http{n}" for n in range(5))}
    assert set(seen) == readers, f"readers that never saw round {last} within 5 s: {readers - set(seen)}"
    never = {rs.pop() for _, _, rs in answers if len(rs) == 1} - published
    assert not never, f"answers from rounds no ingest published: {never}"
    assert len(answers) > 100 and time.monotonic() - started >= min_seconds
