"""Embedding throughput per backend on the same texts, alternated (the machine is shared and noisy).

Takes ``--texts`` distinct chunk texts (seeded sample) from a built KB and encodes them with each
backend in turn, ``--repeats`` times, reporting the best texts/s of each and the vectors' cosine
to torch fp32 (the reference the KB's identity names):

* ``torch-fp32``: sentence-transformers as the build ran before ONNX (batch 64, its own sort);
* ``onnx-fp32``: :class:`kb.embed.OnnxEmbedder` (the default on CPUs): same vectors;
* ``torch-bf16``: bf16 weights, output normalised in fp32 (fast where the CPU has AMX; same identity);
* ``torch-autocast``: fp32 weights under bf16 autocast (how bf16 ran before the weights were bf16);
* ``onnx-int8``: dynamically quantized MatMuls (another identity: vectors differ more).

    .venv/bin/python bench/embed_backends.py --kb bench/out/full-build/dev --texts 2000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kb.embed import Embedder

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def sample_texts(kb_dir: Path, n: int, seed: int) -> list[str]:
    from kb import KnowledgeBase

    with KnowledgeBase.open(kb_dir, read_only=True) as kb:
        cols = set(kb.sql("SELECT column_name AS c FROM information_schema.columns WHERE table_name = 'chunks'")["c"])
        where = "WHERE embed" if "embed" in cols else ""  # a KB built before the skip rules
        rows = kb.sql(f"SELECT any_value(text) AS t FROM chunks {where} GROUP BY text_sha ORDER BY text_sha")["t"]
    texts = list(rows)
    random.Random(seed).shuffle(texts)
    return texts[:n]


class Autocast:
    """An fp32 torch embedder run under bf16 autocast."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.inner.encode(texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True, help="a built KB to take texts from")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--backends", default="torch-fp32,onnx-fp32,torch-bf16,onnx-int8")
    args = ap.parse_args()

    from kb.embed import OnnxEmbedder, SentenceTransformerEmbedder, cpu_has_bf16

    texts = sample_texts(args.kb, args.texts, args.seed)
    tokens = None
    makers = {
        "torch-fp32": lambda: SentenceTransformerEmbedder(device="cpu", precision="fp32"),
        "onnx-fp32": lambda: OnnxEmbedder(precision="fp32"),
        "torch-bf16": lambda: SentenceTransformerEmbedder(device="cpu", precision="bf16"),
        "onnx-int8": lambda: OnnxEmbedder(precision="int8"),
        "torch-autocast": lambda: Autocast(SentenceTransformerEmbedder(device="cpu", precision="fp32")),
    }
    names = [b for b in args.backends.split(",") if b]
    embedders = {name: makers[name]() for name in names}
    for emb in embedders.values():
        emb.encode(texts[:32])  # warm-up
    best: dict[str, float] = {}
    vecs: dict[str, np.ndarray] = {}
    for rep in range(args.repeats):
        for name, emb in embedders.items():
            t0 = time.perf_counter()
            v = emb.encode(texts)
            dt = time.perf_counter() - t0
            best[name] = max(best.get(name, 0.0), len(texts) / dt)
            vecs[name] = v
            print(f"run {rep + 1} {name:14} {len(texts) / dt:8.1f} texts/s", flush=True)
    if tokens is None:
        tok = getattr(embedders.get("onnx-fp32"), "_tokenizer", None)
        if tok is not None:
            tokens = sum(len(e.ids) for e in tok.encode_batch(texts))
    ref = vecs.get("torch-fp32")
    print(
        f"\n{len(texts)} distinct texts from {args.kb}"
        + (f", {tokens / len(texts):.0f} word pieces each on average" if tokens else "")
    )
    print(f"CPU with AMX bf16: {cpu_has_bf16()}")
    print(f"{'backend':15} {'texts/s':>9} {'vs torch-fp32':>14} {'mean cos':>9} {'min cos':>9}")
    for name in names:
        cos = (vecs[name] * ref).sum(axis=1) if ref is not None else None
        ratio = best[name] / best["torch-fp32"] if "torch-fp32" in best else float("nan")
        print(
            f"{name:15} {best[name]:9.1f} {ratio:13.2f}x "
            + (f"{cos.mean():9.5f} {cos.min():9.5f}" if cos is not None else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
