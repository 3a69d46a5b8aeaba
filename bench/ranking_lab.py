"""Ranking experiments in seconds: candidate lists dumped once, fusion replayed under many settings.

``dump`` searches every labelled query of the three sets once per corpus KB (BM25 top ``--depth``
and vector top ``--depth`` with their scores, the chunk rows, chunks per file) into a pickle.
``grid`` replays :func:`kb.search.fusion.fuse` (the code ``kb search`` runs) over those lists
with ranking constants overridden, and prints MRR@10 per set, kind and half for each setting,
best on the ``tune`` half first. Settings are chosen on the tune half only; the check half and the
53-question set are reported beside them.

    .venv/bin/python bench/ranking_lab.py dump --work bench/out/full-build --out bench/out/lab.pkl
    .venv/bin/python bench/ranking_lab.py grid --lab bench/out/lab.pkl \\
        --grid kb.search.fusion.FILE_DECAY=0,0.3,0.5 --grid kb.search.fusion.RRF_K=10,20,60

The replay is exact when the candidate depth the code uses (``kb.search.candidates.CANDIDATES``)
is at most the dumped ``--depth``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import itertools
import pickle
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from search_quality import SETS, corpus_of, load_queries, score  # noqa: E402


def dump(args: argparse.Namespace) -> int:
    from kb import KnowledgeBase
    from kb.search import candidates, stores
    from kb.search.query import ParsedQuery

    out: dict = {"depth": args.depth, "queries": [], "docs": {}, "chunk_counts": {}}
    kbs: dict[str, object] = {}
    for qset in SETS:
        corpus = corpus_of(qset)
        if corpus not in kbs:
            kbs[corpus] = KnowledgeBase.open(args.work / corpus, read_only=True, model=args.model)
        kb = kbs[corpus]
        with kb.snapshot() as snap:  # type: ignore[attr-defined]
            st = stores.open_stores(snap, kb.settings, lambda kb=kb: kb.embedder("query"))  # type: ignore[attr-defined]
            out["chunk_counts"][corpus] = dict(stores.file_chunk_counts(st))
            docs = out["docs"].setdefault(corpus, {})
            for q in load_queries(qset):
                pq = ParsedQuery.parse(q["query"])
                kw = candidates.keyword_candidates(st, pq.terms, args.depth, None, None)
                vec = candidates.vector_candidates(st, stores.encode_query(st, q["query"]), args.depth, None, None)
                missing = [cid for cid, _ in vec if cid not in docs]
                for _, d in kw:
                    docs.setdefault(d.chunk_id, d)
                docs.update(stores.fetch_chunks(st, missing))
                out["queries"].append(
                    {
                        **q,
                        "set": qset,
                        "corpus": corpus,
                        "kw": [(s, d.chunk_id) for s, d in kw],
                        "vec": [(sim, cid) for cid, sim in vec],
                    }
                )
        print(f"# {qset}: {sum(1 for x in out['queries'] if x['set'] == qset)} queries", flush=True)
    args.out.write_bytes(pickle.dumps(out))
    print(f"wrote {args.out}")
    return 0


VECTORS = "vec"
"""Which dumped vector list to replay (``vec``; other lists added to a dump by hand, e.g. another
index's answers, can be compared with ``--vectors``)."""


def replay(lab: dict, mode: str = "hybrid") -> list[dict]:
    """One row per query: its reciprocal rank under the current constants."""
    from kb.search import candidates, fusion
    from kb.search.query import ParsedQuery

    n = candidates.candidate_count(10)
    rows = []
    for q in lab["queries"]:
        docs = lab["docs"][q["corpus"]]
        kw = [(s, docs[c]) for s, c in q["kw"][:n]]
        vec = [(cid, sim) for sim, cid in q[VECTORS if VECTORS in q else "vec"][:n]]
        pq = ParsedQuery.parse(q["query"])
        if mode == "keyword":
            ranked = kw
        elif mode == "semantic":
            ranked = [(sim, docs[cid]) for cid, sim in vec]
        else:
            ranked = fusion.fuse(pq, kw, vec, docs, lab["chunk_counts"][q["corpus"]])
        paths: list[str] = []
        for _, d in ranked:
            if d.path not in paths:
                paths.append(d.path)
        _, rr, rank = score(paths, q["relevant"])
        rows.append(
            {
                "set": q["set"],
                "id": q["id"],
                "kind": q["kind"],
                "half": q.get("half"),
                "rr10": rr,
                "rank": rank,
                "query": q["query"],
                "top": paths[:3],
            }
        )
    return rows


GROUPS = [
    ("53", lambda r: r["set"] in ("sample", "dev"), None),
    ("53 para", lambda r: r["set"] in ("sample", "dev"), "paraphrase"),
    ("tune", lambda r: r.get("half") == "tune", None),
    ("tune para", lambda r: r.get("half") == "tune", "paraphrase"),
    ("tune lit", lambda r: r.get("half") == "tune", "literal"),
    ("check", lambda r: r.get("half") == "check", None),
    ("check para", lambda r: r.get("half") == "check", "paraphrase"),
    ("check lit", lambda r: r.get("half") == "check", "literal"),
    ("40", lambda r: r["set"] == "questions", None),
    ("40 para", lambda r: r["set"] == "questions", "paraphrase"),
]


def summarise(rows: list[dict]) -> dict[str, float]:
    out = {}
    for name, pred, kind in GROUPS:
        sel = [r["rr10"] for r in rows if pred(r) and (kind is None or r["kind"] == kind)]
        out[name] = statistics.fmean(sel) if sel else float("nan")
    return out


def set_param(target: str, value: object) -> None:
    module, _, name = target.rpartition(".")
    mod = importlib.import_module(module)
    if not hasattr(mod, name):
        raise SystemExit(f"{module} has no {name}")
    setattr(mod, name, value)


def grid(args: argparse.Namespace) -> int:
    global VECTORS
    VECTORS = args.vectors
    lab = pickle.loads(args.lab.read_bytes())
    for spec in args.fixed:
        t, _, v = spec.partition("=")
        set_param(t, ast.literal_eval(v))
    axes: list[tuple[str, list[object]]] = []
    for spec in args.grid:
        t, _, vs = spec.partition("=")
        axes.append(
            (
                t,
                [ast.literal_eval(v) for v in vs.split(";")]
                if ";" in vs
                else [ast.literal_eval(v) for v in vs.split(",")],
            )
        )
    results = []
    for mode in ("keyword", "semantic"):
        if args.singles:
            results.append(({"mode": mode}, summarise(replay(lab, mode))))
    for combo in itertools.product(*[vals for _, vals in axes]) if axes else [()]:
        for (t, _), v in zip(axes, combo):
            set_param(t, v)
        rows = replay(lab)
        results.append(({t.rsplit(".", 1)[-1]: v for (t, _), v in zip(axes, combo)}, summarise(rows)))
        if args.verbose:
            for r in rows:
                if r["set"] == "questions" or r["rr10"] < 1:
                    print(
                        f"  {r['set']:9} {r['id']:9} {r.get('half') or '':5} {r['kind'][:4]} "
                        f"{r['rank'] or '-':>3}  {r['query'][:60]:60}  {' | '.join(p[-50:] for p in r['top'][:2])}"
                    )
    cols = [name for name, _, _ in GROUPS]
    print(f"{'setting':80} " + " ".join(f"{c:>10}" for c in cols))
    results.sort(key=lambda x: -x[1]["tune"] if "mode" not in x[0] else 1)
    for setting, s in results[: args.top]:
        label = ", ".join(f"{k[:1] + k.split('_')[-1][:5]}={v}" for k, v in setting.items())
        print(f"{label[:80]:80} " + " ".join(f"{s[c]:10.3f}" for c in cols))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--work", type=Path, required=True, help="folder holding the sample/ and dev/ KBs")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--depth", type=int, default=300)
    d.add_argument("--model", default="all-MiniLM-L6-v2")
    g = sub.add_parser("grid")
    g.add_argument("--lab", type=Path, required=True)
    g.add_argument("--grid", action="append", default=[], metavar="MODULE.NAME=V1,V2,...")
    g.add_argument("--fixed", action="append", default=[], metavar="MODULE.NAME=V")
    g.add_argument("--top", type=int, default=30)
    g.add_argument("--singles", action="store_true", help="also the keyword-only and semantic-only rows")
    g.add_argument("-v", "--verbose", action="store_true")
    g.add_argument("--vectors", default="vec", help="which dumped vector list to replay (default: vec)")
    args = ap.parse_args()
    return dump(args) if args.cmd == "dump" else grid(args)


if __name__ == "__main__":
    raise SystemExit(main())
