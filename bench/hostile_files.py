"""Benchmark: hostile files of 1, 10 and 100 MB through one ingest worker's path (read, parse,
redact, chunk), each in a fresh process; time and peak RSS per size, to show time linear in size.

    python bench/hostile_files.py                      # 1, 10, 100 MB; every shape
    python bench/hostile_files.py --sizes 1 10 --shape json-one-string

Each shape targets a place where a backtracking regular expression or a quadratic structure used
to be (or could be): one huge JSON string, a hex run in a YAML list item, deeply nested long YAML
keys (key paths that repeat their prefixes), repeated secret-pattern prefixes (``eyJ``,
``-----BEGIN PRIVATE KEY-----``, ``a://``), ``key: "`` runs, INI lines of spaces, a TOML hex
integer of millions of digits. The 100 MB row runs with ``max_file_size`` raised, the per-file
time budget off (0) and the memory bound on; the ratio columns divide the time of each size by
that of the size before it (linear: about 10).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MB = 1024 * 1024


def make(shape: str, size: int) -> tuple[str, str]:
    """(file name, text) of about ``size`` bytes."""
    if shape == "json-one-string":
        return "one.json", '{"description": "' + "a" * size + '"}'
    if shape == "yaml-hex-item":
        return "hex.yaml", "items:\n  - " + ("0123456789abcdef" * (size // 16 + 1))[:size] + "\n"
    if shape == "yaml-long-keys":  # 1,000-character keys (libyaml's limit for a plain key) nested deep
        depth = max(1, min(400, size // 2 // 1000))
        lines, indent = [], ""
        for d in range(depth):
            lines.append(f"{indent}{'k' * 996}{d:03d}:")
            indent += " "
        used = sum(len(x) + 1 for x in lines)
        per = len(indent) + 12
        lines += [f"{indent}leaf{i:07d}: v" for i in range(max(1, (size - used) // per))]
        return "keys.yaml", "\n".join(lines) + "\n"
    if shape == "jwt-prefixes":
        return "jwt.txt", "eyJ" * (size // 3)
    if shape == "pem-begins":
        unit = "-----BEGIN RSA PRIVATE KEY-----\n"
        return "pem.txt", unit * (size // len(unit))
    if shape == "url-schemes":
        return "urls.txt", "a://b:" * (size // 6)
    if shape == "assign-quotes":
        return "assign.md", 'password: "' + "x" * 1000 + "\n" + ('k:"' * (size // 3))
    if shape == "dotted-words":
        return "dots.txt", "a.a-a_" * (size // 6)
    if shape == "ini-spaces":
        return "spaces.ini", "[s]\nkey = a" + " " * size + "b\n"
    if shape == "toml-hex-int":
        return "big.toml", "n = 0x" + "f" * size + "\n"
    if shape == "env-secrets":
        n = size // 40
        return "many.env", "".join(f"DB_PASSWORD_{i}=Zq8{i:08d}xYw#pQ\n" for i in range(n))
    raise SystemExit(f"unknown shape {shape}")


SHAPES = [
    "json-one-string",
    "yaml-hex-item",
    "yaml-long-keys",
    "jwt-prefixes",
    "pem-begins",
    "url-schemes",
    "assign-quotes",
    "dotted-words",
    "ini-spaces",
    "toml-hex-int",
    "env-secrets",
]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from kb.ingest.parsers.base import Limits
from kb.ingest.pipeline import _budgeted_results
from kb.ingest.walk import WalkEntry
import kb.ingest.workers
kb.ingest.workers.START_METHOD = "fork"  # the worker is this process's child: its peak RSS is measurable
p = Path(sys.argv[1])
st = p.stat()
base = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
t0 = time.perf_counter()
res = list(_budgeted_results([(WalkEntry(p.name, str(p), st.st_size, st.st_mtime), None, 1)], 1, Limits(),
                             st.st_size + 1, float(sys.argv[2])))
seconds = time.perf_counter() - t0
r = res[0]
rules = sorted({f[0] for f in (r.rows or {}).get("findings", [])})
status = r.file_row[5] if r.file_row else r.kind
print(json.dumps({"seconds": seconds, "worker_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                  "status": status, "rules": rules}))
"""


def run(shape: str, mb: int, timeout: float) -> dict:
    name, text = make(shape, mb * MB)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_text(text, encoding="utf-8")
        del text
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(p), str(timeout)],
            capture_output=True,
            text=True,
            cwd=HERE.parent,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
        )
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


_SHORT = {
    "plaintext-secret": "secret",
    "parse-error": "parse-err",
    "file-too-slow": "too-slow",
    "file-too-large": "too-large",
    "internal-error": "internal",
}


def _short(rules: list[str]) -> str:
    """The findings of a file, shortened for the table (``parse-err`` at 100 MB is the memory bound)."""
    return ",".join(_SHORT.get(r, r) for r in rules)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="sizes in MB")
    ap.add_argument("--shape", action="append", help=f"one of {', '.join(SHAPES)} (repeatable; default all)")
    ap.add_argument("--timeout", type=float, default=0.0, help="per-file time budget (0: none, to see the raw time)")
    args = ap.parse_args()
    print(f"{'shape':18} " + " ".join(f"{str(s) + ' MB':>25}" for s in args.sizes) + "   ratios")
    for shape in args.shape or SHAPES:
        cells, times = [], []
        for mb in args.sizes:
            time.perf_counter()
            r = run(shape, mb, args.timeout)
            if "error" in r:
                cells.append(f"{'error':>22}")
                times.append(None)
                print(r["error"], file=sys.stderr)
                continue
            times.append(r["seconds"])
            tag = "ok" if r["status"] == "ok" and not r["rules"] else _short(r["rules"]) or r["status"]
            cells.append(f"{r['seconds']:7.2f}s {r['worker_peak_mb']:6.0f}MB {tag[:9]:>9}")
        ratios = [f"{b / a:.1f}" if a and b else "-" for a, b in zip(times, times[1:])]
        print(f"{shape:18} " + " ".join(cells) + "   " + " ".join(ratios), flush=True)


if __name__ == "__main__":
    main()
