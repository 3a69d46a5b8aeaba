"""The parser protocol, the registry, and helpers shared by parsers.

A parser is pure: text in, a :class:`kb.types.ParsedFile` out; no I/O, no embedding, no secrets
handling (the pipeline redacts afterwards). A failure is a ``Problem(rule="parse-error")`` in the
result, never an exception: :func:`parse_text` also turns any unexpected exception into one.

Built-in parsers register themselves exactly as an outside plugin would::

    from kb.ingest.parsers.base import register
    register(MyXmlParser())      # with ``traits = Traits(...)`` when the format is new to kb
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol, runtime_checkable

from kb.formats import declare
from kb.types import ParsedFile, Problem, Record, Section

__all__ = [
    "Limits",
    "Parser",
    "register",
    "registry",
    "parser_by_name",
    "format_for",
    "parse_text",
    "strip_bom",
    "key_join",
    "index_join",
    "flatten",
    "sections_from_ranges",
    "DepthError",
    "TooManyRecordsError",
    "KeyPathsTooLongError",
    "MAX_KEY_PATH_CHARS",
]


@dataclass(frozen=True, slots=True)
class Limits:
    max_records: int = 200_000
    max_depth: int = 500


class DepthError(Exception):
    """Nesting deeper than ``Limits.max_depth``."""


MAX_KEY_PATH_CHARS = 32 * 1024 * 1024
"""Characters all key paths of one file may add up to. Each record repeats its ancestors' keys, so
long keys nested deep grow quadratically with the file: past this the file is a parse error
(``KeyPathsTooLongError``), not gigabytes of key paths."""


class KeyPathsTooLongError(DepthError):
    """Key paths adding up to more than :data:`MAX_KEY_PATH_CHARS` characters."""

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or f"key paths add up to more than {MAX_KEY_PATH_CHARS:,} characters "
            "(very long keys nested deep); shorten the keys or flatten the structure"
        )


class TooManyRecordsError(Exception):
    """More records than ``Limits.max_records`` (e.g. a YAML alias bomb)."""


@runtime_checkable
class Parser(Protocol):
    # Read-only members: the registry only reads them, so a parser may declare them as plain
    # class attributes (``name = "json"``, ``suffixes = (".json",)``), as ClassVars or as
    # properties.

    @property
    def name(self) -> str:
        """Format name stored in ``files.format`` (``json``, ``yaml``, ...)."""
        ...

    @property
    def suffixes(self) -> tuple[str, ...]:
        """Lower-case file suffixes handled, with the dot (``.yaml``)."""
        ...

    @property
    def filenames(self) -> tuple[str, ...]:
        """Exact lower-case file names handled (``dockerfile``, ``.env``); may be empty."""
        ...

    # Optional: ``traits`` (a kb.formats.Traits), the format's traits. The formats kb ships are
    # declared in kb.formats.BUILTIN; a new format declares its own here.

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile: ...


_REGISTRY: dict[str, Parser] = {}


def register(parser: Parser) -> Parser:
    """Add (or replace) a parser under ``parser.name``; a parser that declares its format's
    ``traits`` (:class:`kb.formats.Traits`) declares them for the rest of kb (:func:`kb.formats.declare`)."""
    _REGISTRY[parser.name] = parser
    own = getattr(parser, "traits", None)
    if own is not None:
        declare(parser.name, own)
    return parser


def registry() -> dict[str, Parser]:
    _load_builtins()
    return dict(_REGISTRY)


def parser_by_name(name: str) -> Parser:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"No parser named '{name}' (known: {known}).") from None


_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import kb.ingest.parsers  # noqa: F401  (registers the built-ins)


# .env.patch, .env.sh, .env.md: a file about an env file, not one (.env.production, .env.example are)
_NOT_ENV_SUFFIXES = frozenset(
    (".patch", ".diff", ".orig", ".rej", ".bak", ".swp", ".sh", ".bash", ".ps1", ".py", ".js", ".ts", ".md")
)


def format_for(path: PurePosixPath, *, in_helm_templates: bool = False) -> str:
    """Pick a format name for a path.

    ``in_helm_templates`` is true for files under ``templates/`` of a folder holding a
    ``Chart.yaml`` (Go templates, not YAML). Exact file names win over suffixes; names starting
    with ``.env`` (``.env.production``) or ending in ``.env`` are dotenv (and the templates
    ``env.example``, ``env.sample``... by name); ``Dockerfile*`` and
    ``*.dockerfile`` are Dockerfiles; anything else falls back to ``text``.
    """
    _load_builtins()
    name = path.name.lower()
    suffix = PurePosixPath(name).suffix
    if in_helm_templates and suffix in (".yaml", ".yml", ".tpl", ".txt", ".json"):
        return "helm-template"
    for parser in _REGISTRY.values():
        if name in parser.filenames:
            return parser.name
    if (name.startswith(".env") and suffix not in _NOT_ENV_SUFFIXES) or name.endswith(".env"):
        return "dotenv" if "dotenv" in _REGISTRY else "text"
    if name.startswith("dockerfile") or name.endswith(".dockerfile"):
        return "dockerfile" if "dockerfile" in _REGISTRY else "text"
    for parser in _REGISTRY.values():
        if suffix and suffix in parser.suffixes:
            return parser.name
    return "text"


def strip_bom(text: str) -> str:
    """The text without the byte-order mark that opens it, if any: parsers never see one."""
    return text[1:] if text.startswith("\ufeff") else text


def parse_text(fmt: str, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
    """Run the parser for ``fmt`` on ``text`` (its BOM removed); any exception becomes a
    parse-error problem."""
    parser = parser_by_name(fmt)
    text = strip_bom(text)
    try:
        return parser.parse(text, path, limits)
    except RecursionError:
        return _failed(
            fmt,
            f"nesting is too deep to parse (over Python's recursion limit); "
            f"flatten the structure below {limits.max_depth} levels",
        )
    except DepthError as exc:
        return _failed(fmt, str(exc) or f"nesting deeper than {limits.max_depth} levels")
    except TooManyRecordsError as exc:
        return _failed(fmt, str(exc) or f"more than {limits.max_records} values")
    except MemoryError:
        return _failed(fmt, "ran out of memory while parsing; the file is too large or self-expanding")
    except Exception as exc:
        return _failed(fmt, f"{fmt} parser failed: {type(exc).__name__}: {_safe(str(exc))}")


def _failed(fmt: str, message: str) -> ParsedFile:
    return ParsedFile(format=fmt, problems=[Problem("parse-error", "error", message, line=None)])


def _safe(msg: str) -> str:
    """Error text without quoted source (which could contain a secret): first line, 200 chars."""
    return msg.splitlines()[0][:200] if msg else ""


# ---------------------------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------------------------

# Key paths are defined once, in kb.keypaths; re-exported here for parsers (and plugins).
from kb.keypaths import index_join, key_join  # noqa: E402


def flatten(
    data: Any,
    limits: Limits,
    line_of: Any = None,
    *,
    prefix: str = "",
    doc: int = 0,
    default_line: int = 1,
) -> list[Record]:
    """Flatten a Python tree into records, iteratively (no recursion, so depth is only capped).

    ``line_of(key_path) -> int | None`` supplies line numbers; a path without one inherits its
    nearest ancestor's line, else ``default_line``.
    """
    out: list[Record] = []
    chars = 0
    stack: list[tuple[str, Any, int, int]] = [(prefix, data, 0, default_line)]
    while stack:
        path, value, depth, parent_line = stack.pop()
        if depth > limits.max_depth:
            raise DepthError(f"nesting deeper than {limits.max_depth} levels at '{path}'")
        line = parent_line
        if line_of is not None and path:
            found = line_of(path)
            if found:
                line = found
        if isinstance(value, dict):
            if not value:
                out.append(Record(path, {}, line, doc))
            else:
                for k in reversed(list(value)):
                    kp = key_join(path, k)
                    chars += len(kp)
                    stack.append((kp, value[k], depth + 1, line))
                if chars > MAX_KEY_PATH_CHARS:
                    raise KeyPathsTooLongError
        elif isinstance(value, (list, tuple)):
            if not value:
                out.append(Record(path, [], line, doc))
            else:
                for i in range(len(value) - 1, -1, -1):
                    stack.append((index_join(path, i), value[i], depth + 1, line))
        else:
            if not isinstance(value, (str, int, float, bool)) and value is not None:
                value = str(value)  # dates, times, ...
            out.append(Record(path, value, line, doc))
        if len(out) > limits.max_records:
            raise TooManyRecordsError(
                f"more than {limits.max_records} values; raise max_records_per_file "
                f"if this file is genuinely that large"
            )
    return out


def sections_from_ranges(lines: list[str], ranges: list[tuple[str, int, int]], kind: str = "block") -> list[Section]:
    """Build sections from ``(key_path, line_start, line_end)`` with 1-based inclusive lines."""
    out = []
    for key_path, start, end in ranges:
        start = max(1, start)
        end = max(start, min(end, len(lines)))
        out.append(Section(key_path, start, end, "\n".join(lines[start - 1 : end]), kind))
    return out


# ---------------------------------------------------------------------------------------------
# Helpers shared by the built-in parsers (additions; the names above are the public contract)
# ---------------------------------------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Source lines for sections: split on ``\\n`` only, so joining them back is exact."""
    return text.split("\n")


