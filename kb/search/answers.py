"""Answer lines: within a hit, the lines that answer the query.

A chunk is found by its meaning as a whole; the user wants the few lines that answer. Each line of
the hit's chunk becomes a *unit* read from its layout (the format's key at that line, its value,
the comments above it, the keys it sits under), and is scored against the query's terms:

* a term on the key side counts twice, on the value side once, in the unit's context (the keys
  above it, the comment block that documents it, a Helm ``## @param`` line, a Markdown table's
  header) a little less; rare terms weigh more (BM25's idf from the keyword index), and a word
  matches its inflections (``healthy`` ~ ``health``, ``retries`` ~ ``retry``);
* a query identifier found verbatim on the line, or defined by it, outweighs words.

The best unit is then *expanded* to what answers: a matched mapping shows its leaf values (a
question about ``retry:`` wants ``max_attempts: 3`` and ``max_backoff: 10s``), a list item its
fields, a comment or ``@param`` line the key it documents, a Markdown heading the sentences under
it, a block scalar its text. Other units nearly as good and close by join it. The hit's
``line_start``..``line_end`` covers its answers, and its snippet shows them.

Values come from the chunk text, which was redacted at ingest: an answer never shows a secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from kb.keyword import STOPWORDS, ChunkDoc, analyze
from kb.linepaths import (
    BRACE_FORMATS,
    FLAT_FORMATS,
    TABLE_FORMATS,
    TREE_FORMATS,
    brace_lines,
    heading_title,
    line_key_paths,
)
from kb.search.query import ParsedQuery, word_root
from kb.types import AnswerLine

__all__ = ["Unit", "Answers", "pick_answers", "read_units", "MAX_ANSWERS", "VALUE_CHARS", "NEAR_BEST"]

MAX_ANSWERS = 6
"""Answer lines per hit at most."""
VALUE_CHARS = 200
"""An answer's value is clipped to this many characters."""
NEAR_BEST = 0.75
"""Other units scoring at least this share of the best one's score are answers too..."""
NEAR_LINES = 8
"""...when they lie within this many lines of it."""
W_KEY, W_VALUE, W_CONTEXT, W_DOC = 2.0, 1.0, 0.5, 1.0
"""Weights of a query term found in a unit's key, value, context (keys above), documentation
(the comment block or ``@param`` line that describes the key)."""
SHOWN_DOC = 3
"""A key's documenting comment is shown when it starts at most this many lines above it."""
SHOWN_CONTINUATION = 6
"""Lines of a block scalar or a continued instruction shown with it."""
SHOWN_LEAD_IN = 8
"""A bullet's introducing sentence is shown when it is at most this many lines above."""
NEIGHBOUR_SHARE = 0.8
"""A line of a neighbouring chunk scores this share of its match (see ``own`` in :func:`pick_answers`):
the best answer stays in the chunk found unless a neighbour matches clearly better; a neighbour
line nearly as good joins it like any other (:data:`NEAR_BEST`)."""
W_IDENT, W_DEFINE = 4.0, 2.0
"""A query identifier verbatim on the line; the line defines it."""

