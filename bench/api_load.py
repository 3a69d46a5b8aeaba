"""Load test of the HTTP API: N concurrent clients, mixed /search and /findings, against a real
``kb serve`` on loopback (or several replicas of one KB). Prints p50, p99, requests/s, the error
count and the generations that answered; exits 1 on any error.

By default it builds a KB of the bundled sample corpus with the real model (all-MiniLM-L6-v2)
in a temporary folder, starts ``kb serve`` on a free port, and runs 20 clients for 30 s:

    .venv/bin/python bench/api_load.py
    .venv/bin/python bench/api_load.py --db .kb --clients 20 --seconds 30     # an existing KB
    .venv/bin/python bench/api_load.py --url http://127.0.0.1:8000            # a server already running
    .venv/bin/python bench/api_load.py --replicas 3 --writer                  # replicas beside a writer

``--replicas N`` starts N ``kb serve`` processes on the same KB directory (as replicas on several
machines serve one directory on shared storage) and spreads the clients over them round-robin;
per-replica figures follow the totals. ``--writer`` builds the KB from a copy of the sample and,
during the measured run, re-ingests it in a loop, rewriting ``WRITER_FILES`` files of the copy
before each ingest (new texts to embed, a new generation each time), as one writer publishing
beside the readers would.

Each client is a thread with its own keep-alive ``httpx.Client``; a request that is not a 200, or
that fails at the transport level, counts as an error. About 70% of requests are searches (hybrid,
semantic and keyword, questions and identifiers), 30% are findings pages (filters, pages).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "kb" / "sample"

QUERIES = [
    "Where is the fraud-review threshold for payments in production?",
    "DATABASE_URL",
    "how many retries before the order service gives up",
    "redis cache ttl",
    "which port does the api gateway listen on",
    "LOG_LEVEL",
    "feature flag for the new checkout",
    "postgres connection pool size",
    "how do I rotate the signing keys",
    "replicas autoscaling maxReplicas",
    "smtp host for notifications",
    "timeout_ms",
]
MODES = ["hybrid", "hybrid", "semantic", "keyword"]
FINDINGS = [
    {},
    {"severity": "error"},
    {"severity": "warning", "limit": 20},
    {"rule": "parse-error"},
    {"rule": "plaintext-secret"},
    {"path": "services/*", "limit": 50},
    {"limit": 10, "page": 2},
]
WRITER_FILES = 20
KB_CMD = [sys.executable, "-c", "from kb.cli import main; main()"]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def kb_env(model: str | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if model:
        env["KB_MODEL"] = model
    return env


def ingest(tree: Path, db: Path, model: str | None) -> dict:
    """One ``kb ingest --json`` of ``tree`` into ``db``: its summary."""
    res = subprocess.run(
        [*KB_CMD, "ingest", str(tree), "--db", str(db), "--quiet", "--json"],
        check=True,
        env=kb_env(model),
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(res.stdout)


def build_kb(tree: Path, db: Path, model: str | None) -> None:
    print(f"building a KB of {tree} in {db} (model: {model or 'default'}) ...", flush=True)
    t0 = time.perf_counter()
    ingest(tree, db, model)
    print(f"built in {time.perf_counter() - t0:.1f}s", flush=True)


def start_servers(db: Path, model: str | None, n: int) -> tuple[list[subprocess.Popen], list[str]]:
    """``n`` ``kb serve`` processes of the KB at ``db``, each on a free port, once each answers /health."""
    procs: list[subprocess.Popen] = []
    urls: list[str] = []
    for _ in range(n):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        procs.append(
            subprocess.Popen(
                [*KB_CMD, "serve", "--db", str(db), "--port", str(port), "--log-level", "warning"], env=kb_env(model)
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    for proc, url in zip(procs, urls, strict=True):
        while True:
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_servers(procs)
                raise SystemExit(f"kb serve did not start on {url}")
            time.sleep(0.2)
    return procs, urls


def stop_servers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


class Writer(threading.Thread):
    """Re-ingests ``tree`` into ``db`` in a loop until :meth:`stop`, rewriting ``WRITER_FILES`` files
    of it before each run; records each run's round, generation and seconds."""

    def __init__(self, tree: Path, db: Path, model: str | None) -> None:
        super().__init__(daemon=True)
        self.tree, self.db, self.model = tree, db, model
        self.runs: list[tuple[int, int, float]] = []
        self.error: str | None = None
        self._done = threading.Event()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        r = 0
        while not self._done.is_set():
            r += 1
            write_round(self.tree, r)
            t0 = time.perf_counter()
            try:
                summary = ingest(self.tree, self.db, self.model)
            except subprocess.CalledProcessError as exc:
                self.error = f"kb ingest exited {exc.returncode} in round {r}"
                return
            self.runs.append((r, int(summary["generation"]), time.perf_counter() - t0))


