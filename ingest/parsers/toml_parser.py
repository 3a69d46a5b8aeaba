"""TOML: data from ``tomllib``, lines from a light scan of headers and ``key =`` lines.

The scan knows ``[table]`` and ``[[array.of.tables]]`` headers (with their running indices),
dotted and quoted keys, and skips multi-line strings and arrays; a record without a line of its
own (an item of a multi-line array) inherits its nearest ancestor's. Dates and times become ISO
strings, in records and in the document alike.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from kb.ingest.parsers.base import (
    DepthError,
    Limits,
    flatten,
    json_scalar,
    key_join,
    key_sections,
    paragraph_sections,
    parse_error,
    register,
    split_lines,
)
from kb.types import ParsedFile, Problem, Record

__all__ = ["TomlParser", "TomlResult", "load_toml"]

_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_PARTS = re.compile(_PART)
_KEY_LINE = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_PART}(?:\s*\.\s*{_PART})*)\s*(\]\]?)\s*(?:#.*)?$")
_STRINGS = re.compile(r'"""|\'\'\'|"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|#.*')
_ERROR_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$|\s*\(at end of document\)\s*$")


class TomlParser:
    name = "toml"
    suffixes = (".toml",)
    filenames = ("poetry.lock", "cargo.lock", "uv.lock", "pdm.lock")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        result = load_toml(text, limits)
        lines = split_lines(text)
        if result.problems:
            sections = paragraph_sections(lines)
        else:
            tops: list[tuple[str, int, None]] = []
            if result.first_key_line and (not result.headers or result.first_key_line < result.headers[0][1]):
                tops.append(("", result.first_key_line, None))
            tops.extend((kp, ln, None) for kp, ln in result.headers)
            sections = key_sections(lines, tops, len(lines))
        return ParsedFile(
            format=self.name,
            records=result.records,
            sections=sections,
            problems=result.problems,
            documents=result.documents,
        )


@dataclass(slots=True)
class TomlResult:
    records: list[Record] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headers: list[tuple[str, int]] = field(default_factory=list)
    first_key_line: int = 0


def load_toml(text: str, limits: Limits, *, prefix: str = "", line_offset: int = 0) -> TomlResult:
    """Parse TOML; ``prefix``/``line_offset`` place it inside another file (front matter)."""
    out = TomlResult()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        out.problems.append(_problem(str(exc), line_offset, text.count("\n") + 1))
        return out
    data = _jsonable(data, limits)
    line_map, out.headers, out.first_key_line = _scan_lines(text, prefix, line_offset)
    out.records = flatten(data, limits, line_map.get, prefix=prefix, default_line=line_offset + 1)
    out.documents = [data]
    return out


def _problem(message: str, line_offset: int, last_line: int) -> Problem:
    m = _ERROR_AT.search(message)
    what = message[: m.start()] if m else message.splitlines()[0][:200]
    what = what[:1].lower() + what[1:]
    if m and m.group(1):
        return parse_error("TOML", what, int(m.group(1)) + line_offset, int(m.group(2)))
    problem = parse_error("TOML", what + " at the end of the file", None)
    problem.line = last_line + line_offset
    return problem


_MAX_INT_BITS = 4000 * 3  # well inside what str(int) converts (4,300 decimal digits)


def _jsonable(data: Any, limits: Limits) -> Any:
    """Replace dates, times and non-finite floats in place, iteratively."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.max_depth:
            raise DepthError(f"nesting deeper than {limits.max_depth} levels")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in list(items):
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
            elif isinstance(v, int) and not isinstance(v, bool):
                if v.bit_length() > _MAX_INT_BITS:  # 0xfff... of thousands of digits: kept as hex text
                    node[k] = hex(v)
            elif not isinstance(v, str):
                node[k] = json_scalar(v)
    return data


def _key_parts(raw: str) -> list[str]:
    parts = []
    for p in _PARTS.findall(raw):
        if p[0] == '"':
            try:
                p = json.loads(p)
            except ValueError:
                p = p[1:-1]
        elif p[0] == "'":
            p = p[1:-1]
        parts.append(p)
    return parts


def _scan_lines(text: str, prefix: str, line_offset: int) -> tuple[dict[str, int], list[tuple[str, int]], int]:
    """Map key paths to 1-based lines; also return ``(table path, line)`` per header."""
    line_map: dict[str, int] = {}
    headers: list[tuple[str, int]] = []
    first_key_line = 0
    aot_index: dict[str, int] = {}
    table = prefix
    in_string: str | None = None  # the closing delimiter of an open multi-line string
    depth = 0  # open brackets of a multi-line array or inline table
    for n, line in enumerate(text.split("\n"), 1 + line_offset):
        rest = line
        if in_string is not None:
            end = rest.find(in_string)
            if end < 0:
                continue
            rest = rest[end + 3 :]
            in_string = None
        elif depth == 0:
            m = _HEADER.match(line)
            if m and (m.group(1) == "[[") == (m.group(3) == "]]"):
                table = prefix
                parts = _key_parts(m.group(2))
                for i, part in enumerate(parts):
                    table = key_join(table, part)
                    if i == len(parts) - 1 and m.group(1) == "[[":
                        aot_index[table] = aot_index.get(table, -1) + 1
                    if table in aot_index:
                        table = f"{table}[{aot_index[table]}]"
                    line_map.setdefault(table, n)
                line_map[table] = n
                headers.append((table, n))
                continue
            m = _KEY_LINE.match(line)
            if m:
                path = table
                for part in _key_parts(m.group(1)):
                    path = key_join(path, part)
                    line_map.setdefault(path, n)
                line_map[path] = n
                if not headers and not first_key_line:
                    first_key_line = n
                rest = line[m.end() :]
        in_string, delta = _open_at_end(rest)
        depth = max(0, depth + delta)
    return line_map, headers, first_key_line


def _open_at_end(rest: str) -> tuple[str | None, int]:
    """What a line leaves open: a multi-line string's delimiter, and the bracket balance."""
    pos = 0
    delta = 0
    while True:
        m = _STRINGS.search(rest, pos)
        seg = rest[pos : m.start() if m else len(rest)]
        delta += seg.count("[") + seg.count("{") - seg.count("]") - seg.count("}")
        if m is None or m.group().startswith("#"):
            return None, delta
        t = m.group()
        if t in ('"""', "'''"):
            close = rest.find(t, m.end())
            if close < 0:
                return t, delta
            pos = close + 3
        else:
            pos = m.end()


register(TomlParser())