_TREE_KV = re.compile(
    r"""^(?P<ind>[ \t]*)(?P<dash>(?:-[ \t]+)*)(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<pl>[^\s#'"{}\[\],&*!|>%@`-][^#:]*+|-[^\s#:][^#:]*+))[ \t]*:(?:[ \t]+(?P<val>.*)|[ \t]*,?[ \t]*)$"""
)
_ITEM = re.compile(r"^(?P<ind>[ \t]*)-(?:[ \t]+(?P<val>.*))?$")
_FLAT_KV = re.compile(r"""^\s*(?:export\s+)?(?P<key>[^=:\s#!;][^=:\s]*)\s*[=:](?P<val>.*)$""")
_TABLE_KV = re.compile(r"""^\s*(?P<key>[^=:\s#;\[][^=:]*)[=:](?P<val>.*)$""")
_HEADER = re.compile(r"^\s*\[\[?(?P<key>[^\]]+)\]\]?\s*$")
_MD_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*)$")
_MD_TABLE_SEP = re.compile(r"^\s*+\|?\s*+:?-{2,}+:?\s*+(?:\|\s*+:?-{2,}+:?\s*+)*+\|?\s*+$")
_PARAM = re.compile(r"^\s*#+\s*@(?:param|skip|extra)\s+(?P<key>\S+)\s*(?P<val>.*)$")
_MD_ITEM = re.compile(r"^(?:[-*+]|\d{1,3}[.)])\s+")
_DOCKER = re.compile(r"^\s*(?P<key>[A-Za-z]+)\s+(?P<val>.*)$")
_BLOCK_SCALAR = re.compile(r"^[|>][-+0-9]*$")
_OPENERS = ("{", "[", "")
_QUOTES = "\"'`"


@dataclass(slots=True)
class Unit:
    """One line of a chunk, read from its layout."""

    i: int
    """Index of the line in the chunk body (file line ``line_start + i``)."""
    kind: str
    """leaf | parent | item | comment | param | heading | table | prose | other | blank"""
    indent: int = 0
    key: str = ""
    value: str = ""
    path: str | None = None
    doc: str = ""
    """The comment block above the line, or the ``@param`` text, that documents it."""
    context: str = ""
    """The keys above the line (its key path's parents), a table's header, a heading trail."""
    score: float = 0.0
    children: list[int] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)
    """Indexes of the units this one sits under (nearest last)."""
    item: bool = False
    """The line starts a list item (``- name: web``, a Markdown bullet)."""
    dash: int = -1
    """The column of a list item's dash."""
    doc_start: int = -1
    """Index of the first line of the comment block documenting the unit (-1: none)."""
    offsets: list[tuple[int, int]] = field(default_factory=list)
    """A Markdown paragraph's lines: (index, where the line's text starts in ``value``)."""


def _trailing(v: str, marks: str) -> str:
    """``v`` stripped, and one trailing mark of ``marks`` (a list's ``,``, a statement's ``;``)."""
    v = v.strip()
    return v[:-1].rstrip() if v and v[-1] in marks else v


def _strip_value(v: str) -> str:
    v = v.strip().rstrip(",").strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in _QUOTES:
        v = v[1:-1]
    return v


def _tree_units(lines: Sequence[str], fmt: str) -> list[Unit]:
    units: list[Unit] = []
    for i, line in enumerate(lines):
        s = line.strip()
        ind = len(line) - len(line.lstrip(" \t"))
        if not s:
            units.append(Unit(i, "blank", ind))
            continue
        if s.startswith(("#", "//")):
            m = _PARAM.match(line)
            if m:
                units.append(Unit(i, "param", ind, key=m.group("key"), value=m.group("val").strip()))
            else:
                units.append(Unit(i, "comment", ind, value=s.lstrip("#/ ").strip()))
            continue
        m = _TREE_KV.match(line)
        if m:
            gd = m.groupdict()
            key = gd["dq"] if gd["dq"] is not None else gd["sq"] if gd["sq"] is not None else (gd["pl"] or "").strip()
            val = _trailing(gd["val"] or "", ",")
            dash = gd["dash"] or ""
            kind = "parent" if val in _OPENERS or _BLOCK_SCALAR.match(val) else "leaf"
            block = kind == "parent" and val not in _OPENERS
            u = Unit(
                i, kind, len(m.group("ind")) + len(dash), key=key, value="" if kind == "parent" else _strip_value(val)
            )
            if block:
                u.kind = "block"
            u.item = bool(dash)  # ``- key: value`` starts a list item whose fields follow
            u.dash = len(m.group("ind"))
            units.append(u)
            continue
        m = _ITEM.match(line)
        if m:
            val = (m.group("val") or "").strip()
            units.append(Unit(i, "item", ind + 2, value=_strip_value(val), item=True, dash=ind))
            continue
        if not any(c.isalnum() for c in s):  # brackets and commas
            units.append(Unit(i, "blank", ind))
            continue
        units.append(Unit(i, "other", ind, value=s))
    return units


