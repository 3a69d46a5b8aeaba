"""Benchmark: `kb validate` against SchemaStore's own ground truth (the dev corpus).

    python bench/schemastore_truth.py                       # ingests ../shared/corpora/dev into a temp KB
    python bench/schemastore_truth.py --db /tmp/devkb        # reuse (or create) that KB
    python bench/schemastore_truth.py --show 20              # list up to 20 mismatches per side

Rule (upstream CI, ajv): every file under ``schemastore/src/test/<name>/`` must validate against
``schemastore/src/schemas/json/<name>.json``; every file under ``src/negative_test/<name>/`` must
fail. The labels come from ``dev_truth.json`` (key ``schemastore_files``). kb runs with

    --schema-map 'schemastore/src/test/{name}/**=schemastore/src/schemas/json/{name}.json'
    --schema-map 'schemastore/src/negative_test/{name}/**=schemastore/src/schemas/json/{name}.json'

A file counts as *invalid* when kb reports at least one ``schema-violation`` on it. Files whose
schema kb could not use offline (a ``$ref`` to a schema outside the tree) get no finding: they are
counted as reported (valid), and listed separately as "not checked". Targets: >= 98% of the 1,072
positives valid and >= 98% of the 529 negatives invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPUS = REPO.parent / "shared" / "corpora" / "dev"
TRUTH = REPO.parent / "shared" / "corpora" / "dev_truth.json"
MAP = [
    "schemastore/src/test/{name}/**=schemastore/src/schemas/json/{name}.json",
    "schemastore/src/negative_test/{name}/**=schemastore/src/schemas/json/{name}.json",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--truth", type=Path, default=TRUTH)
    ap.add_argument("--db", type=Path, default=None, help="KB directory (default: a temporary one)")
    ap.add_argument("--show", type=int, default=10, help="mismatches to list per side")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()

    from kb.catalogue import Catalogue
    from kb.graph.rules import validate
    from kb.ingest.pipeline import run_ingest
    from kb.settings import Settings

    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.TemporaryDirectory(prefix="kb-schemastore-")
        db = Path(tmp.name) / "kb"
    settings = Settings(db=db, embed=False, root=args.corpus.resolve())
    cat = Catalogue(db)
    t0 = time.perf_counter()
    if cat.query("SELECT count(*) FROM files")[0][0] == 0:
        run_ingest(cat, settings)
    t_ingest = time.perf_counter() - t0
    t0 = time.perf_counter()
    findings = validate(cat, settings, schema_map=MAP)
    t_validate = time.perf_counter() - t0
    notes = json.loads(cat.get_meta("validate_notes") or "[]")
    truth = json.loads(args.truth.read_text(encoding="utf-8"))["schemastore_files"]

    violated: dict[str, list[str]] = {}
    for f in findings:
        if f.rule == "schema-violation":
            violated.setdefault(f.path, []).append(f.message)
    parse_errors = {r[0] for r in cat.query("SELECT path FROM findings WHERE rule = 'parse-error'")}
    unusable = {n.split()[1] for n in notes if "cannot be used offline" in n}

    counts: Counter[str] = Counter()
    wrong: dict[str, list[tuple[str, str]]] = {"valid": [], "invalid": []}
    not_checked: Counter[str] = Counter()
    for path, label in truth.items():
        exp = label["expected"]
        got = "invalid" if path in violated or path in parse_errors else "valid"
        if label["schema"] in unusable:
            not_checked[exp] += 1
        counts[f"{exp}->{got}"] += 1
        if got != exp:
            why = (violated.get(path) or ["parse error" if path in parse_errors else "no violation reported"])[0]
            wrong[exp].append((path, why))
    pos = counts["valid->valid"] + counts["valid->invalid"]
    neg = counts["invalid->invalid"] + counts["invalid->valid"]
    figures = {
        "positives": pos,
        "positives_valid": counts["valid->valid"],
        "positives_valid_pct": round(100 * counts["valid->valid"] / pos, 2) if pos else None,
        "negatives": neg,
        "negatives_invalid": counts["invalid->invalid"],
        "negatives_invalid_pct": round(100 * counts["invalid->invalid"] / neg, 2) if neg else None,
        "not_checked_offline": dict(not_checked),
        "ingest_seconds": round(t_ingest, 2),
        "validate_seconds": round(t_validate, 2),
        "findings_by_rule": dict(Counter(f.rule for f in findings).most_common()),
        "notes": notes,
    }
    if args.json:
        print(json.dumps({**figures, "mismatches": wrong}, indent=2))
    else:
        print(f"positives valid:   {figures['positives_valid']}/{pos} = {figures['positives_valid_pct']}%")
        print(f"negatives invalid: {figures['negatives_invalid']}/{neg} = {figures['negatives_invalid_pct']}%")
        print(f"not checked offline (schema $refs a schema outside the tree): {dict(not_checked)}")
        print(f"ingest {t_ingest:.1f}s, validate {t_validate:.1f}s; findings by rule: {figures['findings_by_rule']}")
        for exp, rows in wrong.items():
            print(f"\nexpected {exp}, kb disagrees ({len(rows)}):")
            for path, why in rows[: args.show]:
                print(f"  {path}\n      {why[:300]}")
        for n in notes:
            print(f"note: {n}")
    cat.close()
    if tmp is not None:
        tmp.cleanup()
    ok = (figures["positives_valid_pct"] or 0) >= 98 and (figures["negatives_invalid_pct"] or 0) >= 98
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
