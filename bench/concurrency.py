"""Costs of one writer beside many readers, on a generated 50,000-file tree.

Prints:

* a no-change ``kb ingest`` (walk, stat, copy of the catalogue, publish), median of 3;
* the KB's size, and the most extra disk seen during an update that changes 1% of the files
  (the writer's private copy of the catalogue, its keyword files);
* how long readers in another process wait while that update runs and publishes: a process holding
  ``KnowledgeBase.open`` searches (keyword) and counts files in a loop; the slowest answers, and the
  slowest answer while the writer publishes.

Catalogue and keyword index only (``KB_EMBED=0``): the embedding phase appends vectors and is
measured by ``bench/full_build.py``.

    .venv/bin/python bench/concurrency.py --files 50000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KB = [sys.executable, "-c", "from kb.cli import main; main()"]

READER = r"""
import json, sys, time
from kb import KnowledgeBase
kb = KnowledgeBase.open(sys.argv[1], read_only=True)
end = time.time() + float(sys.argv[2])
while time.time() < end:
    t0 = time.perf_counter()
    r = kb.search_result("service timeout retry", mode="keyword", k=10)
    n = int(kb.sql("SELECT count(*) AS n FROM files")["n"][0])
    print(json.dumps({"t": time.time(), "ms": (time.perf_counter() - t0) * 1000, "gen": r.generation, "files": n}),
          flush=True)
    time.sleep(0.01)
"""


def du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_blocks * 512
            except FileNotFoundError:
                pass
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()

    sys.path.insert(0, str(HERE))
    import gen_corpus

    corpus = args.out / f"synth-{args.files}"
    if not corpus.exists():
        gen_corpus.generate(corpus, args.files, seed=1)
    work = args.out / "concurrency"
    shutil.rmtree(work, ignore_errors=True)
    tree = work / "tree"
    shutil.copytree(corpus, tree, symlinks=True)
    db = work / "kb"
    env = {**os.environ, "KB_EMBED": "0", "HF_HUB_OFFLINE": "1"}

    def ingest() -> float:
        t0 = time.perf_counter()
        res = subprocess.run(
            [*KB, "ingest", str(tree), "--db", str(db), "--json", "-q"],
            env=env,
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if res.returncode != 0:
            raise SystemExit(res.stderr[-2000:])
        return time.perf_counter() - t0

    first = ingest()
    nochange = sorted(ingest() for _ in range(3))
    size = du(db)
    catalogue = max(p.stat().st_size for p in db.glob("catalogue-*.duckdb"))

    # an update of 1% of the files, with a reader process and a disk sampler running
    files = sorted(p for p in tree.rglob("*") if p.is_file() and p.suffix in (".yaml", ".json", ".env", ".toml"))
    changed = files[:: max(1, len(files) // (args.files // 100))][: args.files // 100]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(db), "600"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[dict] = []
    threading.Thread(target=lambda: answers.extend(json.loads(line) for line in reader.stdout), daemon=True).start()
    time.sleep(3)
    peak = [size]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], du(db))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for p in changed:
        p.write_text(p.read_text(errors="replace") + "\n# edited by bench/concurrency.py\n")
    w0 = time.time()
    update = ingest()
    w1 = time.time()
    time.sleep(2)
    stop.set()
    sampler.join()
    reader.kill()
    reader.wait()
    errors = reader.stderr.read().count("Traceback")
    gen_before = answers[0]["gen"] if answers else None
    during = [a for a in answers if w0 <= a["t"] <= w1 + 1]
    publish_at = next((a["t"] for a in answers if a["gen"] != gen_before), None)
    around = [a for a in answers if publish_at and abs(a["t"] - publish_at) < 1.0]
    ms = [a["ms"] for a in during]

    print(f"\ncorpus: {corpus} ({args.files} files), cores: {os.cpu_count()}")
    print(f"first ingest (catalogue + keyword index): {first:.1f} s")
    print(
        f"no-change ingest: {statistics.median(nochange):.2f} s median (runs {', '.join(f'{t:.2f}' for t in nochange)})"
    )
    print(f"KB size: {size / 1e6:.0f} MB (catalogue {catalogue / 1e6:.0f} MB)")
    print(
        f"update of {len(changed)} files (1%): {update:.2f} s; most extra disk during it: "
        f"{(peak[0] - size) / 1e6:.0f} MB ({(peak[0] - size) / size:.2f}x the KB)"
    )
    if ms:
        print(
            f"reader during the update: {len(ms)} answers, p50 {statistics.median(ms):.0f} ms, "
            f"p99 {sorted(ms)[int(0.99 * (len(ms) - 1))]:.0f} ms, slowest {max(ms):.0f} ms; reader errors: {errors}"
        )
    if around:
        print(
            f"reader within 1 s of the publish: slowest {max(a['ms'] for a in around):.0f} ms; "
            f"new generation seen {publish_at - w0:.1f} s after the writer started, "
            f"{max(0.0, publish_at - w1):.2f} s after it finished"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
