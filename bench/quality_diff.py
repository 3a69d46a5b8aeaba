"""Two builds' search quality side by side, question by question: what a change of vectors moved.

Takes two ``--json`` files of ``bench/search_quality.py`` (the baseline first), scored on the same
question sets, and prints, per set and mode (and per half of the 40 questions), MRR@10, answer@1
and answer@5 of each with their difference, how many questions each figure moved up or down, and
then every question whose file rank or answer changed. A whole set's figure further than ``--bar``
below the baseline is marked ``!`` (a half's ``*``, shown but not counted) and makes the exit status
2: the rule a new embedder identity (an int8 recipe, another model) must meet before ``auto`` may
choose it. With 40 questions one question is 0.025 of answer@1, so a bar of 0.01 there means "no
answer lost"; the per-question lines say which and by how much.

    .venv/bin/python bench/quality_diff.py FP32.json INT8.json
    .venv/bin/python bench/quality_diff.py A.json B.json --set questions --mode hybrid --bar 0.01
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

FIGURES = (("rr10", "MRR@10"), ("answer1", "answer@1"), ("answer5", "answer@5"))


def load(path: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["set"], r["mode"], r["id"]): r for r in json.loads(path.read_text())}


def groups(key: tuple[str, str, str], row: dict[str, Any]) -> list[str]:
    """The summary rows a question counts in: its set and mode, and its half where it has one."""
    base = f"{key[0]} / {key[1]}"
    return [base] + ([f"{base} / {row['half']}"] if row.get("half") else [])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path, help="search_quality.py --json of the baseline build")
    ap.add_argument("after", type=Path, help="the same of the build compared with it")
    ap.add_argument("--set", action="append", default=None, help="only these question sets (repeatable)")
    ap.add_argument("--mode", action="append", default=None, help="only these modes (repeatable)")
    ap.add_argument("--bar", type=float, default=0.01, help="mark a figure more than this below the baseline")
    args = ap.parse_args()

    before, after = load(args.before), load(args.after)
    keys = sorted(
        k
        for k in before.keys() & after.keys()
        if (not args.set or k[0] in args.set) and (not args.mode or k[1] in args.mode)
    )
    if not keys:
        print("no question scored in both files (for these sets and modes)")
        return 1
    # per group and figure: before's sum, after's sum, questions up, down, questions scored (a set
    # without evidence lines has no answer figures: None)
    sums: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0, 0, 0]))
    count: dict[str, int] = defaultdict(int)
    for k in keys:
        b, a = before[k], after[k]
        for g in groups(k, b):
            count[g] += 1
            for field, _ in FIGURES:
                if b[field] is None or a[field] is None:
                    continue
                s = sums[g][field]
                x, y = float(b[field]), float(a[field])
                s[0] += x
                s[1] += y
                s[2] += y > x
                s[3] += y < x
                s[4] += 1
    failed = 0
    print(f"{'set / mode':34} {'n':>3}  " + "  ".join(f"{label:>26}" for _, label in FIGURES))
    print(f"{'':34} {'':>3}  " + "  ".join(f"{'before → after (Δ) +up/-down':>26}" for _ in FIGURES))
    for g in sorted(count):
        n = count[g]
        cells = []
        for field, _ in FIGURES:
            s = sums[g][field]
            if not s[4]:
                cells.append("—")
                continue
            x, y = s[0] / s[4], s[1] / s[4]
            below = y < x - args.bar - 1e-9
            whole = g.count(" / ") == 1  # a half is shown, the bar applies to the whole set
            mark = ("!" if whole else "*") if below else " "
            failed += below and whole
            cells.append(f"{x:.3f} → {y:.3f} ({y - x:+.3f}) +{int(s[2])}/-{int(s[3])}{mark}")
        print(f"{g:34} {n:3}  " + "  ".join(f"{c:>26}" for c in cells))
    print("\nquestions that moved (file rank, answer@1, answer@5):")
    moved = 0
    for k in keys:
        b, a = before[k], after[k]
        if (b["rank"], b["answer1"], b["answer5"]) == (a["rank"], a["answer1"], a["answer5"]):
            continue
        moved += 1
        half = f" {b['half']}" if b.get("half") else ""
        print(
            f"  {k[0]}/{k[2]} {k[1]}{half}: rank {b['rank']} → {a['rank']}, "
            f"answer@1 {b['answer1']} → {a['answer1']}, answer@5 {b['answer5']} → {a['answer5']}; "
            f"top {b.get('top')} → {a.get('top')}"
        )
    if not moved:
        print("  none")
    verdict = (
        f"{failed} figure(s) of whole sets more than {args.bar} below the baseline (!; * a half's)"
        if failed
        else f"every figure of whole sets within {args.bar}"
    )
    print(f"\n{len(keys)} (question, mode) pairs in both files; {verdict}")
    return 2 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
