"""Helm: ``.Values.a.b`` in chart templates, looked up in the chart's ``values.yaml``; a value the
template tests (``if``/``with``/``default``/...) may be missing."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from typing import Any

from kb.catalogue import Catalogue
from kb.graph.refs.corpus import Corpus
from kb.graph.refs.model import Reference, ReferenceSink

__all__ = ["extract_helm_values"]


def extract_helm_values(catalogue: Catalogue, corpus: Corpus) -> list[Reference]:
    """Every ``.Values`` reference in the tree's chart templates."""
    return _HelmExtractor(catalogue, corpus).run()


class _HelmExtractor:
    def __init__(self, catalogue: Catalogue, corpus: Corpus) -> None:
        self.catalogue = catalogue
        self.corpus = corpus
        self.out = ReferenceSink()

    def run(self) -> list[Reference]:
        rows = self.catalogue.query(
            """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'helm-template' AND starts_with(r.key_path, 'values_refs[')
               ORDER BY r.path, r.line"""
        )
        if not rows:
            return []
        charts = {posixpath.dirname(p) for p in self.corpus.formats if posixpath.basename(p) == "Chart.yaml"}
        chart_info: dict[str, tuple[Any, str | None, set[str], bool]] = {}

        def chart_of(path: str) -> str | None:
            d = posixpath.dirname(path)
            while True:
                if d in charts:
                    return d
                if d == "":
                    return None
                d = posixpath.dirname(d)

        pending: list[tuple[Reference, str, str]] = []  # (reference, its values.yaml, the first key missing)
        vfile: str | None  # a chart's values.yaml; None when the chart has none
        for path, kp, value, line in rows:
            chart = chart_of(path)
            if chart is None:
                continue
            if chart not in chart_info:
                cfile = posixpath.join(chart, "Chart.yaml")
                vfile = posixpath.join(chart, "values.yaml")
                rfile = posixpath.join(chart, "requirements.yaml")  # a v1 chart lists its dependencies there
                self.corpus.load_documents([cfile, vfile, rfile])
                meta = self.corpus.document(cfile) or {}
                deps = set()
                for listing in (meta, self.corpus.document(rfile) or {}):
                    if isinstance(listing, dict) and isinstance(listing.get("dependencies"), list):
                        for d in listing["dependencies"]:
                            if isinstance(d, dict):
                                for k in ("alias", "name"):
                                    if isinstance(d.get(k), str):
                                        deps.add(d[k])
                library = isinstance(meta, dict) and meta.get("type") == "library"
                have_values = vfile in self.corpus.formats
                chart_info[chart] = (self.corpus.document(vfile), vfile if have_values else None, deps, library)
            values, vfile, deps, library = chart_info[chart]
            if library:
                continue
            keys = [k for k in value.split(".") if k]
            if not keys:
                continue
            if vfile is None:
                self.out.add(
                    path,
                    0,
                    line,
                    kp,
                    "helm-value",
                    value,
                    None,
                    "broken",
                    "error",
                    f"the chart {chart or '.'} has no values.yaml",
                )
                continue
            if keys[0] in deps or keys[0] == "global":
                self.out.add(path, 0, line, kp, "helm-value", value, vfile, "ok")
                continue
            missing = _missing_value(values, keys)
            if missing is None:
                self.out.add(path, 0, line, kp, "helm-value", value, f"{vfile}#{value}", "ok")
            else:
                ref = self.out.add(
                    path, 0, line, kp, "helm-value", value, None, "broken", "error", f"{vfile} has no '{missing}'"
                )
                pending.append((ref, vfile, missing))
        # A missing value that the template tests (if/with/default/coalesce/...) is optional.
        texts = self._line_texts({r.path for r, _, _ in pending} | {v for _, v, _ in pending})
        documented = self._commented_keys(texts, {(v, m) for _, v, m in pending})
        tested: dict[str, set[str]] = defaultdict(set)  # path -> values an if/with/... tests
        tested_vars: dict[str, set[str]] = defaultdict(set)  # path -> $variables an if/with tests
        for (p, _), text in texts.items():
            tested[p].update(_tested_values(text))
            tested_vars[p].update(_tested_variables(text))
        for r, vfile, missing in pending:
            text = texts.get((r.path, r.line or 0), "")
            parts = r.target.split(".")
            prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
            var = _assigned_to(text, r.target) if missing == r.target else None
            if _guarded(text, r.target) or prefixes & tested[r.path]:
                r.status = "optional"
                r.detail += " (the template guards it)"
            elif var is not None and var in tested_vars[r.path]:
                # {{ $ingressPath := .Values.ingress.path }} ... {{ if $ingressPath }}: a missing leaf
                # is nil in the variable, and the template tests the variable before using it
                r.status = "optional"
                r.detail += f" (the template guards it: assigned to ${var}, which it tests)"
            elif (vfile, missing) in documented:
                # values.yaml documents it as a commented-out key ("# secretName: <name of a secret>")
                r.status = "optional"
                r.detail += " (values.yaml shows it commented out)"
            elif missing == r.target and _serialised(text, r.target):
                # only the last key is missing and the template writes it out as YAML/JSON: Helm
                # renders null, the chart's optional block ({{ toYaml .Values.gateway.livenessProbe }})
                r.status = "optional"
                r.detail += " (an optional block the template writes with toYaml)"
        return self.out.references

    def _commented_keys(self, texts: dict[tuple[str, int], str], wanted: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (values.yaml, missing key) pairs that values.yaml shows as a commented-out key in
        the block of its parent (``sasl.kerberos`` holding ``# secretName: <name>``; a top-level
        key commented out at the left margin)."""
        files = sorted({v for v, _ in wanted})
        if not files:
            return set()
        rows = self.catalogue.query(
            "SELECT path, key_path, line FROM records WHERE path IN (SELECT unnest(?)) ORDER BY path, line", [files]
        )
        by_file: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for path, kp, line in rows:
            by_file[path].append((kp or "", line or 0))
        last_line: dict[str, int] = defaultdict(int)
        for p, n in texts:
            last_line[p] = max(last_line[p], n)
        out: set[tuple[str, str]] = set()
        for vfile, missing in wanted:
            parent, _, leaf = missing.rpartition(".")
            recs = by_file.get(vfile, [])
            if parent:
                inside = {ln for kp, ln in recs if kp.startswith((parent + ".", parent + "["))}
                if not inside:
                    continue
                lo, top = min(inside) - 1, max(inside)
                while lo > 0 and _COMMENT_OR_BLANK.match(texts.get((vfile, lo), "x")):
                    lo -= 1  # the comments above the first child are in the block: "ca:\n  # pem:\n  path: x"
                hi = next((ln for _, ln in recs if ln > top and ln not in inside), last_line[vfile] + 1)
            else:
                lo, hi = 0, last_line[vfile] + 1
            for n in range(lo + 1, hi):
                m = _COMMENTED_KEY.match(texts.get((vfile, n), ""))
                if m and m.group(2) == leaf and (parent or not m.group(1)):
                    out.add((vfile, missing))
                    break
        return out

    def _line_texts(self, paths: set[str]) -> dict[tuple[str, int], str]:
        """(path, line) -> source line, from the sections' text (no file reads)."""
        out: dict[tuple[str, int], str] = {}
        if not paths:
            return out
        for path, start, text in self.catalogue.query(
            "SELECT path, line_start, text FROM sections WHERE path IN (SELECT unnest(?))", [sorted(paths)]
        ):
            for i, ln in enumerate((text or "").split("\n")):
                out.setdefault((path, start + i), ln)
        return out

    # -- variables ------------------------------------------------------------------------------


# "# secretName: <name>" (group 1: the indentation before the '#', group 2: the key)
# (one '#' and at most one space: "##     path: /" inside an example block documents nothing)
_COMMENTED_KEY = re.compile(r"^([ \t]*)#[ \t]?([A-Za-z_][A-Za-z0-9_-]*)[ \t]*:(?:\s|$)")
_COMMENT_OR_BLANK = re.compile(r"^[ \t]*(?:#.*)?$")
_GUARDS = re.compile(
    r"\b(if|with|range|default|coalesce|or|and|not|empty|hasKey|ternary|required|dig|kindIs|typeIs|eq|ne)\b"
)


def _in_action_with(line: str, ref: str, words: re.Pattern[str], *, whole: bool = False) -> bool:
    """Whether ``.Values.<ref>`` sits in a ``{{ }}`` action that also holds one of ``words``
    (``whole``: the reference itself, not a longer key it begins)."""
    needle = ".Values." + ref
    for m in re.finditer(r"\{\{(.*?)\}\}", line):
        action = m.group(1)
        at = action.find(needle)
        if whole:
            while at >= 0 and action[at + len(needle) : at + len(needle) + 1].isalnum():
                at = action.find(needle, at + 1)
        if at >= 0 and words.search(action):
            return True
    return False


def _guarded(line: str, ref: str) -> bool:
    """Whether ``.Values.<ref>`` sits in a ``{{ }}`` action that tests it or gives a fallback."""
    return _in_action_with(line, ref, _GUARDS)


_SERIALISERS = re.compile(r"\b(toYaml|toJson|toPrettyJson|toRawJson|toToml)\b")


def _serialised(line: str, ref: str) -> bool:
    """Whether ``.Values.<ref>`` is written out whole by ``toYaml``/``toJson`` in its action: a
    missing leaf renders ``null`` there (a missing key above it still fails: nil pointer)."""
    return _in_action_with(line, ref, _SERIALISERS, whole=True)


_TEST_ACTION = re.compile(r"\{\{-?\s*(?:if|with|else if)\b(.*?)-?\}\}")
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _tested_values(line: str) -> set[str]:
    """Values that an ``if``/``with`` action on this line tests (``{{ if .Values.a.b }}`` -> a.b)."""
    out: set[str] = set()
    for m in _TEST_ACTION.finditer(line):
        out.update(v[1:] for v in _VALUES_PATH.findall(m.group(1)))
    return out


_ASSIGNMENT = re.compile(
    r"\{\{-?\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*-?\}\}"
)
# a bare variable: ``if $tls.enabled`` reads a field of it (a nil pointer when it is missing), no test
_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)\b(?![.\w])(?!\s*:?=)")


