"""The word pieces a build feeds the model, where they come from, and what each cut would save.

Reads a built KB (catalogue-only is enough: ``kb ingest DIR --no-embed --db KB``), takes every
distinct chunk text the build embeds (``chunks WHERE embed``, one per ``text_sha``, as
:func:`kb.index.embed_pending` does) and tokenizes it with the model's own tokenizer, untruncated.
It reports:

* totals: texts, word pieces as written, word pieces the model sees (``[CLS]``/``[SEP]`` included,
  truncated at the model's ``max_seq_length``, 256 for all-MiniLM-L6-v2);
* the context (first) line of each chunk against the body, and the context line's fields (path,
  format, key path, the rest: key-path words and what the file says it is);
* pieces past 128 (the length all-MiniLM-L6-v2 was trained on) and past 256 (cut off, never seen);
* overlap: body lines that another chunk of the same file also holds (line ranges), and lines whose
  text recurs in other distinct texts (boilerplate), and lines without a letter or digit (``##``,
  ``},``);
* each candidate cut with the pieces it saves and, at ``--texts-per-s`` (the embedding rate measured
  by ``bench/embed_backends.py`` or a build, taken as proportional to pieces), the seconds.

It changes nothing: the chunker (``ingest/chunk.py``) applies cuts; their quality is measured with
``bench/search_quality.py`` on a full build.

    .venv/bin/python bench/token_budget.py --kb /tmp/dev-catalogue --texts-per-s 36
    .venv/bin/python bench/token_budget.py --kb KB --json budget.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAINED = 128
"""Word pieces all-MiniLM-L6-v2 was trained on."""
_MEANINGLESS = re.compile(r"^[^A-Za-z0-9]*$")


def tokenizer(model: str = "all-MiniLM-L6-v2") -> tuple[Any, int]:
    """The model's ``tokenizers`` tokenizer (no truncation, no padding) and its max_seq_length."""
    from tokenizers import Tokenizer

    from kb.embed import _max_seq_length, _model_location

    model_dir = Path(_model_location(model)[0])
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok, _max_seq_length(model_dir)


def embeddable_texts(kb_dir: Path) -> tuple[list[str], list[str]]:
    """(text_sha, text) of every distinct text the build embeds, in text_sha order."""
    from kb import KnowledgeBase

    with KnowledgeBase.open(kb_dir, read_only=True) as kb:
        df = kb.sql("SELECT text_sha, any_value(text) AS t FROM chunks WHERE embed GROUP BY text_sha ORDER BY text_sha")
    return list(df["text_sha"]), list(df["t"])


def lengths(tok: Any, texts: list[str], *, special: bool = True) -> np.ndarray:
    out = np.zeros(len(texts), dtype=np.int64)
    for s in range(0, len(texts), 4096):
        enc = tok.encode_batch(texts[s : s + 4096], add_special_tokens=special)
        out[s : s + len(enc)] = [len(e.ids) for e in enc]
    return out


def pieces_seen(kb_dir: Path, model: str = "all-MiniLM-L6-v2", window: int = 0) -> dict[str, int]:
    """Texts, model calls and word pieces the model sees for ``kb_dir`` (what ``bench/full_build.py``
    prints): texts longer than the build's window (``window``, :attr:`Settings.embed_window`; 0:
    the model's trained length) are read in windows (:class:`kb.embed.Windows`), each repeating
    the context line."""
    from kb.embed import _model_location, _windows_for, model_text, model_window

    tok, _ = tokenizer(model)
    location, name = _model_location(model)
    width = model_window(Path(location), name, window)
    windows = _windows_for(Path(location), width)
    _, texts = embeddable_texts(kb_dir)
    texts = [model_text(t) for t in texts]  # what the model reads (the text itself unless the lever is on)
    n = lengths(tok, texts)
    parts: list[str] = []
    for s in range(0, len(texts), 4096):
        parts += windows.split(texts[s : s + 4096])[0] if windows else texts[s : s + 4096]
    seen = np.minimum(lengths(tok, parts), width)
    return {
        "texts": len(texts),
        "windows": len(parts),
        "window": width,
        "pieces": int(seen.sum()),
        "pieces_as_written": int(n.sum()),
    }