def _flat_units(lines: Sequence[str], fmt: str) -> list[Unit]:
    units = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            units.append(Unit(i, "blank"))
        elif s[0] in "#!;":
            units.append(Unit(i, "comment", value=s.lstrip("#!; ").strip()))
        elif fmt in TABLE_FORMATS and (h := _HEADER.match(line)):
            units.append(Unit(i, "parent", key=h.group("key").strip()))
        elif (m := (_TABLE_KV if fmt in TABLE_FORMATS else _FLAT_KV).match(line)) is not None:
            units.append(
                Unit(
                    i,
                    "leaf",
                    1 if fmt in TABLE_FORMATS else 0,
                    key=m.group("key").strip(),
                    value=_strip_value(m.group("val")),
                )
            )
        else:
            units.append(Unit(i, "leaf", key=s, value=""))  # a bare name (``VAR`` taken from the shell)
    return units


def _markdown_units(lines: Sequence[str]) -> list[Unit]:
    """Headings, table rows (with their header as context), paragraphs and bullets (one unit with
    its wrapped lines), ``key: value`` lines in fenced code."""
    units: list[Unit] = []
    fence = False
    header = ""
    para: Unit | None = None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or fence or s.startswith(("```", "~~~", "#", "|")):
            para = None
        if s.startswith(("```", "~~~")):
            fence = not fence
            units.append(Unit(i, "blank"))
            continue
        if not s:
            units.append(Unit(i, "blank"))
            header = ""
            continue
        if fence:
            m = _TREE_KV.match(line)
            if m and (m.group("val") or "").strip():
                key = m.group("dq") or m.group("sq") or (m.group("pl") or "").strip()
                units.append(Unit(i, "leaf", key=key, value=_strip_value(m.group("val"))))
            else:
                units.append(Unit(i, "prose", value=s))
            continue
        h = _MD_HEADING.match(line)
        if h:
            units.append(Unit(i, "heading", len(h.group(1)), value=heading_title(h.group(2))))
            continue
        if s.startswith("|"):
            if _MD_TABLE_SEP.match(s):
                units.append(Unit(i, "blank"))
                continue
            cells = [c.strip() for c in s.strip("|").split("|")]
            if not header:
                header = " ".join(cells)
                units.append(Unit(i, "table", value=" | ".join(cells), context=""))
            else:
                units.append(Unit(i, "table", key=cells[0].strip("` "), value=" | ".join(cells), context=header))
            continue
        bullet = _MD_ITEM.match(s) is not None
        text = _MD_ITEM.sub("", s).lstrip("> ").strip()
        if para is not None and not bullet:  # a wrapped line: part of the paragraph (or bullet) above
            para.offsets.append((i, len(para.value) + 1))
            para.value = f"{para.value} {text}"
            para.children.append(i)
            units.append(Unit(i, "cont", parents=[para.i]))
            continue
        para = Unit(i, "prose", value=text, item=bullet, offsets=[(i, 0)])
        units.append(para)
    return units


def _docker_units(lines: Sequence[str]) -> list[Unit]:
    """An instruction is a leaf named by its keyword (``ENV``, ``RUN``); the lines a trailing
    backslash continues are part of it."""
    units: list[Unit] = []
    owner: Unit | None = None
    for i, line in enumerate(lines):
        s = line.strip()
        if owner is not None:
            owner.children.append(i)
            owner.value = (owner.value.rstrip("\\ ") + " " + s.rstrip("\\ ")).strip()
            units.append(Unit(i, "other", 1, value=s, parents=[owner.i]))
            if not s.endswith("\\"):
                owner = None
            continue
        if not s:
            units.append(Unit(i, "blank"))
        elif s.startswith("#"):
            units.append(Unit(i, "comment", value=s.lstrip("# ").strip()))
        elif (m := _DOCKER.match(line)) is not None and m.group("key").isupper():
            units.append(Unit(i, "leaf", key=m.group("key"), value=m.group("val").rstrip().rstrip("\\ ")))
            if s.endswith("\\"):
                owner = units[-1]
        else:
            units.append(Unit(i, "other", 1, value=s))
    return units


