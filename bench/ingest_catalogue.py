"""Benchmark: catalogue ingest (no embedding) of a synthetic corpus, first run and no-change re-run.

    python bench/ingest_catalogue.py --files 50000            # generates into bench/out/synth-50000
    python bench/ingest_catalogue.py --corpus ../shared/corpora/dev

Prints files/s, seconds, and peak RSS of the whole process tree (parent + parser workers, sampled
every 50 ms) for each run. Targets on 2 cores: first run >= 1,000 files/s; no-change re-run of
50,000 files <= 5 s; peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_corpus", HERE / "gen_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def measure(cmd: list[str], env: dict[str, str]) -> dict:
    """Run ``cmd``; wall time and the peak summed RSS of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    ps = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                procs = [ps] + ps.children(recursive=True)
                peak = max(peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"ingest failed ({proc.returncode}):\n{err[-3000:]}")
    try:
        # DuckDB >= 2 may draw its progress bar on stdout: the summary is the JSON object after it
        summary = json.loads(out[out.index("\n{") + 1 :] if not out.startswith("{") and "\n{" in out else out)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"ingest printed something that is not its JSON summary ({exc}):\n{out[:2000]}") from None
    return {"seconds": seconds, "peak_rss_mb": peak / 1048576, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000, help="synthetic corpus size")
    ap.add_argument("--corpus", type=Path, help="ingest this tree instead of a synthetic one")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="work folder")
    ap.add_argument("--workers", type=int, default=0, help="parser processes (0: one per core)")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    if args.corpus:
        corpus = args.corpus
    else:
        corpus = args.out / f"synth-{args.files}"
        if not corpus.exists():
            t0 = time.perf_counter()
            load_generator().generate(corpus, args.files, seed=1)
            print(f"generated {args.files} files into {corpus} in {time.perf_counter() - t0:.1f}s")
    db = args.out / "kb-ingest-bench"
    shutil.rmtree(db, ignore_errors=True)
    env = {**os.environ, "KB_EMBED": "0", "KB_WORKERS": str(args.workers)}
    cmd = [sys.executable, "-c", "from kb.cli import main; main()", "ingest", str(corpus), "--db", str(db), "--json"]

    first = measure(cmd, env)
    again = measure(cmd, env)
    n = first["summary"]["files_seen"]
    print(f"\ncorpus: {corpus} ({n} files), cores: {os.cpu_count()}")
    print(f"{'run':<18}{'seconds':>9}{'files/s':>10}{'peak RSS MB':>13}  parsed")
    for name, r in (("first run", first), ("no-change re-run", again)):
        s = r["summary"]
        parsed = s["added"] + s["changed"]
        print(f"{name:<18}{r['seconds']:>9.2f}{n / r['seconds']:>10.0f}{r['peak_rss_mb']:>13.0f}  {parsed}")
    print("\nfindings by rule:", json.dumps(first["summary"]["findings_by_rule"]))
    print("files by format:", json.dumps(first["summary"]["by_format"]))


if __name__ == "__main__":
    main()
