"""Hits: a chunk becomes a hit that points at the lines that answer the query (:mod:`kb.search.answers`),
with the key path at the best of them. Snippets are cut from the chunk text, which was redacted at
ingest, so they never show a secret.

Chunk text line ``i`` (after the context line) is file line ``line_start + i - 1`` (see
:mod:`kb.ingest.chunk`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from kb.keypaths import split_key_path
from kb.keyword import ChunkDoc, chunk_body_text, chunk_ordinal
from kb.linepaths import line_key_paths
from kb.search.answers import MAX_ANSWERS, pick_answers, to_answer_lines
from kb.search.query import ParsedQuery
from kb.types import Hit

__all__ = ["make_hit", "join_hits", "near_hits", "chunk_body", "SNIPPET_CONTEXT", "SNIPPET_LINE_CHARS"]

SNIPPET_CONTEXT = 1
"""A lone answer line is shown with up to this many neighbours of its block."""
MAX_SPAN = 12
"""Lines a hit spans at most."""
SNIPPET_LINE_CHARS = 240
"""A longer line is clipped around the first query term it holds."""
JOIN_WITHIN = 8
"""A later hit of a file whose lines come within this many lines of an earlier hit of the same file
joins it, when the two still span at most :data:`MAX_SPAN` lines: one hit shows both places (the
question's words on a Markdown paragraph, the answer two paragraphs down; a mapping's key, its
values in the next chunk) and the list makes room for another. 0 turns it off."""
SPLIT_PIECES = 64
"""Chunks one over-long line may be split into (:data:`kb.ingest.chunk.MAX_PIECES_PER_LINE`): a
joined hit on such a line reads this many chunks on either side, to show the line whole."""


def chunk_body(doc: ChunkDoc) -> str:
    """The chunk's text without its context line."""
    return chunk_body_text(doc.text)


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


def _body(doc: ChunkDoc) -> list[str]:
    """The chunk's body lines, one per file line of ``line_start..line_end``."""
    body = doc.text.split("\n")[1:] if "\n" in doc.text else [doc.text]
    n = doc.line_end - doc.line_start + 1
    return body[:n] + [""] * (n - len(body)) if n > 0 else body


class _Region(NamedTuple):
    doc: ChunkDoc
    """The chunk, its text extended by its neighbours' lines (gaps as blank lines)."""
    own: tuple[int, int]
    """The index range of the chunk's own lines in the body."""
    paths: list[str | None] | None
    """Each body line's key path, each piece read from its own chunk's key path (None: one chunk)."""


def _region(doc: ChunkDoc, around: tuple[ChunkDoc | None, ChunkDoc | None]) -> _Region:
    """``doc`` read with its neighbouring chunks as one body."""
    before, after = around
    if doc.line_start == doc.line_end or (before is None and after is None):
        return _Region(doc, (0, max(0, doc.text.count("\n") - 1)), None)
    lines: list[str] = []
    paths: list[str | None] = []

    def add(piece: ChunkDoc) -> None:
        body = _body(piece)
        lines.extend(body)
        paths.extend(line_key_paths(piece.format, body, piece.key_path))

    def gap(n: int) -> None:
        lines.extend([""] * n)
        paths.extend([None] * n)

    first, last = doc, doc.line_end
    if before is not None:
        first = before
        add(before)
        gap(doc.line_start - before.line_end - 1)
    lo = len(lines)
    add(doc)
    hi = len(lines) - 1
    if after is not None:
        gap(after.line_start - doc.line_end - 1)
        add(after)
        last = after.line_end
    head = doc.text.split("\n", 1)[0]
    text = head + "\n" + "\n".join(lines)
    merged = ChunkDoc(doc.chunk_id, doc.path, doc.format, first.key_path, first.line_start, last, text)
    return _Region(merged, (lo, hi), paths)


