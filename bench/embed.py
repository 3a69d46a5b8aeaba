"""Embedding throughput, search latency over 100,000 chunks, and the no-change re-ingest.

Prints three figures, all measured in one run with the model loaded once:

1. **Embed phase vs bare encode.** ``S`` distinct chunk texts of the corpus are encoded by a bare
   ``SentenceTransformer.encode`` (same model object, batch size, normalisation), and indexed by
   :func:`kb.index.sync_index` into a fresh KB (reading the chunks table, deduplicating, encoding,
   writing Chroma and the keyword index). Alternated twice; best of each. Target: ours >= 90%.
2. **Search latency.** A KB of ``--chunks`` chunks (default 100,000): the corpus, topped up with
   copies of its chunks under ``bench-copy-N/`` paths (distinct texts, really embedded). Hybrid,
   semantic and keyword queries (the labelled benchmark questions and identifiers) against a
   read-only catalogue; p50/p95/p99 in ms. Targets: hybrid p50 <= 30 ms, p99 <= 150 ms.
3. **No-change re-ingest** of the corpus (``kb ingest`` again) and a second ``sync_index`` over
   the topped-up KB: both must embed 0 texts.

CPU, re-using the KB that ``bench/search_quality.py --work W`` built (no re-embedding of the corpus)::

    .venv/bin/python bench/embed.py --from-kb W/dev --chunks 100000 --sample 2000

Smaller, from scratch::

    .venv/bin/python bench/embed.py --corpus kb/sample --chunks 20000 --sample 500

GPU (fp16): first save a carryable fp16 copy of the model here, then run there::

    .venv/bin/python bench/embed.py --save-fp16 bench/out/minilm-fp16
    python bench/embed.py --corpus kb/sample --model bench/out/minilm-fp16 --device cuda --fp16 --chunks 100000

A small ``--sample`` understates the embed-phase ratio: creating the KB and its stores is a fixed
cost of a few tenths of a second per run (2,000 texts make it negligible on a CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def settings_for(args: argparse.Namespace, db: Path, **extra):
    from kb.settings import Settings

    return Settings(db=db, model=args.model, device=args.device, embed_batch_size=args.batch_size,
                    workers=args.workers, **extra)


def install_embedder(args: argparse.Namespace, settings) -> object:
    """Load the model once (fp16 on request) and make the library use that instance."""
    from kb.embed import SentenceTransformerEmbedder, get_embedder, use_embedder

    if args.fp16:
        emb = SentenceTransformerEmbedder(args.model, args.device, batch_size=args.batch_size, fp16=True)
        use_embedder(settings, emb)
    return get_embedder(settings)


def chunk_rows(catalogue, limit: int | None = None) -> list[tuple]:
    sql = "SELECT chunk_id, path, ordinal, key_path, line_start, line_end, text, text_sha FROM chunks ORDER BY chunk_id"
    return catalogue.query(sql + (f" LIMIT {int(limit)}" if limit else ""))


def file_rows_for(catalogue, paths: set[str], prefix: str = "") -> list[tuple]:
    rows = catalogue.query("SELECT path, format FROM files")
    fmt = dict(rows)
    return [(prefix + p, fmt.get(p, "text"), 0, None, 0.0, "ok", 0, None, 0) for p in sorted(paths)]


def throughput(args, texts_rows: list[tuple], file_rows: list[tuple], work: Path) -> dict:
    """Bare encode vs the sync's embed phase over the same distinct texts."""
    from kb.catalogue import Catalogue
    from kb.index import sync_index
    from kb.vectors import forget_vector_stores

    texts = [r[6] for r in texts_rows]
    s0 = settings_for(args, work / "tp-0")
    emb = install_embedder(args, s0)
    model = emb.model
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up
    bare_times, ours_times = [], []
    for rep in range(args.repeats):
        t = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                     show_progress_bar=False)
        bare_times.append(time.perf_counter() - t)
        db = work / f"tp-{rep}"
        shutil.rmtree(db, ignore_errors=True)
        s = settings_for(args, db)
        with Catalogue(db) as cat:
            cat.insert_rows("files", file_rows)
            cat.insert_rows("chunks", texts_rows)
            t = time.perf_counter()
            info = sync_index(cat, s)
            ours_times.append(time.perf_counter() - t)
            assert info["embedded"] == len(texts), info
        forget_vector_stores()
        shutil.rmtree(db, ignore_errors=True)
    bare, ours = min(bare_times), min(ours_times)
    return {"texts": len(texts), "bare_s": bare, "ours_s": ours, "bare_tps": len(texts) / bare,
            "ours_tps": len(texts) / ours, "ratio": bare / ours, "bare_all": bare_times, "ours_all": ours_times}


