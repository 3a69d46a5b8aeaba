"""Chunking: parser sections -> search chunks bounded by the embedding model's window.

Pure and cheap (it runs in the ingest workers for every file): no tokenizer, no model. Rules:

* A chunk is a section (a top-level key or service block, a Markdown heading and its body, a
  group of ``.env`` lines), or several *consecutive tiny* sections merged (``version: "3"`` alone
  embeds to noise and costs a model call), or one part of a big section.
* Size is bounded by an estimate of all-MiniLM-L6-v2 word pieces (its window is 256): words of up
  to six letters count one, longer words and numbers count by length, punctuation counts one.
  Calibrated on the dev corpus against the real tokenizer: it over-estimates by at most 1.33x at
  the 99th percentile, so the budget of :data:`BUDGET` estimated pieces stays inside the window.
* A big section is split on line boundaries, preferring to cut before the least indented line
  (a sibling key) or after a blank line. Each part's ``key_path`` is the deepest key path that
  covers all of its lines (``services.api`` for a part inside the ``api`` service). A single line
  longer than the budget (minified JSON) is cut into pieces, at most :data:`MAX_PIECES_PER_LINE`.
* Each chunk's text starts with one context line, then the section's lines verbatim (already
  redacted by the pipeline)::

      services/payments/config/production.yaml | fraud.rules | fraud rules
      fraud:
        ...

  The context line carries the path, the format (where the path's extension does not say it),
  the key path and, when they differ from its spelling, the key path's words (camelCase split), so "payments production fraud threshold" is
  in what is embedded; and what the file says it is (:func:`file_about`: a schema's or manifest's
  top-level title and description; when it says nothing, what its folder says it is,
  :mod:`kb.ingest.about`), so a question that never names the file's tool still meets its words in
  every chunk. Text line ``i`` (1-based, after the context line) is file line
  ``line_start + i - 1``; :mod:`kb.search.snippets` relies on this to cut snippets.
"""

from __future__ import annotations

import re

from kb.keypaths import join_key_path, split_key_path
from kb.keyword import identifier_parts
from kb.linepaths import FLAT_FORMATS, line_key_paths
from kb.types import Chunk, Section

__all__ = [
    "chunk_sections",
    "own_about",
    "estimate_tokens",
    "chunk_header",
    "BUDGET",
    "MODEL_WINDOW",
    "SMALL_SECTION",
    "GROUP_BUDGET",
    "MAX_PIECES_PER_LINE",
]

MODEL_WINDOW = 256
"""all-MiniLM-L6-v2's maximum sequence length in word pieces."""
BUDGET = 160
"""Estimated word pieces per chunk, context line included (<= 213 real pieces at the p99 bias)."""
SMALL_SECTION = 48
"""Sections of at most this many estimated pieces may be merged with their neighbours..."""
GROUP_BUDGET = 128
"""...into a chunk of at most this many."""
MAX_GAP = 2
"""Sections separated by more blank/comment lines than this are not merged."""
FILE_ABOUT = True
"""Every chunk's context line ends with what its file says it is (:func:`file_about`). On the full
dev build: 40 questions 0.592 -> 0.619 MRR@10 (tune half 0.625 -> 0.675, check 0.558 -> 0.564),
53-set unchanged (0.906)."""
FOLDER_ABOUT = True
"""A file with no about of its own takes what its folder says it is (:mod:`kb.ingest.about`: the
folder's or its parent's Chart.yaml name and description, else its README's first headings and
sentence). On the full dev build, 40 questions, files without an own about: file MRR@10 +0.04 on
the untuned half. Read by the ingest writer (:func:`kb.ingest.pipeline.run_ingest`): off, no folder
abouts are computed and every file that carried one is re-chunked without it."""
ABOUT_WORDS = 16
MAX_PIECES_PER_LINE = 64
"""A single over-long line (minified data) yields at most this many chunks; the rest is dropped."""

_PIECE = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")