def make_hit(
    doc: ChunkDoc,
    score: float,
    q: ParsedQuery,
    weights: dict[str, float] | None = None,
    around: tuple[ChunkDoc | None, ChunkDoc | None] = (None, None),
) -> Hit:
    """The hit for one chunk: its answer lines (:mod:`kb.search.answers`), their key path, a
    redacted snippet that shows them. ``around``: the chunks before and after it in its file,
    whose lines may answer too (a list item's fields cut off by the chunk's end, the setting a
    comment above the chunk documents)."""
    own_key = doc.key_path
    region = _region(doc, around)
    doc = region.doc
    body = doc.text.split("\n")[1:] if "\n" in doc.text else [doc.text]
    if not body:
        body = [""]
    found = pick_answers(doc.format, body, doc.key_path, q, weights, own=region.own, paths=region.paths)
    picked, lo, hi = found.lines, found.lo, found.hi
    if hi - lo > MAX_SPAN - 1:  # far-apart answers: keep those near the best one
        first = picked[0][0]
        picked = [p for p in picked if abs(p[0] - first) <= MAX_SPAN // 2]
        lo = min(lo if lo >= first - MAX_SPAN // 2 else first, *(p[0] for p in picked))
        hi = max(p[0] for p in picked)
    if hi - lo < SNIPPET_CONTEXT:  # a lone line: show a neighbour of its block for context
        paths = region.paths or line_key_paths(doc.format, body, doc.key_path)
        same = _same_block(doc.format, paths, picked[0][0] if picked else lo)
        if lo > 0 and same(lo - 1) and body[lo - 1].strip():
            lo -= 1
        if hi - lo < SNIPPET_CONTEXT and hi < len(body) - 1 and same(hi + 1) and body[hi + 1].strip():
            hi += 1
    single = doc.line_start == doc.line_end
    line_start = doc.line_start if single else doc.line_start + lo
    line_end = doc.line_start if single else doc.line_start + hi
    key = found.key_path or own_key or doc.key_path or None
    snippet = "\n".join(_clip(ln, q) for ln in body[lo : hi + 1])
    return Hit(
        path=doc.path,
        score=round(float(score), 6),
        line_start=line_start,
        line_end=line_end,
        key_path=key,
        snippet=snippet,
        format=doc.format or None,
        answer=to_answer_lines(doc.line_start, single, picked),
    )


def near_hits(first: Hit, later: Hit) -> bool:
    """Whether ``later`` joins ``first`` (see :data:`JOIN_WITHIN`)."""
    if JOIN_WITHIN <= 0 or first.path != later.path:
        return False
    gap = max(later.line_start - first.line_end, first.line_start - later.line_end)
    span = max(first.line_end, later.line_end) - min(first.line_start, later.line_start) + 1
    return gap <= JOIN_WITHIN and span <= MAX_SPAN


def _file_lines(docs: list[ChunkDoc]) -> dict[int, str]:
    """File lines as the chunks hold them; a long line split over several chunks is whole again."""
    lines: dict[int, str] = {}
    split: dict[int, list[tuple[int, str]]] = {}
    seen: set[str] = set()
    for d in docs:
        if d.chunk_id in seen:
            continue
        seen.add(d.chunk_id)
        body = _body(d)
        if d.line_start == d.line_end:
            split.setdefault(d.line_start, []).append((chunk_ordinal(d) or 0, body[0] if body else ""))
            continue
        for i, line in enumerate(body):
            lines.setdefault(d.line_start + i, line)
    for n, pieces in split.items():
        if n not in lines:
            lines[n] = "".join(text for _, text in sorted(pieces))
    return lines


def join_hits(first: Hit, later: Hit, docs: list[ChunkDoc], q: ParsedQuery) -> Hit:
    """One hit for two near hits of a file (:func:`near_hits`): the lines of both, ``first``'s
    answers then ``later``'s new ones (at most :data:`kb.search.answers.MAX_ANSWERS`), ``first``'s
    score and key path. ``docs``: the chunks of the file around both (lines no chunk holds show
    blank, as between chunks)."""
    lo, hi = min(first.line_start, later.line_start), max(first.line_end, later.line_end)
    lines = _file_lines(docs)
    have = {a.line for a in first.answer}
    answer = [*first.answer, *(a for a in later.answer if a.line not in have)][: max(MAX_ANSWERS, len(first.answer))]
    return first.model_copy(
        update={
            "line_start": lo,
            "line_end": hi,
            "snippet": "\n".join(_clip(lines.get(n, ""), q) for n in range(lo, hi + 1)),
            "answer": answer,
        }
    )
