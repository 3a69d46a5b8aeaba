"""Benchmark: what recording key-level changes costs an ingest, side by side with it off.

    python bench/changes.py --files 50000 [--repeats 3] [--git]

On the generated tree (``bench/gen_corpus.py``, 50,000 files, reused from bench/out/synth-N), two
KBs are built from the same tree: one with change recording off (``KB_RECORD_CHANGES=0``), one
with it on. Then, alternating between the two so a busy machine slows both alike:

* a no-change re-run, ``--repeats`` times each;
* a run after 1% of the files were edited (a number in each bumped), ``--repeats`` times each,
  every repeat a different edit of the same files.

Printed: the median run time of each (the ingest's own ``seconds``, and the wall time of the
``kb ingest`` process) and the overhead of recording. Targets: <= 10% on the no-change re-run,
<= 20% with 1% changed. With ``--git`` the tree is made a git repository (edits committed before
each run) and a third KB adds ``git blame`` attribution, to show what that costs on top.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_NUM = re.compile(r"(?<![\w.])(\d{1,6})(?![\w.])")


def load_generator():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gen_corpus", HERE / "gen_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def parse_summary(stdout: str) -> dict:
    """The JSON summary at the end of ``kb ingest --json``'s output. DuckDB prints its own progress
    bar to stdout for queries past 2 s (a busy machine), ahead of the summary: skip it."""
    start = stdout.find("{") if stdout.startswith("{") else stdout.find("\n{") + 1
    return json.loads(stdout[start:])


def ingest(corpus: Path, db: Path, env: dict[str, str]) -> dict:
    cmd = [sys.executable, "-c", "from kb.cli import main; main()", "ingest", str(corpus), "--db", str(db), "--json"]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"ingest failed:\n{out.stderr[-3000:]}")
    summary = parse_summary(out.stdout)
    return {"wall": wall, "seconds": summary["seconds"], "summary": summary}


def edit(text: str, k: int) -> str:
    """The first number in the file, plus k + 1 (a value edit, as people make them)."""
    return _NUM.sub(lambda m: str(int(m.group(1)) + k + 1), text, count=1)


def git(corpus: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(["git", "-C", str(corpus), *args], env=env, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=50_000)
    ap.add_argument("--share", type=float, default=0.01, help="share of files edited (default 1%%)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--git", action="store_true", help="also measure git attribution (makes the tree a repository)")
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    corpus = args.out / f"synth-{args.files}"
    if not corpus.exists():
        t0 = time.perf_counter()
        load_generator().generate(corpus, args.files, seed=1)
        print(f"generated {args.files} files into {corpus} in {time.perf_counter() - t0:.1f}s", flush=True)
    candidates = sorted(
        p
        for p in corpus.rglob("*")
        if p.is_file() and ".git" not in p.parts and _NUM.search(p.read_text(encoding="utf-8", errors="replace"))
    )
    n_edit = max(1, round(args.files * args.share))
    chosen = random.Random(7).sample(candidates, n_edit)
    originals = {p: p.read_text(encoding="utf-8") for p in chosen}

    base = {**os.environ, "KB_EMBED": "0", "KB_WORKERS": str(args.workers)}
    modes = {
        "off": {**base, "KB_RECORD_CHANGES": "0", "KB_GIT_ATTRIBUTION": "0"},
        "on": {**base, "KB_RECORD_CHANGES": "1", "KB_GIT_ATTRIBUTION": "0"},
    }
    if args.git:
        modes["on + git"] = {**base, "KB_RECORD_CHANGES": "1", "KB_GIT_ATTRIBUTION": "1"}
        if not (corpus / ".git").exists():
            t0 = time.perf_counter()
            git(corpus, "init", "-q", "-b", "main")
            git(corpus, "add", "-A")
            git(corpus, "commit", "-q", "-m", "generated")
            print(f"git repository made in {time.perf_counter() - t0:.1f}s", flush=True)
    dbs = {m: args.out / f"kb-changes-bench-{m.replace(' + ', '-')}" for m in modes}
    results: dict[str, dict[str, list[dict]]] = {m: {"first": [], "nochange": [], "changed": []} for m in modes}
    try:
        for m, env in modes.items():
            shutil.rmtree(dbs[m], ignore_errors=True)
            results[m]["first"].append(ingest(corpus, dbs[m], env))
            print(f"{m:>9}: first run {results[m]['first'][0]['seconds']:.1f}s", flush=True)
        order = list(modes)
        for k in range(args.repeats):
            for m in order if k % 2 == 0 else order[::-1]:
                results[m]["nochange"].append(ingest(corpus, dbs[m], modes[m]))
        for k in range(args.repeats):
            for p, text in originals.items():
                p.write_text(edit(text, k), encoding="utf-8")
            if args.git:
                git(corpus, "commit", "-q", "-a", "-m", f"edit {k}")
            for m in order if k % 2 == 0 else order[::-1]:
                r = ingest(corpus, dbs[m], modes[m])
                assert r["summary"]["changed"] == n_edit, r["summary"]
                results[m]["changed"].append(r)
    finally:
        for p, text in originals.items():
            p.write_text(text, encoding="utf-8")
        if args.git:
            git(corpus, "commit", "-q", "-a", "--allow-empty", "-m", "restore")

    def med(m: str, phase: str, key: str) -> float:
        return statistics.median(r[key] for r in results[m][phase])

    print(
        f"\ncorpus: {corpus} ({results['off']['first'][0]['summary']['files_seen']} files), {n_edit} files "
        f"edited per changed run, {args.repeats} repeats (medians), cores: {os.cpu_count()}"
    )
    header = f"{'run':<22}" + "".join(f"{m + ' s':>12}{'wall':>8}" for m in modes) + f"{'overhead':>10}"
    print(header)
    for phase, label in (("nochange", "no-change re-run"), ("changed", f"{args.share:.0%} files changed")):
        row = f"{label:<22}"
        for m in modes:
            row += f"{med(m, phase, 'seconds'):>12.2f}{med(m, phase, 'wall'):>8.2f}"
        over = med("on", phase, "seconds") / med("off", phase, "seconds") - 1
        row += f"{over:>+10.1%}"
        print(row)
    keys = [r["summary"]["key_changes"] for r in results["on"]["changed"]]
    print(f"\nkey changes recorded per changed run: {keys}")
    if args.git:
        for phase in ("nochange", "changed"):
            over = med("on + git", phase, "seconds") / med("off", phase, "seconds") - 1
            print(f"git attribution, {phase}: {over:+.1%} over off")


if __name__ == "__main__":
    main()
