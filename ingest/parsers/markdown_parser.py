"""Markdown: front matter, headings (ATX and setext) as sections, links and images as records.

* Front matter: YAML between ``---`` lines at the very top (or TOML between ``+++``); its records
  get the ``front_matter.`` prefix and it is ``documents[0]``.
* Sections: the text before the first heading (key path ``""``), then one per heading, whose key
  path is the heading trail (``Install > Linux``).
* Records: ``headings[i]`` (the heading text), ``links[i]`` (the target of an inline link, an
  image or a ``[label]: target`` definition), each with its line; fenced code and code spans are
  skipped.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from kb.types import ParsedFile, Problem, Record, Section

from ingest.parsers.base import (
    Limits,
    TooManyRecordsError,
    register,
    sections_from_ranges,
    split_lines,
)
from ingest.parsers.toml_parser import load_toml
from ingest.parsers.yaml_parser import load_yaml

__all__ = ["MarkdownParser", "parse_markdown"]

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_NOT_PARAGRAPH = re.compile(r"^ {0,3}(?:[-+*>|]|\d+[.)]\s|#|<|`{3}|~{3})|^\s{4}")
# [text](target "title") and ![alt](src): lookahead, so an image inside a link is found too
_LINK = re.compile(
    r"""(?=(!?)\[((?:[^\[\]\n\\]|\\.|\[(?:[^\[\]\n\\]|\\.)*\](?:\([^()\s]*\))?)*)\]
        \(\s*(<[^<>\n]*>|(?:[^\s()\\]|\\.|\([^\s()]*\))*)(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?\s*\))""",
    re.VERBOSE,
)
_DEFINITION = re.compile(r"^ {0,3}\[((?:[^\[\]\\]|\\.)+)\]:\s*(<[^<>\n]*>|\S+)")


class MarkdownParser:
    name = "markdown"
    suffixes = (".md", ".markdown", ".mdx")
    filenames = ()

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_markdown(text, limits)


def parse_markdown(text: str, limits: Limits, fmt: str = "markdown") -> ParsedFile:
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = split_lines(text)
    records: list[Record] = []
    problems: list[Problem] = []
    documents: list[Any] = []
    body_start = 1  # first line after the front matter
    ranges: list[tuple[str, int, int]] = []

    fm = _front_matter(lines)
    if fm is not None:
        delim, end = fm
        inner = "\n".join(lines[1 : end - 1])
        loaded = (load_yaml(inner, limits, prefix="front_matter", line_offset=1) if delim == "---"
                  else load_toml(inner, limits, prefix="front_matter", line_offset=1))
        records.extend(loaded.records)
        problems.extend(loaded.problems)
        if loaded.documents and not problems:
            documents.append(loaded.documents[0])
        ranges.append(("front_matter", 1, end))
        body_start = end + 1

    headings: list[tuple[int, int, str]] = []  # (line, level, text)
    link_targets: list[tuple[str, int]] = []
    fence: str | None = None
    i = body_start - 1
    while i < len(lines):
        line = lines[i].rstrip("\r")
        n = i + 1
        i += 1
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        m = _ATX.match(line)
        if m:
            headings.append((n, len(m.group(1)), (m.group(2) or "").strip()))
            _links(line, n, link_targets)
            continue
        if i < len(lines) and line.strip() and not _NOT_PARAGRAPH.match(line):
            nxt = _SETEXT.match(lines[i].rstrip("\r"))
            alone = n == body_start or not lines[n - 2].strip() or _is_heading_line(lines, n - 1)
            if nxt and alone:
                headings.append((n, 1 if nxt.group(1)[0] == "=" else 2, line.strip()))
                _links(line, n, link_targets)
                i += 1
                continue
        d = _DEFINITION.match(line)
        if d:
            link_targets.append((d.group(2).strip("<>"), n))
            continue
        _links(line, n, link_targets)

    for idx, (n, _level, title) in enumerate(headings):
        records.append(Record(f"headings[{idx}]", title, n))
    for idx, (target, n) in enumerate(link_targets):
        records.append(Record(f"links[{idx}]", target, n))
    if len(records) > limits.max_records:
        raise TooManyRecordsError(f"more than {limits.max_records} values")

    # sections: the preamble, then one per heading, keyed by the heading trail
    first_heading = headings[0][0] if headings else len(lines) + 1
    pre_end = _trim(lines, body_start, first_heading - 1)
    if pre_end >= body_start and any(ln.strip() for ln in lines[body_start - 1 : pre_end]):
        pre_start = body_start
        while not lines[pre_start - 1].strip():
            pre_start += 1
        ranges.append(("", pre_start, pre_end))
    trail: list[tuple[int, str]] = []
    for idx, (n, level, title) in enumerate(headings):
        while trail and trail[-1][0] >= level:
            trail.pop()
        trail.append((level, title))
        end = headings[idx + 1][0] - 1 if idx + 1 < len(headings) else len(lines)
        ranges.append((" > ".join(t for _, t in trail), n, _trim(lines, n, end)))
    sections: list[Section] = sections_from_ranges(lines, ranges, "heading")
    if fm is not None:
        sections[0].kind = "block"
    return ParsedFile(format=fmt, records=records, sections=sections, problems=problems,
                      documents=documents)


def _front_matter(lines: list[str]) -> tuple[str, int] | None:
    """``(delimiter, closing line)`` when the file opens with ``---``/``+++`` front matter."""
    if not lines or lines[0].rstrip() not in ("---", "+++"):
        return None
    delim = lines[0].rstrip()
    closers = ("---", "...") if delim == "---" else ("+++",)
    for n in range(2, len(lines) + 1):
        if lines[n - 1].rstrip() in closers:
            return delim, n
    return None


def _is_heading_line(lines: list[str], n: int) -> bool:
    return bool(_ATX.match(lines[n - 1]))


def _trim(lines: list[str], start: int, end: int) -> int:
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _links(line: str, n: int, out: list[tuple[str, int]]) -> None:
    if "](" not in line:
        return
    if "`" in line:
        line = _CODE_SPAN.sub(lambda m: " " * len(m.group()), line)
    for m in _LINK.finditer(line):
        start = m.start()
        if start and line[start - 1] == "\\":
            continue  # an escaped bracket
        if not m.group(1) and start and line[start - 1] == "!":
            continue  # the bracket of an image found at the '!' already
        target = m.group(3)
        if target.startswith("<"):
            target = target[1:-1]
        out.append((target, n))


register(MarkdownParser())
