"""A full build of a corpus (catalogue + keyword index + vectors) and what it buys, in one report.

For the dev corpus (``../shared/corpora/dev`` by default) it prints:

* the embedding backend ``auto`` chose on this machine and why (``Embedder.choice``), and the word
  pieces the model was fed (``bench/token_budget.py``: distinct embeddable texts, read in windows
  of the build's ``embed_window``: ``model_window``, ``windows_embedded``);
* wall time per phase of a fresh ``kb ingest`` (the phases its progress callback names: parse,
  embed, keyword, ...), texts embedded and skipped, texts/s in the embed phase, peak RSS of the
  whole process tree (sampled every 50 ms);
* hybrid, semantic and keyword MRR@10 on both question sets: the 53 of ``bench/`` (the sample corpus's
  29 + the dev corpus's 24) and the 40 of ``../shared/corpora/dev_questions.json``, with the 40's
  halves (``tune``, ``check``: the half no ranking constant was tuned on) and answer@1/@5;
* a cold ``kb search`` from the shell on the built KB: wall time and peak RSS (``/usr/bin/time``,
  median of 3), and whether its hits equal those of the same search in-process.

    .venv/bin/python bench/full_build.py                                  # dev corpus, fresh build
    .venv/bin/python bench/full_build.py --save bench/full_build_baseline.json
    .venv/bin/python bench/full_build.py --baseline bench/full_build_baseline.json   # old | new table

``--save`` writes the figures as JSON; ``--baseline FILE`` prints them beside the figures of an
earlier run (the saved baseline was measured with the code before the embedding work, on the same
kind of 2-core machine).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

COLD_QUERY = "database timeout"


def child_build(corpus: str, db: str, model: str, device: str) -> None:
    """Run in a subprocess: a fresh build, phases timed through the progress callback."""
    from kb import KnowledgeBase

    first: dict[str, float] = {}
    t0 = time.perf_counter()

    def progress(phase: str, done: int, total: int) -> None:
        first.setdefault(phase, time.perf_counter() - t0)

    from kb.settings import Settings

    kb = KnowledgeBase(Settings.load({"db": Path(db), "model": model, "device": device}))
    summary = kb.ingest(corpus, progress=progress)
    end = time.perf_counter() - t0
    emb = kb.embedder("documents")  # the instance the build used
    gen = kb.generation()
    embedder = {
        **((gen.embedder or {}) if gen else {}),
        "choice": getattr(emb, "choice", f"{getattr(emb, 'backend', '?')} {getattr(emb, 'precision', '?')}"),
    }
    distinct = int(kb.sql("SELECT count(DISTINCT text_sha) AS n FROM chunks")["n"][0])
    chunks = int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
    kb.close()
    order = sorted(first.items(), key=lambda kv: kv[1])
    phases = {}
    for i, (phase, start) in enumerate(order):
        stop = order[i + 1][1] if i + 1 < len(order) else end
        phases[phase] = round(stop - start, 2)
    if order:
        phases = {"setup": round(order[0][1], 2), **phases}
    reported = getattr(summary, "phases", None)
    if reported:  # the run's own per-phase seconds (kb after the embedding work)
        phases = {k: round(v, 2) for k, v in reported.items()}
    print(
        json.dumps(
            {
                "phases": phases,
                "seconds": round(end, 2),
                "chunks": chunks,
                "distinct_texts": distinct,
                "embedder": embedder,
                "summary": summary.model_dump(mode="json"),
            }
        )
    )


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``cmd``: wall seconds, peak summed RSS (MB) of its process tree, stdout."""
    import psutil

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
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return time.perf_counter() - t0, peak / 1048576, out


