"""Response envelopes of the HTTP API.

The items inside them are kb's public models (:mod:`kb.types`), never redefined here, so the API,
the CLI's ``--json`` and the Python API share one set of field names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kb.types import DriftGroup, DuplicateGroup, FileInfo, Finding, Hit, KeyChange

__all__ = [
    "Problem",
    "SearchResponse",
    "FindingsPage",
    "FilesPage",
    "ChangesPage",
    "RecordRow",
    "FileDetail",
    "DuplicatesResponse",
    "DriftResponse",
    "GraphLink",
    "GraphResponse",
    "Stats",
    "Health",
    "IngestStarted",
]


SearchMode = Literal["hybrid", "semantic", "keyword"]
GraphDirection = Literal["deps", "impact"]


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(_Envelope):
    """The body of every error response."""

    status_code: int
    detail: str = Field(description="What was wrong and how to fix it.")


class SearchResponse(_Envelope):
    query: str
    mode: SearchMode
    hits: list[Hit]
    generation: int | None = Field(default=None, description="The published generation that answered.")
    embedded_share: float = Field(
        default=1.0,
        description="Share of the KB's texts embedded (below 1 while an embedding runs or after an interrupted one).",
    )
    notice: str | None = Field(default=None, description="Why semantic results may be partial.")
    grouped: bool = Field(
        default=False, description="Each hit is a different file (a 'which ...' question, or all=true)."
    )


class _Page(_Envelope):
    total: int = Field(description="Rows matching the filters, across all pages.")
    offset: int
    limit: int


class FindingsPage(_Page):
    findings: list[Finding]


class FilesPage(_Page):
    files: list[FileInfo]


class ChangesPage(_Page):
    changes: list[KeyChange] = Field(description="Key-level changes, newest first.")


class RecordRow(_Envelope):
    """One flattened leaf of a catalogued file (the ``records`` table)."""

    doc: int = Field(description="Document index in a multi-document file (YAML ---), from 0.")
    key_path: str
    value: str | None = Field(description="The value as text; secrets are already redacted.")
    value_type: str = Field(description="str | int | float | bool | null | object | array")
    line: int | None = None


class FileDetail(_Page):
    file: FileInfo
    records: list[RecordRow] = Field(description="A page of the file's records, in line order.")
    findings: list[Finding] = Field(description="Every stored finding on this file.")


class DuplicatesResponse(_Envelope):
    groups: list[DuplicateGroup]


class DriftResponse(_Envelope):
    groups: list[DriftGroup]


class GraphLink(_Envelope):
    """A file reached from (deps) or reaching (impact) the asked-for file, as ``kb graph --json`` prints it."""

    path: str
    depth: int = Field(description="1 for a direct reference; n for a file n references away.")
    kind: str | None = Field(default=None, description="Reference kind of the edge (path, json-schema-ref, ...).")
    kinds: str | None = Field(default=None, description="Every reference kind on the edge, comma-separated.")
    line: int | None = Field(default=None, description="Line of the reference in the referring file.")
    key_path: str | None = None
    count: int | None = Field(default=None, description="References along the edge.")
    via: str | None = Field(default=None, description="For an indirect file: the neighbour it is reached through.")


class GraphResponse(_Envelope):
    path: str
    direction: GraphDirection = Field(
        description="deps: what the file references; impact: every file that depends on it, directly or not."
    )
    transitive: bool
    files: list[GraphLink]


class Stats(_Envelope):
    db: str
    root: str | None = None
    files: int
    bytes: int
    records: int
    sections: int
    chunks: int
    findings: int
    files_by_format: dict[str, int]
    files_by_status: dict[str, int]
    findings_by_rule: dict[str, int]
    findings_by_severity: dict[str, int]
    last_run: dict[str, Any] | None = None
    chunk_texts: int | None = Field(default=None, description="Distinct chunk texts.")
    chunk_texts_not_embedded: int | None = Field(
        default=None, description="Distinct texts the skip rules keep out of the model (data, hashes, lock files)."
    )
    generation: int | None = Field(default=None, description="The published generation counted.")
    embedded: int | None = Field(default=None, description="Distinct texts with a vector in it...")
    embeddable: int | None = Field(default=None, description="...of those it wants vectors for.")
    embedded_share: float | None = None
    embedder: str | None = Field(default=None, description="The model the vectors come from.")


class Health(_Envelope):
    status: Literal["ok"]
    files: int
    chunks: int
    ingesting: bool
    writable: bool
    watching: bool
    embedder: str | None = None
    generation: int = Field(description="Bumped after every re-ingest this server ran.")
    last_ingest_error: str | None = None


class IngestStarted(_Envelope):
    status: Literal["running"]
    detail: str
