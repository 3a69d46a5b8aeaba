"""Draw plaintext-secret findings at random from a KB, each with its source line, to check by hand.

    kb ingest /work/shared/corpora/dev --db /tmp/dev --no-embed
    python bench/secrets_sample.py /tmp/dev --root /work/shared/corpora/dev --seed 22 [-n 25]

Reads the newest catalogue file of the KB directly (read-only). The verdicts of a run are written
by hand next to its listing: bench/secrets_devcorpus_before.txt and ..._after.txt.
"""

from __future__ import annotations

import argparse
import glob
import random
from pathlib import Path

import duckdb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db", type=Path)
    ap.add_argument("--root", type=Path, required=True, help="the corpus root the KB was built from")
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("-n", type=int, default=25)
    args = ap.parse_args()
    newest = sorted(glob.glob(str(args.db / "**" / "catalogue*.duckdb"), recursive=True))[-1]
    con = duckdb.connect(newest, read_only=True)
    rows = con.execute(
        "SELECT path, line, message FROM findings WHERE rule = 'plaintext-secret' ORDER BY path, line, message"
    ).fetchall()
    print("total", len(rows))
    pick = random.Random(args.seed).sample(rows, min(args.n, len(rows)))
    for i, (path, line, msg) in enumerate(sorted(pick, key=lambda r: (r[0], r[1] or 0))):
        src = (args.root / path).read_text(errors="replace").split("\n")
        at = (line or 1) - 1
        print(f"{i + 1:2}. {path}:{line}  {msg[:70]}")
        print("    >", src[at][:160] if at < len(src) else "?")


if __name__ == "__main__":
    main()
