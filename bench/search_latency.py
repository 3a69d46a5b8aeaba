"""In-process search latency on a built KB, per mode, over the labelled queries of both question sets.

Times :meth:`kb.KnowledgeBase.search_result` (what the CLI, the API and notebooks call) on a KB
opened read-only, cycling over the 93 labelled queries (the 53 and the 40), after a warm-up that
loads the query embedder and the generation's stores. Prints p50/p95/p99 per mode (hybrid,
semantic, keyword). Target: hybrid p50 <= 30 ms at 100,000 chunks (the full dev-corpus build has
94,379).

    .venv/bin/python bench/search_latency.py --kb bench/out/new-build/dev

``--cold-caches`` empties the answer scoring's caches before every search (the queries cycle, so
without it a repeated query meets warm caches, as a server would).

``--param MODULE.NAME=VALUE`` overrides a ranking constant (as in ``search_quality.py``), e.g. to
time a costlier setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True, help="a KB built with the real model")
    ap.add_argument("--queries", type=int, default=300, help="timed hybrid searches (a third as many per other mode)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--param", action="append", default=[], metavar="MODULE.NAME=VALUE")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--cold-caches",
        action="store_true",
        help="empty the answer scoring's caches before every search (a query that repeats nothing)",
    )
    args = ap.parse_args()

    from search_quality import load_queries, set_param

    from kb import KnowledgeBase
    from kb.search import answers, query

    for spec in args.param:
        set_param(spec)
    queries = [q["query"] for s in ("sample", "dev", "questions") for q in load_queries(s)]
    kb = KnowledgeBase.open(args.kb, read_only=True, model=args.model)
    total = int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
    report: dict = {"chunks": total, "queries": len(queries)}
    for q in queries[:5]:
        kb.search_result(q)  # warm-up: embedder, stores, per-generation caches
    for mode, n in (("hybrid", args.queries), ("semantic", args.queries // 3), ("keyword", args.queries // 3)):
        times = []
        for i in range(n):
            if args.cold_caches:
                answers._roots.cache_clear()
                query.word_root.cache_clear()
            t = time.perf_counter()
            kb.search_result(queries[i % len(queries)], k=10, mode=mode)
            times.append((time.perf_counter() - t) * 1000)
        report[mode] = {
            "p50": pct(times, 50),
            "p95": pct(times, 95),
            "p99": pct(times, 99),
            "mean": statistics.fmean(times),
            "n": n,
        }
        print(
            f"search {mode:8} over {total} chunks: p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms, "
            f"p99 {pct(times, 99):.1f} ms ({n} queries)",
            flush=True,
        )
    kb.close()
    print(f"\n{'MET ' if report['hybrid']['p50'] <= 30 else 'MISS'}  hybrid p50 <= 30 ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
