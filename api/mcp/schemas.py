"""Results of the MCP tools.

Each result is the HTTP API's envelope (:mod:`kb.api.schemas`) or kb's public model (:mod:`kb.types`),
never a redefinition, plus the two fields every bounded answer carries: ``truncated`` and ``note``.
The few answers the HTTP API has no envelope for (``find_key``, ``drift`` with ``effective``,
``sql``) are built from the same item models where one exists (``KeyRecord``, ``EffectiveValue``).

Each envelope also renders itself as compact text (:meth:`text`), one answer per line led by
``path:line``: that text is what an assistant reads; the model itself is the tool's structured
output, described by its JSON schema.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kb.api.schemas import DriftResponse, DuplicatesResponse, GraphResponse, SearchResponse
from kb.types import (
    EffectiveValue,
    FileDetail,
    Finding,
    FindingsPage,
    GraphLink,
    KeyLocation,
    KeyRecord,
    LocatedDriftGroup,
)

__all__ = [
    "Bounded",
    "SearchResult",
    "FileResult",
    "KeyRecord",
    "KeyMatches",
    "FindingsResult",
    "ValidateResult",
    "DuplicatesResult",
    "KeyLocation",
    "LocatedDriftGroup",
    "DriftResult",
    "EffectiveValue",
    "GraphResult",
    "SqlResult",
    "location",
    "show_value",
]


class Bounded(BaseModel):
    """The fields of an answer cut to fit a model's context."""

    model_config = ConfigDict(extra="forbid")

    truncated: bool = Field(
        default=False,
        description=(
            "True when rows or characters were left out to keep the answer small; `note` says how to see the rest."
        ),
    )
    note: str | None = Field(default=None, description="Why the answer was cut and how to get the rest, if it was.")

    def _tail(self, lines: list[str]) -> str:
        if self.note:
            lines.append(f"[{self.note}]")
        return "\n".join(lines)


def location(path: str, line: int | None, end: int | None = None) -> str:
    """``path:line`` (``path:start-end`` for a range; the bare path when the line is unknown)."""
    if not line:
        return path
    return f"{path}:{line}-{end}" if end and end != line else f"{path}:{line}"


def show_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _finding_line(f: Finding) -> str:
    return f"{location(f.path, f.line)}  {f.severity}  {f.rule}  {f.message}"


# ---------------------------------------------------------------------------------------------


class SearchResult(Bounded, SearchResponse):
    """``search``: the answer of ``GET /search``."""

    def text(self) -> str:
        lines = [f"{len(self.hits)} hits for {self.query!r} ({self.mode})"]
        for h in self.hits:
            lines.append(
                f"{location(h.path, h.line_start, h.line_end)}  {h.key_path or ''}  "
                f"(score {h.score:.4f}, {h.format or '?'})"
            )
            for a in h.answer:
                what = " = ".join(x for x in (a.key_path, a.value) if x is not None)
                lines.append(f"  answer {h.path}:{a.line}  {what}")
            for i, text in enumerate(h.snippet.splitlines()):
                lines.append(f"  {h.line_start + i} | {text}")
        return self._tail(lines)


class FileResult(Bounded, FileDetail):
    """``show_file``: the answer of ``GET /files/{path}``: a page of records and every finding."""

    def text(self) -> str:
        f = self.file
        shown = (
            f"records {self.offset + 1}-{self.offset + len(self.records)} of {self.total}"
            if self.records
            else f"{self.total} records"
        )
        lines = [f"{f.path}  {f.format}  {f.size} bytes  status={f.status}  {shown}"]
        for r in self.records:
            doc = f" (document {r.doc})" if r.doc else ""
            lines.append(f"{location(f.path, r.line)}  {r.key_path} = {show_value(r.value)}{doc}")
        if self.findings:
            lines.append(f"{len(self.findings)} findings:")
            lines += [_finding_line(x) for x in self.findings]
        return self._tail(lines)


class KeyMatches(Bounded):
    """``find_key``: records whose key path matches a glob, in path and line order."""

    pattern: str
    path: str | None = None
    offset: int
    limit: int
    records: list[KeyRecord]

    def text(self) -> str:
        lines = [
            f"{len(self.records)} records with a key matching {self.pattern!r}"
            + (f" in {self.path}" if self.path else "")
            + (f" from row {self.offset + 1}" if self.offset else "")
        ]
        lines += [f"{location(r.path, r.line)}  {r.key_path} = {show_value(r.value)}" for r in self.records]
        return self._tail(lines)


class FindingsResult(Bounded, FindingsPage):
    """``findings``: the answer of ``GET /findings``."""

    def text(self) -> str:
        lines = [
            f"{self.total} findings"
            + (f", showing {self.offset + 1}-{self.offset + len(self.findings)}" if self.findings else "")
        ]
        lines += [_finding_line(f) for f in self.findings]
        return self._tail(lines)


