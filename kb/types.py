"""kb's types.

Two families:

* Internal, hot-path dataclasses (``Record``, ``Section``, ``Problem``, ``ParsedFile``) produced by
  parsers in bulk. They are plain ``slots`` dataclasses: pydantic validation of millions of records
  would dominate ingest time.
* Public pydantic models (``FileInfo``, ``Finding``, ``Hit``, ``DuplicateMember``, ``DuplicateGroup``,
  ``DriftGroup``, ``RunSummary``, ``KeyChange``, ``KeyHistory``, the records, links and pages the
  façade returns): one definition that serves the CLI's ``--json``, the HTTP API's schema, the MCP
  tools and the Python API. Their field names are a contract other tools parse; do not rename them.
  A page (``FindingsPage``, ``FilesPage``, ``ChangesPage``, ``FileDetail``) is a slice of a longer
  list with the list's ``total``; ``to_frame()`` gives its rows as a pandas DataFrame (notebooks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Severity",
    "Record",
    "Section",
    "Problem",
    "ParsedFile",
    "Chunk",
    "FileInfo",
    "Finding",
    "Hit",
    "AnswerLine",
    "DuplicateMember",
    "DuplicateGroup",
    "DriftMissing",
    "DriftDiffering",
    "DriftGroup",
    "RunSummary",
    "KeyChange",
    "KeyHistory",
    "RecordRow",
    "KeyRecord",
    "GraphDirection",
    "GraphLink",
    "KeyLocation",
    "LocatedDriftGroup",
    "EffectiveValue",
    "FindingsPage",
    "FilesPage",
    "ChangesPage",
    "FileDetail",
    "Problems",
    "SEVERITIES",
    "CHANGE_KINDS",
]

Severity = Literal["error", "warning", "info"]
ChangeKind = Literal["added", "removed", "changed", "moved", "broken"]
DuplicateKind = Literal["exact", "canonical", "block", "near", "semantic"]
GraphDirection = Literal["deps", "impact"]
CHANGE_KINDS: tuple[str, ...] = ("added", "removed", "changed", "moved", "broken")
SEVERITIES: tuple[str, ...] = ("error", "warning", "info")


# ---------------------------------------------------------------------------------------------
# Internal, produced by parsers
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One leaf of a parsed file, flattened.

    ``key_path`` uses dots for mapping keys and ``[i]`` for sequence items, e.g.
    ``services.api.ports[0]``; a key that itself contains a dot, a bracket or a space is quoted as
    ``["a.b"]``. ``value`` is a JSON scalar (str, int, float, bool, None); an empty mapping or
    sequence is a record whose value is ``{}`` or ``[]``. ``line`` is 1-based.
    """

    key_path: str
    value: Any
    line: int
    doc: int = 0  # document index for multi-document files (YAML ``---``)


@dataclass(slots=True)
class Section:
    """A coherent region of a file, later used for chunking.

    For structured formats, a top-level key (or a service block) with its key path; for Markdown, a
    heading and its body (``key_path`` is the heading trail joined by `` > ``); for ``.env`` and
    plain text, a group of lines. ``text`` is the source text of lines ``line_start..line_end``
    (1-based, inclusive).
    """

    key_path: str
    line_start: int
    line_end: int
    text: str
    kind: str = "block"  # block | heading | lines | template | document


@dataclass(slots=True)
class Problem:
    """Something wrong found while reading or parsing one file; becomes a ``Finding``."""

    rule: str
    severity: str
    message: str
    line: int | None = None
    target: str | None = None
    fingerprint: str | None = None


@dataclass(slots=True)
class ParsedFile:
    """What a parser returns for one file.

    ``documents`` holds the parsed data (one entry per YAML document; one for JSON/TOML/...), used
    for canonical duplicate detection and schema validation; it is empty for unstructured formats
    or when the data could not be built safely (a capped alias bomb).
    """

    format: str
    records: list[Record] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class Chunk:
    """A unit of search: a section (or part of one) with its context prepended to ``text``.

    ``text`` is what is embedded and keyword-indexed (already redacted); ``ordinal`` numbers the
    chunks of one file, so ``f"{path}#{ordinal}"`` identifies a chunk.
    """

    ordinal: int
    key_path: str
    line_start: int
    line_end: int
    text: str


# ---------------------------------------------------------------------------------------------
# Public models
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FileInfo(_Model):
    """A catalogued file."""

    path: str = Field(description="Path relative to the corpus root, with '/' separators.")
    format: str
    size: int
    sha256: str | None = None
    mtime: float | None = None
    status: str = Field(description="ok | error | skipped")
    records: int = 0


DOCUMENTED_COPIES = ". The same value is written in "
"""How a secret's finding starts the list of the documentation that repeats it (see
:data:`kb.catalogue.SHOWN_FINDINGS`); the list ends with :data:`DOCUMENTED_END`."""
DOCUMENTED_END = " (documentation): change it there too"
_DOCUMENTED = re.compile(re.escape(DOCUMENTED_COPIES) + r".*" + re.escape(DOCUMENTED_END) + r"$", re.S)