def top_up(catalogue, target: int, seed: int = 0) -> int:
    """Add copies of existing chunks under ``bench-copy-N/`` until the KB holds ``target`` chunks."""
    have = catalogue.query("SELECT count(*) FROM chunks")[0][0]
    if have >= target:
        return 0
    base = chunk_rows(catalogue)
    base = [r for r in base if not r[1].startswith("bench-copy-")]
    rng = random.Random(seed)
    need = target - have
    rows, paths = [], {}
    copy = 0
    while len(rows) < need:
        copy += 1
        pool = base[:]
        rng.shuffle(pool)
        for cid, path, ordinal, key, ls, le, text, _ in pool[: need - len(rows)]:
            new_path = f"bench-copy-{copy}/{path}"
            head, _, body = text.partition("\n")
            new_text = head.replace(path, new_path, 1) + "\n" + body
            rows.append((f"{new_path}#{ordinal}", new_path, ordinal, key, ls, le, new_text,
                         hashlib.sha256(new_text.encode("utf-8", "surrogatepass")).hexdigest()))
            paths[new_path] = path
    fmt = dict(catalogue.query("SELECT path, format FROM files"))
    files = [(p, fmt.get(src, "text"), 0, None, 0.0, "ok", 0, None, 0) for p, src in sorted(paths.items())]
    with catalogue.transaction() as con:
        catalogue.insert_rows("files", files, con)
        catalogue.insert_rows("chunks", rows, con)
    return len(rows)


