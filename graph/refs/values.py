"""References in values: file paths (``config: features/x.json``), JSON Schema / OpenAPI ``$ref``s
(the pointer must exist), ``$schema`` values and ``# yaml-language-server: $schema=`` modelines."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Collection
from urllib.parse import unquote, urljoin

from kb.catalogue import Catalogue
from kb.globs import glob_match, is_glob
from kb.graph.refs.corpus import Corpus
from kb.graph.refs.model import Reference, ReferenceSink, last_key
from kb.graph.refs.paths import INCLUDE_KEYS, REF_SUFFIXES, in_data_subtree, looks_like_path, skipped_key_path
from kb.graph.refs.pointers import anchor_exists, pointer_exists, scope_for_local_ref
from kb.graph.refs.schema_index import SchemaIndex, is_meta_schema_url

__all__ = ["extract_values", "extract_schema_modelines"]

_MODELINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")
# where a helm-unittest suite names a template: templates[0], tests[2].template, tests[2].templates[1]
_SUITE_TEMPLATE = re.compile(r"templates\[\d+\]|tests\[\d+\]\.(?:template|templates\[\d+\])")


def extract_values(
    catalogue: Catalogue, corpus: Corpus, index: SchemaIndex, skip: Collection[str] = ()
) -> list[Reference]:
    """File paths, ``$ref``s and ``$schema``s in string values; files in ``skip`` (compose files,
    which have an extractor of their own) are looked at for ``$ref``/``$schema`` only."""
    return _ValueExtractor(catalogue, corpus, index).values(skip)


def extract_schema_modelines(catalogue: Catalogue, corpus: Corpus, index: SchemaIndex) -> list[Reference]:
    """``# yaml-language-server: $schema=...`` comments at the top of YAML files."""
    return _ValueExtractor(catalogue, corpus, index).modelines()