def cold_search(db: Path, runs: int = 3) -> dict:
    """``kb search`` from the shell: median wall, max peak RSS, and its hits."""
    kb_bin = Path(sys.executable).parent / "kb"
    walls, rss, hits = [], [], None
    for _ in range(runs):
        cmd = ["/usr/bin/time", "-f", "TIME %e %M", str(kb_bin), "search", COLD_QUERY, "--db", str(db), "--json"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if proc.returncode != 0:
            raise SystemExit(f"kb search failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        line = [ln for ln in proc.stderr.splitlines() if ln.startswith("TIME ")][-1]
        _, wall, kbytes = line.split()
        walls.append(float(wall))
        rss.append(int(kbytes) / 1024)
        hits = json.loads(proc.stdout)
        if isinstance(hits, dict):  # kb search --json is an object since the embedding work
            hits = hits["hits"]
    return {"wall_s": statistics.median(walls), "walls": walls, "peak_rss_mb": round(max(rss), 1), "hits": hits}


def quality(work: Path, dev_db: Path, model: str, device: str) -> dict:
    import search_quality as sq

    from kb import KnowledgeBase

    rows: list[dict] = []
    sample = KnowledgeBase.build(sq.corpus_root("sample"), db=work / "sample", model=model, device=device)
    rows += sq.evaluate(sample, "sample")
    sample.close()
    dev = KnowledgeBase.open(dev_db, model=model, device=device)
    rows += sq.evaluate(dev, "dev")
    rows += sq.evaluate(dev, "questions")
    in_process = [h.model_dump(mode="json") for h in dev.search(COLD_QUERY, as_frame=False)]
    dev.close()
    out: dict = {"in_process_hits": in_process}
    for name, sets in (("53", ("sample", "dev")), ("40", ("questions",))):
        for mode in sq.MODES:
            for kind in (None, "paraphrase", "literal"):
                out[f"{name}/{mode}/{kind or 'all'}"] = round(sq.mrr(rows, mode, sets=sets, kind=kind), 3)
    # the 40 questions' halves (tuned on / not tuned on) and answers (hybrid): the first hit's
    # lines, or one of the first five hits' lines, hold the line that answers
    hybrid = [r for r in rows if r["set"] == "questions" and r["mode"] == "hybrid"]
    for half in ("tune", "check"):
        ms = [r for r in hybrid if r.get("half") == half]
        out[f"40/hybrid/{half}"] = round(statistics.fmean(r["rr10"] for r in ms), 3) if ms else None
    scored = [r for r in hybrid if r.get("answer1") is not None]
    for key in ("answer1", "answer5"):
        out[f"40/hybrid/{key}"] = round(statistics.fmean(float(r[key]) for r in scored), 3) if scored else None
        ms = [r for r in scored if r.get("half") == "check"]
        out[f"40/hybrid/check/{key}"] = round(statistics.fmean(float(r[key]) for r in ms), 3) if ms else None
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=(REPO.parent / "shared" / "corpora" / "dev").resolve())
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "full-build")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-quality", action="store_true", help="build and cold search only")
    ap.add_argument("--save", type=Path, help="write the figures to this JSON file")
    ap.add_argument("--baseline", type=Path, help="print these saved figures beside the new ones")
    ap.add_argument("--child", nargs=2, metavar=("CORPUS", "DB"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        child_build(args.child[0], args.child[1], args.model, args.device)
        return 0

    args.work.mkdir(parents=True, exist_ok=True)
    dev_db = args.work / "dev"
    shutil.rmtree(dev_db, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    load_before = os.getloadavg()[0]
    print(f"# full build of {args.corpus} into {dev_db} (load {load_before:.2f}) ...", flush=True)
    wall, peak, out = measure(
        [
            sys.executable,
            __file__,
            "--model",
            args.model,
            "--device",
            args.device,
            "--child",
            str(args.corpus),
            str(dev_db),
        ],
        env,
    )
    build = json.loads(out.strip().splitlines()[-1])
    s = build["summary"]
    embed_s = (build["phases"].get("embed") or 0.0) + (build["phases"].get("chroma") or 0.0)
    from token_budget import pieces_seen

    from kb.settings import Settings

    budget = pieces_seen(dev_db, args.model, Settings.load().embed_window)
    fig: dict = {
        "corpus": str(args.corpus),
        "embedder": build["embedder"].get("choice"),
        "embedder_identity": build["embedder"].get("name"),
        "word_pieces_embedded": budget["pieces"],
        "word_pieces_per_text": round(budget["pieces"] / max(1, budget["texts"]), 1),
        "model_window": budget.get("window"),
        "windows_embedded": budget.get("windows"),
        "files": s["files_seen"],
        "chunks": build["chunks"],
        "distinct_texts": build["distinct_texts"],
        "build_wall_s": round(wall, 1),
        "phases": build["phases"],
        "texts_embedded": s.get("chunks_embedded", 0),
        "texts_skipped": s.get("chunks_skipped", 0),
        "embed_texts_per_s": round(s.get("chunks_embedded", 0) / embed_s, 1) if embed_s else None,
        "peak_rss_mb": round(peak),
        "cpus": os.cpu_count(),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(dict(fig.items()), indent=1), flush=True)
    cold = cold_search(dev_db)
    fig["cold_search_wall_s"] = cold["wall_s"]
    fig["cold_search_peak_rss_mb"] = cold["peak_rss_mb"]
    if not args.no_quality:
        q = quality(args.work, dev_db, args.model, args.device)
        fig["cold_search_same_as_in_process"] = q.pop("in_process_hits") == cold["hits"]
        fig["mrr"] = q
    report(fig, json.loads(args.baseline.read_text()) if args.baseline else None)
    if args.save:
        args.save.write_text(json.dumps(fig, indent=1) + "\n")
    return 0


def report(new: dict, old: dict | None) -> None:
    def val(d: dict | None, key: str):
        if d is None:
            return ""
        cur: object = d
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return "-"
            cur = cur[part]
        return cur

    keys = ["embedder", "files", "chunks", "distinct_texts", "word_pieces_embedded", "build_wall_s"]
    phases = list(dict.fromkeys([*(old or {}).get("phases", {}), *new.get("phases", {})]))
    keys += [f"phases.{p}" for p in phases]
    keys += [
        "texts_embedded",
        "texts_skipped",
        "embed_texts_per_s",
        "peak_rss_mb",
        "load_before",
        "load_after",
        "cold_search_wall_s",
        "cold_search_peak_rss_mb",
        "cold_search_same_as_in_process",
    ]
    keys += [f"mrr.{k}" for k in new.get("mrr", {})]
    print(f"\n{'figure':34} {'old':>14} {'new':>14}")
    for k in keys:
        print(f"{k:34} {str(val(old, k)):>14} {str(val(new, k)):>14}")
    if old:
        print(f"\nold measured {old.get('measured_at')}, new {new.get('measured_at')}")
        if old.get("build_wall_s") and new.get("build_wall_s"):
            print(f"full build speed-up: {old['build_wall_s'] / new['build_wall_s']:.1f}x")


if __name__ == "__main__":
    raise SystemExit(main())
