"""Where a command's memory goes over time: its process tree's RSS and PSS every second.

Runs the command, samples every process of its tree (RSS, and PSS, which splits shared pages
between the processes that share them, so workers that import the same libraries are not counted
twice), and prints one line per second with the KB's embedding progress read from ``HEAD.json``.
The last line is the peak. A build's peak RSS is the ``peak_rss_mb`` of ``bench/full_build.py``;
this script says which phase and which process it comes from.

    .venv/bin/python bench/gen_corpus.py bench/out/synth-10000 --files 10000
    .venv/bin/python bench/memory_trace.py --db /tmp/kb10k -- .venv/bin/kb ingest bench/out/synth-10000 --db /tmp/kb10k
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from pathlib import Path


def main() -> int:
    import psutil

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="the KB directory the command builds (for progress)")
    ap.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command, after --")
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the command to trace after --")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    t0 = time.time()
    peak = (0, 0, 0.0, "")
    while proc.poll() is None:
        rows = []
        try:
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            break
        for p in procs:
            try:
                mem = p.memory_full_info()
                rows.append((" ".join(p.cmdline()[1:3])[-40:], mem.rss >> 20, mem.pss >> 20))
            except psutil.Error:
                continue
        rss, pss = sum(r[1] for r in rows), sum(r[2] for r in rows)
        try:
            head = json.loads((args.db / "HEAD.json").read_text())
            state = f"embedded {head.get('embedded')}/{head.get('embeddable')}"
        except (OSError, ValueError):
            state = "catalogue"
        top = "; ".join(f"{name}={r}/{s}" for name, r, s in sorted(rows, key=lambda r: -r[1])[:3])
        print(f"{time.time() - t0:7.1f} s  rss {rss} MB  pss {pss} MB  {state}  :: {top}", flush=True)
        if rss > peak[0]:
            peak = (rss, pss, time.time() - t0, state)
        time.sleep(args.every)
    print(f"peak: rss {peak[0]} MB, pss {peak[1]} MB at {peak[2]:.0f} s ({peak[3]}); exit {proc.wait()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