class _ValueExtractor:
    def __init__(self, catalogue: Catalogue, corpus: Corpus, index: SchemaIndex) -> None:
        self.catalogue = catalogue
        self.corpus = corpus
        self.index = index
        self.out = ReferenceSink()

    def _candidate_values(self) -> list[tuple[str, int, str, str, int, str]]:
        """String records that may hold a path, a ``$ref`` or a ``$schema``."""
        suffixes = "|".join(sorted(REF_SUFFIXES))
        return self.catalogue.query(
            f"""SELECT r.path, r.doc, r.key_path, r.value, r.line, f.format
                FROM records r JOIN files f ON f.path = r.path
                WHERE r.value_type = 'str' AND f.format IN ('json', 'yaml', 'toml', 'ini', 'properties', 'dotenv')
                  AND length(r.value) < 1000
                  AND (regexp_matches(r.key_path, '(^|[.\\]])\\$(ref|schema)$')
                       OR regexp_matches(lower(r.value), '\\.({suffixes})([#?].*)?$')
                       OR starts_with(r.value, 'file:'))
                ORDER BY r.path, r.doc, r.line"""
        )

    def values(self, skip: Collection[str]) -> list[Reference]:
        rows = self._candidate_values()
        k8s_docs = self._k8s_docs()
        unittests = self._helm_unittest_suites()
        refs_by_target: dict[str, list[tuple[int, str, str, int]]] = defaultdict(list)
        for path, doc, kp, value, line, fmt in rows:
            last = last_key(kp)
            if last == "$ref" and fmt in ("json", "yaml"):
                if not in_data_subtree(kp):
                    refs_by_target[path].append((doc, kp, value, line))
                continue
            if kp == "$schema" and fmt in ("json", "yaml", "toml"):
                self._schema_ref(path, doc, kp, value, line)
                continue
            if path in skip or (path, doc) in k8s_docs:
                continue
            templates = unittests.get((path, doc))
            if templates is not None:
                # helm-unittest: a suite names its templates from the chart's templates/ folder (a
                # glob names all it matches); its other values (asserts' paths) are no files
                if _SUITE_TEMPLATE.fullmatch(kp):
                    if is_glob(value):
                        self._glob_ref(path, doc, kp, value, line, templates)
                    else:
                        self._file_ref(path, doc, kp, value, line, near=posixpath.join(templates, "_"))
                continue
            if skipped_key_path(kp) or not looks_like_path(value, kp):
                continue
            repo = _actions_repo_root(path, last, value)
            if repo is not None:
                # GitHub Actions: a local action or reusable workflow (`uses: ./...`) is named from
                # the repository's root, the folder holding .github/, not from the workflow's folder
                self._file_ref(path, doc, kp, value, line, near=posixpath.join(repo, "_"))
                continue
            self._file_ref(path, doc, kp, value, line)
        for path, items in refs_by_target.items():
            for doc, kp, value, line in items:
                self._json_ref(path, doc, kp, value, line)
        return self.out.references

    def _k8s_docs(self) -> set[tuple[str, int]]:
        rows = self.catalogue.query(
            """SELECT path, doc FROM records WHERE key_path = 'kind' AND value_type = 'str'
               AND value <> 'Kustomization'
               INTERSECT SELECT path, doc FROM records WHERE key_path = 'apiVersion'"""
        )
        return {(p, d) for p, d in rows}

    def _helm_unittest_suites(self) -> dict[tuple[str, int], str]:
        """helm-unittest suites (``suite:`` and ``tests:`` at the top), each with the ``templates``
        folder of the chart it tests (the nearest folder above with a ``Chart.yaml``)."""
        rows = self.catalogue.query(
            """SELECT path, doc FROM records WHERE key_path = 'suite'
               INTERSECT SELECT path, doc FROM records WHERE starts_with(key_path, 'tests[')"""
        )
        out: dict[tuple[str, int], str] = {}
        for path, doc in rows:
            d = posixpath.dirname(path)
            while d:
                if self.corpus.is_file(posixpath.join(d, "Chart.yaml")):
                    out[(path, doc)] = posixpath.join(d, "templates")
                    break
                d = posixpath.dirname(d)
        return out

    def _glob_ref(self, path: str, doc: int, kp: str, value: str, line: int, folder: str) -> None:
        pattern = posixpath.normpath(posixpath.join(folder, value.strip()))
        hits = [p for p in self.corpus.formats if glob_match(p, pattern)]
        if hits:
            self.out.add(path, doc, line, kp, "file", value, sorted(hits)[0], "ok")
        else:
            self.out.add(path, doc, line, kp, "file", pattern, None, "broken", "error", f"no file matches {pattern}")

    def _file_ref(self, path: str, doc: int, kp: str, value: str, line: int, near: str | None = None) -> None:
        """A path in a value, resolved against the file's folder (or ``near``'s), then the root."""
        near = near or path
        target = value.strip()
        if target.startswith("file:"):
            target = target[5:]
        clean = target.split("#", 1)[0].split("?", 1)[0]
        kind = "include" if last_key(kp) in INCLUDE_KEYS else "file"
        if self.corpus.escapes_root(near, clean) and self.corpus.resolve(near, clean) is None:
            self.out.add(path, doc, line, kp, kind, value, None, "external", "error", "outside the corpus root")
            return
        if "node_modules/" in clean:
            self.out.add(path, doc, line, kp, kind, value, None, "external", "error", "an installed dependency")
            return
        resolved = self.corpus.resolve(near, clean)
        if resolved is not None:
            self.out.add(path, doc, line, kp, kind, value, resolved, "ok")
        elif "/" not in clean and clean in self.corpus.basenames:
            # a bare name that exists elsewhere: the tool has its own search path
            self.out.add(
                path,
                doc,
                line,
                kp,
                kind,
                value,
                None,
                "external",
                "error",
                "a bare file name found elsewhere in the tree; resolved by the tool's own search path",
            )
        else:
            guess = self.corpus.best_guess(near, clean)
            self.out.add(
                path,
                doc,
                line,
                kp,
                kind,
                guess,
                None,
                "broken",
                "error",
                f"'{value}' does not exist (looked for {guess})",
            )

    def _schema_ref(self, path: str, doc: int, kp: str, value: str, line: int | None) -> None:
        v = value.strip()
        if not v:
            return
        if is_meta_schema_url(v):
            return  # the file is itself a schema; $schema names its dialect
        if "://" in v:
            local = self.index.lookup(v)
            if local:
                self.out.add(path, doc, line, kp, "schema", v, local, "ok")
            else:
                self.out.add(path, doc, line, kp, "schema", v, None, "external", "error", "remote schema")
            return
        clean = v[5:] if v.startswith("file:") else v
        clean = clean.split("#", 1)[0]
        if clean.startswith("/") or "node_modules/" in clean or self.corpus.escapes_root(path, clean):
            self.out.add(path, doc, line, kp, "schema", v, None, "external", "error", "not in the tree")
            return
        resolved = self.corpus.resolve(path, clean, root_relative=False, want="file")
        if resolved:
            self.out.add(path, doc, line, kp, "schema", v, resolved, "ok")
        else:
            guess = self.corpus.best_guess(path, clean)
            self.out.add(
                path,
                doc,
                line,
                kp,
                "schema",
                guess,
                None,
                "broken",
                "error",
                f"schema '{v}' does not exist (looked for {guess})",
            )

    def _json_ref(self, path: str, doc: int, kp: str, value: str, line: int) -> None:
        v = value.strip()
        uri, _, frag = v.partition("#")
        frag = unquote(frag)
        target_path: str | None
        if uri == "":
            target_path = path
            tdoc = doc
        elif "://" in uri or uri.startswith("urn:"):
            if is_meta_schema_url(uri):
                return
            target_path = self.index.lookup(uri)
            tdoc = 0
            if target_path is None:
                self.out.add(path, doc, line, kp, "json-ref", v, None, "external", "error", "remote $ref")
                return
        else:
            tdoc = 0
            if uri.startswith("/") or self.corpus.escapes_root(path, uri):
                target_path = None
            else:
                target_path = self.corpus.resolve(path, uri, root_relative=False, want="file")
            if target_path is None:
                # relative to the document's $id (a URL) -> a schema known by $id
                data = self.corpus.document(path, doc)
                base = data.get("$id") or data.get("id") if isinstance(data, dict) else None
                if isinstance(base, str) and "://" in base:
                    target_path = self.index.lookup(urljoin(base, uri))
                    if target_path is None:
                        self.out.add(
                            path,
                            doc,
                            line,
                            kp,
                            "json-ref",
                            v,
                            None,
                            "external",
                            "error",
                            f"resolves against $id {base}; not in the tree",
                        )
                        return
            if target_path is None:
                guess = self.corpus.best_guess(path, uri)
                self.out.add(
                    path,
                    doc,
                    line,
                    kp,
                    "json-ref",
                    guess + (f"#{frag}" if frag else ""),
                    None,
                    "broken",
                    "error",
                    f"$ref file '{uri}' does not exist (looked for {guess})",
                )
                return
        if not frag:
            self.out.add(path, doc, line, kp, "json-ref", v, target_path, "ok")
            return
        data = self.corpus.document(target_path, tdoc)
        if data is None:
            self.corpus.load_documents([target_path])
            data = self.corpus.document(target_path, tdoc)
        resolved = f"{target_path}#{frag}"
        if data is None:  # not parsed (unknown format): the file exists, do not guess
            self.out.add(path, doc, line, kp, "json-ref", v, resolved, "ok", "error", "pointer not checked")
            return
        if uri == "":
            data = scope_for_local_ref(data, kp)
        ok = pointer_exists(data, frag) if frag.startswith("/") else anchor_exists(data, frag)
        if ok:
            self.out.add(path, doc, line, kp, "json-ref", v, resolved, "ok")
        else:
            self.out.add(
                path, doc, line, kp, "json-ref", resolved, None, "broken", "error", f"{target_path} has no '#{frag}'"
            )

    def modelines(self) -> list[Reference]:
        """``# yaml-language-server: $schema=...`` comments, read from the first section's text."""
        rows = self.catalogue.query(
            """SELECT s.path, s.text, s.line_start FROM sections s JOIN files f ON f.path = s.path
               WHERE f.format = 'yaml' AND s.line_start <= 3 AND contains(s.text, 'yaml-language-server')"""
        )
        # YAML files without sections (comments only, empty): read their first lines from disk
        if self.corpus.root is not None:
            bare = self.catalogue.query(
                """SELECT f.path FROM files f WHERE f.format = 'yaml' AND f.status = 'ok'
                   AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.path = f.path)"""
            )
            for (path,) in bare:
                try:
                    with open(self.corpus.root / path, encoding="utf-8-sig", errors="replace") as fh:
                        head = "".join(fh.readline() for _ in range(3))
                except OSError:
                    continue
                if "yaml-language-server" in head:
                    rows.append((path, head, 1))
        seen: set[str] = set()
        for path, text, start in rows:
            if path in seen:
                continue
            for off, ln in enumerate(text.splitlines()[:5]):
                m = _MODELINE.search(ln)
                if m:
                    seen.add(path)
                    self._schema_ref(path, 0, "$schema", m.group(1), start + off)
                    break
        return self.out.references


def _actions_repo_root(path: str, last: str, value: str) -> str | None:
    """The repository root a GitHub Actions ``uses: ./...`` in ``path`` is relative to (the folder
    holding ``.github/``; "" at the tree's root), or None when this is no such reference."""
    if last != "uses" or not value.strip().startswith("./"):
        return None
    at = ("/" + path).find("/.github/")
    if at < 0:
        return None
    return path[: max(0, at - 1)] if at else ""