TEXT_SETTINGS = True
"""Plain text (shell scripts, ``.conf`` files, Makefiles, code) is read as settings where it looks
like them: ``NAME=value``, ``name = value``, ``name: value`` lines are keys with values, and a
``#``/``//``/``;`` comment block above one documents it (a script that writes a config's defaults:
``# How long should objects remain in the garbage`` above ``MAILDIR_GC_TIME=7200``). Other lines
are prose."""
_TEXT_KV = re.compile(
    r"^\s*(?:export\s+|set\s+|readonly\s+|local\s+)?(?P<key>[A-Za-z_][\w.\-]*)\s*(?::=|=(?!=)|:(?![:/]))(?P<val>.*)$"
)


def _text_units(lines: Sequence[str]) -> list[Unit]:
    units: list[Unit] = []
    for i, line in enumerate(lines):
        s = line.strip()
        if not s:
            units.append(Unit(i, "blank"))
        elif s.startswith(("#", "//", ";")) and not s.startswith("#!"):
            units.append(Unit(i, "comment", value=s.lstrip("#/; ").strip()))
        elif (m := _TEXT_KV.match(line)) is not None and (value := _trailing(m.group("val"), ";,")):
            units.append(Unit(i, "leaf", key=m.group("key"), value=_strip_value(value)))
        else:
            units.append(Unit(i, "prose", value=s))
    return units


def _brace_units(lines: Sequence[str], key_path: str | None) -> tuple[list[Unit], list[str | None]]:
    """HCL: a block (``resource "aws_s3_bucket" "logs" {``) or an attribute opening an object is a
    parent, ``name = value`` a leaf; what they hold is found by indentation, as ``terraform fmt``
    lays it out. Also returns each line's key path (read in the same pass)."""
    paths, kinds = brace_lines(lines, key_path or "")
    units: list[Unit] = []
    for i, (line, kind) in enumerate(zip(lines, kinds)):
        s = line.strip()
        ind = len(line) - len(line.lstrip(" \t"))
        if kind is None:
            if s.startswith(("#", "//")):
                units.append(Unit(i, "comment", ind, value=s.lstrip("#/ ").strip()))
            elif any(c.isalnum() for c in s):
                units.append(Unit(i, "other", ind, value=s))
            else:
                units.append(Unit(i, "blank", ind))
            continue
        what, key, value = kind
        if what == "attr":
            units.append(Unit(i, "leaf", ind, key=key, value=_strip_value(value)))
        else:
            units.append(Unit(i, "parent", ind, key=key))
    return units, paths


def read_units(
    fmt: str, lines: Sequence[str], key_path: str | None, paths: Sequence[str | None] | None = None
) -> list[Unit]:
    """The units of a chunk body, with their key paths (``paths`` when given, one per line: a body
    joined from several chunks, each read from its own key path), documentation and context filled in."""
    text = False  # plain text read as settings: a leaf is named by its key
    if fmt in TREE_FORMATS:
        units = _tree_units(lines, fmt)
    elif fmt in FLAT_FORMATS or fmt in TABLE_FORMATS:
        units = _flat_units(lines, fmt)
    elif fmt == "markdown":
        units = _markdown_units(lines)
    elif fmt == "dockerfile":
        units = _docker_units(lines)
    elif fmt in BRACE_FORMATS:
        units, own_paths = _brace_units(lines, key_path)
        paths = own_paths if paths is None else paths
    elif TEXT_SETTINGS:
        units, text = _text_units(lines), True
    else:
        units = [Unit(i, "prose" if ln.strip() else "blank", value=ln.strip()) for i, ln in enumerate(lines)]
    if paths is None:
        paths = line_key_paths(fmt, lines, key_path)
    for u, p in zip(units, paths):
        u.path = p or (u.key if (fmt in FLAT_FORMATS or text) and u.kind == "leaf" and u.key else None)
    _attach_docs(units)
    _attach_structure(units, fmt, key_path)
    return units


