"""Search quality: recall@5 and MRR@10 for keyword, semantic and hybrid search.

Three labelled question sets over two corpora:

* ``sample``: the bundled sample corpus ``kb/sample`` with the ``queries`` of ``kb/sample_truth.json``
  (29, half paraphrased, half literal);
* ``dev``: the developer corpus ``../shared/corpora/dev`` with ``bench/search_queries_dev.json`` (24).
  ``sample`` + ``dev`` are "the 53-question set";
* ``questions``: the same corpus with ``../shared/corpora/dev_questions.json`` (40 questions written
  by people who did not know the corpus's file or key names: 28 paraphrases, 12 literal).

Relevance is per file: a query's hits are collapsed to distinct paths in rank order; recall@5 is
the share of a query's relevant files among the first five paths, MRR@10 the reciprocal rank of
the first relevant path within the first ten (0 when none).

Answers (sets whose questions carry ``evidence``: per relevant file, a regular expression for the
line that answers): a hit *answers* when its path is relevant and one of its lines
(``line_start..line_end``) matches that file's evidence. **answer@1**: the first hit answers;
**answer@5**: one of the first five hits does. **line@1** is stricter: one of the first hit's
``answer`` lines itself matches the evidence.

More question sets, over other trees: ``--questions FILE`` (repeatable) takes a JSON file of the same
shape whose ``corpus`` names a folder beside it, or else under ``../shared/corpora/``
(``bench/questions_otel_demo.json``: 30 questions over open-telemetry/opentelemetry-demo, tree at
``../shared/corpora/otel-demo``). Score a tree
nobody tuned on only at the start and at the end of a piece of work.

    .venv/bin/python bench/search_quality.py                      # every set, bundled model
    .venv/bin/python bench/search_quality.py --set sample         # the sample only (fast)
    .venv/bin/python bench/search_quality.py --work /tmp/kbq      # keep the KBs for re-runs
    .venv/bin/python bench/search_quality.py --work bench/out/full-build --open   # search built KBs as they are
    .venv/bin/python bench/search_quality.py --set questions --questions ../shared/corpora/<tree>_questions.json

The KBs are built under ``--work`` (a temporary folder by default); with a kept folder a re-run
ingests nothing new and embeds nothing. ``--open`` searches the KBs under ``--work`` without
ingesting at all (a KB copied from a full build, ranking experiments). ``--param MODULE.NAME=VALUE``
overrides a ranking constant for the run (``--param kb.search.fusion.RRF_K=60``): how each lever of
the README's table was measured.

The 40 questions are split into two fixed halves (``bench/question_split.json``, stratified by kind,
see ``bench/split_questions.py``): ranking constants are tuned on ``tune`` only, and the table
shows both halves.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODES = ("keyword", "semantic", "hybrid")
SETS = ("sample", "dev", "questions")
QUESTIONS = (REPO.parent / "shared" / "corpora" / "dev_questions.json").resolve()
SPLIT = REPO / "bench" / "question_split.json"
EXTRA: dict[str, Path] = {}
"""Question sets given with ``--questions``: set name -> JSON file."""


def halves() -> dict[str, str]:
    """Question id -> ``tune`` or ``check``."""
    split = json.loads(SPLIT.read_text())
    return {qid: half for half in ("tune", "check") for qid in split[half]}


def load_queries(qset: str) -> list[dict]:
    """The labelled queries of a set; ``kind`` is ``paraphrase`` or ``literal``."""
    if qset == "sample":
        queries = json.loads((REPO / "kb" / "sample_truth.json").read_text())["queries"]
    elif qset == "dev":
        queries = json.loads((REPO / "bench" / "search_queries_dev.json").read_text())["queries"]
    elif qset == "questions":
        queries = json.loads(QUESTIONS.read_text())["queries"]
    elif qset in EXTRA:
        queries = json.loads(EXTRA[qset].read_text())["queries"]
    else:
        raise ValueError(qset)
    half = halves() if qset == "questions" else {}
    out = []
    for i, q in enumerate(queries):
        kind = "paraphrase" if q["kind"] in ("paraphrase", "semantic") else "literal"
        qid = q.get("id") or f"{qset}{i:02d}"
        out.append({**q, "kind": kind, "id": qid, "half": half.get(qid)})
    return out


def corpus_of(qset: str) -> str:
    if qset in EXTRA:
        return json.loads(EXTRA[qset].read_text())["corpus"]
    return "sample" if qset == "sample" else "dev"


def corpus_root(corpus: str) -> Path:
    if corpus == "sample":
        return REPO / "kb" / "sample"
    for f in EXTRA.values():
        if json.loads(f.read_text())["corpus"] == corpus and (f.parent / corpus).is_dir():
            return (f.parent / corpus).resolve()
    return (REPO.parent / "shared" / "corpora" / corpus).resolve()


_LINES: dict[Path, list[str]] = {}


def file_lines(root: Path, path: str) -> list[str]:
    p = root / path
    if p not in _LINES:
        try:
            _LINES[p] = p.read_text(encoding="utf-8", errors="replace").split("\n")
        except OSError:
            _LINES[p] = []
    return _LINES[p]


def answers(hit, evidence: dict[str, str], root: Path) -> tuple[bool, bool]:
    """(the hit's lines hold an evidence line, one of its ``answer`` lines is one)."""
    rx = evidence.get(hit.path)
    if rx is None:
        return False, False
    lines = file_lines(root, hit.path)
    pat = re.compile(rx)
    span = any(pat.search(ln) for ln in lines[max(0, hit.line_start - 1) : hit.line_end])
    strict = any(0 < a.line <= len(lines) and pat.search(lines[a.line - 1]) for a in getattr(hit, "answer", []))
    return span, strict


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


def evaluate(kb, qset: str, modes: Iterable[str] = MODES, queries: list[dict] | None = None) -> list[dict]:
    """One row per (query, mode) of ``qset`` searched in ``kb``."""
    rows: list[dict] = []
    root = corpus_root(corpus_of(qset))
    for q in queries if queries is not None else load_queries(qset):
        for mode in modes:
            hits = kb.search(q["query"], k=30, mode=mode, as_frame=False)
            recall, rr, rank = score(ranked_paths(hits), q["relevant"])
            ev = q.get("evidence")
            ans = [answers(h, ev, root) for h in hits[:5]] if ev else []
            rows.append(
                {
                    "set": qset,
                    "id": q["id"],
                    "kind": q["kind"],
                    "mode": mode,
                    "query": q["query"],
                    "half": q.get("half"),
                    "recall5": recall,
                    "rr10": rr,
                    "rank": rank,
                    "answer1": (bool(ans and ans[0][0])) if ev else None,
                    "answer5": any(a for a, _ in ans) if ev else None,
                    "line1": (bool(ans and ans[0][1])) if ev else None,
                    "top": f"{hits[0].path}:{hits[0].line_start}-{hits[0].line_end}" if hits else None,
                }
            )
    return rows


def mrr(rows: list[dict], mode: str, *, sets: Iterable[str] | None = None, kind: str | None = None) -> float:
    sel = [
        r["rr10"]
        for r in rows
        if r["mode"] == mode and (sets is None or r["set"] in sets) and (kind is None or r["kind"] == kind)
    ]
    return statistics.fmean(sel) if sel else float("nan")


def print_answers(rows: list[dict], sets: list[str], modes: Iterable[str]) -> None:
    """answer@1, answer@5 and line@1 per set, half and kind (sets with evidence only)."""
    groups: list[tuple[str, str, str | None]] = []
    for s in sets:
        groups.append((s, s, None))
        if s == "questions":
            groups += [(f"{s} {h}", s, h) for h in ("tune", "check")]
    print(f"{'set':28} {'n':>3}  " + "  ".join(f"{m[:3] + ' a@1':>8} {'a@5':>6} {'line@1':>6}" for m in modes))
    for name, s, half in groups:
        for kind in ("paraphrase", "literal", None):
            sel = [
                r
                for r in rows
                if r["set"] == s
                and r.get("answer1") is not None
                and (kind is None or r["kind"] == kind)
                and (half is None or r.get("half") == half)
            ]
            if not sel:
                continue
            cells = []
            for m in modes:
                ms = [r for r in sel if r["mode"] == m]
                if not ms:
                    cells.append(f"{'-':>8} {'-':>6} {'-':>6}")
                    continue
                a1 = statistics.fmean(float(r["answer1"]) for r in ms)
                a5 = statistics.fmean(float(r["answer5"]) for r in ms)
                l1 = statistics.fmean(float(r["line1"]) for r in ms)
                cells.append(f"{a1:8.3f} {a5:6.3f} {l1:6.3f}")
            n = len({r["id"] for r in sel})
            print(f"{name + ' / ' + (kind or 'all'):28} {n:>3}  " + "  ".join(cells))


def print_table(rows: list[dict], sets: list[str]) -> None:
    print(f"{'set':28} {'n':>3}  " + "  ".join(f"{m + ' R@5':>13} {m + ' MRR':>12}" for m in MODES))
    groups: list[tuple[str, tuple[str, ...], str | None]] = [(s, (s,), None) for s in sets]
    if "sample" in sets and "dev" in sets:
        groups.append(("53 (sample+dev)", ("sample", "dev"), None))
    if "questions" in sets:
        groups += [("questions " + h, ("questions",), h) for h in ("tune", "check")]
    for name, members, half in groups:
        for kind in ("paraphrase", "literal", None):
            sel = [
                r
                for r in rows
                if r["set"] in members
                and (kind is None or r["kind"] == kind)
                and (half is None or r.get("half") == half)
            ]
            if not sel:
                continue
            n = len({(r["set"], r["id"]) for r in sel})
            cells = []
            for m in MODES:
                ms = [r for r in sel if r["mode"] == m]
                if not ms:
                    cells.append(f"{'-':>13} {'-':>12}")
                    continue
                cells.append(
                    f"{statistics.fmean(r['recall5'] for r in ms):13.3f} "
                    f"{statistics.fmean(r['rr10'] for r in ms):12.3f}"
                )
            print(f"{name + ' / ' + (kind or 'all'):28} {n:>3}  " + "  ".join(cells))


def set_param(spec: str) -> None:
    """``kb.search.fusion.RRF_K=60``: set a module constant (a Python literal) for this process."""
    target, _, value = spec.partition("=")
    module, _, name = target.rpartition(".")
    mod = importlib.import_module(module)
    if not hasattr(mod, name):
        raise SystemExit(f"--param: {module} has no {name}")
    setattr(mod, name, ast.literal_eval(value))


def check_hybrid(rows: list[dict], sets: list[str]) -> bool:
    """Hybrid at least as good as each single mode on every set and kind of question."""
    ok = True
    for s in sets:
        for kind in ("paraphrase", "literal", None):
            h = mrr(rows, "hybrid", sets=[s], kind=kind)
            for m in ("keyword", "semantic"):
                other = mrr(rows, m, sets=[s], kind=kind)
                if h + 1e-9 < other:
                    ok = False
                    print(f"! hybrid MRR {h:.3f} < {m} {other:.3f} on {s}/{kind or 'all'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--set", dest="sets", action="append", choices=SETS, help="question set (repeatable; default: all three)"
    )
    ap.add_argument(
        "--questions",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="another question set (JSON like dev_questions.json, with 'corpus' naming a folder beside it); repeatable",
    )
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model (default: the bundled one)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--work", type=Path, default=None, help="folder for the KBs (kept; reused on re-runs)")
    ap.add_argument("--json", type=Path, default=None, help="also write every row to this JSON file")
    ap.add_argument("--verbose", "-v", action="store_true", help="print every query's rank per mode")
    ap.add_argument(
        "--mode",
        dest="modes",
        action="append",
        choices=MODES,
        help="search mode to measure (repeatable; default: all three)",
    )
    ap.add_argument("--open", action="store_true", help="search the KBs under --work as they are (no ingest)")
    ap.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="MODULE.NAME=VALUE",
        help="override a ranking constant for this run, e.g. kb.search.fusion.RRF_K=60 (repeatable)",
    )
    args = ap.parse_args()
    if args.open and args.work is None:
        ap.error("--open needs --work DIR (the folder holding sample/ and dev/)")
    for spec in args.param:
        set_param(spec)

    from kb import KnowledgeBase

    for f in args.questions:
        EXTRA[f.stem] = f.resolve()
    sets = (args.sets or ([] if args.questions else list(SETS))) + list(EXTRA)
    work = args.work or Path(tempfile.mkdtemp(prefix="kb-quality-"))
    rows: list[dict] = []
    kbs: dict[str, object] = {}
    for qset in sets:
        corpus = corpus_of(qset)
        if corpus not in kbs:
            t0 = time.perf_counter()
            if args.open:
                kb = KnowledgeBase.open(work / corpus, read_only=True, model=args.model, device=args.device)
            else:
                kb = KnowledgeBase.build(corpus_root(corpus), db=work / corpus, model=args.model, device=args.device)
            n_chunks = int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
            print(f"# {corpus}: {n_chunks} chunks, built/updated in {time.perf_counter() - t0:.1f} s", flush=True)
            kbs[corpus] = kb
        rows += evaluate(kbs[corpus], qset, modes=args.modes or MODES)
    for kb in kbs.values():
        kb.close()  # type: ignore[attr-defined]

    if args.verbose:
        print(f"\n{'set':9} {'id':5} {'half':5} {'kind':10} {'keyword':>7} {'semantic':>8} {'hybrid':>6}  query")
        by_query: dict[tuple[str, str], dict[str, int | None]] = {}
        info: dict[tuple[str, str], dict] = {}
        for r in rows:
            by_query.setdefault((r["set"], r["id"]), {})[r["mode"]] = r["rank"]
            info[(r["set"], r["id"])] = r
        answer_of: dict[tuple[str, str], str] = {}
        for r in rows:
            if r["mode"] == "hybrid" and r.get("answer1") is not None:
                answer_of[(r["set"], r["id"])] = (
                    ("A" if r["answer1"] else ".") + ("L" if r["line1"] else ".") + ("5" if r["answer5"] else ".")
                )
        for key, ranks in by_query.items():
            cells = [str(ranks.get(m) or "-") for m in MODES]
            r = info[key]
            print(
                f"{key[0]:9} {key[1]:5} {r.get('half') or '':5} {r['kind']:10} {cells[0]:>7} {cells[1]:>8} {cells[2]:>6} "
                f"{answer_of.get(key, ''):3}  {r['query'][:90]}"
            )

    print("\n## recall@5 and MRR@10 (file level)")
    print_table(rows, sets)
    if any(r.get("answer1") is not None for r in rows):
        print("\n## answers: answer@1, answer@5 (a hit's lines hold the evidence line), line@1 (an answer line is it)")
        print_answers(
            rows,
            [s for s in sets if any(r["set"] == s and r.get("answer1") is not None for r in rows)],
            args.modes or MODES,
        )
    ok = check_hybrid(rows, sets)
    print(f"\nhybrid >= each single mode on every set and kind: {'MET' if ok else 'NOT MET'}")
    print(f"queries: {len(rows) // len(MODES)}; KBs in {work}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
