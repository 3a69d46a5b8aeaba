"""Search: keyword (BM25), semantic (vectors) and hybrid (fused) over the chunk index.

:func:`search` is the one entry point (the CLI, the HTTP API and ``KnowledgeBase.search`` call
it). Hybrid ranking:

1. Candidates: the top ``max(50, 5k)`` chunks by BM25 (:mod:`kb.keyword`) and by cosine
   similarity (:mod:`kb.vectors`), both already filtered by ``format`` and ``path``: the files a
   ``path`` glob matches are looked up in the catalogue and the BM25 query keeps only their chunks
   (however many files); Chroma filters on up to ``PATH_IN_LIMIT`` of them, and for a wider glob
   the vector search widens until enough candidates pass the filter (see
   :func:`_vector_candidates`). A filtered search returns the best matching chunks whenever they
   exist, never the few that survived a cut of the unfiltered list.
2. Weighted reciprocal rank fusion, ``w / (20 + rank)`` per list. A *literal* query (identifiers
   only, like ``DATABASE_URL``) leans on the keyword list, a question on the vector list.
3. Exact-match boosts that outweigh any rank difference, so an exact identifier, key-path or
   file-name match outranks a semantic near-miss: a chunk holding a query identifier exactly
   (verbatim in its text, as its file's name, or as a key path) gains more than ranks alone can
   give, and one more step when it *defines* it (``DATABASE_URL=``, ``review_threshold:``, a line
   whose key path is ``payments.retry.max_attempts``) or is the file of that name.
4. One hit per chunk; a hit points at the best-matching lines of its chunk (a window of up to
   five lines), with the key path at that line. Snippets are cut from the chunk text, which was
   redacted at ingest, so they never show a secret.

This module also holds the line helpers shared with :mod:`ingest.chunk` (key path at each line of
a section), so it keeps its top-level imports light: models and stores load inside functions, once
per process (see :func:`kb.embed.get_embedder`, :func:`kb.vectors.open_vector_store`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kb.errors import BadRequestError, EmbedderMismatchError, NotIndexedError
from kb.keypaths import key_join
from kb.keyword import STOPWORDS, ChunkDoc, analyze, query_terms
from kb.types import Hit, SearchResult

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from kb.catalogue import Catalogue
    from kb.embed import Embedder
    from kb.generations import Snapshot
    from kb.keyword import KeywordIndex
    from kb.settings import Settings

__all__ = [
    "search",
    "MODES",
    "MAX_K",
    "MAX_QUERY_CHARS",
    "line_key_paths",
    "split_key_path",
    "query_identifiers",
    "is_literal_query",
]

MODES = ("hybrid", "semantic", "keyword")
MAX_K = 100
MAX_QUERY_CHARS = 1000
RRF_K = 20
"""Rank constant of the fusion. 60 (the usual) let mediocre chunks found by both lists bury one
list's top hit; on the benchmark, paraphrase MRR@10 was 0.827 at 60 and 0.85-0.856 from 10 to 30."""
CANDIDATES = 50
PATH_IN_LIMIT = 2000
"""Chroma filters on at most this many files per query (a ``$in`` list; its cost grows with its
length). A ``--path`` matching more is searched by widening or in batches (:func:`_vector_candidates`).
The keyword index filters on any number of files in one query."""
WIDEN_FACTOR = 4
"""How much the unfiltered vector candidate list grows per round for a wide ``--path``."""
WIDEN_MAX = 0.25
"""Widening stops before reading more than ``WIDEN_MAX`` candidates per matched file; past that,
batches of ``$in`` cost less (~35 µs per candidate read with its metadata against ~15 µs per path
in a ``$in`` list; on a 6,000-file corpus a semantic search filtered to 2,305 files takes 18 ms
p50, 69 ms p95)."""
SNIPPET_CONTEXT = 2
SNIPPET_LINE_CHARS = 240

# Fusion weights (tuned with bench/search_quality.py; see the README for the figures).
W_LITERAL = (1.0, 0.5)  # (keyword, vector) for identifier queries
W_QUESTION = (0.7, 1.0)  # for natural-language queries
# Exact-match boosts, in units of the best fused rank score 1 / (RRF_K + 1). A chunk holding the
# query's identifier verbatim gets 2 units, more than any chunk can collect from ranks alone
# (at most 1.7 units with the weights above): exact matches outrank semantic near-misses.
BONUS_EXACT = 2.0
BONUS_DEFINED = 1.0