def _attach_docs(units: list[Unit]) -> None:
    """A comment block (or ``@param`` lines) right above a key documents it."""
    block: list[Unit] = []
    for u in units:
        if u.kind in ("comment", "param"):
            block.append(u)
            continue
        if block and u.kind in ("leaf", "parent", "block", "item"):
            params = [b for b in block if b.kind == "param"]
            own = [b for b in params if u.key and b.key.rsplit(".", 1)[-1] == u.key]
            text = " ".join(b.value for b in (own or params or block))
            u.doc = text[:400]
            u.doc_start = (own or params or block)[0].i
        if u.kind != "blank" or not block:
            block = []


def _inside(u: Unit, top: Unit, fmt: str) -> bool:
    """Whether ``u`` belongs under ``top`` (by indentation; a TOML/INI table holds its keys)."""
    if fmt in TABLE_FORMATS and top.kind == "parent":
        return u.kind != "parent"
    if top.item:  # fields of a list item sit at its key column; a new item at its dash ends it
        return u.indent >= top.indent and not (u.item and u.dash <= top.dash)
    return u.indent > top.indent


def _attach_structure(units: list[Unit], fmt: str, key_path: str | None) -> None:
    """Children of each parent and list item (by indentation); the keys above each line."""
    if fmt in TREE_FORMATS or fmt in TABLE_FORMATS or fmt in BRACE_FORMATS:
        stack: list[Unit] = []
        for u in units:
            if u.kind in ("blank", "comment", "param"):
                continue
            while stack and not _inside(u, stack[-1], fmt):
                stack.pop()
            if fmt in TABLE_FORMATS and u.kind == "parent":
                stack = []
            for p in stack:
                p.children.append(u.i)
            u.parents = [p.i for p in stack]
            u.context = " ".join(p.key for p in stack if p.key)
            if u.kind in ("parent", "block", "item") or (u.kind == "leaf" and u.item):
                stack.append(u)
            if u.kind == "leaf" and u.item:
                u.kind = "item"
        for u in units:  # the keys above: from the key path where the chunk starts mid-way
            if not u.context and u.path and key_path:
                u.context = key_path
    elif fmt == "markdown":
        heading: Unit | None = None
        for u in units:
            if u.kind == "heading":
                heading = u
                continue
            if heading is not None and u.kind in ("prose", "table", "leaf"):
                heading.children.append(u.i)
            if u.kind in ("prose", "leaf") and u.path:
                u.context = u.path.replace(" > ", " ")


