"""Search quality: recall@5 and MRR@10 for keyword, semantic and hybrid search.

Two labelled sets, each half paraphrased questions and half literal identifiers:

* the bundled sample corpus ``kb/sample`` with the ``queries`` of ``kb/sample_truth.json``;
* the developer corpus ``../shared/corpora/dev`` with ``bench/search_queries_dev.json``.

Relevance is per file: a query's hits are collapsed to distinct paths in rank order; recall@5 is
the share of a query's relevant files among the first five paths, MRR@10 the reciprocal rank of
the first relevant path within the first ten (0 when none).

    .venv/bin/python bench/search_quality.py                      # both corpora, bundled model
    .venv/bin/python bench/search_quality.py --corpus sample      # the sample only (fast)
    .venv/bin/python bench/search_quality.py --work /tmp/kbq      # keep the KBs for re-runs

The KBs are built under ``--work`` (a temporary folder by default); with a kept folder a re-run
ingests nothing new and embeds nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("keyword", "semantic", "hybrid")


def load_queries(corpus: str) -> list[dict]:
    if corpus == "sample":
        return json.loads((REPO / "kb" / "sample_truth.json").read_text())["queries"]
    return json.loads((REPO / "bench" / "search_queries_dev.json").read_text())["queries"]


def corpus_root(corpus: str) -> Path:
    return REPO / "kb" / "sample" if corpus == "sample" else (REPO.parent / "shared" / "corpora" / "dev").resolve()


def ranked_paths(hits) -> list[str]:
    out: list[str] = []
    for h in hits:
        if h.path not in out:
            out.append(h.path)
    return out


def score(paths: list[str], relevant: list[str]) -> tuple[float, float, int | None]:
    rel = set(relevant)
    recall = len(rel & set(paths[:5])) / len(rel)
    rank = next((i + 1 for i, p in enumerate(paths[:10]) if p in rel), None)
    return recall, (1.0 / rank if rank else 0.0), rank


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", choices=["sample", "dev", "both"], default="both")
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model (default: the bundled one)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None, help="folder for the KBs (kept; reused on re-runs)")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every query's rank per mode")
    args = ap.parse_args()

    from kb import KnowledgeBase

    work = args.work or Path(tempfile.mkdtemp(prefix="kb-quality-"))
    corpora = ["sample", "dev"] if args.corpus == "both" else [args.corpus]
    rows: list[dict] = []
    for corpus in corpora:
        t0 = time.perf_counter()
        kb = KnowledgeBase.build(corpus_root(corpus), db=work / corpus, model=args.model, device=args.device)
        n_chunks = int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
        print(f"# {corpus}: {n_chunks} chunks, built/updated in {time.perf_counter() - t0:.1f} s", flush=True)
        for q in load_queries(corpus):
            for mode in MODES:
                hits = kb.search(q["query"], k=30, mode=mode, as_frame=False)
                recall, rr, rank = score(ranked_paths(hits), q["relevant"])
                rows.append({"corpus": corpus, "kind": q["kind"], "mode": mode, "query": q["query"],
                             "recall5": recall, "rr10": rr, "rank": rank})
        kb.close()

    if args.verbose:
        by_query: dict[tuple[str, str], dict[str, int | None]] = {}
        for r in rows:
            by_query.setdefault((r["corpus"], r["query"]), {})[r["mode"]] = r["rank"]
        print(f"\n{'corpus':7} {'keyword':>7} {'semantic':>8} {'hybrid':>6}  query")
        for (corpus, query), ranks in by_query.items():
            cells = [str(ranks.get(m) or "-") for m in MODES]
            print(f"{corpus:7} {cells[0]:>7} {cells[1]:>8} {cells[2]:>6}  {query}")

    def table(title: str, select) -> None:
        print(f"\n## {title}")
        print(f"{'set':26} {'n':>3}  " + "  ".join(f"{m + ' R@5':>13} {m + ' MRR':>12}" for m in MODES))
        groups = []
        for corpus in corpora + ["all"]:
            for kind in ("paraphrase", "literal", "all"):
                groups.append((corpus, kind))
        for corpus, kind in groups:
            sel = [r for r in rows if (corpus == "all" or r["corpus"] == corpus) and (kind == "all" or r["kind"] == kind)]
            if not sel or not select(corpus, kind):
                continue
            n = len(sel) // len(MODES)
            cells = []
            for m in MODES:
                ms = [r for r in sel if r["mode"] == m]
                cells.append(f"{statistics.fmean(r['recall5'] for r in ms):13.3f} {statistics.fmean(r['rr10'] for r in ms):12.3f}")
            print(f"{corpus + ' / ' + kind:26} {n:>3}  " + "  ".join(cells))

    table("recall@5 and MRR@10 (file level)", lambda c, k: True)
    hyb = [r for r in rows if r["mode"] == "hybrid"]
    overall = statistics.fmean(r["rr10"] for r in hyb)
    ok = overall >= 0.75
    for kind in ("paraphrase", "literal"):
        for corpus in corpora + ["all"]:
            sel = [r for r in rows if r["kind"] == kind and (corpus == "all" or r["corpus"] == corpus)]
            h = statistics.fmean(r["rr10"] for r in sel if r["mode"] == "hybrid")
            for m in ("keyword", "semantic"):
                other = statistics.fmean(r["rr10"] for r in sel if r["mode"] == m)
                if h + 1e-9 < other:
                    ok = False
                    print(f"! hybrid MRR {h:.3f} < {m} {other:.3f} on {corpus}/{kind}")
    print(f"\nhybrid MRR@10 overall: {overall:.3f} (target >= 0.75, and >= each single mode per half): "
          f"{'MET' if ok else 'NOT MET'}")
    print(f"queries: {len(hyb)} ({sum(r['kind'] == 'paraphrase' for r in hyb)} paraphrased, "
          f"{sum(r['kind'] == 'literal' for r in hyb)} literal); KBs in {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
