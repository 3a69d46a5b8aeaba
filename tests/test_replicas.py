"""Many readers on many machines: three ``kb serve`` replicas of one KB directory and one writer.

Twenty clients spread over three ``kb serve`` processes serving the same KB directory (as replicas
on several machines serve one directory on shared storage) search for a minute, while a writer
re-ingests a tree whose files all change every round (``tests/rounds.py``). An ingest publishes a
few generations (the catalogue and keyword index, then the vectors), numbered one after another, so
the generations published after round ``r - 1``'s ingest ended, up to the one round ``r``'s ingest
reports, all hold round ``r``. An answer must name one round, the round of its generation: an answer
from a half-written generation (a HEAD naming files not written yet, a catalogue of one round beside
a keyword index of another) fails one or the other. After the last ingest each replica answers from
the last generation within seconds, and each replica has moved through every round on the way.

Requests and latency per replica are printed (``pytest -s`` shows them), not asserted: 2 cores
shared by three servers, twenty client threads and a writer make them a measure of the machine.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.rounds import KB_CMD, REPO, kb_env, rounds_in, serve, stop, write_round

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

REPLICAS = 3
CLIENTS = 20
MODES = ("hybrid", "keyword", "semantic")
MIN_REINGESTS = 2  # however slow the machine: each replica must move on more than once


@dataclass(frozen=True)
class Answer:
    replica: int
    mode: str
    generation: int
    rounds: frozenset[int]
    embedded_share: float
    seconds: float


def test_three_replicas_and_one_writer_for_a_minute(tmp_path):
    replicas_and_writer(tmp_path, 60, {})


def test_the_same_with_a_chroma_server(tmp_path, chroma_server):
    """With ``KB_CHROMA_URL`` (writer and replicas) the writer mirrors vectors into a Chroma server
    and the replicas read them from it (``KB_VECTOR_READS=server``: the server's index, not the
    KB's segments); the guarantees are the same (a shorter run: the minute-long one covers time)."""
    replicas_and_writer(tmp_path, 20, {"KB_CHROMA_URL": chroma_server}, {"KB_VECTOR_READS": "server"})
    from kb.generations import read_head
    from kb.vectors import ChromaMirror

    head = read_head(tmp_path / "kb")
    assert head is not None
    mirror = ChromaMirror(tmp_path / "kb", chroma_url=chroma_server, collection=f"kb_{head.kb_id}")
    assert mirror.count() == sum(head.vectors.values())  # every published vector is in the server


def round_of(generation: int, ends: list[int]) -> int | None:
    """The round whose ingest published ``generation`` (``ends[r]``: the last generation of round ``r``)."""
    for r, end in enumerate(ends):
        if generation <= end:
            return r
    return None


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))] if s else float("nan")