ABBREVIATIONS: dict[str, tuple[str, ...]] = {
    "addr": ("address",),
    "admin": ("administrator",),
    "app": ("application",),
    "arg": ("argument",),
    "auth": ("authentication", "authorization"),
    "cert": ("certificate",),
    "cfg": ("configuration",),
    "conf": ("configuration",),
    "config": ("configuration",),
    "cpu": ("processor",),
    "ctx": ("context",),
    "db": ("database",),
    "dest": ("destination",),
    "dir": ("directory", "folder"),
    "dst": ("destination",),
    "env": ("environment",),
    "img": ("image",),
    "info": ("information",),
    "k8s": ("kubernetes",),
    "lb": ("balancer",),
    "max": ("maximum",),
    "mem": ("memory",),
    "min": ("minimum",),
    "msg": ("message",),
    "ns": ("namespace",),
    "num": ("number",),
    "param": ("parameter",),
    "pass": ("password",),
    "pkg": ("package",),
    "pw": ("password",),
    "pwd": ("password",),
    "repo": ("repository",),
    "req": ("request",),
    "res": ("resource",),
    "resp": ("response",),
    "sec": ("second", "security"),
    "spec": ("specification",),
    "src": ("source",),
    "svc": ("service",),
    "tmp": ("temporary",),
    "ttl": ("lifetime", "expiry"),
    "tz": ("timezone", "time", "zone"),
    "url": ("address", "link"),
    "var": ("variable",),
    "ver": ("version",),
}
"""Abbreviations that configuration keys use for words a question spells out (``TZ`` for
"timezone", ``DB_HOST`` for "database host"): a key part counts as each of its expansions."""
_ABBREV_ROOTS: dict[str, tuple[str, ...]] = {}
_EXPANDED: dict[str, list[str]] = {}


def abbreviations_of(word: str) -> list[str]:
    """The abbreviations that stand for ``word`` (``database`` -> ``db``), by its root."""
    if not _EXPANDED:
        for abbr, words in ABBREVIATIONS.items():
            for w in words:
                _EXPANDED.setdefault(word_root(w), []).append(abbr)
    return _EXPANDED.get(word_root(word), [])


@lru_cache(maxsize=16384)  # keys, key paths and comments repeat from unit to unit and hit to hit
def _roots(text: str) -> frozenset[str]:
    out: set[str] = set()
    for t in analyze(text):
        if t in STOPWORDS:
            continue
        out.add(word_root(t))
        if t in ABBREVIATIONS:
            exp = _ABBREV_ROOTS.get(t)
            if exp is None:
                exp = _ABBREV_ROOTS[t] = tuple(word_root(w) for w in ABBREVIATIONS[t])
            out.update(exp)
    return frozenset(out)


_NONE: frozenset[str] = frozenset()


def _score(u: Unit, q: ParsedQuery, weights: dict[str, float], line: str) -> float:
    if u.kind in ("blank", "cont"):
        return 0.0
    key = _roots(u.key) if u.key else _NONE
    value = _roots(u.value) if u.value else _NONE
    doc = _roots(u.doc) if u.doc else _NONE
    if u.kind in ("comment", "param"):  # documentation: the key it documents is the better answer
        doc = doc | key | value
        key = value = _NONE
    context = _roots(u.context) if u.context else _NONE
    score = 0.0
    for term, w in weights.items():
        if term in key:
            score += W_KEY * w
        elif term in value:
            score += W_VALUE * w
        elif term in doc:
            score += W_DOC * w
        elif term in context:
            score += W_CONTEXT * w
    for rx in q.ident_res:
        if rx.search(line):
            score += W_IDENT
    for rx in q.define_res:
        if rx.search(line):
            score += W_DEFINE
    return score


def _expand(units: list[Unit], best: Unit) -> list[int]:
    """The lines that answer, given the best unit (see the module docstring)."""
    by_i = {u.i: u for u in units}
    if best.kind in ("parent", "item", "heading") and best.children:
        kids = [by_i[c] for c in best.children]
        if best.kind == "heading":
            kids = [k for k in kids if k.kind in ("prose", "table", "leaf")][:2]
            return [best.i, *(k.i for k in kids)] if kids else [best.i]
        leaves = [k for k in kids if k.kind in ("leaf", "item", "block") or (k.kind == "parent" and not k.children)]
        out = ([best.i] if best.kind == "item" and best.value else []) + [k.i for k in leaves]
        return out[:MAX_ANSWERS] or [best.i]
    if best.kind == "param":  # the key a Helm ``@param`` names
        for u in units[best.i + 1 :]:
            if u.path and u.kind in ("leaf", "parent", "block", "item") and (u.path + ".").endswith(best.key + "."):
                return _expand(units, u) if u.kind == "parent" and u.children else [u.i]
    if best.kind in ("comment", "param"):
        # the key this comment documents: the next key line below the comment block
        for u in units[best.i + 1 :]:
            if u.kind in ("comment", "param", "blank"):
                continue
            if u.kind in ("leaf", "parent", "block", "item"):
                return _expand(units, u) if u.kind == "parent" and u.children else [u.i]
            break
        return [best.i]
    return [best.i]