def _assigned_to(line: str, ref: str) -> str | None:
    """The variable that ``.Values.<ref>`` is assigned to whole on this line
    (``{{- $ingressPath := .Values.ingress.path -}}`` -> ``ingressPath``), or None."""
    for m in _ASSIGNMENT.finditer(line):
        if m.group(2)[1:] == ref:
            return m.group(1)
    return None


def _tested_variables(line: str) -> set[str]:
    """Variables that an ``if``/``with`` action on this line tests (``{{ if $ingressPath }}``)."""
    out: set[str] = set()
    for m in _TEST_ACTION.finditer(line):
        out.update(_VARIABLE.findall(m.group(1)))
    return out


def _missing_value(values: Any, keys: list[str]) -> str | None:
    """None when ``.Values.<keys>`` exists in ``values`` (or lies under an open map), else the
    first missing dotted prefix."""
    cur = values
    for i, k in enumerate(keys):
        if cur is None or cur == {}:
            return None  # an empty map or null: any key may be supplied
        if isinstance(cur, list):
            return None  # indexing into a list from a template: not checked
        if not isinstance(cur, dict):
            return None if i > 0 else ".".join(keys[: i + 1])
        if k not in cur:
            return ".".join(keys[: i + 1])
        cur = cur[k]
    return None
