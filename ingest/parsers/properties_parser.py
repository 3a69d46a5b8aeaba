"""Java ``.properties``, following ``java.util.Properties.load``.

Comment lines start with ``#`` or ``!``; a line ending in an odd number of backslashes continues
on the next (whose leading whitespace is dropped); the key ends at the first unescaped ``=``,
``:`` or whitespace; escapes ``\\t \\n \\r \\f \\uXXXX`` are decoded and any other escaped
character stands for itself. The key path is the key verbatim (dots and all); values are strings.
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

__all__ = ["PropertiesParser", "parse_properties"]

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|u|.)", re.DOTALL)
_SIMPLE = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_KEY_END = re.compile(r"(?<!\\)(?:\\\\)*[=:\s]")


class PropertiesParser:
    name = "properties"
    suffixes = (".properties",)
    filenames = ()

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_properties(text, limits)


def parse_properties(text: str, limits: Limits, fmt: str = "properties") -> ParsedFile:
    lines = split_lines(text)
    flat = FlatRecords(limits)
    problems = flat.problems
    data = flat.data
    entries: list[tuple[str, int, int]] = []
    i = 0
    while i < len(lines):
        start = i + 1
        raw = lines[i].rstrip("\r").lstrip(" \t\f")
        i += 1
        if not raw or raw[0] in "#!":
            continue
        if _continues(raw):
            # Each continued line drops its last backslash; what is left ends in an even number
            # of them, so whether the joined line continues depends on the newest part alone.
            parts = [raw[:-1]]
            while i < len(lines):
                part = lines[i].rstrip("\r").lstrip(" \t\f")
                i += 1
                if not _continues(part):
                    parts.append(part)
                    break
                parts.append(part[:-1])
            logical = "".join(parts)
        else:
            logical = raw
        m = _KEY_END.search(logical)
        if m is None:
            raw_key, raw_value = logical, ""
        else:
            sep_at = m.end() - 1
            raw_key = logical[:sep_at]
            if logical[sep_at] in "=:":
                raw_value = logical[sep_at + 1 :].lstrip(" \t\f")
            else:  # whitespace, then perhaps one '=' or ':'
                after = logical[sep_at:].lstrip(" \t\f")
                raw_value = after[1:].lstrip(" \t\f") if after[:1] in ("=", ":") else after
        key, bad_key = _unescape(raw_key)
        value, bad_value = _unescape(raw_value)
        bad = bad_key or bad_value
        if bad:
            problems.append(parse_error("properties", "malformed \\uXXXX escape", start))
        flat.add(key, value, start)
        entries.append((key, start, i))
    sections = line_group_sections(lines, entries, comments=("#", "!"))
    return ParsedFile(
        format=fmt, records=flat.records, sections=sections, problems=problems, documents=[data] if data else []
    )


def _continues(line: str) -> bool:
    n = len(line) - len(line.rstrip("\\"))
    return n % 2 == 1


def _unescape(s: str) -> tuple[str, bool]:
    if "\\" not in s:
        return s, False
    bad = False

    surrogates = False

    def repl(m: re.Match) -> str:
        nonlocal bad, surrogates
        e = m.group(1)
        if e[0] == "u":
            if len(e) == 5:
                code = int(e[1:], 16)
                if 0xD800 <= code <= 0xDFFF:
                    surrogates = True
                return chr(code)
            bad = True
            return "u"
        return _SIMPLE.get(e, e)

    out = _ESCAPE.sub(repl, s)
    if surrogates:
        out = _join_surrogates(out)
    return out, bad


def _join_surrogates(s: str) -> str:
    """``\\uD83D\\uDE00`` (native2ascii's emoji) as one character; a lone surrogate as U+FFFD."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


register(PropertiesParser())
