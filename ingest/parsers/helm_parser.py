"""Helm chart templates (``templates/*.yaml``, ``*.tpl``): Go templates, never parsed as YAML.

Sections are paragraphs (kind ``template``), a ``define`` always starting a new one whose key
path is the defined name. Records are the ``.Values`` references inside actions (not in the
text around them, nor in ``{{/* comments */}}``): ``values_refs[i]`` is ``"image.tag"`` for
``{{ .Values.image.tag }}`` (or ``$.Values...``), which reference checking matches against the
chart's ``values.yaml``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from kb.ingest.parsers.base import (
    Limits,
    TooManyRecordsError,
    paragraph_ranges,
    register,
    sections_from_ranges,
    split_lines,
)
from kb.types import ParsedFile, Record

__all__ = ["HelmTemplateParser", "parse_helm_template"]

_VALUES_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
# a Go template action, or a comment action ({{/* ... */}}, {{- /* ... */ -}}), over lines
_ACTION = re.compile(r"\{\{(?:(?P<comment>-?\s*/\*.*?\*/\s*-?)|(?P<body>.*?))\}\}", re.S)
_DEFINE = re.compile(r"""\{\{-?\s*define\s+"([^"]+)\"""")


class HelmTemplateParser:
    name = "helm-template"
    suffixes = (".tpl",)
    filenames = ()

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_helm_template(text, limits)


def parse_helm_template(text: str, limits: Limits, fmt: str = "helm-template") -> ParsedFile:
    lines = split_lines(text)
    records: list[Record] = []
    if ".Values" in text:
        # only inside actions: ".Values.x" in NOTES.txt prose or in a {{/* usage comment */}} is text
        at_line, seen = 1, 0
        for a in _ACTION.finditer(text):
            if a.group("comment") is not None or ".Values" not in a.group("body"):
                continue
            for m in _VALUES_REF.finditer(a.group("body")):
                at = a.start("body") + m.start()
                at_line += text.count("\n", seen, at)
                seen = at
                records.append(Record(f"values_refs[{len(records)}]", m.group(1)[1:], at_line))
            if len(records) > limits.max_records:
                raise TooManyRecordsError(f"more than {limits.max_records} values")
    defines = {n for n, line in enumerate(lines, 1) if "define" in line and _DEFINE.search(line)}
    ranges = []
    for start, end in paragraph_ranges(lines, breaks=defines):
        name = ""
        for line in lines[start - 1 : end]:
            define = _DEFINE.search(line)
            if define:
                name = define.group(1)
                break
        ranges.append((name, start, end))
    return ParsedFile(format=fmt, records=records, sections=sections_from_ranges(lines, ranges, "template"))


register(HelmTemplateParser())