def load_queries() -> list[tuple[str, str]]:
    out = []
    truth = REPO / "kb" / "sample_truth.json"
    if truth.exists():
        out += [(q["query"], q["kind"]) for q in json.loads(truth.read_text()).get("queries", [])]
    dev = REPO / "bench" / "search_queries_dev.json"
    if dev.exists():
        out += [(q["query"], q["kind"]) for q in json.loads(dev.read_text())["queries"]]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_corpus = (REPO.parent / "shared" / "corpora" / "dev")
    ap.add_argument("--corpus", type=Path, default=default_corpus if default_corpus.is_dir() else REPO / "kb" / "sample")
    ap.add_argument("--from-kb", type=Path, default=None, help="start from a copy of this embedded KB (skips embedding the corpus)")
    ap.add_argument("--chunks", type=int, default=100_000, help="KB size for the latency test")
    ap.add_argument("--sample", type=int, default=2000, help="distinct texts for the throughput comparison")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--queries", type=int, default=300, help="timed hybrid searches (semantic and keyword: a third each)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fp16", action="store_true", help="halve the model on CUDA")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one, removed)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--save-fp16", type=Path, default=None, metavar="DIR",
                    help="save an fp16 copy of --model to DIR (about 45 MB, small enough to carry to a GPU "
                         "machine) and exit")
    args = ap.parse_args()

    if args.save_fp16:
        from sentence_transformers import SentenceTransformer

        from kb.embed import _model_location

        model = SentenceTransformer(_model_location(args.model)[0], device="cpu")
        model.half().save(str(args.save_fp16))
        size = sum(p.stat().st_size for p in args.save_fp16.rglob("*") if p.is_file())
        print(f"saved an fp16 copy of {args.model} to {args.save_fp16} ({size / 1e6:.1f} MB)")
        return 0

    import torch

    from ingest.pipeline import run_ingest
    from kb.catalogue import Catalogue
    from kb.embed import resolve_device
    from kb.index import sync_index
    from kb.search import search
    from kb.vectors import forget_vector_stores

    work = args.work or Path(tempfile.mkdtemp(prefix="kb-bench-embed-"))
    work.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    report: dict = {"device": device, "torch_threads": torch.get_num_threads(), "model": args.model, "fp16": args.fp16,
                    "batch_size": args.batch_size}
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    print(f"# device {device}{f' ({gpu})' if gpu else ''}, torch threads {torch.get_num_threads()}, "
          f"model {args.model}{' fp16' if args.fp16 else ''}, batch {args.batch_size}", flush=True)

    # -- the corpus KB ------------------------------------------------------------------------------
    db = work / "kb"
    shutil.rmtree(db, ignore_errors=True)
    if args.from_kb:
        t = time.perf_counter()
        shutil.copytree(args.from_kb, db)
        print(f"# copied {args.from_kb} in {time.perf_counter() - t:.1f} s", flush=True)
    settings = settings_for(args, db)
    emb = install_embedder(args, settings)
    catalogue = Catalogue(db)
    root = Path(catalogue.get_meta("root") or args.corpus)
    settings = settings.replace(root=root)
    t = time.perf_counter()
    summary = run_ingest(catalogue, settings)
    first = time.perf_counter() - t
    n_corpus = catalogue.query("SELECT count(*) FROM chunks")[0][0]
    print(f"# corpus {root}: {summary.files_seen} files, {n_corpus} chunks; ingest {first:.1f} s, "
          f"embedded {summary.chunks_embedded}", flush=True)
    if summary.chunks_embedded:
        report["corpus_embed"] = {"texts": summary.chunks_embedded, "seconds": first}
    t = time.perf_counter()
    again = run_ingest(catalogue, settings)
    report["reingest"] = {"embedded": again.chunks_embedded, "seconds": round(time.perf_counter() - t, 2)}
    print(f"no-change re-ingest: embedded {again.chunks_embedded} texts in {report['reingest']['seconds']} s", flush=True)

    # -- 1. throughput ------------------------------------------------------------------------------
    if not args.skip_throughput:
        rows = chunk_rows(catalogue)
        seen, distinct = set(), []
        for r in rows:
            if r[7] not in seen:
                seen.add(r[7])
                distinct.append(r)
        random.Random(1).shuffle(distinct)
        pick = distinct[: args.sample]
        files = file_rows_for(catalogue, {r[1] for r in pick})
        tp = throughput(args, pick, files, work)
        report["throughput"] = tp
        print(f"embed phase: {tp['ours_tps']:.1f} texts/s (sync_index) vs bare SentenceTransformer.encode "
              f"{tp['bare_tps']:.1f} texts/s over the same {tp['texts']} texts: {100 * tp['ratio']:.1f}% "
              f"(runs: ours {', '.join(f'{x:.1f}' for x in tp['ours_all'])} s; bare "
              f"{', '.join(f'{x:.1f}' for x in tp['bare_all'])} s)", flush=True)

    # -- 2. top up to --chunks and index ------------------------------------------------------------
    added = top_up(catalogue, args.chunks)
    t = time.perf_counter()
    info = sync_index(catalogue, settings)
    dt = time.perf_counter() - t
    total = catalogue.query("SELECT count(*) FROM chunks")[0][0]
    report["top_up"] = {"added": added, "embedded": info["embedded"], "seconds": round(dt, 1), "chunks": total}
    if info["embedded"]:
        print(f"top-up: {added} chunk copies, {info['embedded']} texts embedded in {dt:.1f} s "
              f"({info['embedded'] / dt:.1f} texts/s)", flush=True)
    t = time.perf_counter()
    info2 = sync_index(catalogue, settings)
    report["resync"] = {"embedded": info2["embedded"], "seconds": round(time.perf_counter() - t, 2)}
    print(f"no-change sync over {total} chunks: embedded {info2['embedded']} in {report['resync']['seconds']} s", flush=True)
    catalogue.close()
    forget_vector_stores()

    # -- 3. latency ---------------------------------------------------------------------------------
    queries = load_queries() or [("fraud review threshold", "paraphrase"), ("DATABASE_URL", "literal")]
    with Catalogue(db, read_only=True) as cat:
        for q, _ in queries[:5]:
            search(cat, settings, q, mode="hybrid")  # warm-up: model, stores, caches
        lat: dict[str, list[float]] = {}
        plan = [("hybrid", args.queries), ("semantic", max(1, args.queries // 3)), ("keyword", max(1, args.queries // 3))]
        for mode, n in plan:
            times = []
            for i in range(n):
                q = queries[i % len(queries)][0]
                t = time.perf_counter()
                search(cat, settings, q, k=10, mode=mode)
                times.append((time.perf_counter() - t) * 1000)
            lat[mode] = times
            print(f"search {mode:8} over {total} chunks: p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms, "
                  f"p99 {pct(times, 99):.1f} ms, mean {statistics.fmean(times):.1f} ms ({n} queries)", flush=True)
        report["latency_ms"] = {m: {"p50": pct(v, 50), "p95": pct(v, 95), "p99": pct(v, 99), "n": len(v)} for m, v in lat.items()}

    h = report["latency_ms"]["hybrid"]
    verdicts = [
        ("embed phase >= 90% of bare encode", report.get("throughput", {}).get("ratio", 1.0) >= 0.9),
        ("hybrid p50 <= 30 ms", h["p50"] <= 30),
        ("hybrid p99 <= 150 ms", h["p99"] <= 150),
        ("no-change re-ingest embeds nothing", report["reingest"]["embedded"] == 0 and report["resync"]["embedded"] == 0),
    ]
    print()
    for name, ok in verdicts:
        print(f"{'MET ' if ok else 'MISS'}  {name}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
