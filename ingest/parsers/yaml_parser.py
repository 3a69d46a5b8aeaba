"""YAML, multi-document, walked from PyYAML's node graph without its constructor.

``yaml.compose_all`` (libyaml when available) builds the node graph; aliases are shared nodes, so
composing an alias bomb is cheap. The walk below is iterative and counts every node visit: past
``Limits.max_records`` visits it stops with a ``parse-error`` and returns no records and no
documents. Calling the constructor would both expand the bomb and reject custom tags; walking
nodes instead tolerates any tag (CloudFormation ``!Ref``, ``!Sub``, ``!GetAtt``, ``!include`` ...):
a tagged scalar is its string, a tagged mapping or sequence is walked like any other.

Mapping keys are kept as their source text (``on:`` stays ``"on"``, ``1:`` stays ``"1"``), so key
paths and documents read like the file and stay JSON-compatible; values get YAML 1.1 types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kb.ingest.parsers.base import (
    MAX_KEY_PATH_CHARS,
    DepthError,
    KeyPathsTooLongError,
    Limits,
    duplicate_key,
    json_scalar,
    key_join,
    key_sections,
    paragraph_sections,
    parse_error,
    register,
    sections_from_ranges,
    split_lines,
)
from kb.types import ParsedFile, Problem, Record, Section

__all__ = ["YamlParser", "YamlResult", "load_yaml"]

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

_CONSTRUCTOR = SafeConstructor()
_BOOLS = SafeConstructor.bool_values
_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])&[^\s\[\]{},]+")


class YamlParser:
    name = "yaml"
    suffixes = (".yaml", ".yml")
    filenames = ("chart.lock",)

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        result = load_yaml(text, limits)
        lines = split_lines(text)
        if result.failed:
            sections = paragraph_sections(lines)
        else:
            sections = _sections(lines, result.roots)
        return ParsedFile(
            format=self.name,
            records=result.records,
            sections=sections,
            problems=result.problems,
            documents=result.documents,
        )


class _AliasBombError(Exception):
    pass


@dataclass(slots=True)
class YamlResult:
    records: list[Record] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    roots: list[Node] = field(default_factory=list)
    """The composed root node of each document (for section boundaries)."""
    failed: bool = False


def load_yaml(text: str, limits: Limits, *, prefix: str = "", line_offset: int = 0) -> YamlResult:
    """Compose and walk every document of ``text``.

    ``prefix`` is prepended to key paths and ``line_offset`` added to lines (Markdown front
    matter). On a syntax error the records of the documents before it are kept, documents are
    not; on an alias bomb nothing is kept.
    """
    if "\ufeff" in text:  # a BOM opens the file, or a later document: libyaml rejects the latter
        text = text[1:] if text.startswith("\ufeff") else text
        text = text.replace("\n\ufeff", "\n")
    out = YamlResult()
    walker = _Walker(limits, out.problems, line_offset)
    loader = _LOADER(text)
    has_alias = "*" in text
    try:
        doc = 0
        while loader.check_node():
            root = loader.get_node()
            walker.memo.clear()  # anchors do not cross documents; ids may be reused
            if has_alias:
                _check_expansion(root, limits, line_offset)
            out.documents.append(walker.walk(root, prefix, doc, out.records))
            out.roots.append(root)
            doc += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "syntax error"
        line = mark.line + 1 + line_offset if mark else None
        out.problems.append(parse_error("YAML", what, line, mark.column + 1 if mark else None))
        out.documents, out.roots, out.failed = [], [], True
    except yaml.YAMLError as exc:
        out.problems.append(parse_error("YAML", _reader_problem(exc), None))
        out.documents, out.roots, out.failed = [], [], True
    except _AliasBombError:
        what = (
            f"YAML alias expansion exceeds {limits.max_records} values (an alias bomb?)"
            if _ANCHOR.search(text)
            else f"more than {limits.max_records} values; raise max_records_per_file if the file "
            f"is genuinely that large"
        )
        return YamlResult(problems=[Problem("parse-error", "error", what)], failed=True)
    except DepthError as exc:
        line = getattr(exc, "line", None)
        out.problems.append(Problem("parse-error", "error", str(exc), line=line))
        out.records, out.documents, out.roots, out.failed = [], [], [], True
    finally:
        loader.dispose()
    return out


def _reader_problem(exc: yaml.YAMLError) -> str:
    reason = getattr(exc, "reason", None)
    position = getattr(exc, "position", None)
    if reason and position is not None:
        return f"{reason} at character {position}"
    return type(exc).__name__


class _Walker:
    def __init__(self, limits: Limits, problems: list[Problem], line_offset: int) -> None:
        self.limits = limits
        self.problems = problems
        self.offset = line_offset + 1
        self.visits = 0
        self.memo: dict[int, list[tuple[str, Node, Node]]] = {}
        self.in_progress: set[int] = set()

    def walk(self, root: Node, prefix: str, doc: int, records: list[Record]) -> Any:
        if isinstance(root, ScalarNode) and root.tag == _NULL and not root.value:
            return None  # an empty document
        cap = self.limits.max_records
        max_depth = self.limits.max_depth
        off = self.offset
        append = records.append
        holder: list[Any] = [None]
        stack: list[tuple[Node, str, int, int, Any, Any]] = [(root, prefix, root.start_mark.line + off, 0, holder, 0)]
        pop, push = stack.pop, stack.append
        visits = self.visits
        chars = 0
        while stack:
            node, path, line, depth, parent, key = pop()
            visits += 1
            if visits > cap:
                raise _AliasBombError
            cls = node.__class__
            if cls is ScalarNode:
                value = _scalar(node)
                parent[key] = value
                append(Record(path, value, line, doc))
                continue
            if depth >= max_depth:
                raise _depth_error(f"nesting deeper than {max_depth} levels", line)
            if cls is MappingNode and node.flow_style and (name := _mustache(node)) is not None:
                value = "{{" + name + "}}"  # replicas: {{replicas}} in a template: a placeholder, not {{...}: null}
                parent[key] = value
                append(Record(path, value, line, doc))
                continue
            if cls is MappingNode:
                self.visits = visits
                pairs = self.pairs(node, depth)
                visits = self.visits
                value = {}
                parent[key] = value
                if not pairs:
                    append(Record(path, {}, line, doc))
                for k, kn, vn in reversed(pairs):
                    kp = key_join(path, k)
                    chars += len(kp)
                    push((vn, kp, kn.start_mark.line + off, depth + 1, value, k))
                if chars > MAX_KEY_PATH_CHARS:
                    raise KeyPathsTooLongError
            else:
                items = node.value
                value = [None] * len(items)
                parent[key] = value
                if not items:
                    append(Record(path, [], line, doc))
                for i in range(len(items) - 1, -1, -1):
                    item = items[i]
                    push((item, f"{path}[{i}]", item.start_mark.line + off, depth + 1, value, i))
        self.visits = visits
        return holder[0]

    def pairs(self, node: MappingNode, depth: int) -> list[tuple[str, Node, Node]]:
        """The mapping's ``(key, key node, value node)``: merges applied, the last key winning."""
        nid = id(node)
        cached = self.memo.get(nid)
        if cached is not None:
            return cached
        if depth > self.limits.max_depth:
            raise DepthError(f"merge keys nested deeper than {self.limits.max_depth} levels")
        own: dict[str, tuple[Node, Node]] = {}
        sources: list[MappingNode] = []
        for kn, vn in node.value:
            if kn.tag == _MERGE and kn.__class__ is ScalarNode:
                if vn.__class__ is MappingNode:
                    sources.append(vn)
                    continue
                if vn.__class__ is SequenceNode and all(s.__class__ is MappingNode for s in vn.value):
                    sources.extend(vn.value)
                    continue
            key = kn.value if kn.__class__ is ScalarNode else _complex_key(kn)
            first = own.get(key)
            if first is not None:
                line = kn.start_mark.line + self.offset
                first_line = first[0].start_mark.line + self.offset
                self.problems.append(duplicate_key(key, line, first_line))
            own[key] = (kn, vn)
        if sources:
            merged: dict[str, tuple[Node, Node]] = {}
            self.in_progress.add(nid)
            try:
                for src in sources:  # the first source wins over later ones
                    if id(src) in self.in_progress:
                        continue  # a mapping merging itself
                    for k, kn, vn in self.pairs(src, depth + 1):
                        if k not in merged:
                            merged[k] = (kn, vn)
            finally:
                self.in_progress.discard(nid)
            merged.update(own)
            own = merged
        result = [(k, kn, vn) for k, (kn, vn) in own.items()]
        if sources:  # merging is work an alias bomb can multiply: count it
            self.visits += len(result)
            if self.visits > self.limits.max_records:
                raise _AliasBombError
        self.memo[nid] = result
        return result