def stable_message(message: str) -> str:
    """A finding's message without its list of documentation copies (which moves with them)."""
    return _DOCUMENTED.sub("", message)


class Finding(_Model):
    """A problem found in the tree: parse errors, secrets, broken references, drift, ..."""

    rule: str = Field(description="e.g. parse-error, plaintext-secret, broken-reference")
    severity: Severity
    path: str
    line: int | None = None
    message: str = Field(description="What is wrong and how to fix it.")
    target: str | None = None
    fingerprint: str | None = Field(
        default=None, description="For plaintext-secret: a hash of the value, never the value."
    )

    def key(self) -> tuple[str, str, str | None, str]:
        """What one finding is from run to run (``kb validate --baseline``, SARIF fingerprints):
        rule, path, target and message, without the documentation copies a secret's message lists."""
        return (self.rule, self.path, self.target, stable_message(self.message))


class AnswerLine(_Model):
    """One line of a file that answers the query: a key with its value, a Markdown sentence, a
    schema property. ``value`` is redacted like every stored text (a secret never appears)."""

    line: int = Field(description="1-based line in the file.")
    key_path: str | None = Field(default=None, description="The key at that line (a Markdown heading trail).")
    value: str | None = Field(default=None, description="The value on that line, as text (a sentence for prose).")


class Hit(_Model):
    """One search result."""

    path: str
    score: float
    line_start: int
    line_end: int
    key_path: str | None = None
    snippet: str
    format: str | None = None
    answer: list[AnswerLine] = Field(
        default_factory=list,
        description="The lines of the hit that answer the query, best first; line_start..line_end covers them.",
    )


class SearchResult(_Model):
    """A search's hits and the state of the generation that answered it."""

    query: str
    mode: str
    hits: list[Hit] = Field(default_factory=list)
    generation: int | None = None
    """The published generation searched."""
    embedded: int = 0
    """Distinct texts with a vector in that generation..."""
    embeddable: int = 0
    """...of the distinct texts it wants vectors for."""
    embedded_share: float = 1.0
    notice: str | None = None
    """Set when semantic results cover only part of the KB (an embedding still running or interrupted)."""
    grouped: bool = False
    """Each hit is a different file (a "which ..." question, or ``--all``)."""


class DuplicateMember(_Model):
    path: str
    key_path: str | None = None
    line_start: int | None = None
    line_end: int | None = None


class DuplicateGroup(_Model):
    kind: DuplicateKind
    similarity: float
    members: list[DuplicateMember]
    lines_saved: int = Field(default=0, description="Lines that folding the group would save.")
    suggestion: str | None = None


class DriftMissing(_Model):
    key_path: str
    missing_in: list[str]


class DriftDiffering(_Model):
    key_path: str
    values: dict[str, Any]


class DriftGroup(_Model):
    files: list[str]
    missing: list[DriftMissing] = Field(default_factory=list)
    differing: list[DriftDiffering] = Field(default_factory=list)


class RunSummary(_Model):
    """What one ingest did."""

    run_id: int
    root: str
    started_at: str
    finished_at: str | None = None
    status: str
    files_seen: int = 0
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    by_format: dict[str, int] = Field(default_factory=dict)
    findings_by_rule: dict[str, int] = Field(default_factory=dict)
    chunks_embedded: int = 0
    """Distinct chunk texts embedded by this run."""
    chunks_skipped: int = 0
    """Distinct chunk texts not embedded because they carry no meaning (data, hashes, lock files,
    release histories)."""
    embedder: str | None = None
    """What embedded this run's texts and why it was chosen, with the model's window:
    ``openvino bf16 (auto: AMX CPU) in 128-piece windows`` (None when the run embedded nothing)."""
    embedded_share: float = 1.0
    """Share of the KB's embeddable texts that have a vector once this run ended (below 1.0 after
    an interrupted or ``--no-embed`` run; the next ``kb ingest`` resumes)."""
    generation: int | None = None
    """The generation this run published last."""
    phases: dict[str, float] = Field(default_factory=dict)
    """Seconds per phase: catalogue, keyword, publish, model (loading it), embed, chroma (mirroring)."""
    seconds: float = 0.0
    key_changes: int = Field(default=0, description="Key-level changes this run recorded (kb changes).")
    history_commits: int = Field(default=0, description="git commits replayed by --git-history.")
    notes: list[str] = Field(default_factory=list, description="Things worth knowing about the run.")


class KeyChange(_Model):
    """One entry of the key-level change log (the ``changes`` table)."""

    run_id: int = Field(description="The ingest run that recorded it.")
    changed_at: datetime = Field(
        description="When it changed, UTC: the run's time, or the commit's for a replayed commit."
    )
    path: str
    doc: int = Field(default=0, description="Document index in a multi-document file (YAML ---), from 0.")
    key_path: str | None = Field(default=None, description="None for a whole-file entry (moved, broken).")
    change: ChangeKind = Field(
        description="added | removed | changed | moved (same content, new path) | "
        "broken (the file stopped parsing; its keys are not compared)"
    )
    old_value: str | None = Field(default=None, description="The value before, as text; secrets redacted.")
    new_value: str | None = Field(default=None, description="The value after, as text; secrets redacted.")
    old_type: str | None = None
    new_type: str | None = None
    line: int | None = Field(default=None, description="Line in the new file (in the old one for a removal).")
    old_path: str | None = Field(default=None, description="For a move: where the file was.")
    commit: str | None = Field(default=None, description="The git commit that last touched the line, when known.")
    author: str | None = Field(default=None, description="That commit's author, 'Name <email>'.")
    committed_at: datetime | None = Field(default=None, description="That commit's author date, UTC.")
    source: Literal["ingest", "git"] = Field(
        default="ingest", description="ingest: seen by an ingest; git: replayed from git history."
    )