def overlapped_lines(kb_dir: Path, text_of: dict[str, str]) -> dict[str, set[int]]:
    """text_sha -> indices (0-based, into the body) of the lines that an earlier chunk of the same
    file already holds, the same file line with the same text (the parts of one over-long line
    share a line number but not their text); each text counted at its first chunk."""
    from kb import KnowledgeBase

    with KnowledgeBase.open(kb_dir, read_only=True) as kb:
        df = kb.sql("SELECT path, line_start, text_sha FROM chunks WHERE embed ORDER BY path, line_start, ordinal")
    out: dict[str, set[int]] = {}
    covered: dict[int, set[str]] = {}
    last = None
    for path, ls, sha in df.itertuples(index=False):
        if path != last:
            covered, last = {}, path
        ls = int(ls or 0)
        body = text_of.get(sha, "").split("\n")[1:]
        if ls <= 0 or not body:
            continue
        seen_before = {j for j, line in enumerate(body) if line.strip() and line in covered.get(ls + j, ())}
        out.setdefault(sha, seen_before)
        for j, line in enumerate(body):
            covered.setdefault(ls + j, set()).add(line)
    return out


def budget(kb_dir: Path, model: str = "all-MiniLM-L6-v2") -> dict[str, Any]:
    tok, window = tokenizer(model)
    shas, texts = embeddable_texts(kb_dir)
    full = lengths(tok, texts)  # [CLS] ... [SEP]
    seen = np.minimum(full, window)
    heads = [t.split("\n", 1)[0] for t in texts]
    head = lengths(tok, heads, special=False)
    body = np.maximum(full - 2 - head, 0)

    # context-line fields: path | format | key path | rest (key-path words, what the file is)
    fields: dict[str, list[str]] = {"path": [], "format": [], "key_path": [], "rest": []}
    seps = np.zeros(len(texts), dtype=np.int64)
    for i, h in enumerate(heads):
        parts = h.split(" | ")
        seps[i] = len(parts) - 1
        fields["path"].append(parts[0])
        fields["format"].append(parts[1] if len(parts) > 1 else "")
        fields["key_path"].append(parts[2] if len(parts) > 2 else "")
        fields["rest"].append(" | ".join(parts[3:]))
    field_pieces = {k: lengths(tok, v, special=False) for k, v in fields.items()}
    short_path = lengths(tok, ["/".join(p.split("/")[-2:]) for p in fields["path"]], special=False)

    # body lines: meaningless ones, overlaps with neighbouring chunks, boilerplate
    overlaps = overlapped_lines(kb_dir, dict(zip(shas, texts, strict=True)))
    line_text: list[str] = []
    owner: list[int] = []
    is_overlap: list[bool] = []
    for i, (sha, t) in enumerate(zip(shas, texts, strict=True)):
        ov = overlaps.get(sha, set())
        for j, line in enumerate(t.split("\n")[1:]):
            line_text.append(line)
            owner.append(i)
            is_overlap.append(j in ov)
    lp = lengths(tok, line_text, special=False)
    owner_a = np.array(owner, dtype=np.int64)
    overlap_a = np.array(is_overlap, dtype=bool)
    meaningless = np.array([bool(_MEANINGLESS.match(s)) for s in line_text], dtype=bool)
    stripped = [s.strip() for s in line_text]
    seen_in: dict[str, set[int]] = defaultdict(set)
    for s, o in zip(stripped, owner, strict=True):
        if s:
            seen_in[s].add(o)
    repeated = np.array([bool(s) and len(seen_in[s]) > 1 for s in stripped], dtype=bool)

    # pieces saved by a cut, counted within the window the model sees (a cut past 256 saves nothing)
    def saved_at_end(cut: np.ndarray) -> int:
        """A cut of ``cut`` pieces per text: the seen length shrinks only where the text fits after."""
        return int((seen - np.minimum(full - cut, window)).sum())

    per_text_lines = np.bincount(owner_a, weights=lp * overlap_a, minlength=len(texts)).astype(np.int64)
    per_text_meaningless = np.bincount(owner_a, weights=lp * meaningless, minlength=len(texts)).astype(np.int64)
    rest_cut = field_pieces["rest"] + (seps > 2)  # its separator goes with it
    path_cut = field_pieces["path"] - short_path
    cuts = {
        f"truncate at {TRAINED} (max_seq_length {TRAINED})": int((seen - np.minimum(full, TRAINED)).sum()),
        "context line: drop key-path words and file description": saved_at_end(rest_cut),
        "context line: path as its last two parts": saved_at_end(path_cut),
        "context line: drop the format field": saved_at_end(field_pieces["format"] + 1),
        "body: drop lines another chunk of the file holds (overlap)": saved_at_end(per_text_lines),
        "body: drop lines without a letter or digit": saved_at_end(per_text_meaningless),
    }
    total = int(seen.sum())
    return {
        "kb": str(kb_dir),
        "texts": len(texts),
        "window": window,
        "pieces_as_written": int(full.sum()),
        "pieces_seen": total,
        "mean_pieces": round(float(seen.mean()), 1),
        "percentiles": {str(p): int(np.percentile(full, p)) for p in (10, 50, 90, 99)},
        "context_line": int(head.sum()),
        "body": int(body.sum()),
        "special": 2 * len(texts),
        "context_fields": {k: int(v.sum()) for k, v in field_pieces.items()} | {"separators": int(seps.sum())},
        "past_trained": int(np.maximum(seen - TRAINED, 0).sum()),
        "texts_past_trained": int((full > TRAINED).sum()),
        "truncated": int(np.maximum(full - window, 0).sum()),
        "texts_truncated": int((full > window).sum()),
        "overlap_lines": int(overlap_a.sum()),
        "overlap_pieces": int((lp * overlap_a).sum()),
        "texts_with_overlap": int((per_text_lines > 0).sum()),
        "meaningless_lines": int(meaningless.sum()),
        "meaningless_pieces": int((lp * meaningless).sum()),
        "repeated_lines": int(repeated.sum()),
        "repeated_pieces": int((lp * repeated).sum()),
        "top_repeated": [s for s, _ in Counter(s for s, r in zip(stripped, repeated, strict=True) if r).most_common(8)],
        "cuts": cuts,
    }


