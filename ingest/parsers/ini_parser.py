"""INI / CFG / CONF, with lines (``configparser`` loses them), and brace-style ``.conf`` files.

INI: ``[section]``, ``key = value`` and ``key: value``, ``;``/``#`` comment lines, continuation
lines indented deeper than their key (``setup.cfg`` lists), keys before any section at the top
level, a bare ``key`` (``skip-name-resolve``) with the value ``None``. Values stay strings,
verbatim. Key paths are ``section.key``.

``name {`` ... ``}`` blocks between ``key = value`` lines (dovecot) are nested sections.

A ``.conf`` that is not INI (nginx, ``server { listen 80; }``) is read as nested directives: a
record per ``name args;`` whose key path follows the braces (``server.listen``); a block's
arguments are quoted after its name (``server.location["/api"].proxy_pass``). Neither reading
reports a parse error: any line is something.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from kb.ingest.parsers.base import (
    Limits,
    TooManyRecordsError,
    duplicate_key,
    key_join,
    key_sections,
    register,
    split_lines,
)
from kb.types import ParsedFile, Problem, Record

__all__ = ["IniParser", "parse_ini"]

_SECTION = re.compile(r"^\s*\[([^\]\n]*)\]\s*(?:[;#].*)?$")


def _key_value(line: str) -> tuple[str, str] | None:
    """``key = value`` or ``key: value`` split at the first separator, both sides stripped; ``None``
    when the line has no separator or nothing before it. (Done with ``str`` methods: the regex
    this replaces backtracked quadratically over long runs of spaces.)"""
    eq, colon = line.find("="), line.find(":")
    at = min(i for i in (eq, colon) if i >= 0) if eq >= 0 or colon >= 0 else -1
    if at < 0:
        return None
    key = line[:at].strip()
    if not key:
        return None
    return key, line[at + 1 :].strip()


_COMMENT = (";", "#")
_BRACE_TOKEN = re.compile(
    r"""(\#[^\n]*)|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|([{};])|((?:\$\{[^}\s]*\}|[^\s{};])+)|(\n)"""
)


class IniParser:
    name = "ini"
    suffixes = (".ini", ".cfg", ".conf", ".cnf")
    filenames = (".editorconfig",)

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_ini(text, limits, repeats=path.suffix.lower() == ".conf")


def parse_ini(text: str, limits: Limits, fmt: str = "ini", *, repeats: bool = False) -> ParsedFile:
    """``repeats``: a key on consecutive lines is one directive with several values (a ``.conf``:
    unbound's ``access-control``, a systemd drop-in's ``ExecStartPre``), not a duplicate as it is
    for ``configparser`` (``setup.cfg``, ``tox.ini``)."""
    lines = split_lines(text)
    if _looks_brace_style(lines):
        return _parse_brace(text, lines, limits, fmt)
    # A repeated key drops its earlier record (the last value wins, at the line of its last
    # occurrence): ``records`` keeps a ``None`` hole there, filled in once at the end, so a file
    # of many repeated keys stays linear.
    records: list[Record | None] = []
    live = 0
    index: dict[str, int] = {}  # key path -> its record's place in ``records``
    problems: list[Problem] = []
    data: dict[str, Any] = {}
    tops: list[tuple[str, int, None]] = []
    section: dict[str, Any] = data
    section_path = ""
    seen: dict[tuple[str, str], int] = {}
    current: Record | None = None  # the key whose value continuation lines extend
    current_indent = 0
    current_key = ""
    current_section: dict[str, Any] = data
    parts: list[str] = []  # the current value's continuation lines, joined when it is done
    blocks: list[tuple[str, dict[str, Any]]] = []  # the sections around an open ``name {`` block
    opened: dict[str, int] = {}  # block path -> how many times opened
    previous: tuple[str, str] | None = None  # (section, key) of the last key line
    last_line_of_current = 0

    def finish_current() -> None:
        if current is not None and parts:
            head = [current.value] if current.value else []
            current.value = current_section[current_key] = "\n".join(head + parts)
            parts.clear()

    for n, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if (
            current is not None
            and indent > current_indent
            and last_line_of_current == n - 1
            and not stripped.startswith(_COMMENT)
        ):
            parts.append(stripped)
            last_line_of_current = n
            continue
        if stripped.startswith(_COMMENT):
            continue
        finish_current()
        m = _SECTION.match(line)
        if m:
            name = m.group(1).strip()
            section_path = key_join("", name)
            existing = data.get(name)
            if not isinstance(existing, dict):
                existing = data[name] = {}
            section = existing
            tops.append((section_path, n, None))
            current = None
            continue
        kv = _key_value(line)
        if kv is None and stripped.endswith("{") and len(stripped) > 1:
            # dovecot-style blocks between key = value lines (``service imap-login {``): a nested
            # section whose arguments are quoted after its name, as in the brace reading
            words = stripped[:-1].split()
            args = " ".join(words[1:]).replace("\\", "\\\\").replace('"', '\\"')
            quoted = f'["{args}"]' if args else ""
            name = words[0] + quoted
            path = key_join(section_path, words[0]) + quoted
            repeat = opened.get(path, 0)  # passdb { } twice: two blocks (a list), not duplicate keys
            opened[path] = repeat + 1
            if repeat:
                path, name = f"{path}[{repeat}]", f"{name}[{repeat}]"
            blocks.append((section_path, section))
            section_path = path
            child = section[name] = {}
            section = child
            if len(blocks) == 1:
                tops.append((section_path, n, None))
            current = None
            continue
        if kv is None and stripped == "}" and blocks:
            section_path, section = blocks.pop()
            current = None
            continue
        if kv:
            key, value = kv
        else:
            key, value = stripped, None
        kp = key_join(section_path, key)
        first = seen.get((section_path, key))
        if repeats and first is not None and previous == (section_path, key):
            # the same key on consecutive lines (unbound's access-control, systemd's ExecStartPre):
            # one directive with several values, kept as a list, not a duplicate
            many = section[key] if isinstance(section[key], list) else [section[key]]
            many.append(value)
            section[key] = many
            records.append(Record(f"{kp}[{len(many) - 1}]", value, n))
            live += 1
            if live > limits.max_records:
                raise TooManyRecordsError(f"more than {limits.max_records} values")
            seen[(section_path, key)] = n
            current = None  # a list item takes no continuation lines
            continue
        previous = (section_path, key)
        if first is not None:
            problems.append(duplicate_key(kp, n, first))
        dropped = index.get(kp)
        if dropped is not None:
            records[dropped] = None
        else:
            live += 1
        seen[(section_path, key)] = n
        section[key] = value
        current = Record(kp, value, n)
        index[kp] = len(records)
        records.append(current)
        if live > limits.max_records:
            raise TooManyRecordsError(f"more than {limits.max_records} values")
        current_indent, current_key, current_section = indent, key, section
        last_line_of_current = n
        if not tops:
            tops.append(("", n, None))
    finish_current()
    if tops and tops[0][0] == "" and len(tops) > 1 and tops[0][1] > tops[1][1]:
        tops.pop(0)
    sections = key_sections(lines, tops, len(lines), comments=_COMMENT)
    documents = [data] if records or data else []
    return ParsedFile(
        format=fmt,
        records=[r for r in records if r is not None],
        sections=sections,
        problems=problems,
        documents=documents,
    )


