"""Benchmark: how long the health report takes on a real tree.

    python bench/report.py [--corpus ../shared/corpora/dev] [--repeats 3]

Builds the KB once (``kb ingest --no-embed``: the report needs no embeddings), runs ``kb validate``
once, then times ``kb report -o FILE`` (validation fresh) ``--repeats`` times: the process's wall
time and the report's own build time, with the time of each part (findings, duplicates, drift,
graph, changes, trends). Also times one ``kb report`` with the validation stale (as after an
ingest that changed a file), which validates first. Target: the dev corpus's report renders in <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def kb(*args: str) -> tuple[float, str]:
    cmd = [sys.executable, "-c", "from kb.cli import main; main()", *args]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "KB_EMBED": "0"})
    wall = time.perf_counter() - t0
    if out.returncode not in (0, 1):
        raise SystemExit(f"kb {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return wall, out.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=HERE.parent.parent / "shared" / "corpora" / "dev")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    args = ap.parse_args()

    db = args.out / f"kb-report-{args.corpus.name}"
    page = args.out / f"report-{args.corpus.name}.html"
    if not db.exists():
        wall, _ = kb("ingest", str(args.corpus), "--db", str(db), "--no-embed", "-q", "--json")
        print(f"ingested {args.corpus} in {wall:.1f}s")
    wall_v, _ = kb("validate", "--db", str(db), "--json")
    runs = []
    for _ in range(args.repeats):
        wall, _ = kb("report", "--db", str(db), "-o", str(page))
        _, out = kb("report", "--db", str(db), "--json")
        data = json.loads(out[out.find("{") if out.startswith("{") else out.find("\n{") + 1 :])
        runs.append((wall, data["seconds"], data["timings"]))
    files = data["kb"]["files"]
    print(f"\ncorpus: {args.corpus} ({files} files, {data['kb']['records']} values), cores: {os.cpu_count()}")
    print(f"kb validate (once, before):                 {wall_v:6.2f} s")
    print(
        f"kb report -o FILE, validation fresh, median: {statistics.median(r[0] for r in runs):6.2f} s wall, "
        f"{statistics.median(r[1] for r in runs):.2f} s building (target <= 5 s)"
    )
    parts = {k: statistics.median(r[2][k] for r in runs) for k in runs[0][2]}
    print("  parts (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    print(f"page: {page} ({page.stat().st_size / 1024:.0f} KB), score {data['score']['value']}")
    # After an ingest that changed a file the validation is stale and kb report validates first
    # (marked stale here as an ingest does, so the shared corpus is never touched).
    from kb.catalogue import Catalogue

    with Catalogue(db) as cat:
        cat.invalidate_validation()
    wall_stale, _ = kb("report", "--db", str(db), "-o", str(page))
    print(f"kb report -o FILE with validation stale (validates first): {wall_stale:6.2f} s wall")


if __name__ == "__main__":
    main()