def report(b: dict[str, Any], rate: float | None) -> None:
    total = b["pieces_seen"]

    def share(n: int) -> str:
        return f"{n:>12,} {100 * n / total:6.1f}%"

    print(f"{b['texts']:,} distinct embeddable texts in {b['kb']} (window {b['window']} word pieces)")
    print(
        f"word pieces as written {b['pieces_as_written']:,}; seen by the model {total:,} ({b['mean_pieces']} per text)"
    )
    pct = ", ".join(f"p{k} {v}" for k, v in b["percentiles"].items())
    print(f"pieces per text: {pct}\n")
    print(f"{'where the pieces come from':58} {'pieces':>12} {'share':>7}")
    print(f"{'[CLS] and [SEP]':58} {share(b['special'])}")
    print(f"{'context (first) line':58} {share(b['context_line'])}")
    for k, v in b["context_fields"].items():
        print(f"{'  ' + k:58} {share(v)}")
    print(f"{'body':58} {share(b['body'])}")
    print(f"{f'past {TRAINED} (beyond the trained length), seen':58} {share(b['past_trained'])}")
    print(f"{'  texts longer than ' + str(TRAINED):58} {b['texts_past_trained']:>12,}")
    window = b["window"]
    print(f"{f'past {window} (truncated, not seen; not in the total)':58} {b['truncated']:>12,}")
    print(f"{'  texts truncated':58} {b['texts_truncated']:>12,}")
    print(f"{'body lines another chunk of the file holds':58} {share(b['overlap_pieces'])}")
    print(f"{'  such lines / texts with some':58} {b['overlap_lines']:>12,} / {b['texts_with_overlap']:,}")
    print(f"{'body lines without a letter or digit':58} {share(b['meaningless_pieces'])}")
    print(f"{'body lines whose text recurs in other texts (info)':58} {share(b['repeated_pieces'])}")
    print(f"  most repeated: {b['top_repeated']}")
    per_piece = (1.0 / (rate * b["mean_pieces"])) if rate else None
    print(f"\n{'cut (none applied)':62} {'saves':>12} {'share':>7}" + (f" {'seconds':>8}" if rate else ""))
    for name, n in b["cuts"].items():
        secs = f" {n * per_piece:8.0f}" if per_piece else ""
        print(f"{name:62} {share(n)}{secs}")
    if rate:
        print(
            f"\nat {rate:g} texts/s the embedding takes about {b['texts'] / rate:,.0f} s (time taken as proportional to pieces)"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kb", type=Path, required=True, help="a built KB (catalogue-only is enough)")
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--texts-per-s", type=float, help="embedding rate, for the time estimates")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    b = budget(args.kb, args.model)
    if args.texts_per_s:
        b["texts_per_s"] = args.texts_per_s
        b["embed_seconds_estimate"] = round(b["texts"] / args.texts_per_s)
    report(b, args.texts_per_s)
    if args.json:
        args.json.write_text(json.dumps(b, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