def _clip_value(v: str) -> str:
    return v if len(v) <= VALUE_CHARS else v[: VALUE_CHARS - 1] + "…"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*(\[])")


def _best_sentence(u: Unit, weights: dict[str, float]) -> tuple[int, str]:
    """A paragraph's sentence with the most query weight, and the line it starts on."""
    best, best_at, best_score, at = "", 0, -1.0, 0
    for sentence in _SENTENCE_END.split(u.value):
        start = u.value.find(sentence, at)
        at = start + len(sentence)
        score = sum(weights.get(r, 0.0) for r in _roots(sentence))
        if score > best_score:
            best, best_at, best_score = sentence, start, score
    line = u.i
    for i, offset in u.offsets:
        if offset <= best_at:
            line = i
    return line, best


def _answer_value(u: Unit, lines: Sequence[str], weights: dict[str, float]) -> str | None:
    if u.kind == "block":  # a block scalar: its first lines
        text = " ".join(lines[c].strip() for c in u.children[:4])
        return _clip_value(text) if text else None
    if u.kind == "parent":
        return None
    if u.kind == "prose" and len(u.value) > VALUE_CHARS:  # a long paragraph: its best sentence
        return _clip_value(_best_sentence(u, weights)[1])
    if u.value:
        return _clip_value(u.value)
    return None


class Answers(NamedTuple):
    """What :func:`pick_answers` found in a chunk body."""

    lines: list[tuple[int, str | None, str | None]]
    """(index in the body, key path, value), best first."""
    lo: int
    """First index the answers span (with the keys and comments shown as their context)..."""
    hi: int
    """...and the last."""
    key_path: str | None
    """The key path of the best unit (a matched mapping's own path, not its first leaf's)."""


