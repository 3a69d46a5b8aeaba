#!/usr/bin/env python3
"""The same build on this machine and on a Ray cluster: time per phase, overhead, equal results.

    python bench/ray_build.py --corpus ../shared/corpora/dev --no-embed          # parsing, whole tree
    python bench/ray_build.py --corpus ../shared/corpora/dev --files 400         # full build of 400 files
    python bench/ray_build.py --address host:6379 ...                            # a real cluster

Each build starts from an empty KB in ``--work``. The local build uses this machine's worker
processes (``workers``: one per core) and embedder; the Ray build joins ``--address`` (default
``local``: a cluster of ``--cpus`` CPUs started here) and runs ``kb.ingest(..., ray=...)``. The
Ray cluster's start-up is timed apart (a real cluster is started once, not per build). Printed:
the phases of each build, the overhead of Ray against local, and whether the two KBs hold the
same rows and vectors (max elementwise difference). ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def subset(corpus: Path, files: int, out: Path) -> Path:
    """The first ``files`` files of ``corpus`` (sorted paths) copied under ``out``."""
    if out.exists():
        shutil.rmtree(out)
    picked = sorted(p for p in corpus.rglob("*") if p.is_file() and not p.is_symlink())[:files]
    for p in picked:
        dst = out / p.relative_to(corpus)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, dst)
    return out


def build(db: Path, root: Path, settings: dict, ray: str | None) -> dict:
    from kb.knowledge import KnowledgeBase
    from kb.settings import Settings

    if db.exists():
        shutil.rmtree(db)
    kb = KnowledgeBase(Settings.load({"db": db, **settings}))
    t = time.perf_counter()
    try:
        s = kb.ingest(root, ray=ray)
    finally:
        kb.close()
    return {
        "seconds": round(time.perf_counter() - t, 2),
        "phases": s.phases,
        "files": s.files_seen,
        "embedded": s.chunks_embedded,
        "notes": [n for n in s.notes if n.startswith("built on")],
    }


def compare(a: Path, b: Path) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "test_kb"))
    from test_ray import TABLES, table_rows, vectors  # the test's own comparison

    ra, rb = table_rows(a), table_rows(b)
    same_rows = all(ra[t] == rb[t] for t in TABLES)
    out: dict = {"same_rows": same_rows, "rows": {t: len(ra[t]) for t in TABLES}}
    try:
        va, vb = vectors(a), vectors(b)
    except (TypeError, FileNotFoundError):
        return out
    import numpy as np

    out["same_vector_keys"] = va.keys() == vb.keys()
    if va and va.keys() == vb.keys():
        out["max_abs_diff"] = max(float(np.max(np.abs(va[k] - vb[k]))) for k in va)
        out["min_cosine"] = min(float(np.dot(va[k], vb[k])) for k in va)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpora" / "dev")
    ap.add_argument("--files", type=int, default=0, help="build only the first N files (0: all)")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "ray-build")
    ap.add_argument("--address", default="local", help="Ray address (default: a local cluster)")
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of a local cluster")
    ap.add_argument("--model", default=None, help="embedding model (default: the setting)")
    ap.add_argument("--precision", default=None)
    ap.add_argument("--no-embed", action="store_true", help="catalogue and keyword index only")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    a.work.mkdir(parents=True, exist_ok=True)
    root = subset(a.corpus, a.files, a.work / "tree") if a.files else a.corpus
    settings: dict = {"embed": not a.no_embed}
    if a.model:
        settings["model"] = a.model
    if a.precision:
        settings["precision"] = a.precision

    from kb.cluster import Cluster

    t = time.perf_counter()
    cluster = Cluster(a.address, num_cpus=a.cpus)
    cluster.connect()
    startup = round(time.perf_counter() - t, 2)
    print(f"{cluster.describe()} (start-up {startup} s)", flush=True)

    local = build(a.work / "local", root, settings, None)
    print(f"local: {local['seconds']} s  {local['phases']}", flush=True)
    on_ray = build(a.work / "ray", root, settings, cluster.address)
    print(f"ray:   {on_ray['seconds']} s  {on_ray['phases']}  {on_ray['notes']}", flush=True)
    cluster.close()
    same = compare(a.work / "local", a.work / "ray")
    overhead = on_ray["seconds"] / local["seconds"] - 1 if local["seconds"] else 0.0
    print(f"Ray against local: {overhead:+.1%} ({on_ray['seconds']} s vs {local['seconds']} s); same: {same}")
    if a.json:
        a.json.write_text(
            json.dumps(
                {
                    "corpus": str(a.corpus),
                    "files": local["files"],
                    "cluster": f"{a.address}, {a.cpus} CPUs",
                    "ray_startup_s": startup,
                    "local": local,
                    "ray": on_ray,
                    "overhead": round(overhead, 4),
                    "same": same,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