class KeyHistory(_Model):
    """The history of one key (``kb blame FILE KEY``): its value now and every recorded change."""

    path: str
    key_path: str
    doc: int = 0
    value: str | None = Field(default=None, description="The current value (None when the key is gone).")
    value_type: str | None = None
    line: int | None = None
    exists: bool = Field(description="Whether the key is in the catalogue now.")
    commit: str | None = Field(default=None, description="git: the commit that last touched the key's line now.")
    author: str | None = None
    committed_at: datetime | None = None
    paths: list[str] = Field(default_factory=list, description="The file's earlier paths, when it moved.")
    history: list[KeyChange] = Field(default_factory=list, description="Recorded changes, newest first.")


# ---------------------------------------------------------------------------------------------
# What the façade's reads return: records, links, located drift, effective values, pages
# ---------------------------------------------------------------------------------------------


class RecordRow(_Model):
    """One flattened leaf of a catalogued file (the ``records`` table)."""

    doc: int = Field(description="Document index in a multi-document file (YAML ---), from 0.")
    key_path: str
    value: str | None = Field(description="The value as text; secrets are already redacted.")
    value_type: str = Field(description="str | int | float | bool | null | object | array")
    line: int | None = None


class KeyRecord(RecordRow):
    """One record of ``find_key``: a ``RecordRow`` with the file it is in."""

    path: str


class GraphLink(_Model):
    """A file reached from (deps) or reaching (impact) the asked-for file, as ``kb graph --json`` prints it."""

    path: str
    depth: int = Field(description="1 for a direct reference; n for a file n references away.")
    kind: str | None = Field(default=None, description="Reference kind of the edge (path, json-schema-ref, ...).")
    kinds: str | None = Field(default=None, description="Every reference kind on the edge, comma-separated.")
    line: int | None = Field(default=None, description="Line of the reference in the referring file.")
    key_path: str | None = None
    count: int | None = Field(default=None, description="References along the edge.")
    via: str | None = Field(default=None, description="For an indirect file: the neighbour it is reached through.")


class KeyLocation(_Model):
    path: str
    key_path: str
    line: int


class LocatedDriftGroup(DriftGroup):
    """A ``DriftGroup`` with the line of each key in each file that sets it."""

    locations: list[KeyLocation] = Field(default_factory=list)


class EffectiveValue(_Model):
    """One key of an environment's effective configuration (``kb drift --effective ENV --json``)."""

    group: str = Field(description="The sibling group, e.g. services/payments/config/*.yaml.")
    env: str
    key_path: str
    value: Any = Field(description="The final value, ${VAR} resolved; secrets are redacted.")
    path: str = Field(description="The file the value comes from.")
    line: int | None = None
    source: str = Field(description="path:line of the value.")
    layer: str = Field(description="base | env")
    variables: list[dict[str, str]] = Field(default_factory=list, description="Each ${VAR} used: name, source.")
    unresolved: list[str] = Field(default_factory=list, description="Variables left as written.")


class _Page(_Model):
    total: int = Field(description="Rows matching the filters, across all pages.")
    offset: int
    limit: int

    _rows: ClassVar[str] = ""

    def to_frame(self) -> Any:
        """This page's rows as a pandas DataFrame, one column per field."""
        import pandas as pd

        rows = getattr(self, self._rows)
        model = type(self).model_fields[self._rows].annotation.__args__[0]  # type: ignore[union-attr]
        return pd.DataFrame([r.model_dump() for r in rows], columns=list(model.model_fields))


class FindingsPage(_Page):
    findings: list[Finding]

    _rows: ClassVar[str] = "findings"


class FilesPage(_Page):
    files: list[FileInfo]

    _rows: ClassVar[str] = "files"


class ChangesPage(_Page):
    changes: list[KeyChange] = Field(description="Key-level changes, newest first.")

    _rows: ClassVar[str] = "changes"


class FileDetail(_Page):
    file: FileInfo
    records: list[RecordRow] = Field(description="A page of the file's records, in line order.")
    findings: list[Finding] = Field(description="Every stored finding on this file.")

    _rows: ClassVar[str] = "records"


class Problems(_Model):
    """What a check of the tree found (``kb validate``, the MCP ``validate`` tool): the rules' findings
    with ingest's, worst first, filtered by path and severity."""

    findings: list[Finding] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict, description="Findings by severity among those kept.")
    notes: list[str] = Field(default_factory=list, description="Schemas that could not be used, and why.")

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([f.model_dump() for f in self.findings], columns=list(Finding.model_fields))
