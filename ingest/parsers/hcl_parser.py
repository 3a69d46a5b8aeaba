"""HCL: Terraform variable files (``.tfvars``) and HCL configuration (``.hcl``, ``.tf``).

A format added as one module, exactly as a plugin would add it: the parser declares its traits
(:class:`kb.formats.Traits`) and registers itself; nothing else in kb names it.

Read: attributes ``name = value``; blocks ``type "label" ... { ... }``, whose type and labels are
key path segments (``resource.aws_s3_bucket.logs.acl``; a block repeated under one name is a list:
``ingress[0].from_port``); strings with escapes (``${...}`` templates kept as written); heredocs
(``<<EOF``, ``<<-EOF`` with its indent removed); numbers, ``true``/``false``/``null``; lists and
objects, nested; comments ``#``, ``//`` and ``/* */``. Any other expression (``var.region``,
``file("x")``, a conditional) is kept as its source text, a string: kb reads configuration, it does
not evaluate it.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from kb.formats import Traits
from kb.ingest.parsers.base import (
    DepthError,
    Limits,
    flatten,
    index_join,
    key_join,
    key_sections,
    paragraph_sections,
    parse_error,
    register,
    split_lines,
)
from kb.types import ParsedFile, Problem

__all__ = ["HclParser", "parse_hcl"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_]*)[ \t]*\n")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
_CLOSERS = {"[": "]", "{": "}", "(": ")"}


class HclParser:
    name = "hcl"
    suffixes = (".tfvars", ".hcl", ".tf")
    filenames = ()
    traits = Traits(structured=True, line_paths="braces")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_hcl(text, limits)


class _Error(Exception):
    def __init__(self, what: str, pos: int) -> None:
        super().__init__(what)
        self.what, self.pos = what, pos


@dataclass(slots=True)
class _Value:
    """A parsed value: a scalar, or a list / object of values; ``line`` where it starts."""

    line: int
    scalar: Any = None
    items: list[_Value] | None = None
    pairs: list[tuple[str, _Value]] | None = None


@dataclass(slots=True)
class _Node:
    """An attribute (``value`` set) or a block (``body`` set), at its first line."""

    key: str
    line: int
    value: _Value | None = None
    labels: list[str] = field(default_factory=list)
    body: list[_Node] | None = None


class _Reader:
    def __init__(self, text: str, limits: Limits) -> None:
        self.text, self.limits, self.pos = text, limits, 0
        self.newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(self, pos: int | None = None) -> int:
        return bisect.bisect_right(self.newlines, (self.pos if pos is None else pos) - 1) + 1

    # -- white space and comments ---------------------------------------------------------------

    def skip(self, newlines: bool = True) -> None:
        t, n = self.text, len(self.text)
        while self.pos < n:
            c = t[self.pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "#" or t.startswith("//", self.pos):
                end = t.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif t.startswith("/*", self.pos):
                end = t.find("*/", self.pos + 2)
                if end < 0:
                    raise _Error("unterminated /* comment", self.pos)
                self.pos = end + 2
            else:
                return

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    # -- bodies and blocks ----------------------------------------------------------------------

    def body(self, depth: int, closing: str = "", opened: int = 0) -> list[_Node]:
        if depth > self.limits.max_depth:
            raise DepthError(f"nesting deeper than {self.limits.max_depth} levels")
        nodes: list[_Node] = []
        while True:
            self.skip()
            c = self.peek()
            if c == closing or (not c and not closing):
                return nodes
            if not c:
                raise _Error(f"missing '{closing}' closing the block of line {opened}", self.pos)
            start = self.pos
            key = self.name()
            node = _Node(key, self.line(start))
            self.skip(newlines=False)
            if self.peek() == "=":
                self.pos += 1
                node.value = self.expr(depth + 1)
            else:
                while self.peek() not in ("{", "\n", ""):
                    node.labels.append(self.name())
                    self.skip(newlines=False)
                if self.peek() != "{":
                    raise _Error("expected '=' or a block's '{'", self.pos)
                self.pos += 1
                node.body = self.body(depth + 1, "}", node.line)
                self.pos += 1
            nodes.append(node)

    def name(self) -> str:
        if self.peek() == '"':
            value = self.string()
            return value if isinstance(value, str) else str(value)
        m = _IDENT.match(self.text, self.pos)
        if m is None:
            raise _Error("expected a name", self.pos)
        self.pos = m.end()
        return m.group()

    # -- expressions ----------------------------------------------------------------------------

    def expr(self, depth: int) -> _Value:
        """A value; anything that is not a literal alone is kept as its source text."""
        if depth > self.limits.max_depth:
            raise DepthError(f"nesting deeper than {self.limits.max_depth} levels")
        self.skip(newlines=False)
        start = self.pos
        first: _Error | None = None
        try:
            value = self.literal(depth)
        except _Error as exc:
            value, first = None, exc
        if value is not None:
            save = self.pos
            self.skip(newlines=False)
            if self.peek() in ("\n", ",", "]", "}", ")", ""):
                self.pos = save
                return value
        self.pos = start
        try:
            return _Value(self.line(start), scalar=self.raw())
        except _Error:
            raise first or _Error("expected a value", start) from None

    def literal(self, depth: int) -> _Value | None:
        line, c, t = self.line(), self.peek(), self.text
        if c == '"':
            return _Value(line, scalar=self.string())
        if c == "[":
            self.pos += 1
            items: list[_Value] = []
            while True:
                self.skip()
                if not self.peek():
                    raise _Error(f"missing ']' closing the list of line {line}", self.pos)
                if self.peek() == "]":
                    self.pos += 1
                    return _Value(line, items=items)
                items.append(self.expr(depth + 1))
                self.skip()
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise _Error("expected ',' or ']' in a list", self.pos)
        if c == "{":
            self.pos += 1
            pairs: list[tuple[str, _Value]] = []
            while True:
                self.skip()
                if not self.peek():
                    raise _Error(f"missing '}}' closing the object of line {line}", self.pos)
                if self.peek() == "}":
                    self.pos += 1
                    return _Value(line, pairs=pairs)
                key = self.name()
                self.skip(newlines=False)
                if self.peek() not in ("=", ":"):
                    raise _Error("expected '=' or ':' after a key in an object", self.pos)
                self.pos += 1
                pairs.append((key, self.expr(depth + 1)))
                self.skip(newlines=False)
                if self.peek() == ",":
                    self.pos += 1
        if t.startswith("<<", self.pos):
            return _Value(line, scalar=self.heredoc())
        if m := _NUMBER.match(t, self.pos):
            self.pos = m.end()
            text = m.group()
            return _Value(line, scalar=float(text) if any(ch in text for ch in ".eE") else int(text))
        if m := _IDENT.match(t, self.pos):
            word = {"true": True, "false": False, "null": None}
            if m.group() in word and not t.startswith(".", m.end()) and not t.startswith("(", m.end()):
                self.pos = m.end()
                return _Value(line, scalar=word[m.group()])
        return None

    def string(self) -> str:
        """A quoted string from ``self.pos`` (at the quote): escapes read, templates kept."""
        t, i = self.text, self.pos + 1
        out: list[str] = []
        while i < len(t):
            c = t[i]
            if c == '"':
                self.pos = i + 1
                return "".join(out)
            if c == "\n":
                break
            if c == "\\" and i + 1 < len(t):
                nxt = t[i + 1]
                if nxt == "u" and _HEX4.fullmatch(t, i + 2, i + 6):
                    code, i = int(t[i + 2 : i + 6], 16), i + 6
                    if 0xD800 <= code < 0xDC00 and t.startswith("\\u", i) and _HEX4.fullmatch(t, i + 2, i + 6):
                        low = int(t[i + 2 : i + 6], 16)
                        if 0xDC00 <= low < 0xE000:  # a surrogate pair: one character
                            code, i = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), i + 6
                    out.append("\ufffd" if 0xD800 <= code < 0xE000 else chr(code))  # never a lone surrogate
                    continue
                out.append(_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            if c in "$%" and t.startswith("{", i + 1):
                end = self.balanced(i + 1)
                out.append(t[i:end])
                i = end
                continue
            out.append(c)
            i += 1
        raise _Error("unterminated string", self.pos)

    def heredoc(self) -> str:
        m = _HEREDOC.match(self.text, self.pos)
        if m is None:
            raise _Error("expected a heredoc marker (<<EOF) and a new line", self.pos)
        strip, marker = m.group(1) == "-", m.group(2)
        lines: list[str] = []
        i = m.end()
        while i <= len(self.text):
            end = self.text.find("\n", i)
            end = len(self.text) if end < 0 else end
            row = self.text[i:end]
            if row.strip() == marker:
                self.pos = end
                if strip:
                    indent = min((len(r) - len(r.lstrip()) for r in lines if r.strip()), default=0)
                    lines = [r[indent:] for r in lines]
                return "\n".join(lines) + ("\n" if lines else "")
            lines.append(row)
            i = end + 1
        raise _Error(f"heredoc {marker} is not closed", self.pos)

    def balanced(self, i: int) -> int:
        """The index after the bracket closing the one at ``i`` (strings inside skipped)."""
        t, stack = self.text, [_CLOSERS[self.text[i]]]
        i += 1
        while i < len(t) and stack:
            c = t[i]
            if c == '"':
                j = i + 1
                while j < len(t) and t[j] != '"' and t[j] != "\n":
                    j += 2 if t[j] == "\\" else 1
                i = j + 1
                continue
            if c in _CLOSERS:
                stack.append(_CLOSERS[c])
            elif c == stack[-1]:
                stack.pop()
            elif c in ")]}":
                raise _Error("unbalanced brackets", i)
            i += 1
        if stack:
            raise _Error("unbalanced brackets", i)
        return i

    def raw(self) -> str:
        """An expression as its source text: up to a new line, ',' or closing bracket outside brackets."""
        t, start, i = self.text, self.pos, self.pos
        while i < len(t):
            c = t[i]
            if c in "\n,)]}" or c == "#" or t.startswith("//", i):
                break
            if c in _CLOSERS:
                i = self.balanced(i)
            elif c == '"':
                self.pos = i
                self.string()
                i = self.pos
            else:
                i += 1
        self.pos = i
        text = t[start:i].strip()
        if not text:
            raise _Error("expected a value", start)
        return text


def _data(value: _Value, path: str, lines: dict[str, int]) -> Any:
    lines.setdefault(path, value.line)
    if value.items is not None:
        return [_data(v, index_join(path, i), lines) for i, v in enumerate(value.items)]
    if value.pairs is not None:
        return {k: _data(v, key_join(path, k), lines) for k, v in value.pairs}
    return value.scalar


def _body_data(nodes: list[_Node], path: str, lines: dict[str, int], problems: list[Problem]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    repeated = Counter((n.key, *n.labels) for n in nodes if n.body is not None)
    seen: Counter[tuple[str, ...]] = Counter()
    for n in nodes:
        if n.value is not None:
            p = key_join(path, n.key)
            if n.key in out:
                problems.append(
                    Problem("duplicate-key", "warning", f"duplicate attribute '{p}'; remove one of them", line=n.line)
                )
            out[n.key] = _data(n.value, p, lines)
            continue
        chain = (n.key, *n.labels)
        cursor, p = out, path
        for seg in chain[:-1]:
            p = key_join(p, seg)
            lines.setdefault(p, n.line)
            nxt = cursor.setdefault(seg, {})
            if not isinstance(nxt, dict):
                problems.append(parse_error("HCL", f"block '{p}' clashes with an attribute", n.line))
                break
            cursor = nxt
        else:
            p = key_join(p, chain[-1])
            assert n.body is not None
            if repeated[chain] > 1:
                i = seen[chain]
                seen[chain] += 1
                items = cursor.setdefault(chain[-1], [])
                lines.setdefault(p, n.line)
                p = index_join(p, i)
                lines[p] = n.line
                items.append(_body_data(n.body, p, lines, problems))
            else:
                lines[p] = n.line
                cursor[chain[-1]] = _body_data(n.body, p, lines, problems)
    return out


def parse_hcl(text: str, limits: Limits) -> ParsedFile:
    lines = split_lines(text)
    reader = _Reader(text, limits)
    try:
        nodes = reader.body(0)
    except _Error as exc:
        where = reader.line(exc.pos)
        return ParsedFile(
            format="hcl", sections=paragraph_sections(lines), problems=[parse_error("HCL", exc.what, where)]
        )
    problems: list[Problem] = []
    line_of: dict[str, int] = {}
    data = _body_data(nodes, "", line_of, problems)
    records = flatten(data, limits, line_of.get)
    tops = [(functools.reduce(key_join, (n.key, *n.labels), ""), n.line, None) for n in nodes]
    sections = key_sections(lines, tops, len(lines), comments=("#", "//")) if tops else []
    return ParsedFile(format="hcl", records=records, sections=sections, problems=problems, documents=[data])


register(HclParser())