class ValidateResult(Bounded, FindingsPage):
    """``validate``: every rule run now, with ingest's findings, filtered and paged like ``findings``."""

    counts: dict[str, int] = Field(description="Findings by severity among those matching the filters.")
    notes: list[str] = Field(default_factory=list, description="Schemas that could not be used, and why.")

    def text(self) -> str:
        c = self.counts
        lines = [
            f"{self.total} findings ({c.get('error', 0)} errors, {c.get('warning', 0)} warnings, "
            f"{c.get('info', 0)} info)"
            + (
                f", showing {self.offset + 1}-{self.offset + len(self.findings)}"
                if self.findings and len(self.findings) < self.total
                else ""
            )
        ]
        lines += [_finding_line(f) for f in self.findings]
        lines += [f"note: {n}" for n in self.notes]
        return self._tail(lines)


class DuplicatesResult(Bounded, DuplicatesResponse):
    """``duplicates``: the answer of ``GET /duplicates``, largest saving first within each kind."""

    total: int = Field(description="Groups found, across all pages.")
    offset: int = 0

    def text(self) -> str:
        lines = [
            f"{self.total} duplicate groups"
            + (
                f", showing {self.offset + 1}-{self.offset + len(self.groups)}"
                if self.groups and len(self.groups) < self.total
                else ""
            )
        ]
        for g in self.groups:
            lines.append(
                f"{g.kind}  similarity {g.similarity:.2f}  {len(g.members)} members  saves {g.lines_saved} lines"
            )
            for m in g.members:
                lines.append(f"  {location(m.path, m.line_start, m.line_end)}  {m.key_path or ''}".rstrip())
            if g.suggestion:
                lines.append("  suggestion:")
                lines += [f"    {s}" for s in g.suggestion.splitlines()]
        return self._tail(lines)


class DriftResult(Bounded, DriftResponse):
    """``drift``: the answer of ``GET /drift``, each group with its keys' lines; with ``effective``, the keys of
    one environment's effective configuration instead of groups."""

    groups: list[LocatedDriftGroup] = Field(default_factory=list)  # type: ignore[assignment]
    env: str | None = Field(default=None, description="With effective: the environment asked for.")
    keys: list[EffectiveValue] = Field(default_factory=list, description="With effective: each key's final value.")
    total: int = Field(description="Groups (with effective: keys) across all pages.")
    offset: int = 0

    def text(self) -> str:
        return self._tail(self._effective() if self.env else self._drift())

    def _range(self, shown: int) -> str:
        return f", showing {self.offset + 1}-{self.offset + shown}" if shown and shown < self.total else ""

    def _drift(self) -> list[str]:
        lines = [f"{self.total} drifted sibling groups{self._range(len(self.groups))}"]
        for g in self.groups:
            at = {(x.path, x.key_path): x.line for x in g.locations}
            lines.append("  ".join(g.files))
            for m in g.missing:
                have = [location(p, at[(p, m.key_path)]) for p in g.files if (p, m.key_path) in at]
                lines.append(f"  missing    {m.key_path}  in {', '.join(m.missing_in)}  (set in {', '.join(have)})")
            for d in g.differing:
                vals = "; ".join(
                    f"{location(p, at[(p, d.key_path)])}={show_value(v)}"
                    if (p, d.key_path) in at
                    else f"{p}={show_value(v)} (inherited)"
                    for p, v in d.values.items()
                )
                lines.append(f"  differing  {d.key_path}  {vals}")
        return lines

    def _effective(self) -> list[str]:
        lines = [f"{self.total} keys in the effective configuration of {self.env!r}{self._range(len(self.keys))}"]
        group = None
        for k in self.keys:
            if k.group != group:
                group = k.group
                lines.append(f"{group}  ({self.env})")
            extra = "".join(f"  ${{{v.get('name')}}} from {v.get('source')}" for v in k.variables)
            extra += f"  unresolved: {', '.join(k.unresolved)}" if k.unresolved else ""
            lines.append(f"  {k.source}  {k.key_path} = {show_value(k.value)}{extra}")
        return lines


class GraphResult(Bounded, GraphResponse):
    """``dependencies`` and ``impact``: the answer of ``GET /graph/deps`` and ``GET /graph/impact``."""

    total: int = Field(description="Files across all pages.")

    def text(self) -> str:
        what = "dependencies of" if self.direction == "deps" else "files depending on"
        lines = [f"{self.total} {what} {self.path}"]
        for link in self.files:
            lines.append(_link_line(self, link))
        return self._tail(lines)


def _link_line(result: GraphResult, link: GraphLink) -> str:
    kind = link.kinds or link.kind
    via = f"via {link.via}" if link.via and link.depth > 1 else None
    if result.direction == "deps":
        # the line is where the asked-for file (or the file it is reached through) makes the reference
        src = result.path if link.depth == 1 else (link.via or "?")
        at = f"referenced at {location(src, link.line)}" if link.line else None
        parts = [str(link.depth), link.path, kind, at, via]
    else:
        parts = [str(link.depth), location(link.path, link.line), kind, via]
    return "  ".join(p for p in parts if p)


class SqlResult(Bounded):
    """``sql``: columns and rows of a read-only query over the catalogue."""

    columns: list[str]
    rows: list[list[Any]] = Field(description="At most `limit` rows; long values are cut.")
    limit: int

    def text(self) -> str:
        lines = [f"{len(self.rows)} rows", " | ".join(self.columns)]
        lines += [" | ".join("NULL" if v is None else show_value(v) for v in r) for r in self.rows]
        return self._tail(lines)
