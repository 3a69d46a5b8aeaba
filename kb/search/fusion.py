"""Fusion: the keyword and vector candidate lists become one ranking.

1. Each list's scores are scaled to [0, 1] (min-max over the list; ``FUSION = "score"``) and added
   with weights: a *literal* query (identifiers only, like ``DATABASE_URL``) leans on the keyword
   list, a question weighs both equally. (``FUSION = "rrf"``: weighted reciprocal rank fusion,
   ``w / (RRF_K + rank)``, the former ranking.)
2. Exact-match boosts that outweigh any score difference, so an exact identifier, key-path or
   file-name match outranks a semantic near-miss: a chunk holding a query identifier exactly
   (verbatim in its text, as its file's name, or as a key path) gains more than both lists can give,
   and one more step when it *defines* it (``DATABASE_URL=``, ``review_threshold:``, a line whose key
   path is ``payments.retry.max_attempts``) or is the file of that name.
3. File evidence: relevance is a file's, so a file's best chunk gains a decaying share of its other
   matching chunks' scores (the other chunks keep theirs, so a long file does not fill the hits).
4. Hub penalty: a file of many chunks has many chances of a high cosine by luck; each chunk's
   similarity loses ``HUB_PENALTY_VECTOR * ln(chunks in its file)`` before scaling.
5. Whole files (:func:`file_keyword_boost`): a question's words often fall in different chunks of
   the right file (the chart's name in one, the setting in another), so each chunk of the first
   files gains their BM25 as whole files, scaled to the fused list's best score.
6. Configuration over code (:func:`prefer_configuration`): in a question, program source keeps
   :data:`SOURCE_SHARE` of its score (off: measured, not kept).

The constants were chosen on the *tune* half of the 40 dev questions (``bench/question_split.json``)
with ``bench/ranking_lab.py``; the README shows each lever's effect on both halves and the 53-set.
"""

from __future__ import annotations

import math
from pathlib import PurePosixPath

from kb.formats import SOURCE_SUFFIXES
from kb.keyword import ChunkDoc
from kb.linepaths import line_key_paths
from kb.search.query import ParsedQuery
from kb.search.snippets import chunk_body

__all__ = [
    "fuse",
    "file_keyword_boost",
    "prefer_configuration",
    "exact_bonus",
    "RRF_K",
    "W_LITERAL",
    "W_QUESTION",
    "BONUS_EXACT",
    "BONUS_DEFINED",
]

RRF_K = 20
"""Rank constant of the fusion. 60 (the usual) let mediocre chunks found by both lists bury one
list's top hit; on the benchmark, paraphrase MRR@10 was 0.827 at 60 and 0.85-0.856 from 10 to 30."""
W_LITERAL = (1.0, 0.5)
"""(keyword, vector) weights for identifier queries."""
W_QUESTION = (1.0, 1.0)
"""(keyword, vector) weights for natural-language queries."""
BONUS_EXACT = 2.0
"""Exact-match boost, in units of the best fused rank score ``1 / (RRF_K + 1)``: a chunk holding the
query's identifier verbatim gets 2 units, more than any chunk can collect from ranks alone (at most
1.7 units with the weights above)."""
BONUS_DEFINED = 1.0
"""One more unit when the chunk defines the identifier or is the file of that name."""
FUSION = "score"
"""``rrf`` (ranks) or ``score`` (each list's scores scaled to [0, 1], weighted, summed)."""
FILE_DECAY = 0.5
"""File evidence: a chunk gains its file's 2nd best chunk score times this, the 3rd's times its square..."""
FILE_TOP = 4
"""...over at most this many chunks of the file."""
HUB_FILE_EVIDENCE = 0.0
"""File evidence divided by ``1 + this * log(chunks in the file)``: many matching chunks are expected
of a file of many chunks."""
HUB_PENALTY_KEYWORD = 0.0
"""BM25 score minus this share of the list's best score per unit of log(chunks in the file)."""
HUB_PENALTY_VECTOR = 0.01
"""Cosine similarity minus this per unit of log(chunks in the file)."""
FILE_VECTOR_WEIGHT = 0.0
"""File closeness: each chunk gains this times its file's closeness to the query (the mean cosine
of the file's :data:`FILE_VECTOR_TOP` best chunks, min-max scaled over the candidates' files);
0 turns it off. Off: measured on the untuned half, no gain (docs/performance.md, "Five query-side
levers")."""
FILE_VECTOR_TOP = 3
FILE_KEYWORD_WEIGHT = 0.7
"""Whole files: a chunk of one of the first :data:`FILE_KEYWORD_AMONG` chunks' files gains this
times the best fused score times its file's BM25 over the best file's (of the
:data:`FILE_KEYWORD_TOP` best files of the whole KB); 0 turns it off. Chosen on the tune half
(0.783 at 0.7 and 1.0, 0.758 at 0.5, 0.779 at 1.5: the lower end of the plateau); docs/performance.md, "Whole files"."""
FILE_KEYWORD_TOP = 100
FILE_KEYWORD_AMONG = 30
FEEDBACK_WEIGHT = 0.0
"""Pseudo-relevance feedback: the query vector plus this times the mean vector of the first
:data:`FEEDBACK_TOP` fused chunks, searched again; 0 turns it off. Off: measured on
the untuned half, no gain (docs/performance.md, "Five query-side levers")."""
FEEDBACK_TOP = 3
LINE_WEIGHT = 0.0
"""Line evidence: the top :data:`LINE_TOP` chunks gain this times their best line's score (see
:mod:`kb.search.answers`) over the best such score among them; 0 turns it off. Off: measured on
the untuned half, no gain (docs/performance.md, "Five query-side levers")."""
LINE_TOP = 30
SOURCE_SHARE = 1.0
"""Configuration over code: in a question (not a literal query), a chunk of program source
(:data:`kb.formats.SOURCE_SUFFIXES`) keeps this share of its final hybrid score; 1 turns it off.
Off: at 0.8 it paid on the two code-heavy trees it was tried on (otel-demo MRR@10 0.621 -> 0.678,
mailcow 0.617 -> 0.631, no question down; 0.6 and 0.4 lose Rspamd's Lua rules) but not on a tree
nobody had looked at (microservices-demo 0.589 -> 0.593, answer@1 0.200 -> 0.167: a literal
question whose answer is a Go default); docs/performance.md, "Configuration over code"."""