def write_round(tree: Path, r: int) -> None:
    """The writer's part of the tree in round ``r``: ``WRITER_FILES`` services whose settings change."""
    for i in range(WRITER_FILES):
        p = tree / "bench-writer" / f"svc{i:02d}.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(
            f"service:\n  name: writer-svc{i}\n  description: settings of round {r} for service {i}\n"
            f"  timeout_ms: {1000 + r * 10 + i}\n  replicas: {1 + (r + i) % 5}\n  log_level: round{r}\n"
        )


@dataclass
class Replica:
    """One replica's figures: latencies of the requests that succeeded, errors, generations seen."""

    lat: list[float] = field(default_factory=list)
    errors: int = 0
    gens: collections.Counter[int] = field(default_factory=collections.Counter)


def run_load(urls: list[str], clients: int, seconds: float, seed: int) -> dict:
    lat: dict[str, list[float]] = {"search": [], "findings": []}
    errors: list[str] = []
    per_replica = [Replica() for _ in urls]
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(n: int) -> None:
        rnd = random.Random(seed + n)
        mine = {"search": [], "findings": []}
        errs: list[str] = []
        gens: collections.Counter[int] = collections.Counter()
        replica = n % len(urls)
        with httpx.Client(base_url=urls[replica], timeout=30) as http:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                if rnd.random() < 0.7:
                    kind = "search"
                    params = {"q": rnd.choice(QUERIES), "mode": rnd.choice(MODES), "k": rnd.choice([5, 10, 20])}
                    path = "/search"
                else:
                    kind, path, params = "findings", "/findings", rnd.choice(FINDINGS)
                t0 = time.perf_counter()
                try:
                    r = http.get(path, params=params)
                    ok = r.status_code == 200
                    if not ok:
                        errs.append(f"{path} {params}: {r.status_code} {r.text[:120]}")
                    elif kind == "search":
                        gens[r.json()["generation"]] += 1
                except httpx.HTTPError as exc:
                    ok = False
                    errs.append(f"{path} {params}: {type(exc).__name__}: {exc}")
                if ok:
                    mine[kind].append(time.perf_counter() - t0)
        with lock:
            for k, v in mine.items():
                lat[k].extend(v)
                per_replica[replica].lat.extend(v)
            errors.extend(errs)
            per_replica[replica].errors += len(errs)
            per_replica[replica].gens.update(gens)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + seconds
    start.wait()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.perf_counter() - t_start
    return {"lat": lat, "errors": errors, "elapsed": elapsed, "replicas": per_replica}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="Load a server that is already running instead of starting one.")
    ap.add_argument("--db", type=Path, help="An existing KB to serve (default: build the sample in a temp dir).")
    ap.add_argument("--model", default=None, help="KB_MODEL for build and serve (default: the real model).")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="Seconds of load before measuring.")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--replicas", type=int, default=1, help="kb serve processes on the same KB (default 1).")
    ap.add_argument(
        "--writer",
        action="store_true",
        help="Re-ingest a changing copy of the sample in a loop during the run (builds its own KB).",
    )
    args = ap.parse_args()
    if args.replicas < 1:
        ap.error("--replicas must be at least 1")
    if args.url and args.replicas > 1:
        ap.error("--replicas starts servers: leave out --url")
    if args.writer and (args.url or args.db):
        ap.error("--writer builds its own KB from a copy of the sample: leave out --url and --db")

    tmp = None
    procs: list[subprocess.Popen] = []
    writer = None
    try:
        urls = [args.url] if args.url else []
        if not urls:
            db = args.db
            if db is None:
                tmp = Path(tempfile.mkdtemp(prefix="kb-api-load-"))
                db, tree = tmp / "kb", SAMPLE
                if args.writer:
                    tree = tmp / "tree"
                    shutil.copytree(SAMPLE, tree, symlinks=True)
                    write_round(tree, 0)
                build_kb(tree, db, args.model)
            procs, urls = start_servers(db, args.model, args.replicas)
        if args.warmup > 0:
            run_load(urls, args.clients, args.warmup, args.seed + 1000)
        health = httpx.get(urls[0] + "/health", timeout=10).json()
        servers = f"{len(urls)} replicas of one KB" if len(urls) > 1 else f"server {urls[0]}"
        print(f"{servers}: {health['files']} files, {health['chunks']} chunks, embedder {health['embedder']}")
        print(
            f"{args.clients} clients x {args.seconds:.0f}s, ~70% /search (hybrid/semantic/keyword), ~30% /findings"
            + (f", round-robin over {len(urls)} replicas" if len(urls) > 1 else "")
            + (f"; a writer re-ingests the tree ({WRITER_FILES} files changed) in a loop" if args.writer else ""),
            flush=True,
        )
        if args.writer:
            writer = Writer(tree, db, args.model)
            writer.start()
        res = run_load(urls, args.clients, args.seconds, args.seed)
        if writer is not None:
            writer.stop()
            writer.join()
    finally:
        try:
            if writer is not None:
                writer.stop()
                writer.join(300)
        finally:
            stop_servers(procs)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    lat, errors, elapsed = res["lat"], res["errors"], res["elapsed"]
    every = lat["search"] + lat["findings"]
    total = len(every) + len(errors)
    ms = lambda v: f"{v * 1000:.1f} ms"  # noqa: E731
    print(f"\nrequests: {total} in {elapsed:.1f}s = {total / elapsed:.1f} req/s; errors: {len(errors)}")
    mean = statistics.fmean(every) if every else 0.0
    print(f"all       p50 {ms(pct(every, 0.5))}  p99 {ms(pct(every, 0.99))}  mean {ms(mean)}")
    for kind in ("search", "findings"):
        v = lat[kind]
        print(f"{kind:<9} p50 {ms(pct(v, 0.5))}  p99 {ms(pct(v, 0.99))}  n={len(v)}")
    seen: collections.Counter[int] = collections.Counter()
    for i, rep in enumerate(res["replicas"]):
        seen.update(rep.gens)
        if len(urls) > 1:
            n = len(rep.lat) + rep.errors
            print(
                f"replica {i} p50 {ms(pct(rep.lat, 0.5))}  p99 {ms(pct(rep.lat, 0.99))}  {n / elapsed:.1f} req/s  "
                f"errors {rep.errors}  generations {gens_line(rep.gens)}"
            )
    print(f"generations that answered searches: {gens_line(seen)}")
    if writer is not None:
        took = [t for _, _, t in writer.runs]
        print(
            f"writer: {len(writer.runs)} re-ingests, median {statistics.median(took) if took else float('nan'):.1f}s; "
            f"last generation of each: {[g for _, g, _ in writer.runs]}"
        )
        if writer.error:
            print("writer error:", writer.error)
    for e in errors[:10]:
        print("error:", e)
    return 1 if errors or (writer is not None and writer.error) else 0


def gens_line(gens: collections.Counter[int]) -> str:
    """``5 (12..16)``: how many generations answered, the oldest and the newest."""
    return f"{len(gens)} ({min(gens)}..{max(gens)})" if gens else "none"


if __name__ == "__main__":
    sys.exit(main())
