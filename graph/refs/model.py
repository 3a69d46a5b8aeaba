"""The reference row, its kinds, and the typed collector every extractor adds to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kb.keypaths import join_key_path, split_key_path

__all__ = [
    "REFERENCE_COLUMNS",
    "KINDS",
    "CYCLE_KINDS",
    "Status",
    "Reference",
    "ReferenceSink",
    "last_key",
    "service_node",
]

REFERENCE_COLUMNS: list[tuple[str, str]] = [
    ("path", "VARCHAR"),
    ("doc", "INTEGER"),
    ("line", "INTEGER"),
    ("key_path", "VARCHAR"),
    ("kind", "VARCHAR"),
    ("target", "VARCHAR"),
    ("resolved", "VARCHAR"),
    ("status", "VARCHAR"),
    ("severity", "VARCHAR"),
    ("detail", "VARCHAR"),
]

KINDS = (
    "file",
    "include",
    "schema",
    "json-ref",
    "compose-extends",
    "compose-env-file",
    "compose-depends-on",
    "compose-volume",
    "compose-build-context",
    "compose-dockerfile",
    "compose-include",
    "compose-file",
    "variable",
    "markdown-link",
    "k8s-configmap",
    "k8s-secret",
    "helm-value",
)

# References whose cycles are errors (a file that includes itself, services that wait on each
# other). ``$ref`` recursion and Markdown link loops are normal, so they are not here.
CYCLE_KINDS = frozenset({"include", "compose-extends", "compose-depends-on", "compose-include"})

Status = Literal["ok", "broken", "undefined", "external", "optional"]


@dataclass(slots=True)
class Reference:
    """One reference from ``path`` (line ``line``, at ``key_path``) to ``target``.

    ``resolved`` is the corpus-relative path it resolves to, with ``#pointer`` when it points
    inside a file (``schemas/a.json#/$defs/x``, ``compose.yaml#services.db``); ``None`` when it
    does not resolve. ``severity`` is what a broken reference would weigh; ``detail`` says what
    exactly is missing and is used in the finding's message.
    """

    path: str
    doc: int
    line: int | None
    key_path: str
    kind: str
    target: str
    resolved: str | None
    status: str
    severity: str = "error"
    detail: str = ""

    def row(self) -> tuple[str, int, int | None, str, str, str, str | None, str, str, str]:
        return (
            self.path,
            self.doc,
            self.line,
            self.key_path,
            self.kind,
            self.target,
            self.resolved,
            self.status,
            self.severity,
            self.detail,
        )


class ReferenceSink:
    """The references one extractor finds, in the order it finds them."""

    def __init__(self) -> None:
        self.references: list[Reference] = []

    def add(
        self,
        path: str,
        doc: int,
        line: int | None,
        key_path: str,
        kind: str,
        target: str,
        resolved: str | None,
        status: Status,
        severity: str = "error",
        detail: str = "",
    ) -> Reference:
        ref = Reference(path, doc, line, key_path, kind, target, resolved, status, severity, detail)
        self.references.append(ref)
        return ref


def last_key(kp: str) -> str:
    """The last mapping key of a key path, sequence indexes dropped, lower-cased."""
    for p in reversed(split_key_path(kp)):
        if isinstance(p, str):
            return p.lower()
    return ""


def service_node(path: str, key_path: str) -> str:
    """Node id of the compose service a key path lies in: ``compose.yaml#services.web``."""
    parts = split_key_path(key_path)
    if len(parts) >= 2 and parts[0] == "services":
        return f"{path}#{join_key_path(parts[:2])}"
    return path
