"""Response envelopes of the HTTP API.

The items inside them, and the pages the façade returns (``FindingsPage``, ``FilesPage``,
``ChangesPage``, ``FileDetail``), are kb's public models (:mod:`kb.types`), re-exported here, never
redefined, so the API, the CLI's ``--json``, the MCP tools and the Python API share one set of field
names.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kb.types import (
    ChangesPage,
    DriftGroup,
    DuplicateGroup,
    FileDetail,
    FilesPage,
    FindingsPage,
    GraphDirection,
    GraphLink,
    Hit,
    RecordRow,
)

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
    embedded: int = Field(default=0, description="Texts embedded in the generation that answered.")
    embeddable: int = Field(default=0, description="Texts that generation has to embed in all.")
    embedded_share: float = Field(
        default=1.0,
        description="Share of the KB's texts embedded (below 1 while an embedding runs or after an interrupted one).",
    )
    notice: str | None = Field(default=None, description="Why semantic results may be partial.")
    grouped: bool = Field(
        default=False, description="Each hit is a different file (a 'which ...' question, or all=true)."
    )


class DuplicatesResponse(_Envelope):
    groups: list[DuplicateGroup]


class DriftResponse(_Envelope):
    groups: list[DriftGroup]


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
