"""What reading findings through :data:`kb.catalogue.SHOWN_FINDINGS` costs (issue 24).

Every listing, count and page of findings reads the stored rows through a fold that names a
secret's documentation copies in its configuration's finding. This times a count and a first page
over a generated ``findings`` table (default 200,000 rows: a fifth of them secrets, 30% of those in
READMEs, fingerprints drawn from 20,000 values, 3,000 chart folders), against the plain table.

    python bench/findings_read.py [--rows 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import duckdb

    from kb.catalogue import SHOWN_FINDINGS

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE findings (rule VARCHAR, severity VARCHAR, path VARCHAR, line INTEGER, message VARCHAR, "
        "target VARCHAR, fingerprint VARCHAR, source VARCHAR)"
    )
    rng = random.Random(24)
    rows = []
    for i in range(args.rows):
        chart = f"charts/c{i % 3000}"
        if i % 5 == 0:
            name = "README.md" if rng.random() < 0.3 else "values.yaml"
            fp = f"fp{rng.randrange(20_000)}"
            rows.append(("plaintext-secret", "error", f"{chart}/{name}", i % 500, "msg", "t", fp, "ingest"))
        else:
            rows.append(
                ("broken-reference", "error", f"{chart}/templates/x{i}.yaml", i % 500, "msg", "t", None, "validate")
            )
    con.executemany("INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    shown = con.execute(f"SELECT count(*) FROM {SHOWN_FINDINGS}").fetchone()[0]
    print(f"{args.rows} stored findings, {shown} shown ({args.rows - shown} documentation copies folded)")
    for label, sql in (
        ("count, plain table", "SELECT count(*) FROM findings"),
        ("count, shown findings", f"SELECT count(*) FROM {SHOWN_FINDINGS}"),
        ("first page of 100, shown findings", f"SELECT * FROM {SHOWN_FINDINGS} ORDER BY path, line LIMIT 100"),
    ):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - t) * 1000)
        print(f"{label:36} median {statistics.median(times):7.1f} ms  (runs: {', '.join(f'{x:.1f}' for x in times)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