# =============================================================================================
# Key paths per line (shared with ingest.chunk)
# =============================================================================================

_KEY_SPLIT = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|([^.\[\]]+)')
_YAML_KEY = re.compile(
    r"""^(?P<ind>[ \t]*)(?P<dash>(?:-[ \t]+)*)(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<pl>[^\s#'"{}\[\],&*!|>%@`-][^#:]*?|-[^\s#:][^#:]*?))[ \t]*:(?:[ \t]|$)"""
)
_JSON_KEY = re.compile(r'^(?P<ind>[ \t]*)"(?P<k>(?:[^"\\]|\\.)*)"\s*:')
_TOML_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:[#;].*)?$")
_TOML_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_INI_KEY = re.compile(r"^\s*([^=:\s#;\[][^=:]*?)\s*[=:]")
_ENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=")
_PROP_KEY = re.compile(r"^\s*([^=:\s#!][^=:\s]*)\s*[=:\s]")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def split_key_path(key_path: str) -> list[str]:
    """``a.b["c.d"][0]`` -> ``["a", "b", "c.d", "[0]"]`` (indexes kept as ``[n]``)."""
    out: list[str] = []
    for quoted, index, plain in _KEY_SPLIT.findall(key_path or ""):
        if index:
            out.append(f"[{index}]")
        elif quoted:
            out.append(quoted.replace('\\"', '"').replace("\\\\", "\\"))
        elif plain:
            out.append(plain)
    return out


def _join(comps: Sequence[str]) -> str:
    out = ""
    for c in comps:
        out = out + c if c.startswith("[") else key_join(out, c)
    return out


def _bare(comp: str) -> str:
    return comp.split("[", 1)[0] if not comp.startswith("[") else comp


def _indented_keys(fmt: str, lines: Sequence[str]) -> list[tuple[int, str | None, bool]]:
    """(indent, key or None, is_list_item) per line for YAML-like and JSON-like text."""
    out: list[tuple[int, str | None, bool]] = []
    is_json = fmt in ("json", "jsonc", "json5")
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped[0] in "#" or stripped.startswith("//"):
            out.append((-1, None, False))
            continue
        ind = len(line) - len(line.lstrip(" \t"))
        m = (_JSON_KEY if is_json else _YAML_KEY).match(line)
        if m is None and not is_json:
            m = _JSON_KEY.match(line)
        if m is None:
            # list items and closing brackets belong to the key at their own indentation
            out.append((ind, None, stripped.startswith(("- ", "}", "]")) or stripped == "-"))
            continue
        gd = m.groupdict()
        key = gd.get("k")
        if key is None:
            key = gd.get("dq") if gd.get("dq") is not None else gd.get("sq") if gd.get("sq") is not None else (gd.get("pl") or "").strip()
        dash = gd.get("dash") or ""
        out.append((len(m.group("ind")) + len(dash), key, bool(dash)))
    return out


def line_key_paths(fmt: str, lines: Sequence[str], key_path: str | None) -> list[str | None]:
    """Best-effort key path of each line of a section or chunk body whose key path is ``key_path``.

    Cheap (regexes and an indentation stack, no parsing): YAML and JSON by indentation, TOML and
    INI by ``[table]`` headers, ``.env`` and ``.properties`` by the variable, Markdown by the
    heading trail. Sequence indexes are not tracked. Lines with nothing to go on (blank lines,
    comments, other formats) get ``None`` or the section's key path.
    """
    base_path = key_path or ""
    n = len(lines)
    if fmt in ("dotenv", "env"):
        return [(m.group(1) if (m := _ENV_KEY.match(ln)) else None) for ln in lines]
    if fmt == "properties":
        return [(m.group(1) if (m := _PROP_KEY.match(ln)) and not ln.lstrip().startswith(("#", "!")) else None)
                for ln in lines]
    if fmt in ("toml", "ini", "conf", "cfg"):
        return _table_paths(fmt, lines, base_path)
    if fmt == "markdown":
        return _markdown_paths(lines, base_path)
    if fmt not in ("yaml", "json", "jsonc", "json5", "helm-template", "yml"):
        return [base_path or None] * n
    keys = _indented_keys(fmt, lines)
    keyed = [(i, k) for i, k, _ in keys if k is not None]
    base = split_key_path(base_path)
    if keyed and base:
        m = min(i for i, _ in keyed)
        top = {k for i, k in keyed if i == m}
        if _bare(base[-1]) in top:
            base = base[:-1]
    stack: list[tuple[int, str]] = []
    out: list[str | None] = []
    for ind, key, item in keys:
        if ind < 0:
            out.append(None)
            continue
        if key is None:
            comps = [k for i, k in stack if i < ind or (item and i <= ind)]
            out.append(_join(base + comps) or None)
            continue
        while stack and stack[-1][0] >= ind:
            stack.pop()
        stack.append((ind, key))
        out.append(_join(base + [k for _, k in stack]))
    return out


def _table_paths(fmt: str, lines: Sequence[str], base_path: str) -> list[str | None]:
    table = base_path
    out: list[str | None] = []
    key_re = _TOML_KEY if fmt == "toml" else _INI_KEY
    for ln in lines:
        s = ln.strip()
        if not s or s[0] in "#;":
            out.append(None)
            continue
        h = _TOML_HEADER.match(ln)
        if h:
            table = h.group(1).strip() if fmt != "toml" else _join(
                [c.strip().strip("\"'") for c in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", h.group(1))])
            out.append(table)
            continue
        m = key_re.match(ln)
        if m:
            key = m.group(1).strip()
            comps = [c.strip().strip("\"'") for c in key.split(".")] if fmt == "toml" else [key]
            tcomps = split_key_path(table)
            if tcomps and comps and tcomps[-len(comps):] == comps:
                out.append(table)
            else:
                out.append(_join(tcomps + comps))
        else:
            out.append(table or None)
    return out


def _markdown_paths(lines: Sequence[str], base_path: str) -> list[str | None]:
    trail = [p.strip() for p in base_path.split(" > ")] if base_path else []
    stack: list[tuple[int, str]] = []
    first_level: int | None = None
    out: list[str | None] = []
    fence = False
    for ln in lines:
        if ln.lstrip().startswith(("```", "~~~")):
            fence = not fence
        h = None if fence else _MD_HEADING.match(ln)
        if h:
            level, title = len(h.group(1)), h.group(2).strip()
            if first_level is None:
                first_level = level
                anc = trail[:-1] if trail and trail[-1] == title else trail
                stack = [(level - len(anc) + i, a) for i, a in enumerate(anc)]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        out.append(" > ".join(t for _, t in stack) if stack else (base_path or None))
    return out


# =============================================================================================
# Query analysis
# =============================================================================================

_QTOKEN = re.compile(r"[\w$@]+(?:[.\-/:][\w$@]+)*")


def query_identifiers(query: str) -> list[str]:
    """Tokens of ``query`` that look like identifiers (lower case): ``DATABASE_URL``,
    ``fraud.review_threshold``, ``maxConnections``, ``docker-compose.yml``, ``AKIA``. A hyphenated
    word counts only when it is the whole query."""
    tokens = _QTOKEN.findall(query)
    out: list[str] = []
    for t in tokens:
        t = t.strip("_")
        if len(t) < 2:
            continue
        ident = (
            "_" in t
            or "." in t
            or "/" in t
            or re.search(r"[a-z][A-Z]", t) is not None
            or (t.isupper() and sum(c.isalpha() for c in t) >= 3 and len(tokens) == 1)
            or (re.search(r"[A-Za-z]", t) is not None and re.search(r"\d", t) is not None and len(tokens) == 1)
            or ("-" in t and len(tokens) == 1)
            or (":" in t and len(tokens) == 1)
        )
        if ident and t.lower() not in out:
            out.append(t.lower())
    if not out and len(tokens) == 1 and tokens[0].lower() not in STOPWORDS and len(tokens[0]) >= 3:
        out.append(tokens[0].lower())
    return out


def is_literal_query(query: str) -> bool:
    """True when every token of the query is an identifier (``DATABASE_URL``, ``redis.host``)."""
    tokens = _QTOKEN.findall(query)
    if not tokens:
        return False
    idents = set(query_identifiers(query))
    return all(t.strip("_").lower() in idents for t in tokens if len(t.strip("_")) >= 2)


# =============================================================================================
# Index handles (per snapshot of a published generation)
# =============================================================================================


@dataclass
class _Handles:
    generation: int
    keyword: "KeywordIndex | None"
    embedder_meta: dict[str, Any] | None
    formats: set[str] = field(default_factory=set)
    n_files: int = 0


def _handles(snapshot: "Snapshot") -> _Handles:
    h = snapshot.cache.get("search_handles")
    if h is None:
        catalogue = snapshot.catalogue
        formats = {r[0] for r in catalogue.query("SELECT DISTINCT format FROM files") if r[0]}
        n_files = int(catalogue.query("SELECT count(*) FROM files")[0][0])
        h = _Handles(snapshot.gen.number, snapshot.keyword, snapshot.gen.embedder, formats, n_files)
        snapshot.cache["search_handles"] = h
    return h


# =============================================================================================
# Filters
# =============================================================================================


def _has_glob(p: str) -> bool:
    return any(c in p for c in "*?[")


def _resolve_paths(catalogue: "Catalogue", path: str | None, n_files: int = 0,
                   format: str | None = None) -> list[str] | None:
    """Every catalogued file ``path`` selects (a glob; without wildcards, a file or a folder), of
    ``format`` when given; None when there is no path filter or it selects every file."""
    if not path:
        return None
    p = path.strip()
    while p.startswith("./"):
        p = p[2:]
    if _has_glob(p):
        where, params = "path GLOB ?", [p]
    else:
        where, params = "(path = ? OR starts_with(path, ?))", [p.rstrip("/"), p.rstrip("/") + "/"]
    if format:
        where, params = where + " AND format = ?", [*params, format]
    paths = [r[0] for r in catalogue.query(f"SELECT path FROM files WHERE {where}", params)]
    if paths and not format and n_files and len(paths) >= n_files:
        return None  # every file: no filter
    return paths


# =============================================================================================
# Scoring helpers
# =============================================================================================


def _ident_regex(ident: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w$@])" + re.escape(ident) + r"(?![\w$@]|[.\-/][\w$@])", re.IGNORECASE)


def _define_regex(ident: str) -> re.Pattern[str]:
    last = ident.rsplit(".", 1)[-1] if "/" not in ident else ident
    return re.compile(
        r"""^[ \t]*(?:export[ \t]+|-[ \t]+)?["']?""" + re.escape(last) + r"""["']?[ \t]*(?::(?:[ \t]|$)|=)""",
        re.IGNORECASE | re.MULTILINE,
    )


@dataclass
class _Query:
    text: str
    terms: list[str]
    idents: list[str]
    literal: bool
    ident_res: list[re.Pattern[str]]
    define_res: list[re.Pattern[str]]
    ident_terms: set[str]

    @classmethod
    def parse(cls, text: str) -> "_Query":
        idents = query_identifiers(text)
        terms = query_terms(text)
        return cls(text, terms, idents, is_literal_query(text), [_ident_regex(i) for i in idents],
                   [_define_regex(i) for i in idents], {t for i in idents for t in analyze(i)})


def _bonus(q: _Query, doc: ChunkDoc) -> float:
    """Exact-match boost for the query's identifiers (0 for plain-word queries).

    Per identifier: ``BONUS_EXACT`` when the chunk holds it exactly (verbatim in the text, as the
    file's name, or as a key path), plus ``BONUS_DEFINED`` when the chunk *defines* it (a line
    ``IDENT=`` / ``ident:``, a key path ending in it) or is the file of that name.
    """
    if not q.idents:
        return 0.0
    body = doc.text.split("\n", 1)[1] if "\n" in doc.text else doc.text
    path = doc.path.lower()
    name = PurePosixPath(path).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    key = (doc.key_path or "").lower()
    line_paths: list[str] | None = None
    total = 0.0
    for ident, ident_re, define_re in zip(q.idents, q.ident_res, q.define_res):
        verbatim = ident_re.search(body) is not None
        named = ident in (name, stem) or path == ident or path.endswith("/" + ident)
        if "." in ident and "/" not in ident:
            # a dotted key path: defined when some line's key path is it (or ends with it)
            defined = key == ident or key.endswith("." + ident)
            if not defined and ident.rsplit(".", 1)[-1] in body.lower():
                if line_paths is None:
                    line_paths = [p.lower() for p in line_key_paths(doc.format, body.split("\n"), doc.key_path) if p]
                defined = any(p == ident or p.endswith("." + ident) for p in line_paths)
        else:
            defined = define_re.search(body) is not None and verbatim
        if verbatim or named or defined:
            total += BONUS_EXACT
        if defined or named:
            total += BONUS_DEFINED
    return total / (RRF_K + 1)


# =============================================================================================
# Snippets
# =============================================================================================


_KV = re.compile(r"""^\s*(?:-\s+)?(?:export\s+)?["']?([\w.\-/$@ ]+?)["']?\s*(?::(?:\s|$)|=)""")
_COMPOUND = re.compile(r"[_.\-/:]")


def _line_score(line: str, q: _Query) -> float:
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


def _clip(line: str, q: _Query) -> str:
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


def _same_block(fmt: str, paths: list[str | None], best: int):
    """Whether a neighbouring line belongs to the best line's block (snippets stay in one block)."""
    anchor = next((paths[i] for i in range(best, -1, -1) if paths[i]), None)
    if anchor is None or fmt in ("dotenv", "env", "properties", "text", "dockerfile"):
        return lambda i: True
    if fmt == "markdown":
        return lambda i: paths[i] is None or paths[i] == anchor
    top = (split_key_path(anchor) or [""])[0]
    return lambda i: paths[i] is None or (split_key_path(paths[i]) or [""])[0] == top


def _make_hit(doc: ChunkDoc, score: float, q: _Query) -> Hit:
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
    return Hit(path=doc.path, score=round(float(score), 6), line_start=line_start, line_end=line_end,
               key_path=key, snippet=snippet, format=doc.format or None)


# =============================================================================================
# Search
# =============================================================================================


def _validate(query: str, k: int, mode: str) -> str:
    if mode not in MODES:
        raise BadRequestError(f"Unknown search mode '{mode}': use one of {', '.join(MODES)}.")
    if not isinstance(k, int) or isinstance(k, bool) or k < 1 or k > MAX_K:
        raise BadRequestError(f"k must be a whole number from 1 to {MAX_K}, got {k!r}.")
    if query is None or not str(query).strip():
        raise BadRequestError('Empty query: give words or an identifier, e.g. kb search "fraud review threshold".')
    query = str(query)
    if len(query) > MAX_QUERY_CHARS:
        raise BadRequestError(f"Query is {len(query)} characters long; the limit is {MAX_QUERY_CHARS}. Shorten it.")
    return query.strip()


def _check_embedder(h: _Handles, settings: "Settings") -> None:
    from kb.embed import embedder_name
    from kb.index import mismatch_message

    name = embedder_name(settings)
    if h.embedder_meta is not None and h.embedder_meta.get("name") != name:
        raise EmbedderMismatchError(mismatch_message(h.embedder_meta, name, settings))


def search(
    snapshot: "Snapshot",
    settings: "Settings",
    query: str,
    *,
    k: int = 10,
    mode: str = "hybrid",
    format: str | None = None,
    path: str | None = None,
    embedder: "Callable[[], Embedder] | Embedder | None" = None,
) -> SearchResult:
    """Search one published generation; at most ``k`` hits, best first (see the module docstring).

    ``embedder`` (or a callable returning it, called only when vectors are needed) encodes the
    query. While a KB is still being embedded, semantic candidates come from the vectors published
    so far; the result says what share that is.

    Raises :class:`~kb.errors.BadRequestError` for a bad mode, ``k`` outside 1..100, an empty
    query or one over 1000 characters, or an unknown ``format``;
    :class:`~kb.errors.NotIndexedError` when the KB has no index;
    :class:`~kb.errors.EmbedderMismatchError` when ``settings`` name another embedder than the
    KB's vectors (semantic and hybrid modes).
    """
    query = _validate(query, k, mode)
    h = _handles(snapshot)
    gen = snapshot.gen
    if format is not None:
        format = format.strip().lower() or None
    if format and format not in h.formats:
        known = ", ".join(sorted(h.formats)) or "none"
        raise BadRequestError(f"Unknown format '{format}' (formats in this KB: {known}).")
    if h.keyword is None:
        raise NotIndexedError(
            f"The keyword index of '{snapshot.db}' is missing. Re-run `kb ingest` to rebuild it."
        )
    result = SearchResult(query=query, mode=mode, hits=[], generation=gen.number, embedded=gen.embedded,
                          embeddable=gen.embeddable, embedded_share=gen.embedded_share)
    if mode != "keyword" and gen.embedded_share < 1.0:
        result.notice = (f"{gen.embedded} of {gen.embeddable} texts are embedded so far "
                         f"({gen.embedded_share:.0%}); semantic results cover those. `kb ingest` completes it.")
    q = _Query.parse(query)
    paths = _resolve_paths(snapshot.catalogue, path, h.n_files, format)
    if paths is not None and not paths:
        return result
    n = max(CANDIDATES, 5 * k)

    kw_hits: list[tuple[float, ChunkDoc]] = []
    vec_hits: list[tuple[str, float]] = []
    if mode in ("hybrid", "keyword"):
        kw_hits = h.keyword.search(q.terms, n, format=format, paths=paths)
    if mode in ("hybrid", "semantic"):
        _check_embedder(h, settings)
        if gen.embedded:
            vec_hits = _vector_candidates(snapshot, settings, embedder, query, n, format, paths)

    if mode == "keyword":
        ranked = [(s, d) for s, d in kw_hits]
    else:
        docs = {d.chunk_id: d for _, d in kw_hits}
        missing = [cid for cid, _ in vec_hits if cid not in docs]
        docs.update(h.keyword.fetch(missing))
        if mode == "semantic":
            ranked = [(sim, docs[cid]) for cid, sim in vec_hits if cid in docs]
        else:
            ranked = _fuse(q, kw_hits, vec_hits, docs)

    seen: set[tuple[str, int, int]] = set()
    for score, doc in ranked:
        hit = _make_hit(doc, score, q)
        sig = (hit.path, hit.line_start, hit.line_end)
        if sig in seen:
            continue
        seen.add(sig)
        result.hits.append(hit)
        if len(result.hits) >= k:
            break
    return result


def _vector_candidates(snapshot: "Snapshot", settings: "Settings", embedder: Any, query: str, n: int,
                       format: str | None, paths: list[str] | None) -> list[tuple[str, float]]:
    """The ``n`` chunks nearest to ``query`` among those of ``format`` in ``paths`` (None: any),
    by an exact scan of the generation's vectors (:class:`kb.index.ChunkVectors`)."""
    from kb.index import chunk_vectors, mismatch_message

    if embedder is None:
        from kb.embed import create_embedder

        emb = create_embedder(settings, purpose="query")
    else:
        emb = embedder() if callable(embedder) and not hasattr(embedder, "encode") else embedder
    dim = snapshot.gen.dim
    if dim is not None and int(dim) != emb.dim:
        raise EmbedderMismatchError(mismatch_message(snapshot.gen.embedder or {}, f"{emb.name} (dim {emb.dim})", settings))
    vec = emb.encode([query])[0]
    return chunk_vectors(snapshot).nearest(vec, n, format=format, paths=paths)


def _fuse(q: _Query, kw_hits: list[tuple[float, ChunkDoc]], vec_hits: list[tuple[str, float]],
          docs: dict[str, ChunkDoc]) -> list[tuple[float, ChunkDoc]]:
    wk, wv = W_LITERAL if q.literal else W_QUESTION
    scores: dict[str, float] = {}
    for rank, (_, d) in enumerate(kw_hits):
        scores[d.chunk_id] = scores.get(d.chunk_id, 0.0) + wk / (RRF_K + rank + 1)
    for rank, (cid, _) in enumerate(vec_hits):
        if cid in docs:
            scores[cid] = scores.get(cid, 0.0) + wv / (RRF_K + rank + 1)
    for cid in scores:
        scores[cid] += _bonus(q, docs[cid])
    order = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(s, docs[cid]) for cid, s in order]
