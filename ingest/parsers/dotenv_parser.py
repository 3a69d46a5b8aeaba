"""``.env`` files, read the way docker compose reads them.

``KEY=value``, ``export KEY=value`` and ``KEY: value``. Single quotes are literal (but for
``\\'``); double quotes understand ``\\n \\t \\r \\" \\\\ \\$``; both may span lines. An unquoted
value ends at `` #``. A bare ``KEY`` (taken from the environment) has the value ``""``. The key
path is the key as written; every value is a string.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from kb.ingest.parsers.base import (
    FlatRecords,
    Limits,
    line_group_sections,
    parse_error,
    register,
    split_lines,
)
from kb.types import ParsedFile

__all__ = ["DotenvParser", "parse_dotenv"]

_KEY = re.compile(r"[ \t]*(?:export[ \t]+(?=[^\s=:]))?([A-Za-z0-9_.\-]+)[ \t]*([=:]?)[ \t]*")
_INLINE_COMMENT = re.compile(r"[ \t]#")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class DotenvParser:
    name = "dotenv"
    suffixes = (".env",)
    # templates shipped to be copied to .env (a .env.example is dotenv by its name already)
    filenames = (".env", "env.example", "env.sample", "env.template", "env.dist")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_dotenv(text, limits)


def parse_dotenv(text: str, limits: Limits, fmt: str = "dotenv") -> ParsedFile:
    flat = FlatRecords(limits)
    problems = flat.problems
    data = flat.data
    entries: list[tuple[str, int, int]] = []
    bad_lines: list[int] = []
    size = len(text)
    pos = 0
    line = 1
    while pos < size:
        eol = text.find("\n", pos)
        if eol < 0:
            eol = size
        raw = text[pos:eol]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            pos, line = eol + 1, line + 1
            continue
        m = _KEY.match(raw)
        rest = raw[m.end() :] if m else ""
        if m is None or (not m.group(2) and rest.strip() and not rest.lstrip().startswith("#")):
            bad_lines.append(line)  # one finding for the file, naming the first and counting the rest
            pos, line = eol + 1, line + 1
            continue
        key = m.group(1)
        start_line = line
        vstart = pos + m.end()
        quote = text[vstart] if vstart < size and m.group(2) else ""
        if quote in ("'", '"'):
            close = _closing_quote(text, vstart + 1, quote)
            if close < 0:
                problems.append(
                    parse_error(
                        "dotenv",
                        f"unterminated {'double' if quote == chr(34) else 'single'}-quoted value for {key}",
                        line,
                    )
                )
                value = text[vstart + 1 : eol]
            else:
                body = text[vstart + 1 : close]
                value = _unescape(body) if quote == '"' else body.replace("\\'", "'")
                line += text.count("\n", vstart, close)
                eol = text.find("\n", close)
                if eol < 0:
                    eol = size
        else:
            value = text[pos + m.start(2) + len(m.group(2)) : eol] if m.group(2) else ""
            cut = _INLINE_COMMENT.search(value)
            if cut:
                value = value[: cut.start()]
            value = value.strip()
        flat.add(key, value, start_line)
        entries.append((key, start_line, line))
        pos, line = eol + 1, line + 1
    if bad_lines:
        more = f" (and {len(bad_lines) - 1} more lines)" if len(bad_lines) > 1 else ""
        bad = parse_error("dotenv", "expected KEY=value", bad_lines[0])
        bad.message += more
        problems.append(bad)
    sections = line_group_sections(split_lines(text), entries)
    return ParsedFile(
        format=fmt, records=flat.records, sections=sections, problems=problems, documents=[data] if data else []
    )


def _closing_quote(text: str, start: int, quote: str) -> int:
    """Index of the quote closing a value opened before ``start``, skipping escaped ones."""
    i = start
    while True:
        i = text.find(quote, i)
        if i < 0:
            return -1
        backslashes = 0
        j = i - 1
        while j >= start and text[j] == "\\":
            backslashes += 1
            j -= 1
        if backslashes % 2 == 0:
            return i
        i += 1


def _unescape(body: str) -> str:
    if "\\" not in body:
        return body
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


register(DotenvParser())
