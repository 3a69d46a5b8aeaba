"""Benchmark: ``kb duplicates`` (every kind but semantic) and ``kb drift`` over a large tree.

    python bench/duplicates.py --files 50000        # generates bench/out/synth-50000, ingests it once
    python bench/duplicates.py --corpus ../shared/corpora/dev

The catalogue is built once (catalogue only, no embeddings) and reused; what is timed is the
duplicate search itself: each kind alone (each call pays its own set-up), then all four kinds in
one ``find_duplicates`` call (what ``kb duplicates`` runs), the summary, and drift. Target on 2
cores: all four kinds <= 30 s for 50,000 files. The load average is printed with the figures: on a
shared machine other processes' work shows up in the wall times.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

KINDS = ("exact", "canonical", "block", "near")
TARGET_S = 30.0


def generate(out: Path, files: int) -> None:
    spec = importlib.util.spec_from_file_location("gen_corpus", HERE / "gen_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    mod.generate(out, files=files)


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000, help="size of the generated corpus")
    ap.add_argument("--corpus", type=Path, help="an existing tree instead of a generated one")
    ap.add_argument("--db", type=Path, help="KB directory (default: beside the corpus under bench/out)")
    ap.add_argument("--json", dest="json_out", type=Path, help="also write the figures here")
    args = ap.parse_args()

    from kb.drift import find_drift
    from kb.duplicates import duplication_summary, find_duplicates
    from kb.knowledge import KnowledgeBase
    from kb.settings import Settings

    if args.corpus:
        corpus = args.corpus.resolve()
        db = args.db or HERE / "out" / f"{corpus.name}-catalogue.kb"
    else:
        corpus = HERE / "out" / f"synth-{args.files}"
        db = args.db or HERE / "out" / f"synth-{args.files}.kb"
        if not corpus.exists():
            _, s = timed(lambda: generate(corpus, args.files))
            print(f"generated {corpus} in {s:.1f} s", file=sys.stderr)
    if not (db / "HEAD.json").exists() and not (db / "catalogue.duckdb").exists():
        _, s = timed(lambda: KnowledgeBase.build(corpus, db=db, embed=False).close())
        print(f"ingested {corpus} into {db} in {s:.1f} s", file=sys.stderr)

    settings = Settings(db=db, root=corpus)
    kb = KnowledgeBase.open(db)
    held = contextlib.ExitStack()
    cat = held.enter_context(kb.snapshot()).catalogue  # the published generation, read-only
    files, records = cat.query("SELECT (SELECT count(*) FROM files), (SELECT count(*) FROM records)")[0]
    load_before = os.getloadavg()[0]
    rows = []
    for kind in KINDS:
        groups, s = timed(lambda kind=kind: find_duplicates(cat, settings, kinds=[kind]))
        rows.append((kind, s, len(groups), sum(len(g.members) for g in groups)))
    groups, total = timed(lambda: find_duplicates(cat, settings, kinds=list(KINDS)))
    summary, summary_s = timed(lambda: duplication_summary(cat, groups))
    drift, drift_s = timed(lambda: find_drift(cat, settings))
    load_after = os.getloadavg()[0]
    held.close()
    kb.close()

    print(
        f"### kb duplicates on {corpus.name}: {files:,} files, {records:,} leaf values "
        f"(load average {load_before:.1f} before, {load_after:.1f} after; {os.cpu_count()} CPUs)\n"
    )
    print("| step | seconds | groups | members |")
    print("|---|---:|---:|---:|")
    for kind, s, n, m in rows:
        print(f"| {kind} alone | {s:.2f} | {n:,} | {m:,} |")
    print(f"| **all four in one call** | **{total:.2f}** | {len(groups):,} | {sum(len(g.members) for g in groups):,} |")
    print(f"| duplication_summary | {summary_s:.2f} | ratio {summary['duplication_ratio']:.1%} | |")
    print(f"| drift | {drift_s:.2f} | {len(drift):,} | |")
    verdict = "meets" if total <= TARGET_S else "MISSES"
    print(f"\nAll four kinds: {total:.1f} s, {verdict} the {TARGET_S:.0f} s target.")
    if args.json_out:
        args.json_out.write_text(
            json.dumps(
                {
                    "corpus": str(corpus),
                    "files": files,
                    "records": records,
                    "load_before": load_before,
                    "load_after": load_after,
                    "per_kind": {k: {"seconds": s, "groups": n, "members": m} for k, s, n, m in rows},
                    "all_kinds_seconds": total,
                    "summary_seconds": summary_s,
                    "drift_seconds": drift_s,
                    "summary": summary,
                    "drift_groups": len(drift),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
