"""Embedding throughput per backend on the same texts, alternated (the machine is shared and noisy).

Takes ``--texts`` distinct chunk texts (seeded sample) from a built KB and encodes them with each
backend in turn, ``--repeats`` times, reporting the best texts/s of each and the vectors' cosine
to torch fp32 (the reference the KB's identity names):

* ``torch-fp32``: sentence-transformers in fp32 (the reference; the build's path before AMX);
* ``torch-bf16``: bf16 weights, output normalised in fp32 (auto's choice on AMX CPUs; same identity);
* ``torch-autocast``: fp32 weights under bf16 autocast (how bf16 ran before the weights were bf16);
* ``torch-int8``: torch's dynamic quantization of the Linear layers (fbgemm, VNNI; per tensor);
* ``onnx-fp32``: :class:`kb.embed.OnnxEmbedder`, the graph queries use: same vectors;
* ``onnx-fused``: the same with ONNX Runtime's transformer fusions (auto's choice on CPUs without
  bf16 units): same vectors;
* ``onnx-int8``: dynamically quantized MatMuls, per channel, u8s8 (another identity);
* ``onnx-int8-mixed``: the fused graph dynamically quantized, attention included, each layer's
  feed-forward output projection left in fp32 (``--precision int8-mixed``, by hand; another identity);
* ``openvino-int8``: int8 by NNCF's static quantization (auto's choice for a new KB on x86 CPUs
  without AMX; another identity);
* ``openvino-fp32`` / ``openvino-bf16``: :class:`kb.embed.OpenVinoEmbedder` (bf16: auto's choice
  for a KB of the model's identity on CPUs with AVX-512 bf16; same identity);
* ``auto``: what ``kb ingest`` picks on this machine.

Each run line carries the 1-minute load average: the machine is shared, so compare the backends of
one run with each other, not with another day's figures.

    .venv/bin/python bench/embed_backends.py --kb bench/out/full-build/dev --texts 2000
    .venv/bin/python bench/embed_backends.py --kb KB --backends torch-fp32,onnx-fused,openvino-bf16
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from kb.embed import Embedder, SentenceTransformerEmbedder

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


class TorchInt8:
    """An fp32 torch embedder whose Linear layers torch quantizes dynamically to int8."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao
            inner.model = torch.ao.quantization.quantize_dynamic(inner.model, {torch.nn.Linear}, dtype=torch.qint8)
        self.inner = inner

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.inner.encode(texts)


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
    ap.add_argument("--backends", default="torch-fp32,torch-bf16,onnx-fp32,onnx-fused,onnx-int8,openvino-bf16,auto")
    ap.add_argument(
        "--batch-size", type=int, default=0, help="texts per model batch (0: the build's default, 16; torch 32)"
    )
    args = ap.parse_args()

    from kb.embed import (
        TOKENIZED_BATCH,
        TORCH_BATCH,
        OnnxEmbedder,
        OpenVinoEmbedder,
        SentenceTransformerEmbedder,
        cpu_flags,
        create_embedder,
    )
    from kb.settings import Settings

    texts = sample_texts(args.kb, args.texts, args.seed)
    tokens = None
    bs = args.batch_size or TOKENIZED_BATCH
    torch_bs = args.batch_size or TORCH_BATCH

    def torch_emb(precision: str) -> SentenceTransformerEmbedder:
        return SentenceTransformerEmbedder(device="cpu", precision=precision, batch_size=torch_bs)

    makers = {
        "torch-fp32": lambda: torch_emb("fp32"),
        "torch-bf16": lambda: torch_emb("bf16"),
        "torch-autocast": lambda: Autocast(torch_emb("fp32")),
        "torch-int8": lambda: TorchInt8(torch_emb("fp32")),
        "onnx-fp32": lambda: OnnxEmbedder(precision="fp32", batch_size=bs),
        "onnx-fused": lambda: OnnxEmbedder(precision="fp32", batch_size=bs, fused=True),
        "onnx-int8": lambda: OnnxEmbedder(precision="int8", batch_size=bs),
        "onnx-int8-mixed": lambda: OnnxEmbedder(precision="int8-mixed", batch_size=bs),
        "openvino-fp32": lambda: OpenVinoEmbedder(precision="fp32", batch_size=bs),
        "openvino-bf16": lambda: OpenVinoEmbedder(precision="bf16", batch_size=bs),
        "openvino-int8": lambda: OpenVinoEmbedder(precision="int8", batch_size=bs),
        # an fp32 KB's choice; batch size 0 leaves it the backend's own
        "auto": lambda: create_embedder(Settings(embed_batch_size=args.batch_size), purpose="documents"),
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
            load = os.getloadavg()[0]
            print(f"run {rep + 1} {name:15} {len(texts) / dt:8.1f} texts/s   load {load:.2f}", flush=True)
    tok = next((e._tokenizer for e in embedders.values() if hasattr(e, "_tokenizer")), None)
    if tok is not None:
        tokens = sum(len(e.ids) for e in tok.encode_batch(texts))
    ref = vecs.get("torch-fp32")
    print(
        f"\n{len(texts)} distinct texts from {args.kb}"
        + (f", {tokens / len(texts):.0f} word pieces each on average" if tokens else "")
    )
    flags = cpu_flags()
    shown = [f for f in ("amx_bf16", "avx512_bf16", "avx512_vnni", "avx_vnni", "avx512f", "avx2") if f in flags]
    print(f"CPU: {os.cpu_count()} cores, flags {' '.join(shown) or 'none of note'}")
    if "auto" in embedders:
        print(f"auto picks: {getattr(embedders['auto'], 'choice', '?')}")
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