def _depth_error(message: str, line: int) -> DepthError:
    exc = DepthError(f"{message} at line {line}")
    exc.line = line  # type: ignore[attr-defined]
    return exc


def _check_expansion(root: Node, limits: Limits, line_offset: int) -> None:
    """Size the document as the walk would see it, aliases expanded, before walking it.

    One pass over the distinct nodes (memoised by identity), so a billion-laughs bomb is refused
    after visiting a few dozen nodes; a recursive alias (a node inside itself) is a depth error.
    """
    cap = limits.max_records
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        nid = id(node)
        cls = node.__class__
        if done:
            on_path.discard(nid)
            if cls is MappingNode:
                total = 1 + sum(size.get(id(vn), 1) for _, vn in node.value)
            else:
                total = 1 + sum(size.get(id(item), 1) for item in node.value)
            if total > cap:
                raise _AliasBombError
            size[nid] = total
            continue
        if cls is ScalarNode or nid in size:
            continue
        if nid in on_path:
            raise _depth_error("recursive alias (a node that contains itself)", node.start_mark.line + 1 + line_offset)
        if len(on_path) >= limits.max_depth:
            raise _depth_error(f"nesting deeper than {limits.max_depth} levels", node.start_mark.line + 1 + line_offset)
        on_path.add(nid)
        stack.append((node, True))
        if cls is MappingNode:
            stack.extend((vn, False) for _, vn in node.value)
        else:
            stack.extend((item, False) for item in node.value)


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    value = node.value
    if tag == _STR:
        return value
    if tag in (_INT, _FLOAT) and ":" in value:
        return value  # YAML 1.1 sexagesimal (a compose port "22:22" is not 1342): text, as in YAML 1.2
    if tag == _INT:
        if value.isascii() and value.isdigit() and (value[0] != "0" or len(value) == 1):
            return int(value)
        try:
            return _CONSTRUCTOR.construct_yaml_int(node)
        except (ValueError, TypeError, yaml.YAMLError):
            return value
    if tag == _FLOAT:
        try:
            number = _CONSTRUCTOR.construct_yaml_float(node)
        except (ValueError, TypeError, yaml.YAMLError):
            return value
        return number if json_scalar(number) is number else value  # .inf / .nan stay text
    if tag == _BOOL:
        # YAML 1.2 core: only true/false are booleans; yes/no/on/off stay text (the "Norway problem").
        low = value.lower()
        return (low == "true") if low in ("true", "false") else value
    if tag == _NULL:
        return None
    return value  # timestamps, binary, custom tags (!Ref ...): the text as written


