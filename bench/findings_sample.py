"""Draw a reproducible random sample of findings for hand-checking precision (README "Validation").

    kb findings --db KB --json > findings.json
    python bench/findings_sample.py findings.json --n 15 --seed 24 [--verdicts bench/findings_precision.json --tree NAME --state before]

Each finding is keyed by (rule, path, line, message); the sample is ``random.Random(seed).sample``
of the findings sorted by that key, so the same KB gives the same sample. With ``--verdicts``, the
hand verdicts stored there ("right", "noise" = true but not worth a user's time, "false" = wrong)
are matched to the sample and precision (right / sample) and false errors are printed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys


def sample(findings: list[dict], n: int, seed: int) -> list[dict]:
    keyed = sorted(findings, key=lambda f: (f["rule"], f["path"], f.get("line") or 0, f["message"]))
    return random.Random(seed).sample(keyed, min(n, len(keyed)))


def key(f: dict) -> str:
    return f"{f['rule']}|{f['path']}|{f.get('line') or 0}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("findings")
    ap.add_argument("--n", type=int, default=15)
    ap.add_argument("--seed", type=int, default=24)
    ap.add_argument("--verdicts")
    ap.add_argument("--tree")
    ap.add_argument("--state")
    a = ap.parse_args()
    with open(a.findings, encoding="utf-8") as fh:
        data = json.load(fh)
    drawn = sample(data["findings"] if isinstance(data, dict) else data, a.n, a.seed)
    if not a.verdicts:
        for f in drawn:
            print(json.dumps({"key": key(f), "severity": f["severity"], "message": f["message"][:300]}))
        return
    with open(a.verdicts, encoding="utf-8") as fh:
        verdicts = json.load(fh)[a.tree][a.state]
    missing = [key(f) for f in drawn if key(f) not in verdicts]
    if missing:
        sys.exit(f"no verdict for {missing}")
    right = sum(1 for f in drawn if verdicts[key(f)] == "right")
    false_errors = sum(1 for f in drawn if verdicts[key(f)] == "false" and f["severity"] == "error")
    print(f"{a.tree} {a.state}: {right}/{len(drawn)} right ({right / len(drawn):.0%}), {false_errors} false errors")


if __name__ == "__main__":
    main()
