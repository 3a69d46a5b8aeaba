"""Load test of the HTTP API: N concurrent clients, mixed /search and /findings, against a real
``kb serve`` on loopback. Prints p50, p99, requests/s and the error count; exits 1 on any error.

By default it builds a KB of the bundled sample corpus with the real model (all-MiniLM-L6-v2)
in a temporary folder, starts ``kb serve`` on a free port, and runs 20 clients for 30 s:

    .venv/bin/python bench/api_load.py
    .venv/bin/python bench/api_load.py --db .kb --clients 20 --seconds 30     # an existing KB
    .venv/bin/python bench/api_load.py --url http://127.0.0.1:8000            # a server already running

Each client is a thread with its own keep-alive ``httpx.Client``; a request that is not a 200, or
that fails at the transport level, counts as an error. About 70% of requests are searches (hybrid,
semantic and keyword, questions and identifiers), 30% are findings pages (filters, pages).
"""

from __future__ import annotations

import argparse
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


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def build_kb(db: Path, model: str | None) -> None:
    print(f"building a KB of {SAMPLE} in {db} (model: {model or 'default'}) ...", flush=True)
    t0 = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if model:
        env["KB_MODEL"] = model
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from kb.cli import main; main()",
            "ingest",
            str(SAMPLE),
            "--db",
            str(db),
            "--quiet",
            "--json",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    print(f"built in {time.perf_counter() - t0:.1f}s", flush=True)


def start_server(db: Path, model: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if model:
        env["KB_MODEL"] = model
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from kb.cli import main; main()",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("kb serve did not start")
        time.sleep(0.2)


def run_load(url: str, clients: int, seconds: float, seed: int) -> dict:
    lat: dict[str, list[float]] = {"search": [], "findings": []}
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client(n: int) -> None:
        rnd = random.Random(seed + n)
        mine = {"search": [], "findings": []}
        errs: list[str] = []
        with httpx.Client(base_url=url, timeout=30) as http:
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
                except httpx.HTTPError as exc:
                    ok = False
                    errs.append(f"{path} {params}: {type(exc).__name__}: {exc}")
                if ok:
                    mine[kind].append(time.perf_counter() - t0)
        with lock:
            for k, v in mine.items():
                lat[k].extend(v)
            errors.extend(errs)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + seconds
    start.wait()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.perf_counter() - t_start
    return {"lat": lat, "errors": errors, "elapsed": elapsed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="Load a server that is already running instead of starting one.")
    ap.add_argument("--db", type=Path, help="An existing KB to serve (default: build the sample in a temp dir).")
    ap.add_argument("--model", default=None, help="KB_MODEL for build and serve (default: the real model).")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=3.0, help="Seconds of load before measuring.")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    tmp = None
    proc = None
    try:
        url = args.url
        if url is None:
            db = args.db
            if db is None:
                tmp = Path(tempfile.mkdtemp(prefix="kb-api-load-"))
                db = tmp / "kb"
                build_kb(db, args.model)
            proc, url = start_server(db, args.model)
        if args.warmup > 0:
            run_load(url, args.clients, args.warmup, args.seed + 1000)
        health = httpx.get(url + "/health", timeout=10).json()
        print(f"server {url}: {health['files']} files, {health['chunks']} chunks, embedder {health['embedder']}")
        print(
            f"{args.clients} clients x {args.seconds:.0f}s, ~70% /search (hybrid/semantic/keyword), ~30% /findings",
            flush=True,
        )
        res = run_load(url, args.clients, args.seconds, args.seed)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
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
    for e in errors[:10]:
        print("error:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