def exact_bonus(q: ParsedQuery, doc: ChunkDoc) -> float:
    """Exact-match boost for the query's identifiers, in units of the best fused score of one list
    (0 for plain-word queries).

    Per identifier: ``BONUS_EXACT`` when the chunk holds it exactly (verbatim in the text, as the
    file's name, or as a key path), plus ``BONUS_DEFINED`` when the chunk *defines* it (a line
    ``IDENT=`` / ``ident:``, a key path ending in it) or is the file of that name. A line of program
    source (:data:`kb.formats.SOURCE_SUFFIXES`) that assigns it does not define it: code reads the
    settings that configuration sets, so the .env line outranks the JavaScript default.
    """
    if not q.idents:
        return 0.0
    body = chunk_body(doc)
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
        if defined and PurePosixPath(path).suffix in SOURCE_SUFFIXES:
            defined = False  # code reads a setting (next.config.js: `{ X = '' } = process.env`); configuration sets it
        if verbatim or named or defined:
            total += BONUS_EXACT
        if defined or named:
            total += BONUS_DEFINED
    return total


def _rank_scores(items: list[tuple[float, str]], w: float) -> dict[str, float]:
    """``w / (RRF_K + rank)`` per chunk of a list, best first."""
    out: dict[str, float] = {}
    for rank, (_, cid) in enumerate(items):
        out.setdefault(cid, w / (RRF_K + rank + 1))
    return out


def _norm_scores(items: list[tuple[float, str]], w: float) -> dict[str, float]:
    """``w`` times the list's scores scaled to [0, 1] (min-max over the list)."""
    if not items:
        return {}
    hi = max(s for s, _ in items)
    lo = min(s for s, _ in items) if len(items) > 1 else 0.0
    span = hi - lo
    out: dict[str, float] = {}
    for s, cid in items:
        out.setdefault(cid, w * ((s - lo) / span if span > 0 else 1.0))
    return out


def _hub_adjust(
    items: list[tuple[float, str]],
    docs: dict[str, ChunkDoc],
    file_chunks: dict[str, int] | None,
    penalty: float,
    relative: bool,
) -> list[tuple[float, str]]:
    """A list re-scored against files of many chunks (their best chunk is the maximum of many draws)."""
    if not penalty or not file_chunks or not items:
        return items
    scale = max(abs(s) for s, _ in items) if relative else 1.0
    out = []
    for s, cid in items:
        n = file_chunks.get(docs[cid].path, 1)
        out.append((s - penalty * scale * math.log(max(1, n)), cid))
    out.sort(key=lambda x: -x[0])
    return out