def pick_answers(
    fmt: str,
    lines: Sequence[str],
    key_path: str | None,
    q: ParsedQuery,
    weights: dict[str, float] | None = None,
    own: tuple[int, int] | None = None,
    paths: Sequence[str | None] | None = None,
) -> Answers:
    """The answer lines of a chunk body and the index range they span (see :class:`Answers`).
    ``weights``: query term root -> weight (idf); 1 each when omitted. ``own``: the indexes of the
    hit's own chunk when ``lines`` also hold its neighbours (lines outside score
    :data:`NEIGHBOUR_SHARE` of their match, so a tie stays in the chunk that was found), and
    ``paths`` each line's key path (see :func:`read_units`)."""
    if not lines:
        return Answers([], 0, 0, key_path or None)
    units = read_units(fmt, lines, key_path, paths)
    if weights is None:
        weights = dict.fromkeys(query_roots(q), 1.0)
    lo_own, hi_own = own if own is not None else (0, len(lines) - 1)
    for u in units:
        u.score = _score(u, q, weights, u.value if u.kind == "prose" and u.children else lines[u.i])
        if not lo_own <= u.i <= hi_own:
            u.score *= NEIGHBOUR_SHARE
    ranked = sorted((u for u in units if u.score > 0), key=lambda u: (-u.score, _kind_rank(u), u.i))
    if not ranked:
        inside = [u for u in units if lo_own <= u.i <= hi_own] or units
        first = next((u for u in inside if u.kind in ("leaf", "item", "block", "prose", "table", "heading")), None)
        if first is None:
            first = next((u for u in inside if u.kind != "blank"), inside[0])
        ranked = [first]
    best = ranked[0]
    picked = _expand(units, best)
    ancestors = set(best.parents)
    lo_extra: list[int] = []
    for u in ranked[1:]:
        if len(picked) >= MAX_ANSWERS or u.score < NEAR_BEST * best.score:
            break
        if abs(u.i - best.i) > NEAR_LINES:
            continue
        if u.i in ancestors:  # a key above the best line: shown as its context, not expanded
            lo_extra.append(u.i)
            continue
        for i in _expand(units, u):
            if i not in picked and len(picked) < MAX_ANSWERS:
                picked.append(i)
    by_i = {u.i: u for u in units}
    out = []
    for i in picked:
        u = by_i[i]
        at = _best_sentence(u, weights)[0] if u.kind == "prose" and len(u.offsets) > 1 else i
        out.append((at, u.path, _answer_value(u, lines, weights) if u.kind != "heading" else u.value))
    lo, hi = min(picked), max(picked)
    if best.kind in ("parent", "item") and best.i < lo:
        lo = best.i
    for i in picked:
        u = by_i[i]
        if u.kind in ("block", "leaf", "prose") and u.children:  # a block scalar, a continued instruction, a paragraph
            hi = max(hi, min(u.children[-1], i + SHOWN_CONTINUATION))
        if 0 <= u.doc_start < lo and i - u.doc_start <= SHOWN_DOC:  # the comment that documents it
            lo = u.doc_start
        if u.kind == "prose" and u.item:  # a bullet: the sentence that introduces its list
            lead = _lead_in(units, i)
            if lead is not None and lead < lo:
                lo = lead
    if lo_extra:
        lo = min(lo, *lo_extra)
    return Answers(out, lo, hi, best.path or next((p for _, p, _ in out if p), None) or key_path or None)


def _lead_in(units: list[Unit], i: int) -> int | None:
    """The line that introduces the Markdown list holding bullet ``i`` (within a few lines)."""
    for u in reversed(units[max(0, i - SHOWN_LEAD_IN) : i]):
        if u.kind == "heading":
            return None
        if u.kind == "prose" and not u.item:
            return u.i
    return None


def _kind_rank(u: Unit) -> int:
    """Between equal scores: a value line before a parent, a parent before a comment."""
    return {"leaf": 0, "item": 0, "block": 0, "table": 0, "prose": 1, "parent": 1, "heading": 2}.get(u.kind, 3)


def best_line_score(doc: ChunkDoc, q: ParsedQuery, weights: dict[str, float]) -> float:
    """The score of the best unit of a chunk (0 when no line matches)."""
    body = doc.text.split("\n")[1:] if "\n" in doc.text else [doc.text]
    units = read_units(doc.format, body, doc.key_path)
    return max((_score(u, q, weights, body[u.i]) for u in units), default=0.0)


def query_roots(q: ParsedQuery) -> list[str]:
    """The query's terms as word roots (what :func:`pick_answers` matches)."""
    out: dict[str, None] = {}
    for t in q.terms:
        if t not in STOPWORDS:
            out.setdefault(word_root(t), None)
    return list(out)


def term_weights(q: ParsedQuery, idf: Callable[[str], float] | None) -> dict[str, float]:
    """Query roots with weights from ``idf`` (a term's inverse document frequency) when given."""
    roots = query_roots(q)
    if idf is None:
        return dict.fromkeys(roots, 1.0)
    by_root: dict[str, float] = {}
    for t in q.terms:
        if t in STOPWORDS:
            continue
        r = word_root(t)
        by_root[r] = max(by_root.get(r, 0.0), idf(t))
    return {r: max(0.3, by_root.get(r, 1.0)) for r in roots}


def to_answer_lines(
    line_start: int, single: bool, picked: list[tuple[int, str | None, str | None]]
) -> list[AnswerLine]:
    return [
        AnswerLine(line=line_start if single else line_start + i, key_path=path, value=value)
        for i, path, value in picked
    ]