def _mustache(node: MappingNode) -> str | None:
    """The name in ``{{name}}`` when YAML read a template's placeholder as a mapping whose one key
    is the mapping ``{name: null}`` (Mustache, Jinja, Go templates left unrendered)."""
    if len(node.value) != 1:
        return None
    kn, vn = node.value[0]
    if not (vn.__class__ is ScalarNode and vn.tag == _NULL and not vn.value):
        return None
    if not (kn.__class__ is MappingNode and kn.flow_style and len(kn.value) == 1):
        return None
    ik, iv = kn.value[0]
    if ik.__class__ is ScalarNode and iv.__class__ is ScalarNode and iv.tag == _NULL and not iv.value:
        return str(ik.value)
    return None


def _complex_key(node: Node) -> str:
    """A mapping or sequence used as a key (``? [a, b]``): its scalars, flattened."""
    parts: list[str] = []
    stack = [node]
    while stack and len(parts) < 50:
        n = stack.pop()
        if isinstance(n, ScalarNode):
            parts.append(n.value)
        elif isinstance(n, SequenceNode):
            stack.extend(reversed(n.value))
        else:
            for kn, vn in reversed(n.value):
                stack.extend((vn, kn))
    return ",".join(parts)


def _end_line(node: Node) -> int:
    mark = node.end_mark
    return mark.line + (1 if mark.column > 0 else 0)


def _sections(lines: list[str], roots: list[Node]) -> list[Section]:
    out: list[Section] = []
    for root in roots:
        end = _end_line(root)
        start = root.start_mark.line + 1
        if isinstance(root, MappingNode) and root.value:
            tops = []
            for kn, vn in root.value:
                if not isinstance(kn, ScalarNode) or kn.tag == _MERGE:
                    continue
                kp = key_join("", kn.value)
                children = None
                if isinstance(vn, MappingNode) and len(vn.value) >= 2:
                    kids = [(kc, vc) for kc, vc in vn.value if isinstance(kc, ScalarNode)]
                    containers = sum(1 for _, vc in kids if not isinstance(vc, ScalarNode))
                    if containers * 2 >= len(kids):
                        children = [(key_join(kp, kc.value), kc.start_mark.line + 1) for kc, _ in kids]
                tops.append((kp, kn.start_mark.line + 1, children))
            out.extend(key_sections(lines, tops, end))
        elif (
            isinstance(root, SequenceNode)
            and root.value
            and sum(1 for item in root.value if not isinstance(item, ScalarNode)) * 2 >= len(root.value)
        ):
            tops = [(f"[{i}]", item.start_mark.line + 1, None) for i, item in enumerate(root.value)]
            out.extend(key_sections(lines, tops, end))
        elif not (isinstance(root, ScalarNode) and root.tag == _NULL and not root.value):
            out.extend(sections_from_ranges(lines, [("", start, max(start, end))], "document"))
    return out


register(YamlParser())
