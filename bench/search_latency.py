"""Search latency at scale without re-embedding: a built KB grown to ``--chunks`` by copying its chunks.

``bench/embed.py --chunks 100000`` grows a KB with copies whose texts are embedded for real (hours
on a 2-core CPU). Latency does not need new meanings, only a realistic amount of data, so this
bench copies each chunk under ``bench-copy-N/`` with its own vector plus a little noise (then
normalised: no two vectors are equal, the HNSW graph is as large as a real one), writes the copies
to the catalogue, the keyword index and the vector store, and times :func:`kb.search.search`
in-process over the labelled queries of both question sets (the 53 and the 40), cycling.

    .venv/bin/python bench/search_latency.py --from-kb bench/out/full-build/dev --chunks 100000

Prints p50/p95/p99 per mode (hybrid, semantic, keyword). Target: hybrid p50 <= 30 ms.
The grown KB is kept under ``--work`` (default ``bench/out/latency``) and reused when it is already
at the size asked for.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

NOISE = 0.02
"""Standard deviation of the noise added to each coordinate of a copied (unit) vector."""


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def grow(db: Path, target: int, settings) -> int:
    """Copy chunks (rows, keyword documents, noisy vectors) until the KB holds ``target``."""
    import numpy as np

    from kb.catalogue import Catalogue
    from kb.index import vector_store_for
    from kb.keyword import ChunkDoc, open_keyword_index

    with Catalogue(db) as cat:
        have = int(cat.query("SELECT count(*) FROM chunks")[0][0])
        if have >= target:
            return have
        rows = cat.query("SELECT chunk_id, path, ordinal, key_path, line_start, line_end, text, text_sha FROM chunks "
                         "WHERE NOT starts_with(path, 'bench-copy-') ORDER BY chunk_id")
        fmt = dict(cat.query("SELECT path, format FROM files"))
        store = vector_store_for(cat, settings)
        vecs = store.get_embeddings([r[0] for r in rows])
        rows = [r for r in rows if r[0] in vecs]
        kw = open_keyword_index(db)
        rng = np.random.default_rng(0)
        copy = 0
        while have < target:
            copy += 1
            pick = rows[: target - have]
            new_rows, files, docs, ids, metas = [], {}, [], [], []
            emb = np.stack([vecs[r[0]] for r in pick])
            emb = emb + rng.normal(0, NOISE, emb.shape).astype(np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            for cid, path, ordinal, key, ls, le, text, _ in pick:
                new_path = f"bench-copy-{copy}/{path}"
                head, _, body = text.partition("\n")
                new_text = head.replace(path, new_path, 1) + "\n" + body
                sha = hashlib.sha256(new_text.encode("utf-8", "surrogatepass")).hexdigest()
                new_id = f"{new_path}#{ordinal}"
                new_rows.append((new_id, new_path, ordinal, key, ls, le, new_text, sha))
                files[new_path] = fmt.get(path, "text")
                docs.append(ChunkDoc(new_id, new_path, files[new_path], key or "", ls, le, new_text, sha))
                ids.append(new_id)
                metas.append({"path": new_path, "format": files[new_path], "key_path": key or "",
                              "line_start": ls, "line_end": le, "text_sha": sha})
            with cat.transaction() as con:
                cat.insert_rows("files", [(p, f, 0, None, 0.0, "ok", 0, None, 0) for p, f in sorted(files.items())], con)
                cat.insert_rows("chunks", new_rows, con)
            kw.add(docs)
            kw.commit()
            store.upsert(ids, emb, metas)
            have += len(pick)
            print(f"# copy {copy}: {have} chunks", flush=True)
        return have


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-kb", type=Path, required=True, help="a KB built with the real model")
    ap.add_argument("--chunks", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=300, help="timed hybrid searches (a third as many per other mode)")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "latency")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--param", action="append", default=[], metavar="MODULE.NAME=VALUE",
                    help="override a ranking constant (as in search_quality.py)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from search_quality import load_queries, set_param

    from kb.catalogue import Catalogue
    from kb.search import search
    from kb.settings import Settings

    for spec in args.param:
        set_param(spec)
    db = args.work / f"kb-{args.chunks}"
    if not db.exists():
        shutil.copytree(args.from_kb, db)
    settings = Settings(db=db, model=args.model)
    t = time.perf_counter()
    total = grow(db, args.chunks, settings)
    print(f"# KB {db}: {total} chunks (grown in {time.perf_counter() - t:.0f} s)", flush=True)

    queries = [q["query"] for s in ("sample", "dev", "questions") for q in load_queries(s)]
    report: dict = {"chunks": total, "queries": len(queries)}
    with Catalogue(db, read_only=True) as cat:
        for q in queries[:5]:
            search(cat, settings, q)  # warm-up: model, stores, caches
        for mode, n in (("hybrid", args.queries), ("semantic", args.queries // 3), ("keyword", args.queries // 3)):
            times = []
            for i in range(n):
                t = time.perf_counter()
                search(cat, settings, queries[i % len(queries)], k=10, mode=mode)
                times.append((time.perf_counter() - t) * 1000)
            report[mode] = {"p50": pct(times, 50), "p95": pct(times, 95), "p99": pct(times, 99),
                            "mean": statistics.fmean(times), "n": n}
            print(f"search {mode:8} over {total} chunks: p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms, "
                  f"p99 {pct(times, 99):.1f} ms ({n} queries)", flush=True)
    print(f"\n{'MET ' if report['hybrid']['p50'] <= 30 else 'MISS'}  hybrid p50 <= 30 ms")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
