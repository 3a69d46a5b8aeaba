"""The key path at each line of a section's text, without parsing it.

Chunking (:mod:`kb.ingest.chunk`) names the parts of a big section by the key paths their lines share,
and search (:mod:`kb.search.snippets`) names a hit by the key path at its best line. Both need that
mapping for a *fragment* of a file (a section, a chunk body), which a real parser cannot read on its
own, so this module reads it from the layout: YAML and JSON by indentation, TOML and INI by
``[table]`` headers, ``.env`` and ``.properties`` by the variable, Markdown by the heading trail, HCL
by its blocks in braces.

Key paths are built and taken apart with :mod:`kb.keypaths` only, so a line's key path is spelled
exactly as the parser spelled the record: ``metadata.labels["app.kubernetes.io/name"]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from kb.formats import formats_with, traits
from kb.keypaths import join_key_path, key_join, split_key_path

__all__ = [
    "line_key_paths",
    "heading_title",
    "brace_lines",
    "TREE_FORMATS",
    "TABLE_FORMATS",
    "FLAT_FORMATS",
    "BRACE_FORMATS",
]

TREE_FORMATS = formats_with(lambda t: t.line_paths == "tree")
"""Formats whose key paths follow indentation (``line_paths="tree"``, :mod:`kb.formats`)."""
TABLE_FORMATS = formats_with(lambda t: t.line_paths == "table")
"""Formats whose key paths follow ``[table]`` headers."""
FLAT_FORMATS = formats_with(lambda t: t.line_paths in ("env", "properties"))
"""Formats whose lines are independent variables."""
BRACE_FORMATS = formats_with(lambda t: t.line_paths == "braces")
"""Formats of blocks in braces (HCL: ``resource "aws_s3_bucket" "logs" {``, ``acl = "private"``)."""

_YAML_KEY = re.compile(
    r"""^(?P<ind>[ \t]*)(?P<dash>(?:-[ \t]+)*)(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<pl>[^\s#'"{}\[\],&*!|>%@`-][^#:]*+|-[^\s#:][^#:]*+))[ \t]*:(?:[ \t]|$)"""
)
_JSON_KEY = re.compile(r'^(?P<ind>[ \t]*)"(?P<k>(?:[^"\\]|\\.)*)"\s*:')
_TOML_HEADER = re.compile(r"^\s*\[\[?([^\]]+)\]\]?\s*(?:[#;].*)?$")
_TOML_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*="""
)
_TOML_DOT = re.compile(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)")  # a dot outside quotes
_INI_KEY = re.compile(r"^\s*([^=:\s#;\[][^=:]*)[=:]")
_ENV_KEY = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=")
_PROP_KEY = re.compile(r"^\s*([^=:\s#!][^=:\s]*)\s*[=:\s]")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BRACE_OPEN = re.compile(r"""^(?P<head>[A-Za-z_][\w\-]*(?:\s+(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w\-]*))*)\s*\{\s*$""")
"""A block: ``resource "aws_s3_bucket" "logs" {``, ``lifecycle {``."""
_BRACE_ATTR = re.compile(r"""^(?P<key>[A-Za-z_][\w\-]*|"(?:[^"\\]|\\.)*")\s*=(?!=)(?P<val>.*)$""")
"""An attribute: ``acl = "private"``; ``tags = {`` opens an object."""
_HEREDOC = re.compile(r"^<<-?\s*(\w+)$")
_BRACE_LABEL = re.compile(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w\-]*)')
_ESCAPE = re.compile(r"\\(.)")


def line_key_paths(fmt: str, lines: Sequence[str], key_path: str | None) -> list[str | None]:
    """Best-effort key path of each line of a section or chunk body whose key path is ``key_path``.

    Cheap (regexes and an indentation stack). Sequence indexes are not tracked. Lines with nothing
    to go on (blank lines, comments, other formats) get ``None`` or the section's key path.
    """
    base_path = key_path or ""
    how = traits(fmt).line_paths
    if how == "env":
        return [(m.group(1) if (m := _ENV_KEY.match(ln)) else None) for ln in lines]
    if how == "properties":
        return [
            (m.group(1) if (m := _PROP_KEY.match(ln)) and not ln.lstrip().startswith(("#", "!")) else None)
            for ln in lines
        ]
    if how == "table":
        return _table_paths(fmt, lines, base_path)
    if how == "headings":
        return _markdown_paths(lines, base_path)
    if how == "braces":
        return brace_lines(lines, base_path)[0]
    if how != "tree":
        return [base_path or None] * len(lines)
    return _tree_paths(fmt, lines, base_path)


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
        if gd.get("k") is not None:
            key = _ESCAPE.sub(r"\1", gd["k"])
        elif gd.get("dq") is not None:
            key = _ESCAPE.sub(r"\1", gd["dq"])
        elif gd.get("sq") is not None:
            key = gd["sq"]
        else:
            key = (gd.get("pl") or "").strip()
        dash = gd.get("dash") or ""
        out.append((len(m.group("ind")) + len(dash), key, bool(dash)))
    return out


def _tree_paths(fmt: str, lines: Sequence[str], base_path: str) -> list[str | None]:
    keys = _indented_keys(fmt, lines)
    keyed = [(i, k) for i, k, _ in keys if k is not None]
    base: list[str | int] = split_key_path(base_path)
    if keyed and base:
        # a section's text usually starts with its own key, and a part of a section may start
        # above its own (deepest common) key path: do not repeat what the lines spell out
        least = min(i for i, _ in keyed)
        top = {k for i, k in keyed if i == least}
        j = next((j for j in range(len(base) - 1, -1, -1) if base[j] in top), None)
        if j is not None:
            base = base[:j]
    stack: list[tuple[int, str]] = []
    out: list[str | None] = []
    for ind, key, item in keys:
        if ind < 0:
            out.append(None)
            continue
        if key is None:
            comps = [k for i, k in stack if i < ind or (item and i <= ind)]
            out.append(join_key_path([*base, *comps]) or None)
            continue
        while stack and stack[-1][0] >= ind:
            stack.pop()
        stack.append((ind, key))
        out.append(join_key_path([*base, *(k for _, k in stack)]))
    return out


def _toml_parts(dotted: str) -> list[str]:
    return [c.strip().strip("\"'") for c in _TOML_DOT.split(dotted)]


def _table_paths(fmt: str, lines: Sequence[str], base_path: str) -> list[str | None]:
    toml = fmt == "toml"
    table = base_path
    out: list[str | None] = []
    key_re = _TOML_KEY if toml else _INI_KEY
    for ln in lines:
        s = ln.strip()
        if not s or s[0] in "#;":
            out.append(None)
            continue
        h = _TOML_HEADER.match(ln)
        if h:
            # the parsers name a TOML table by its dotted parts, an INI section by its whole name
            table = join_key_path(_toml_parts(h.group(1))) if toml else key_join("", h.group(1).strip())
            out.append(table)
            continue
        m = key_re.match(ln)
        if m is None:
            out.append(table or None)
            continue
        key = m.group(1).strip()
        comps: list[str | int] = list(_toml_parts(key)) if toml else [key]
        tcomps = split_key_path(table)
        if tcomps and tcomps[-len(comps) :] == comps:
            out.append(table)
        else:
            out.append(join_key_path([*tcomps, *comps]))
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
            level, title = len(h.group(1)), heading_title(h.group(2))
            if first_level is None:
                first_level = level
                anc = trail[:-1] if trail and trail[-1] == title else trail
                stack = [(level - len(anc) + i, a) for i, a in enumerate(anc)]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        out.append(" > ".join(t for _, t in stack) if stack else (base_path or None))
    return out


def brace_lines(lines: Sequence[str], base_path: str) -> tuple[list[str | None], list[tuple[str, str, str] | None]]:
    """Key paths of HCL-like lines, by their blocks in braces, and what each line is: ``("block",
    "resource google_container_cluster gke", "")``, ``("attr", "acl", '"private"')``, ``("open",
    "tags", "")`` for an attribute opening an object or list, ``None`` for anything else (a closing
    brace, a comment, a heredoc's text, which takes its attribute's path). Brackets are counted
    outside quotes, so a list or object spread over lines closes what it opened; sequence indexes
    (a repeated block's ``[1]``) are not tracked."""
    base: list[str | int] = split_key_path(base_path)
    stack: list[list[str]] = []  # the segments each open block, object or list adds ([] for anonymous ones)
    paths: list[str | None] = []
    kinds: list[tuple[str, str, str] | None] = []
    trimmed = False
    heredoc: tuple[str, str | None] | None = None  # (terminator, the attribute's path) inside a heredoc
    comment = False  # inside /* ... */
    for ln in lines:
        s = ln.strip()
        if heredoc is not None:
            paths.append(heredoc[1])
            kinds.append(None)
            if s == heredoc[0]:
                heredoc = None
            continue
        if comment or s.startswith("/*"):
            comment = "*/" not in s
            paths.append(None)
            kinds.append(None)
            continue
        if not s or s.startswith(("#", "//")):
            paths.append(None)
            kinds.append(None)
            continue
        rest = s.lstrip("}]),")
        closers = sum(c in "}]" for c in s[: len(s) - len(rest)])
        del stack[len(stack) - min(closers, len(stack)) :]
        rest = _uncommented(rest.strip())
        net = _net_brackets(rest)
        inner = [seg for segs in stack for seg in segs]
        block = _BRACE_OPEN.match(rest)
        attr = None if block else _BRACE_ATTR.match(rest)
        if block is None and attr is None:
            paths.append(join_key_path([*base, *inner]) or None)
            kinds.append(None)
            _balance(stack, net)
            continue
        if block is not None:
            segs = [a or b for a, b in _BRACE_LABEL.findall(block.group("head"))]
            kind = ("block", " ".join(segs), "")
        else:
            assert attr is not None
            key = attr.group("key")
            segs = [key[1:-1] if key.startswith('"') else key]
            val = attr.group("val").strip()
            kind = ("open", segs[0], "") if net > 0 else ("attr", segs[0], val)
        if not trimmed and not stack and kind[0] != "attr" and base[-len(segs) :] == segs:
            base = base[: -len(segs)]  # a chunk that starts at its own block, which its key path names
        trimmed = True
        path = join_key_path([*base, *inner, *segs])
        paths.append(path)
        kinds.append(kind)
        if kind[0] != "attr":
            stack.append(segs)
            net -= 1
        elif (m := _HEREDOC.match(val)) is not None:
            heredoc = (m.group(1), path)
        _balance(stack, net)
    return paths, kinds


def _balance(stack: list[list[str]], net: int) -> None:
    """Brackets a line leaves open (``net`` > 0: anonymous levels) or closes (``net`` < 0)."""
    if net > 0:
        stack.extend([] for _ in range(net))
    elif net < 0:
        del stack[len(stack) - min(-net, len(stack)) :]


def _unquoted(s: str) -> Iterator[tuple[int, str]]:
    """The characters of ``s`` outside quoted strings, with their places (a backslash escapes)."""
    quote, escaped = "", False
    for i, c in enumerate(s):
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        else:
            yield i, c


def _net_brackets(s: str) -> int:
    """Opening minus closing brackets of ``s`` outside quotes."""
    return sum(1 if c in "{[(" else -1 for _, c in _unquoted(s) if c in "{[()]}")


def _uncommented(s: str) -> str:
    """``s`` without a trailing ``#`` or ``//`` comment (one outside quotes, after a blank)."""
    for i, c in _unquoted(s):
        if (c == "#" or s.startswith("//", i)) and i > 0 and s[i - 1] in " \t":
            return s[:i].rstrip()
    return s


def heading_title(text: str) -> str:
    """A Markdown heading's text without its closing hashes (``## Title ##`` -> ``Title``); in
    Python, not a regex: ``(.*?)\\s*#*\\s*$`` backtracks cubically on a long run of blanks."""
    text = text.rstrip()
    bare = text.rstrip("#")
    return (bare.rstrip() if bare != text else text).strip()
