"""The fixed split of ``../shared/corpora/dev_questions.json`` into a tuning half and a check half.

Ranking parameters are chosen on the ``tune`` half only and reported on both; the split is
stratified by kind (paraphrase, literal) and seeded, and written once to
``bench/question_split.json`` (re-running this script rewrites the same file).

    .venv/bin/python bench/split_questions.py
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

SEED = 16
OUT = REPO / "bench" / "question_split.json"


def main() -> int:
    from search_quality import load_queries

    queries = load_queries("questions")
    halves: dict[str, list[str]] = {"tune": [], "check": []}
    for kind in ("paraphrase", "literal"):
        ids = sorted(q["id"] for q in queries if q["kind"] == kind)
        random.Random(f"{SEED}-{kind}").shuffle(ids)
        half = len(ids) // 2
        halves["tune"] += sorted(ids[:half])
        halves["check"] += sorted(ids[half:])
    OUT.write_text(
        json.dumps(
            {
                "seed": SEED,
                "source": "../shared/corpora/dev_questions.json",
                "tune": sorted(halves["tune"]),
                "check": sorted(halves["check"]),
            },
            indent=1,
        )
        + "\n"
    )
    print(f"{OUT.relative_to(REPO)}: tune {len(halves['tune'])}, check {len(halves['check'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
