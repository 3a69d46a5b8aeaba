"""jscpd vs ``kb duplicates`` on the same corpus, and both against the corpus's ground truth.

    npm install --prefix /tmp/jscpd jscpd              # the npm package (plus its platform binary)
    python bench/jscpd_compare.py [--corpus ../shared/corpora/dev] [--jscpd /tmp/jscpd/node_modules/.bin/jscpd]

jscpd runs with its JSON reporter and default settings (token-based, pairwise clones of at least
50 tokens); kb runs the structural kinds (exact, canonical, block, near; semantic needs
embeddings) over a catalogue-only KB of the same tree (built under bench/out/ if missing).

What is compared (a markdown report on stdout, raw figures with ``--json FILE``):

* file pairs: every unordered pair of distinct files that jscpd links by a clone, and that some
  kb group holds as two members; found by both, by one only;
* kb groups "seen" by jscpd: at least one pair of members with a jscpd clone overlapping both
  members' line ranges; per kind;
* jscpd clones "covered" by kb: the two files are members of one kb group with overlapping line
  ranges; the uncovered ones broken down by why (format kb does not parse structurally, a clone
  inside one file, a fragment that is not a whole block);
* the ground truth's exact-duplicate groups (``dev_truth.json``): found as one kb ``exact`` group,
  and found by jscpd (all members linked by clones covering >= 90% of both files' lines).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

STRUCTURED = {"json", "yaml", "toml", "ini", "dotenv", "properties"}


def run_jscpd(jscpd: str, corpus: Path) -> tuple[dict, float, str]:
    out = Path(tempfile.mkdtemp(prefix="jscpd-"))
    version = subprocess.run([jscpd, "--version"], capture_output=True, text=True).stdout.strip() or "jscpd"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [jscpd, "--reporters", "json", "--output", str(out), "--silent", str(corpus)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - t0
    report = out / "jscpd-report.json"
    if not report.exists():
        sys.exit(f"jscpd produced no report (exit {proc.returncode}): {proc.stderr[-2000:]}")
    data = json.loads(report.read_text())
    shutil.rmtree(out, ignore_errors=True)
    return data, seconds, version


def clean_name(name: str, corpus: Path) -> str:
    """jscpd names are relative to the scanned folder; some carry a ``:format`` suffix."""
    if not (corpus / name).exists() and ":" in name:
        base = name.rsplit(":", 1)[0]
        if (corpus / base).exists():
            return base
    return name


def build_kb(corpus: Path, db: Path):
    from kb.knowledge import KnowledgeBase

    if not (db / "catalogue.duckdb").exists():
        t0 = time.perf_counter()
        KnowledgeBase.build(corpus, db=db, embed=False).close()
        print(f"(built {db} in {time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return KnowledgeBase.open(db, read_only=True)


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "dev")
    ap.add_argument("--truth", type=Path, default=None, help="default: <corpus>_truth.json beside the corpus")
    ap.add_argument("--jscpd", default="/tmp/jscpd/node_modules/.bin/jscpd")
    ap.add_argument("--db", type=Path, default=HERE / "out" / "dev-catalogue.kb")
    ap.add_argument("--json", dest="json_out", type=Path, help="also write the raw figures here")
    args = ap.parse_args()
    corpus = args.corpus.resolve()
    truth_path = args.truth or corpus.parent / f"{corpus.name}_truth.json"

    from kb.duplicates import duplication_summary, find_duplicates

    report, jscpd_s, version = run_jscpd(args.jscpd, corpus)
    kb = build_kb(corpus, args.db)
    t0 = time.perf_counter()
    groups = find_duplicates(kb.catalogue, kb.settings, kinds=["exact", "canonical", "block", "near"])
    kb_s = time.perf_counter() - t0
    summary = duplication_summary(kb.catalogue, groups)
    formats = dict(kb.catalogue.query("SELECT path, format FROM files"))
    status = dict(kb.catalogue.query("SELECT path, status FROM files"))
    n_lines = dict(
        kb.catalogue.query(
            "SELECT path, max(l) FROM (SELECT path, max(line) l FROM records GROUP BY 1 UNION ALL "
            "SELECT path, max(line_end) FROM sections GROUP BY 1) GROUP BY 1"
        )
    )

    # -- jscpd clones -------------------------------------------------------------------------
    clones = []
    for c in report["duplicates"]:
        a = (
            clean_name(c["firstFile"]["name"], corpus),
            c["firstFile"]["startLoc"]["line"],
            c["firstFile"]["endLoc"]["line"],
        )
        b = (
            clean_name(c["secondFile"]["name"], corpus),
            c["secondFile"]["startLoc"]["line"],
            c["secondFile"]["endLoc"]["line"],
        )
        clones.append((a, b, c.get("format", "?")))
    by_pair: dict[tuple[str, str], list[tuple[tuple[int, int], tuple[int, int]]]] = defaultdict(list)
    for a, b, _fmt in clones:
        if a[0] == b[0]:
            continue
        (x, y) = sorted([a, b])
        by_pair[(x[0], y[0])].append(((x[1], x[2]), (y[1], y[2])))
    jscpd_pairs = set(by_pair)

    # -- kb groups ----------------------------------------------------------------------------
    kb_pairs: dict[tuple[str, str], list[tuple[tuple[int, int], tuple[int, int], str]]] = defaultdict(list)
    for g in groups:
        for m1, m2 in itertools.combinations(g.members, 2):
            if m1.path == m2.path:
                continue
            x, y = sorted([m1, m2], key=lambda m: m.path)
            kb_pairs[(x.path, y.path)].append(
                ((x.line_start or 1, x.line_end or 10**9), (y.line_start or 1, y.line_end or 10**9), g.kind)
            )

    def jscpd_sees(pair, ra, rb) -> bool:
        return any(overlaps(ra, ca) and overlaps(rb, cb) for ca, cb in by_pair.get(pair, ()))

    kind_rows = {}
    for kind in ("exact", "canonical", "block", "near"):
        gs = [g for g in groups if g.kind == kind]
        seen = 0
        for g in gs:
            hit = False
            for m1, m2 in itertools.combinations(g.members, 2):
                if m1.path == m2.path:
                    continue
                x, y = sorted([m1, m2], key=lambda m: m.path)
                if jscpd_sees(
                    (x.path, y.path), (x.line_start or 1, x.line_end or 10**9), (y.line_start or 1, y.line_end or 10**9)
                ):
                    hit = True
                    break
            seen += hit
        cross = sum(1 for g in gs if len({formats.get(m.path) for m in g.members}) > 1)
        kind_rows[kind] = {
            "groups": len(gs),
            "members": sum(len(g.members) for g in gs),
            "seen_by_jscpd": seen,
            "kb_only": len(gs) - seen,
            "cross_format": cross,
        }

    # -- jscpd clones covered by kb -----------------------------------------------------------
    reasons: Counter = Counter()
    covered_by_kind: Counter = Counter()
    by_format: dict[str, Counter] = defaultdict(Counter)
    for a, b, fmt in clones:
        if a[0] == b[0]:
            why = "inside one file"
        else:
            (x, y) = sorted([a, b])
            hits = [
                k
                for ra, rb, k in kb_pairs.get((x[0], y[0]), ())
                if overlaps(ra, (x[1], x[2])) and overlaps(rb, (y[1], y[2]))
            ]
            if hits:
                by_format[fmt]["covered"] += 1
                covered_by_kind[sorted(hits, key=["exact", "canonical", "block", "near"].index)[0]] += 1
                continue
            fa, fb = formats.get(x[0]), formats.get(y[0])
            if fa not in STRUCTURED or fb not in STRUCTURED:
                why = f"not structured config in kb ({fa if fa not in STRUCTURED else fb})"
            elif status.get(x[0]) != "ok" or status.get(y[0]) != "ok":
                why = "kb could not parse a file"
            else:
                why = "fragment, not a whole block (or < min_leaves / < Jaccard 0.8)"
        by_format[fmt]["not covered"] += 1
        reasons[why] += 1

    # -- ground truth: exact duplicates --------------------------------------------------------
    truth = json.loads(truth_path.read_text()) if truth_path.exists() else {}
    truth_groups = [set(g["files"]) for g in truth.get("exact_duplicates", {}).get("groups", [])]
    kb_exact = [{m.path for m in g.members} for g in groups if g.kind == "exact"]
    kb_found = sum(1 for t in truth_groups if t in kb_exact)
    kb_extra = sum(1 for k in kb_exact if k not in truth_groups)

    def whole(path: str, r: tuple[int, int]) -> bool:
        n = n_lines.get(path) or 0
        return n > 0 and (r[1] - r[0] + 1) >= 0.9 * n

    jscpd_found = jscpd_partial = 0
    jscpd_missed: list[str] = []
    for t in truth_groups:
        linked = {p: {p} for p in t}
        any_pair = False
        for x, y in itertools.combinations(sorted(t), 2):
            for ra, rb in by_pair.get((x, y), ()):
                any_pair = True
                if whole(x, ra) and whole(y, rb):
                    merged = linked[x] | linked[y]
                    for p in merged:
                        linked[p] = merged
        if all(linked[p] == t for p in t):
            jscpd_found += 1
        else:
            jscpd_partial += any_pair
            jscpd_missed.append(sorted(t)[0])

    both = jscpd_pairs & set(kb_pairs)
    figures = {
        "jscpd": {
            "version": version,
            "seconds": round(jscpd_s, 2),
            "clones": len(clones),
            "clones_inside_one_file": sum(1 for a, b, _ in clones if a[0] == b[0]),
            "file_pairs": len(jscpd_pairs),
            "sources": report["statistics"]["total"].get("sources"),
        },
        "kb": {
            "seconds": round(kb_s, 2),
            "groups": len(groups),
            "file_pairs": len(kb_pairs),
            "by_kind": kind_rows,
            "duplication_ratio": summary["duplication_ratio"],
        },
        "file_pairs": {
            "both": len(both),
            "jscpd_only": len(jscpd_pairs - set(kb_pairs)),
            "kb_only": len(set(kb_pairs) - jscpd_pairs),
        },
        "jscpd_clones_covered_by_kb": dict(covered_by_kind),
        "jscpd_clones_not_covered": dict(reasons),
        "jscpd_clones_by_format": {k: dict(v) for k, v in by_format.items()},
        "truth_exact_groups": {
            "total": len(truth_groups),
            "kb_found": kb_found,
            "kb_extra_groups": kb_extra,
            "jscpd_found": jscpd_found,
            "jscpd_partial": jscpd_partial,
            "jscpd_missed_examples": jscpd_missed[:8],
        },
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))
    print(markdown(figures, corpus))


def markdown(f: dict, corpus: Path) -> str:
    j, k, fp, t = f["jscpd"], f["kb"], f["file_pairs"], f["truth_exact_groups"]
    out = [
        f"### {j['version']} vs kb duplicates on `{corpus.name}`",
        "",
        "| | jscpd (JSON reporter, defaults) | kb (exact, canonical, block, near) |",
        "|---|---:|---:|",
        f"| time | {j['seconds']} s | {k['seconds']} s (catalogue already built) |",
        f"| reported | {j['clones']} clone pairs ({j['clones_inside_one_file']} inside one file) | {k['groups']} N-way groups |",
        f"| distinct file pairs linked | {j['file_pairs']} | {k['file_pairs']} |",
        f"| file pairs found by both | {fp['both']} | {fp['both']} |",
        f"| file pairs found only by this tool | {fp['jscpd_only']} | {fp['kb_only']} |",
        f"| truth exact-duplicate groups found (of {t['total']}) | {t['jscpd_found']} whole ({t['jscpd_partial']} more partly) | {t['kb_found']} (as one group each; {t['kb_extra_groups']} other exact groups) |",
        "",
        "| kb kind | groups | members | groups spanning 2+ formats | also seen by jscpd | kb only |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind, r in k["by_kind"].items():
        out.append(
            f"| {kind} | {r['groups']} | {r['members']} | {r['cross_format']} | {r['seen_by_jscpd']} | {r['kb_only']} |"
        )
    out += ["", "| jscpd clones | count |", "|---|---:|"]
    for kind, n in sorted(f["jscpd_clones_covered_by_kb"].items()):
        out.append(f"| covered by a kb {kind} group | {n} |")
    for why, n in sorted(f["jscpd_clones_not_covered"].items(), key=lambda x: -x[1]):
        out.append(f"| not covered: {why} | {n} |")
    out += ["", "| jscpd clone format | covered by kb | not covered |", "|---|---:|---:|"]
    for fmt, c in sorted(f["jscpd_clones_by_format"].items(), key=lambda x: -sum(x[1].values())):
        out.append(f"| {fmt} | {c.get('covered', 0)} | {c.get('not covered', 0)} |")
    return "\n".join(out)


if __name__ == "__main__":
    main()