def _looks_brace_style(lines: list[str]) -> bool:
    """nginx-like: directives end with ``;``. Blocks whose lines are ``key = value`` with no ``;``
    (dovecot) read as INI with nested sections."""
    content = 0
    brace = 0
    semis = 0
    assigns = 0
    for line in lines:
        s = line.strip()
        if not s or s.startswith(_COMMENT):
            continue
        content += 1
        if s.endswith(("{", ";", "}")):
            brace += 1
            semis += s.endswith(";")
        elif "=" in s:
            assigns += 1
    return content > 0 and brace * 2 >= content and semis >= assigns


def _parse_brace(text: str, lines: list[str], limits: Limits, fmt: str) -> ParsedFile:
    records: list[Record] = []
    tops: list[list[Any]] = []  # [key_path, line, children]
    stack: list[tuple[str, int]] = []  # (block path, records count when opened)
    words: list[str] = []
    first_line = 0
    line = 1
    for m in _BRACE_TOKEN.finditer(text):
        g = m.lastindex
        if g == 5:
            line += 1
            continue
        if g == 1:
            continue
        if g in (2, 4):
            if not words:
                first_line = line
            words.append(m.group(g))
            continue
        tok = m.group(3)
        parent = stack[-1][0] if stack else ""
        if tok == "}":
            if words:
                records.append(Record(key_join(parent, words[0]), " ".join(words[1:]), first_line))
                words = []
            if stack:
                path, count = stack.pop()
                if len(records) == count:
                    records.append(Record(path, {}, line))
            continue
        if not words:
            continue  # a stray ';' or '{'
        path = key_join(parent, words[0])
        if tok == ";":
            records.append(Record(path, " ".join(words[1:]), first_line))
            if not stack and not tops:
                tops.append(["", first_line, None])  # directives before the first block
        else:  # "{"
            if len(words) > 1:  # location /api { -> location["/api"]
                args = " ".join(words[1:]).replace("\\", "\\\\").replace('"', '\\"')
                path = f'{path}["{args}"]'
            if not stack:
                tops.append([path, first_line, []])
            elif len(stack) == 1 and tops and tops[-1][2] is not None:
                tops[-1][2].append((path, first_line))
            stack.append((path, len(records)))
        words = []
        if len(records) > limits.max_records:
            raise TooManyRecordsError(f"more than {limits.max_records} values")
    if words:
        parent = stack[-1][0] if stack else ""
        records.append(Record(key_join(parent, words[0]), " ".join(words[1:]), first_line))
    sections = key_sections(lines, [(kp, ln, ch) for kp, ln, ch in tops], len(lines))
    return ParsedFile(format=fmt, records=records, sections=sections)


register(IniParser())
