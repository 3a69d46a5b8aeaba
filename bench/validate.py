"""Benchmark: dependency graph + validation of a synthetic corpus (default 50,000 files).

    python bench/validate.py                      # generates bench/out/synth-50000, ingests it, times
    python bench/validate.py --files 5000         # a smaller run
    python bench/validate.py --db /tmp/synthkb    # reuse (or create) that KB

Ingest (catalogue only, no embedding) is not timed here (see bench/ingest_catalogue.py). Timed,
each as its own process so imports count, on the ingested KB:

* ``kb validate --json``: reference extraction, the references table, every rule, schema
  validation, storing findings;
* ``kb graph stats --json``: building the networkx graph from the stored references, plus stats.

Target: the two together <= 30 s on 2 cores. Prints seconds, peak RSS and what was found.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = REPO / "bench"
sys.path.insert(0, str(REPO))


def _generator():
    spec = importlib.util.spec_from_file_location("gen_corpus", HERE / "gen_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def _run(cmd: list[str]) -> tuple[float, int, str, int]:
    """Wall seconds, peak RSS (bytes, sampled every 50 ms), stdout, exit code."""
    import psutil

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
            while not stop.is_set():
                rss = p.memory_info().rss + sum(c.memory_info().rss for c in p.children(recursive=True))
                peak = max(peak, rss)
                time.sleep(0.05)
        except psutil.Error:
            pass

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    stop.set()
    th.join()
    if proc.returncode not in (0, 1):
        sys.stderr.write(err)
    return time.perf_counter() - t0, peak, out, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--corpus", type=Path, default=None, help="an existing tree (default: generate one)")
    ap.add_argument("--db", type=Path, default=None, help="KB directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    corpus = args.corpus or HERE / "out" / f"synth-{args.files}"
    planted = None
    if args.corpus is None and not corpus.exists():
        planted = _generator().generate(corpus, args.files)
    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="kb-validate-bench-")
        db = Path(tmp.name) / "kb"

    from kb.catalogue import Catalogue
    from kb.settings import Settings

    settings = Settings(db=db, embed=False, root=corpus.resolve())
    with Catalogue(db) as cat:
        if cat.query("SELECT count(*) FROM files")[0][0] == 0:
            from kb.ingest.pipeline import run_ingest

            t0 = time.perf_counter()
            run_ingest(cat, settings)
            print(f"(ingested {corpus} in {time.perf_counter() - t0:.1f}s, not counted)", file=sys.stderr)
        n_files = cat.query("SELECT count(*) FROM files")[0][0]
        n_records = cat.query("SELECT count(*) FROM records")[0][0]

    kb = (
        [sys.executable, "-m", "kb.cli"]
        if (REPO / "kb" / "cli" / "__main__.py").exists()
        else [sys.executable, "-c", "from kb.cli import main; main()"]
    )
    env_db = ["--db", str(db)]
    t_val, rss_val, out_val, rc = _run(kb + ["validate", "--json"] + env_db)
    findings = json.loads(out_val)["findings"] if out_val.strip() else []
    t_graph, rss_graph, out_graph, _ = _run(kb + ["graph", "stats", "--json"] + env_db)
    stats = json.loads(out_graph) if out_graph.strip() else {}
    figures = {
        "files": n_files,
        "records": n_records,
        "cpus": os.cpu_count(),
        "validate_seconds": round(t_val, 2),
        "graph_stats_seconds": round(t_graph, 2),
        "total_seconds": round(t_val + t_graph, 2),
        "validate_peak_rss_mb": round(rss_val / 2**20),
        "graph_peak_rss_mb": round(rss_graph / 2**20),
        "validate_exit_code": rc,
        "findings_by_rule": dict(Counter(f["rule"] for f in findings).most_common()),
        "graph": {k: stats.get(k) for k in ("files", "edges", "references", "broken_references", "file_cycles")},
        "planted": planted and {k: planted[k] for k in ("broken_references", "undefined_variables")},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"{n_files} files, {n_records} records, {os.cpu_count()} CPUs")
        print(f"kb validate:    {t_val:6.2f}s  peak RSS {rss_val / 2**20:.0f} MB  (exit {rc})")
        print(f"kb graph stats: {t_graph:6.2f}s  peak RSS {rss_graph / 2**20:.0f} MB")
        print(f"total:          {t_val + t_graph:6.2f}s  (target <= 30 s)")
        print(f"findings by rule: {figures['findings_by_rule']}")
        print(f"graph: {figures['graph']}")
        if planted:
            print(f"planted by the generator: {figures['planted']}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if t_val + t_graph <= 30 else 1


if __name__ == "__main__":
    raise SystemExit(main())