def replicas_and_writer(
    tmp_path: Path, min_seconds: float, extra_env: dict[str, str], replica_env: dict[str, str] | None = None
) -> None:
    env = kb_env(**extra_env)
    serve_env = {**env, **(replica_env or {})}
    root, db = tmp_path / "tree", tmp_path / "kb"

    def ingest() -> int:
        """One ingest of the tree; the generation it published last."""
        res = subprocess.run(
            [*KB_CMD, "ingest", str(root), "--db", str(db), "--json", "-q"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        assert "lock" not in res.stderr.lower(), res.stderr[-2000:]
        return int(json.loads(res.stdout)["generation"])

    write_round(root, 0)
    ends = [ingest()]
    answers: list[Answer] = []
    errors: list[str] = []
    lock = threading.Lock()
    done = threading.Event()
    servers: list[tuple[subprocess.Popen, str, list[str]]] = []
    threads: list[threading.Thread] = []
    try:
        for _ in range(REPLICAS):
            servers.append(serve(db, serve_env))
        urls = [url for _, url, _ in servers]

        def client(n: int) -> None:
            replica, mode = n % REPLICAS, MODES[(n // REPLICAS) % len(MODES)]
            params: dict[str, str | int] = {"q": "roundtoken", "k": 50, "mode": mode}
            with httpx.Client(base_url=urls[replica], timeout=30) as http:
                while not done.is_set():
                    t0 = time.perf_counter()
                    try:
                        r = http.get("/search", params=params)
                    except httpx.HTTPError as exc:
                        with lock:
                            errors.append(f"replica {replica} {mode}: {type(exc).__name__}: {exc}")
                        continue
                    took = time.perf_counter() - t0
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"replica {replica} {mode}: http {r.status_code}: {r.text[:300]}")
                        continue
                    body = r.json()
                    rs = frozenset(rounds_in([h["snippet"] for h in body["hits"]]))
                    with lock:
                        answers.append(Answer(replica, mode, body["generation"], rs, body["embedded_share"], took))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        started = time.monotonic()
        r = 0
        while time.monotonic() - started < min_seconds or r < MIN_REINGESTS:
            r += 1
            write_round(root, r)
            ends.append(ingest())
        load_seconds = time.monotonic() - started
        last, final = r, ends[-1]

        # every replica answers from the last generation within 5 s of its publication
        caught_up: dict[int, float] = {}
        t0 = time.monotonic()
        with httpx.Client(timeout=30) as http:
            while len(caught_up) < REPLICAS and time.monotonic() - t0 < 5:
                for i, url in enumerate(urls):
                    if i in caught_up:
                        continue
                    body = http.get(f"{url}/search", params={"q": "roundtoken", "k": 50, "mode": "keyword"}).json()
                    if body["generation"] == final and rounds_in([h["snippet"] for h in body["hits"]]) == {last}:
                        caught_up[i] = time.monotonic() - t0
                time.sleep(0.05)
        done.set()
        elapsed = time.monotonic() - started
        for t in threads:
            t.join(60)
    finally:
        done.set()
        stop(*(p for p, _, _ in servers))

    report(answers, errors, ends, load_seconds, elapsed)
    assert not errors, errors[:10]
    for i, (_, _, err) in enumerate(servers):
        log = "".join(err)
        assert "Traceback" not in log and "lock" not in log.lower(), f"replica {i}: {log[-2000:]}"

    wrong: list[str] = []
    for a in answers:
        if not a.rounds and a.embedded_share < 1.0:
            continue  # semantic hits while the new texts are still being embedded: none yet, and it says so
        expected = round_of(a.generation, ends)
        if expected is None:
            wrong.append(f"replica {a.replica} {a.mode}: generation {a.generation}, which no ingest published")
        elif a.rounds != {expected}:
            wrong.append(
                f"replica {a.replica} {a.mode}: generation {a.generation} (round {expected}) "
                f"answered from rounds {sorted(a.rounds)}"
            )
    assert not wrong, f"{len(wrong)} answers from no published generation: {wrong[:10]}"

    assert set(caught_up) == set(range(REPLICAS)), (
        f"replicas that did not answer from the last generation ({final}) within 5 s: "
        f"{sorted(set(range(REPLICAS)) - set(caught_up))}"
    )
    for i in range(REPLICAS):
        mine = [a for a in answers if a.replica == i]
        rounds_seen = set().union(*(a.rounds for a in mine))
        assert len(mine) > 50, f"replica {i} answered only {len(mine)} searches"
        assert rounds_seen == set(range(last + 1)), f"replica {i} saw rounds {sorted(rounds_seen)} of 0..{last}"
    assert load_seconds >= min_seconds


def report(answers: list[Answer], errors: list[str], ends: list[int], load: float, seconds: float) -> None:
    """Requests, p50 and p99 per replica and in all, the generations seen (``pytest -s``); ``seconds``
    the clients ran (the writer's ``load`` and the wait for the replicas to catch up)."""
    ms = lambda v: f"{v * 1000:7.1f} ms"  # noqa: E731
    print(f"\n{len(ends) - 1} re-ingests in {load:.1f} s; last generation of each round: {ends}")
    rows = [(f"replica {i}", [a for a in answers if a.replica == i]) for i in range(REPLICAS)]
    for name, mine in [*rows, ("all", answers)]:
        lat = [a.seconds for a in mine]
        gens = {a.generation for a in mine}
        mean = statistics.fmean(lat) if lat else 0.0
        print(
            f"{name:<10} {len(mine):6d} requests {len(mine) / seconds:6.1f}/s  p50 {ms(pct(lat, 0.5))}  "
            f"p99 {ms(pct(lat, 0.99))}  mean {ms(mean)}  {len(gens)} generations seen"
        )
    print(f"errors: {len(errors)}")
