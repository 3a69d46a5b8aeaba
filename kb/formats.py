"""File formats and their traits, declared once.

A format is the name a parser stores in ``files.format`` (:data:`Format` names the ones kb ships).
What the rest of kb needs to know about a format is a :class:`Traits`, never a string set of its
own: how the key path at a line is read (:mod:`kb.linepaths`), whether secrets are judged by key
(ingest), which formats configure environments (drift) and carry ``${VAR}`` references (graph),
which JSON Schema can validate, which are prose (semantic duplicates).

The formats kb ships are declared here, in :data:`BUILTIN`: searching, drift and the report run in
processes that never load a parser, and must still know them. A parser of a new format (a plugin,
or a new module under ``ingest/parsers/``) declares its traits on itself (``traits = Traits(...)``);
:func:`kb.ingest.parsers.base.register` passes them to :func:`declare`, so the format counts wherever its
parser is registered (ingest, validation). Each view below (:func:`formats_with`) follows what is
declared, plugins included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

__all__ = [
    "Format",
    "LinePaths",
    "Variables",
    "Traits",
    "BUILTIN",
    "SOURCE_SUFFIXES",
    "declare",
    "traits",
    "declared",
    "declare_saved",
    "plugin_traits",
    "formats_with",
]

SOURCE_SUFFIXES = frozenset(
    (
        *(".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".java", ".kt", ".kts", ".scala", ".groovy"),
        *(".cs", ".fs", ".vb", ".go", ".rs", ".rb", ".php", ".c", ".h", ".cc", ".cpp", ".hpp", ".cxx", ".m", ".mm"),
        *(".swift", ".dart", ".lua", ".pl", ".pm", ".r", ".jl", ".ex", ".exs", ".erl", ".clj", ".vue", ".svelte"),
        *(".twig", ".html", ".htm", ".erb", ".ejs", ".hbs", ".mustache", ".jsp", ".cshtml", ".razor"),
    )
)
"""Suffixes of a program's source files (and web templates): kb reads them as text. Secret rules
take only string literals there; search counts a definition there below one in configuration."""

Format = Literal[
    "json", "yaml", "toml", "ini", "dotenv", "properties", "markdown", "dockerfile", "helm-template", "text"
]
"""The formats kb ships a parser for."""

LinePaths = Literal["tree", "table", "env", "properties", "headings", "braces"]
"""How :func:`kb.linepaths.line_key_paths` reads the key path at a line: by indentation (``tree``),
``[table]`` headers (``table``), ``KEY=value`` variables (``env``), ``key=value`` properties
(``properties``), Markdown heading trails (``headings``), blocks in braces (``braces``: HCL's
``type "label" {`` and ``name = value``)."""

Variables = Literal["loader", "shell", "spring"]
"""Which ``${VAR}`` references a format's values carry: those a config loader interpolates
(``loader``), a shell's (``shell``), Spring's ``${name:default}`` (``spring``)."""


@dataclass(frozen=True, slots=True)
class Traits:
    """What kb needs to know about a format; the defaults suit plain text."""

    structured: bool = False
    """Keys with values: a secret is recognised by its key's name as well as its shape."""
    line_paths: LinePaths | None = None
    """How the key path at a line is read from a fragment of the file (None: the section's)."""
    env_file: bool = False
    """Defines environment variables for the files of its folder (a ``.env`` file)."""
    layered: bool = False
    """Configuration that sibling files override per environment (drift, effective values)."""
    variables: Variables | None = None
    """The ``${VAR}`` references its values carry, checked by the undefined-variable rule."""
    schema: bool = False
    """Data a JSON Schema can validate."""
    prose: bool = False
    """Text compared by meaning (semantic duplicates)."""


BUILTIN: dict[str, Traits] = {
    "json": Traits(structured=True, line_paths="tree", layered=True, variables="loader", schema=True),
    "yaml": Traits(structured=True, line_paths="tree", layered=True, variables="loader", schema=True),
    "toml": Traits(structured=True, line_paths="table", layered=True, variables="loader", schema=True),
    "ini": Traits(structured=True, line_paths="table", layered=True, variables="loader"),
    "dotenv": Traits(structured=True, line_paths="env", env_file=True, layered=True, variables="shell"),
    "properties": Traits(structured=True, line_paths="properties", layered=True, variables="spring"),
    "dockerfile": Traits(structured=True),
    "helm-template": Traits(line_paths="tree"),
    "markdown": Traits(line_paths="headings", prose=True),
    "text": Traits(prose=True),
}
"""The traits of the formats kb ships (:data:`Format`)."""

_DECLARED: dict[str, Traits] = dict(BUILTIN)
_version = 0


def declare(name: str, declared: Traits) -> None:
    """Declare (or replace) the traits of format ``name``."""
    global _DECLARED, _version
    _DECLARED = {**_DECLARED, name: declared}  # a new dict: a reader iterating the old one is safe
    _version += 1


def traits(name: str | None) -> Traits:
    """The traits of format ``name``; an undeclared one has the defaults (plain text)."""
    return _DECLARED.get(name or "", _PLAIN)


def declared() -> dict[str, Traits]:
    """Every declared format and its traits."""
    return dict(_DECLARED)


def plugin_traits() -> dict[str, dict[str, object]]:
    """The traits of the formats declared beyond :data:`BUILTIN` (by their parsers), as a KB saves
    them: a process that searches it loads no parser and must still know them."""
    return {name: asdict(t) for name, t in _DECLARED.items() if name not in BUILTIN}


def declare_saved(saved: Mapping[str, Mapping[str, object]]) -> None:
    """Declare the formats a KB saved (:func:`plugin_traits`) that this process has not declared
    (the first KB opened in a process decides, as a parser registered first would). A trait this
    kb does not know, or a value it cannot take, is left at its default."""
    allowed: dict[str, tuple[object, ...]] = {
        "line_paths": (None, *get_args(LinePaths)),
        "variables": (None, *get_args(Variables)),
    }
    for name, saved_traits in saved.items():
        if name in _DECLARED or not isinstance(saved_traits, Mapping):
            continue
        kept: dict[str, object] = {}
        for f in fields(Traits):
            v = saved_traits.get(f.name)
            if f.name in allowed:
                if v in allowed[f.name]:
                    kept[f.name] = v
            elif isinstance(v, bool):
                kept[f.name] = v
        declare(name, Traits(**kept))  # type: ignore[arg-type]


_PLAIN = Traits()


class FormatSet:
    """The formats whose traits pass a test, following what is declared (a plugin declared later
    is in): supports ``in``, iteration and ``len``, like the frozenset it replaces."""

    __slots__ = ("_test", "_seen", "_names")

    def __init__(self, test: Callable[[Traits], bool]) -> None:
        self._test = test
        self._seen = -1
        self._names: frozenset[str] = frozenset()

    def _current(self) -> frozenset[str]:
        version, table = _version, _DECLARED  # read before computing: a later declare re-computes
        if self._seen != version:
            self._names = frozenset(n for n, t in table.items() if self._test(t))
            self._seen = version
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._current()

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._current()))

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"FormatSet({sorted(self._current())})"


def formats_with(test: Callable[[Traits], bool]) -> FormatSet:
    """The formats whose :class:`Traits` pass ``test`` (a live view)."""
    return FormatSet(test)