def line_col(text: str, pos: int) -> tuple[int, int]:
    """1-based line and column of character offset ``pos``."""
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def parse_error(fmt_label: str, what: str, line: int | None, column: int | None = None) -> Problem:
    """A ``parse-error`` problem whose message names the place but never quotes the source."""
    where = ""
    if line is not None:
        where = f" at line {line}" + (f" column {column}" if column is not None else "")
    return Problem("parse-error", "error", f"invalid {fmt_label}: {what}{where}", line=line)


def duplicate_key(key_path: str, line: int, first_line: int | None = None) -> Problem:
    first = f" (first defined at line {first_line})" if first_line else ""
    return Problem(
        "duplicate-key",
        "warning",
        f"duplicate key '{key_path}'{first}; the last value wins, remove one of them",
        line=line,
    )


class FlatRecords:
    """Records of a flat ``KEY=value`` file (.env, .properties), built in linear time.

    A repeated key's last value wins and its record moves to the last occurrence's line; each
    repeat adds a ``duplicate-key`` warning. More than ``limits.max_records`` distinct keys raises
    :class:`TooManyRecordsError`.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.data: dict[str, str] = {}
        self.problems: list[Problem] = []
        self._records: list[Record | None] = []
        self._index: dict[str, int] = {}
        self._first_line: dict[str, int] = {}

    def add(self, key: str, value: str, line: int) -> None:
        if key in self.data:
            self.problems.append(duplicate_key(key, line, self._first_line[key]))
            self._records[self._index[key]] = None
        else:
            self._first_line[key] = line
            if len(self._first_line) > self.limits.max_records:
                raise TooManyRecordsError(f"more than {self.limits.max_records} values")
        self.data[key] = value
        self._index[key] = len(self._records)
        self._records.append(Record(key, value, line))

    @property
    def records(self) -> list[Record]:
        return [r for r in self._records if r is not None]


def _is_blank(line: str) -> bool:
    return not line.strip()


def key_sections(
    lines: list[str],
    tops: Sequence[tuple[str, int, list[tuple[str, int]] | None]],
    last_line: int,
    *,
    comments: tuple[str, ...] = ("#",),
    split_over: int = 40,
    kind: str = "block",
) -> list[Section]:
    """Sections for a structured file: one per top-level key, or per second-level key when long.

    ``tops`` holds ``(key_path, line, children)`` in source order, where ``children`` are the
    ``(key_path, line)`` of a top-level mapping's own keys when it is a "mapping of mappings" worth
    splitting (else ``None``). A section runs from its key's line (pulled up over comment lines
    directly above it) to the line before the next one (``last_line`` for the last), with trailing
    blank lines trimmed. A block longer than ``split_over`` lines with children is split into one
    section per child, the first starting at the parent's line.
    """
    n = min(last_line, len(lines))
    ordered: list[tuple[str, int, list[tuple[str, int]] | None]] = []
    for key_path, line, children in tops:
        if ordered and line <= ordered[-1][1]:
            continue  # several keys on one line (flow style): the first one stands for them
        if line > n:
            break
        ordered.append((key_path, line, children))
    starts = [_pull_up(lines, line, ordered[i - 1][1] if i else 0, comments) for i, (_, line, _) in enumerate(ordered)]
    ranges: list[tuple[str, int, int]] = []
    for i, (key_path, _line, children) in enumerate(ordered):
        start = starts[i]
        end = _trim_end(lines, start, (starts[i + 1] - 1) if i + 1 < len(ordered) else n)
        if children and len(children) >= 2 and end - start + 1 > split_over:
            kids: list[tuple[str, int]] = []
            for kp, ln in children:  # in order and inside the block (an alias's keys are not)
                if start < ln <= end and (not kids or ln > kids[-1][1]):
                    kids.append((kp, ln))
            if len(kids) >= 2:
                kid_starts = [start] + [
                    _pull_up(lines, ln, kids[j - 1][1], comments) for j, (_, ln) in enumerate(kids) if j
                ]
                for j, (kp, _ln) in enumerate(kids):
                    ks = kid_starts[j]
                    ke = _trim_end(lines, ks, (kid_starts[j + 1] - 1) if j + 1 < len(kids) else end)
                    ranges.append((kp, ks, ke))
                continue
        ranges.append((key_path, start, end))
    return sections_from_ranges(lines, ranges, kind)


def _pull_up(lines: list[str], line: int, floor: int, comments: tuple[str, ...]) -> int:
    """Move a section start up over the comment lines directly above it (not past ``floor``)."""
    start = line
    while start - 1 > floor and comments and lines[start - 2].lstrip().startswith(comments):
        start -= 1
    return start


def _trim_end(lines: list[str], start: int, end: int) -> int:
    while end > start and _is_blank(lines[end - 1]):
        end -= 1
    return end


def paragraph_ranges(lines: list[str], max_lines: int = 30, breaks: set[int] | None = None) -> list[tuple[int, int]]:
    """Blank-line separated paragraphs, merged while the span stays within ``max_lines``.

    A paragraph starting on a line in ``breaks`` is never merged into the one before it.
    """
    paras: list[tuple[int, int]] = []
    start = None
    for i, line in enumerate(lines, 1):
        if line.strip():
            if start is None:
                start = i
        elif start is not None:
            paras.append((start, i - 1))
            start = None
    if start is not None:
        paras.append((start, len(lines)))
    out: list[tuple[int, int]] = []
    for s, e in paras:
        while e - s + 1 > max_lines:  # one long paragraph: cut it
            out.append((s, s + max_lines - 1))
            s += max_lines
        if out and e - out[-1][0] + 1 <= max_lines and not (breaks and s in breaks):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def paragraph_sections(lines: list[str], max_lines: int = 30, kind: str = "lines", key_path: str = "") -> list[Section]:
    """Sections for unstructured text (and for files that failed to parse)."""
    return sections_from_ranges(lines, [(key_path, s, e) for s, e in paragraph_ranges(lines, max_lines)], kind)


def json_scalar(value: Any) -> Any:
    """A value a parser produced, as a JSON scalar: dates and non-finite floats become strings."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        finite = value == value and value not in (float("inf"), float("-inf"))
        return value if finite else str(value)
    iso = getattr(value, "isoformat", None)
    return iso() if iso is not None else str(value)


