"""Markdown: front matter, headings (ATX and setext) as sections, links and images as records.

* Front matter: YAML between ``---`` lines at the very top (or TOML between ``+++``); its records
  get the ``front_matter.`` prefix and it is ``documents[0]``.
* Sections: the text before the first heading (key path ``""``), then one per heading, whose key
  path is the heading trail (``Install > Linux``).
* Records: ``headings[i]`` (the heading text), ``links[i]`` (the target of an inline link, an
  image or a ``[label]: target`` definition), each with its line, as markdown-it-py reads them
  (:func:`kb.markdown.outline`): code, code spans and HTML blocks hold no links.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kb.ingest.parsers.base import (
    Limits,
    TooManyRecordsError,
    register,
    sections_from_ranges,
    split_lines,
)
from kb.ingest.parsers.toml_parser import load_toml
from kb.ingest.parsers.yaml_parser import load_yaml
from kb.markdown import outline
from kb.types import ParsedFile, Problem, Record, Section

__all__ = ["MarkdownParser", "parse_markdown"]


class MarkdownParser:
    name = "markdown"
    suffixes = (".md", ".markdown", ".mdx")
    filenames = ()

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_markdown(text, limits)


def parse_markdown(text: str, limits: Limits, fmt: str = "markdown") -> ParsedFile:
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
        loaded = (
            load_yaml(inner, limits, prefix="front_matter", line_offset=1)
            if delim == "---"
            else load_toml(inner, limits, prefix="front_matter", line_offset=1)
        )
        records.extend(loaded.records)
        problems.extend(loaded.problems)
        if loaded.documents and not problems:
            documents.append(loaded.documents[0])
        ranges.append(("front_matter", 1, end))
        body_start = end + 1

    found = outline("\n".join(lines[body_start - 1 :]), body_start)
    headings = [(h.line, h.level, h.title) for h in found.headings]  # (line, level, text)
    link_targets = found.links

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
    return ParsedFile(format=fmt, records=records, sections=sections, problems=problems, documents=documents)


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


def _trim(lines: list[str], start: int, end: int) -> int:
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


register(MarkdownParser())