def fuse(
    q: ParsedQuery,
    kw_hits: list[tuple[float, ChunkDoc]],
    vec_hits: list[tuple[str, float]],
    docs: dict[str, ChunkDoc],
    file_chunks: dict[str, int] | None = None,
    file_sims: dict[str, float] | None = None,
) -> list[tuple[float, ChunkDoc]]:
    """Chunks of either list, best first, with their fused scores."""
    wk, wv = W_LITERAL if q.literal else W_QUESTION
    kw = [(float(s), d.chunk_id) for s, d in kw_hits]
    vec = [(float(sim), cid) for cid, sim in vec_hits if cid in docs]
    kw = _hub_adjust(kw, docs, file_chunks, HUB_PENALTY_KEYWORD, True)
    vec = _hub_adjust(vec, docs, file_chunks, HUB_PENALTY_VECTOR, False)
    if FUSION == "score":
        parts, unit = [_norm_scores(kw, wk), _norm_scores(vec, wv)], 1.0
    else:
        parts, unit = [_rank_scores(kw, wk), _rank_scores(vec, wv)], 1.0 / (RRF_K + 1)
    scores: dict[str, float] = {}
    for part in parts:
        for cid, s in part.items():
            scores[cid] = scores.get(cid, 0.0) + s
    if FILE_DECAY > 0:
        _add_file_evidence(scores, docs, file_chunks)
    # after the file evidence: a file that names an identifier in many chunks (generated code, a
    # dashboard) must not collect the identifier's bonus once per chunk and pass the one chunk that
    # defines it
    for cid in scores:
        scores[cid] += exact_bonus(q, docs[cid]) * unit
    if file_sims and FILE_VECTOR_WEIGHT > 0:
        sims = {docs[cid].path: file_sims.get(docs[cid].path, 0.0) for cid in scores}
        hi, lo = max(sims.values()), min(sims.values())
        if hi > lo:
            for cid in scores:
                scores[cid] += FILE_VECTOR_WEIGHT * (sims[docs[cid].path] - lo) / (hi - lo)
    order = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(s, docs[cid]) for cid, s in order]


def _add_file_evidence(
    scores: dict[str, float], docs: dict[str, ChunkDoc], file_chunks: dict[str, int] | None = None
) -> None:
    """A file's best chunk gains the evidence of the file's other matching chunks: the 2nd best
    chunk's score times ``FILE_DECAY``, the 3rd's times its square, ... (``FILE_TOP`` chunks at most).
    The other chunks keep their own scores, so one long file does not fill the hit list."""
    by_file: dict[str, list[tuple[float, str]]] = {}
    for cid, s in scores.items():
        by_file.setdefault(docs[cid].path, []).append((s, cid))
    for path, ss in by_file.items():
        if len(ss) < 2:
            continue
        ss.sort(key=lambda x: (-x[0], x[1]))
        extra = sum(s * FILE_DECAY**i for i, (s, _) in enumerate(ss[1:FILE_TOP], start=1))
        if HUB_FILE_EVIDENCE and file_chunks:
            extra /= 1.0 + HUB_FILE_EVIDENCE * math.log(max(1, file_chunks.get(path, 1)))
        scores[ss[0][1]] += extra


def rerank_by_lines(
    q: ParsedQuery, ranked: list[tuple[float, ChunkDoc]], weights: dict[str, float]
) -> list[tuple[float, ChunkDoc]]:
    """The first :data:`LINE_TOP` chunks re-scored with their best line's match (a question's words
    on one key and its documentation are stronger evidence than the same words spread over a chunk)."""
    from kb.search.answers import best_line_score

    head = ranked[:LINE_TOP]
    if not head:
        return ranked
    lines = [best_line_score(d, q, weights) for _, d in head]
    top = max(lines) or 1.0
    scale = max(s for s, _ in head) or 1.0
    rescored = [(s + LINE_WEIGHT * scale * ls / top, d) for (s, d), ls in zip(head, lines)]
    rescored.sort(key=lambda x: (-x[0], x[1].chunk_id))
    return rescored + ranked[LINE_TOP:]


def prefer_configuration(q: ParsedQuery, ranked: list[tuple[float, ChunkDoc]]) -> list[tuple[float, ChunkDoc]]:
    """``ranked`` with program source scaled by :data:`SOURCE_SHARE` when ``q`` is a question."""
    if SOURCE_SHARE >= 1.0 or q.literal or not ranked:
        return ranked
    out = [(s * SOURCE_SHARE if PurePosixPath(d.path).suffix.lower() in SOURCE_SUFFIXES else s, d) for s, d in ranked]
    out.sort(key=lambda h: (-h[0], h[1].chunk_id))
    return out


def file_keyword_boost(
    ranked: list[tuple[float, ChunkDoc]], file_scores: dict[str, float], weight: float
) -> list[tuple[float, ChunkDoc]]:
    """``ranked`` (best first) re-ranked with whole-file BM25 (see :data:`FILE_KEYWORD_WEIGHT`):
    only the files of the first :data:`FILE_KEYWORD_AMONG` chunks move, each chunk of such a file
    by the same amount, so the order of a file's own chunks stays."""
    if not ranked or not file_scores or weight <= 0:
        return ranked
    top = ranked[0][0]
    best = max(file_scores.values())
    if top <= 0 or best <= 0:
        return ranked
    among = {d.path for _, d in ranked[:FILE_KEYWORD_AMONG]}
    gain = {p: weight * top * file_scores.get(p, 0.0) / best for p in among}
    out = [(s + gain.get(d.path, 0.0), d) for s, d in ranked]
    out.sort(key=lambda h: (-h[0], h[1].chunk_id))
    return out