def estimate_tokens(text: str) -> int:
    """Approximate BERT word pieces of ``text`` (an upper bound in practice)."""
    pieces = _PIECE.findall(text)
    n = len(pieces)
    for w in [w for w in pieces if len(w) > 6]:  # long letter or digit runs: several word pieces
        n += ((len(w) + 1) // 2 if w[0].isdigit() else (len(w) + 3) // 4) - 1
    return n


def _key_words(key_display: str) -> str:
    """The words of a key path when they add something to its spelling (camelCase, joined words)."""
    if not key_display:
        return ""
    words: dict[str, None] = {}
    for p in identifier_parts(key_display):
        words.setdefault(p, None)
    plain = {w for w in re.split(r"[^a-z0-9]+", key_display.lower()) if w}
    return "" if set(words) <= plain else " ".join(words)


_SPELLED_BY = {
    "json": (".json", ".jsonc", ".json5"),
    "yaml": (".yaml", ".yml"),
    "markdown": (".md", ".markdown"),
    "toml": (".toml",),
    "ini": (".ini", ".cfg"),
    "properties": (".properties",),
    "dotenv": (".env",),
}
"""Formats that a path's extension already says: the context line names them once, in the path."""


def chunk_header(path: str, fmt: str, key_display: str, about: str = "") -> str:
    """The context line (without the newline). The format is left out when the path's extension
    already says it (``values.yaml``) and kept when it adds something (``helm-template``,
    ``dockerfile``, ``ini`` for a ``.conf``): 3% fewer word pieces on the dev corpus, quality
    unchanged (docs/performance.md)."""
    path = path.replace("\n", " ")
    fmt = fmt or "text"
    parts = [path] if path.lower().endswith(_SPELLED_BY.get(fmt, ())) else [path, fmt]
    key_display = key_display.replace("\n", " ").strip()
    if key_display:
        parts.append(key_display)
        words = _key_words(key_display)
        if words:
            parts.append(words)
    if about:
        parts.append(about)
    return " | ".join(parts)


_ABOUT_KEYS = ("title", "description")
_ABOUT_VALUE = re.compile(r"""^\s*["']?(?:title|description)["']?\s*[:=]\s*[|>]?[-+]?\s*(.*)$""", re.IGNORECASE)
_URL = re.compile(r"https?://\S+")
_URL_NOISE = frozenset({"http", "https", "www", "com", "org", "net", "html", "htm", "json", "schema"})


def file_about(fmt: str, sections: list[Section]) -> str:
    """What the whole file says it is, for every chunk's context line: the top-level ``title`` and
    ``description`` of a JSON/YAML/TOML document (a JSON Schema, a Chart.yaml, a package manifest),
    at most :data:`ABOUT_WORDS` words. Markdown needs none: its heading trail is the key path."""
    if not FILE_ABOUT or fmt not in ("json", "jsonc", "json5", "yaml", "toml"):
        return ""
    words: list[str] = []
    for key in _ABOUT_KEYS:
        sec = next((s for s in sections if s.key_path == key), None)
        if sec is None:
            continue
        lines = sec.text.split("\n")
        m = _ABOUT_VALUE.match(lines[0])
        value = (m.group(1) if m else "").strip().strip(",").strip("\"'")
        if not value and len(lines) > 1:  # a YAML block scalar
            value = " ".join(ln.strip() for ln in lines[1:4])
        value = _URL.sub(
            lambda u: " ".join(w for w in re.findall(r"[A-Za-z]{3,}", u.group(0)) if w.lower() not in _URL_NOISE), value
        )
        value = value.replace("\\n", " ")
        words += [w for w in value.split() if w.lower() not in {x.lower() for x in words}]
    return " ".join(words[:ABOUT_WORDS]).replace("|", "/")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _common_key_path(paths: list[str | None], fallback: str) -> str:
    """The deepest key path that is a prefix of every (known) line key path; at least ``fallback``."""
    known = [p for p in paths if p]
    if not known:
        return fallback
    comps = split_key_path(known[0])
    for p in known[1:]:
        other = split_key_path(p)
        n = 0
        for a, b in zip(comps, other):
            if a != b:
                break
            n += 1
        comps = comps[:n]
        if not comps:
            break
    base = split_key_path(fallback) if fallback else []
    if len(comps) <= len(base) or comps[: len(base)] != base:
        return fallback
    return join_key_path(comps)


def _split_ranges(costs: list[int], lines: list[str], avail: int) -> list[tuple[int, int]]:
    """Half-open line ranges, each within ``avail`` estimated pieces (except single long lines)."""
    n = len(lines)
    out: list[tuple[int, int]] = []
    i = 0
    while i < n:
        if costs[i] > avail:
            out.append((i, i + 1))
            i += 1
            continue
        j, total = i, 0
        while j < n and costs[j] <= avail and total + costs[j] <= avail:
            total += costs[j]
            j += 1
        if j < n and costs[j] <= avail and j - i > 1:
            # choose where the next part starts: the least indented line in the back half,
            # preferring a line right after a blank line
            best_k, best_s = j, None
            for k in range(j, i + max(1, (j - i) // 2), -1):
                line = lines[k]
                s = float(_indent(line)) if line.strip() else 1000.0
                if not lines[k - 1].strip():
                    s -= 0.5
                if best_s is None or s < best_s:
                    best_k, best_s = k, s
            j = best_k
        out.append((i, j))
        i = j
    return out


def _line_pieces(line: str, cost: int, avail: int) -> list[str]:
    ratio = len(line) / max(1, cost)
    size = max(16, int(avail * ratio * 0.9))
    pieces = [line[s : s + size] for s in range(0, len(line), size)]
    return pieces[:MAX_PIECES_PER_LINE]


def _emit_section(
    path: str, fmt: str, sec: Section, out: list[Chunk], about: str = "", cost: int | None = None
) -> None:
    """``cost``: ``estimate_tokens(sec.text)`` when the caller has it (whitespace does not count, so
    it is also the cost of the trimmed body)."""
    lines = [ln.rstrip("\r") for ln in sec.text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return
    key = sec.key_path or ""
    header = chunk_header(path, fmt, key, about)
    head_cost = estimate_tokens(header)
    body = "\n".join(lines)
    total = head_cost + (estimate_tokens(body) if cost is None else cost)
    last_line = sec.line_start + len(lines) - 1
    if total <= BUDGET:
        out.append(Chunk(len(out), key, sec.line_start, last_line, f"{header}\n{body}"))
        return
    costs = [estimate_tokens(ln) for ln in lines]
    avail = max(32, BUDGET - head_cost - 12)  # a part's key path may be longer than the section's
    paths = line_key_paths(fmt, lines, key)
    for a, b in _split_ranges(costs, lines, avail):
        line_no = sec.line_start + a
        if b == a + 1 and costs[a] > avail:
            part_key = paths[a] or key
            part_header = chunk_header(path, fmt, part_key, about)
            for piece in _line_pieces(lines[a], costs[a], avail):
                out.append(Chunk(len(out), part_key, line_no, line_no, f"{part_header}\n{piece}"))
            continue
        part_lines = lines[a:b]
        if not any(ln.strip() for ln in part_lines):
            continue
        if fmt in FLAT_FORMATS:
            part_key = next((p for p in paths[a:b] if p), key)
        else:
            part_key = _common_key_path(paths[a:b], key)
        part_header = chunk_header(path, fmt, part_key, about)
        out.append(
            Chunk(len(out), part_key, line_no, sec.line_start + b - 1, f"{part_header}\n" + "\n".join(part_lines))
        )


def _emit_group(path: str, fmt: str, group: list[tuple[Section, int]], out: list[Chunk], about: str = "") -> None:
    if len(group) == 1:
        _emit_section(path, fmt, group[0][0], out, about, group[0][1])
        return
    first = group[0][0]
    body: list[str] = []
    prev_end = first.line_start - 1
    keys: list[str] = []
    for sec, _ in group:
        body.extend([""] * (sec.line_start - prev_end - 1))  # blank/comment lines between sections
        sec_lines = [ln.rstrip("\r") for ln in sec.text.split("\n")]
        sec_lines = sec_lines[: max(1, sec.line_end - sec.line_start + 1)]
        body.extend(sec_lines)
        prev_end = sec.line_start + len(sec_lines) - 1
        if sec.key_path and sec.key_path not in keys:
            keys.append(sec.key_path)
    display = ", ".join(keys[:8]) + (", ..." if len(keys) > 8 else "")
    header = chunk_header(path, fmt, display, about)
    out.append(Chunk(len(out), first.key_path or "", first.line_start, prev_end, header + "\n" + "\n".join(body)))


def _ordered(sections: list[Section]) -> list[Section]:
    return sorted((s for s in sections if s.text and s.text.strip()), key=lambda s: (s.line_start, s.line_end))


def own_about(fmt: str, sections: list[Section]) -> str:
    """What the file says it is itself (:func:`file_about`), as :func:`chunk_sections` sees it: when
    this is empty, its chunks carry the ``folder_about`` they are given."""
    return file_about(fmt, _ordered(sections))


def chunk_sections(path: str, fmt: str, sections: list[Section], folder_about: str = "") -> list[Chunk]:
    """Chunks for one file's sections (see the module docstring for the rules). ``folder_about``
    (:func:`kb.ingest.about.about_for`) stands in for the file's own about when it has none."""
    ordered = _ordered(sections)
    about = file_about(fmt, ordered) or " ".join(folder_about.split()).replace("|", "/")
    about_cost = estimate_tokens(about) + 1 if about else 0
    out: list[Chunk] = []
    group: list[tuple[Section, int]] = []
    group_cost = 0
    for sec in ordered:
        cost = estimate_tokens(sec.text)
        if group:
            last = group[-1][0]
            gap = sec.line_start - last.line_end - 1
            if (
                cost <= SMALL_SECTION
                and group[-1][1] <= SMALL_SECTION
                and 0 <= gap <= MAX_GAP
                and sec.kind == last.kind
                and group_cost + cost <= GROUP_BUDGET
                and sec.text.count("\n") == sec.line_end - sec.line_start
                and last.text.count("\n") == last.line_end - last.line_start
            ):
                group.append((sec, cost))
                group_cost += cost
                continue
            _emit_group(path, fmt, group, out, about)
        group = [(sec, cost)]
        group_cost = cost + 12 + about_cost  # room for the context line
    if group:
        _emit_group(path, fmt, group, out, about)
    return out
