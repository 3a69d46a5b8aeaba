"""Latency of ``kb mcp`` as an assistant sees it: the SDK's client starts ``kb mcp`` over stdio, then
calls each tool three times. Prints the time to a listed toolset, the first search asked at once (it
waits for the model's background load) and, per tool, the first and median later call.

By default it builds a KB of the bundled sample corpus with the real model in a temporary folder:

    .venv/bin/python bench/mcp_latency.py
    .venv/bin/python bench/mcp_latency.py --db .kb --model hash      # an existing KB
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CALLS = [
    ("search", {"query": "Where is the fraud-review threshold for payments in production?", "k": 5}),
    ("search", {"query": "DATABASE_URL", "k": 5}),
    ("find_key", {"pattern": "*timeout*"}),
    ("show_file", {"path": "services/payments/config/production.yaml"}),
    ("validate", {}),
    ("findings", {}),
    ("duplicates", {}),
    ("drift", {}),
    ("drift", {"effective": "production"}),
    ("impact", {"path": "schemas/common.schema.json"}),
    ("dependencies", {"path": "deploy/compose/docker-compose.yml"}),
    ("sql", {"query": "SELECT format, count(*) FROM files GROUP BY 1"}),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="an existing KB (default: build the sample into a temporary folder)")
    ap.add_argument("--model", default=None, help="embedding model the KB was built with (default: the configured)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import anyio
    from mcp import Client, StdioServerParameters

    db = args.db
    if db is None:
        from kb.knowledge import KnowledgeBase

        db = Path(tempfile.mkdtemp(prefix="kb-mcp-bench-")) / "kb"
        t = time.perf_counter()
        KnowledgeBase.build(
            KnowledgeBase.sample_path(), db=db, workers=1, **({"model": args.model} if args.model else {})
        ).close()
        print(f"built the sample KB in {time.perf_counter() - t:.1f} s")
    argv = ["mcp", "--db", str(db), *(["--model", args.model] if args.model else [])]
    params = StdioServerParameters(
        command=str(Path(sys.executable).with_name("kb")), args=argv, env={"HF_HUB_OFFLINE": "1"}
    )

    async def run() -> None:
        t = time.perf_counter()
        async with Client(params) as c:
            await c.list_tools()
            print(f"ready (spawn, initialize, list tools): {time.perf_counter() - t:.2f} s")
            for i, (name, arguments) in enumerate(CALLS):
                times = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = await c.call_tool(name, arguments)
                    times.append(time.perf_counter() - t)
                    if r.is_error:
                        raise SystemExit(f"{name} failed: {r.content[0].text}")
                label = "first search, asked at once" if i == 0 else name
                print(
                    f"{label:<30} first {times[0] * 1000:7.0f} ms   later {statistics.median(times[1:]) * 1000:6.0f} ms"
                    f"   {len(r.content[0].text):6d} chars"
                )

    anyio.run(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