def line_group_sections(
    lines: list[str],
    entries: list[tuple[str, int, int]],
    comments: tuple[str, ...] = ("#",),
    kind: str = "lines",
) -> list[Section]:
    """Sections for flat ``KEY=value`` files (dotenv, properties).

    A group is a run of consecutive non-blank lines; a comment line right after an entry starts a
    new group (it heads the lines below it). ``entries`` are ``(key, first line, last line)`` of
    each logical entry, so a multi-line value (even one holding blank lines) stays in one group.
    The group's key path is its first entry's key ("" for a group of comments only).
    """
    first_key: dict[int, str] = {}
    inside: set[int] = set()
    for key, start, end in entries:
        first_key.setdefault(start, key)
        inside.update(range(start + 1, end + 1))
    ranges: list[tuple[str, int, int]] = []
    group: list[Any] | None = None  # [key, start, end, last line was an entry]
    for n, line in enumerate(lines, 1):
        if n in inside:
            if group is not None:
                group[2] = n
            continue
        stripped = line.strip()
        if not stripped:
            if group is not None:
                ranges.append((group[0], group[1], group[2]))
                group = None
            continue
        is_comment = stripped.startswith(comments) and n not in first_key
        if group is not None and is_comment and group[3]:
            ranges.append((group[0], group[1], group[2]))
            group = None
        if group is None:
            group = ["", n, n, False]
        group[2] = n
        if n in first_key:
            if not group[0]:
                group[0] = first_key[n]
            group[3] = True
        elif is_comment:
            group[3] = False
    if group is not None:
        ranges.append((group[0], group[1], group[2]))
    return sections_from_ranges(lines, ranges, kind)
