"""Dockerfiles: instructions as records, one section per build stage.

Records: ``from[i]`` (the image, ``--platform`` and ``AS name`` stripped) and ``stages[i]`` (the
stage name when there is one), ``env.K`` (both ``ENV K=V ...`` and ``ENV K V``), ``arg.K`` (the
default, or ``None``), ``expose[i]`` (one per port), and ``instructions[i]`` (``"RUN ..."``) for
everything else. Continuation lines (``\\``, or the escape character set by ``# escape=``) are
joined, comment lines inside them skipped, and heredocs (``RUN <<EOF``) kept with their body.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import Any

from kb.ingest.parsers.base import (
    Limits,
    TooManyRecordsError,
    key_join,
    register,
    sections_from_ranges,
    split_lines,
)
from kb.types import ParsedFile, Record

__all__ = ["DockerfileParser", "parse_dockerfile"]

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z]+)\s*=\s*(\S+)\s*$")
_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)(?:\s+(.*))?$", re.DOTALL)
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")


class DockerfileParser:
    name = "dockerfile"
    suffixes = (".dockerfile",)
    filenames = ("dockerfile", "containerfile")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_dockerfile(text, limits)


def parse_dockerfile(text: str, limits: Limits, fmt: str = "dockerfile") -> ParsedFile:
    lines = split_lines(text)
    escape = "\\"
    for line in lines:  # parser directives: leading '# key=value' comments only
        m = _DIRECTIVE.match(line.strip())
        if not m:
            break
        if m.group(1).lower() == "escape" and m.group(2) in ("\\", "`"):
            escape = m.group(2)
    records: list[Record] = []
    counts = {"from": 0, "expose": 0, "instructions": 0}
    stage_starts: list[tuple[str, int]] = []
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i].rstrip("\r")
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = [stripped]
        more = stripped.endswith(escape)
        while more and i < len(lines):
            nxt = lines[i].rstrip("\r").strip()
            i += 1
            if not nxt or nxt.startswith("#"):
                continue  # blank and comment lines inside a continuation are skipped
            parts.append(nxt)
            more = nxt.endswith(escape)
        logical = " ".join(p[:-1].rstrip() if p.endswith(escape) else p for p in parts).strip()
        for hd in _HEREDOC.finditer(logical):  # heredoc bodies follow the instruction line
            word, strip_tabs = hd.group(3), bool(hd.group(1))
            body: list[str] = []
            while i < len(lines):
                raw = lines[i].rstrip("\r")
                i += 1
                if (raw.lstrip("\t") if strip_tabs else raw) == word:
                    break
                body.append(raw)
            logical += "\n" + "\n".join(body + [word])
        m = _INSTRUCTION.match(logical)
        if not m:
            continue
        keyword = m.group(1).upper()
        args = (m.group(2) or "").strip()
        if keyword == "FROM":
            _from(args, start, counts, records, stage_starts)
        elif keyword == "ENV":
            for k, v in _pairs(args, legacy=True):
                records.append(Record(key_join("env", k), v, start))
        elif keyword == "ARG":
            for k, v in _pairs(args, legacy=False):
                records.append(Record(key_join("arg", k), v, start))
        elif keyword == "EXPOSE":
            for port in args.split():
                records.append(Record(f"expose[{counts['expose']}]", port, start))
                counts["expose"] += 1
        else:
            records.append(Record(f"instructions[{counts['instructions']}]", f"{keyword} {args}".rstrip(), start))
            counts["instructions"] += 1
        if len(records) > limits.max_records:
            raise TooManyRecordsError(f"more than {limits.max_records} values")
    return ParsedFile(format=fmt, records=records, sections=_sections(lines, stage_starts))


def _from(
    args: str, line: int, counts: dict[str, int], records: list[Record], stage_starts: list[tuple[str, int]]
) -> None:
    words = [w for w in args.split() if not w.startswith("--")]
    idx = counts["from"]
    counts["from"] += 1
    image = words[0] if words else ""
    records.append(Record(f"from[{idx}]", image, line))
    if len(words) >= 3 and words[1].lower() == "as":
        records.append(Record(f"stages[{idx}]", words[2], line))
    stage_starts.append((f"from[{idx}]", line))


def _pairs(args: str, *, legacy: bool) -> list[tuple[str, str | None]]:
    """``K=V K2="v 2"`` pairs; ``ENV K V`` (one pair, the rest of the line) when ``legacy``."""
    try:
        words = shlex.split(args, comments=False, posix=True)
    except ValueError:  # an unbalanced quote: fall back to whitespace
        words = args.split()
    if not words:
        return []
    if legacy and "=" not in words[0]:
        rest = args.split(None, 1)
        value = rest[1].strip() if len(rest) > 1 else ""
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return [(words[0], value)]
    out: list[tuple[str, str | None]] = []
    for w in words:
        k, eq, v = w.partition("=")
        out.append((k, v if eq else None))
    return out


def _sections(lines: list[str], stage_starts: list[tuple[str, int]]):
    if not stage_starts:
        last = len(lines)
        while last > 1 and not lines[last - 1].strip():
            last -= 1
        return (
            sections_from_ranges(lines, [("", 1, last)], "lines")
            if last >= 1 and any(ln.strip() for ln in lines)
            else []
        )
    ranges: list[list[Any]] = []  # [key_path, start, end]
    for j, (kp, ln) in enumerate(stage_starts):
        start = 1 if j == 0 else ln
        if j:  # comment lines directly above a FROM belong to its stage
            while start - 1 > stage_starts[j - 1][1] and lines[start - 2].lstrip().startswith("#"):
                start -= 1
        ranges.append([kp, start, 0])
    for j, r in enumerate(ranges):
        end = ranges[j + 1][1] - 1 if j + 1 < len(ranges) else len(lines)
        while end > r[1] and not lines[end - 1].strip():
            end -= 1
        r[2] = end
    first = 1
    while first < ranges[0][2] and not lines[first - 1].strip():
        first += 1
    ranges[0][1] = first
    return sections_from_ranges(lines, [tuple(r) for r in ranges], "block")


register(DockerfileParser())
