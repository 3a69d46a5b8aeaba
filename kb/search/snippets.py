"""Hits: a chunk becomes a hit that points at its best-matching lines (a window of up to five), with the
key path at that line. Snippets are cut from the chunk text, which was redacted at ingest, so they
never show a secret.

Chunk text line ``i`` (after the context line) is file line ``line_start + i - 1`` (see
:mod:`ingest.chunk`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kb.keypaths import split_key_path
from kb.keyword import ChunkDoc, analyze
from kb.linepaths import line_key_paths
from kb.search.query import ParsedQuery
from kb.types import Hit

__all__ = ["make_hit", "chunk_body", "SNIPPET_CONTEXT", "SNIPPET_LINE_CHARS"]

SNIPPET_CONTEXT = 2
"""Lines shown on each side of the best line (when they belong to its block)."""
SNIPPET_LINE_CHARS = 240
"""A longer line is clipped around the first query term it holds."""

_KV = re.compile(r"""^\s*(?:-\s+)?(?:export\s+)?["']?([\w.\-/$@ ]+?)["']?\s*(?::(?:\s|$)|=)""")
_COMPOUND = re.compile(r"[_.\-/:]")


def chunk_body(doc: ChunkDoc) -> str:
    """The chunk's text without its context line."""
    return doc.text.split("\n", 1)[1] if "\n" in doc.text else doc.text


def _line_score(line: str, q: ParsedQuery) -> float:
    """How well one line matches: distinct query terms found, doubled on the key side of
    ``key: value`` / ``KEY=value``; identifier terms weigh more, and a hyphenated word of a
    question (``fraud-review``) counts by its parts only."""
    if not line.strip():
        return 0.0
    m = _KV.match(line)
    key_terms = set(analyze(m.group(1))) if m else set()
    terms = set(analyze(line))
    score = 0.0
    for t in q.terms:
        compound = _COMPOUND.search(t) is not None
        if compound and t not in q.ident_terms:
            continue
        w = 3.0 if compound else 1.0
        if t in key_terms:
            score += 2 * w
        elif t in terms:
            score += w
    for rx in q.ident_res:
        if rx.search(line):
            score += 4.0
    for rx in q.define_res:
        if rx.search(line):
            score += 2.0
    return score


def _clip(line: str, q: ParsedQuery) -> str:
    if len(line) <= SNIPPET_LINE_CHARS:
        return line
    low = line.lower()
    pos = -1
    for t in q.idents + [t for t in q.terms if len(t) > 2]:
        pos = low.find(t)
        if pos >= 0:
            break
    start = max(0, pos - SNIPPET_LINE_CHARS // 3) if pos >= 0 else 0
    piece = line[start : start + SNIPPET_LINE_CHARS]
    return ("…" if start > 0 else "") + piece + ("…" if start + SNIPPET_LINE_CHARS < len(line) else "")


def _same_block(fmt: str, paths: list[str | None], best: int) -> Callable[[int], bool]:
    """Whether a neighbouring line belongs to the best line's block (snippets stay in one block)."""
    anchor = next((paths[i] for i in range(best, -1, -1) if paths[i]), None)
    if anchor is None or fmt in ("dotenv", "env", "properties", "text", "dockerfile"):
        return lambda i: True
    if fmt == "markdown":
        return lambda i: paths[i] is None or paths[i] == anchor

    def top(p: str) -> str | int:
        return (split_key_path(p) or [""])[0]

    anchor_top = top(anchor)
    return lambda i: paths[i] is None or top(paths[i] or "") == anchor_top


def make_hit(doc: ChunkDoc, score: float, q: ParsedQuery) -> Hit:
    """The hit for one chunk: its best lines, their key path, a redacted snippet."""
    body = doc.text.split("\n")[1:] if "\n" in doc.text else [doc.text]
    if not body:
        body = [""]
    scores = [_line_score(ln, q) for ln in body]
    best = max(range(len(body)), key=lambda i: (scores[i], -i))
    if scores[best] <= 0:
        best = next((i for i, ln in enumerate(body) if ln.strip()), 0)
    paths = line_key_paths(doc.format, body, doc.key_path)
    same = _same_block(doc.format, paths, best)
    lo = best
    while lo > 0 and best - lo < SNIPPET_CONTEXT and same(lo - 1):
        lo -= 1
    hi = best
    while hi < len(body) - 1 and hi - best < SNIPPET_CONTEXT and same(hi + 1):
        hi += 1
    while lo < best and not body[lo].strip():
        lo += 1
    while hi > best and not body[hi].strip():
        hi -= 1
    key = next((paths[i] for i in range(best, -1, -1) if paths[i]), None) or doc.key_path or None
    single = doc.line_start == doc.line_end
    line_start = doc.line_start if single else doc.line_start + lo
    line_end = doc.line_start if single else doc.line_start + hi
    snippet = "\n".join(_clip(ln, q) for ln in body[lo : hi + 1])
    return Hit(
        path=doc.path,
        score=round(float(score), 6),
        line_start=line_start,
        line_end=line_end,
        key_path=key,
        snippet=snippet,
        format=doc.format or None,
    )
