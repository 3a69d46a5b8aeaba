"""Which schema each structured file is validated against: the schema map, the file's own
``$schema``, Helm's ``values.schema.json``, SchemaStore-style catalogs in the tree, then kb's
built-in catalogue (:mod:`kb.schemastore`: SchemaStore's ``fileMatch`` and the Kubernetes
built-in kinds, offline) when the tree has no schema for the file."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kb import schemastore
from kb.formats import formats_with
from kb.graph.refs import Corpus, SchemaIndex
from kb.graph.schema.mapping import SchemaMap

__all__ = ["Choice", "choose_schemas", "kubernetes_manifests"]


@dataclass(slots=True)
class Choice:
    path: str
    schema: str
    why: str  # "schema map 'GLOB'", "$schema", "catalog <file>", "built-in catalogue (<name>)"
    line: int | None = None
    builtin: bool = False  # served by kb's built-in catalogue (kb.schemastore), not by the tree


_VALIDATED_FORMATS = formats_with(lambda t: t.schema)


def choose_schemas(
    corpus: Corpus,
    index: SchemaIndex,
    schema_map: SchemaMap,
    schema_refs: dict[str, tuple[str, int | None]],
    declared: Mapping[str, str] | set[str] | frozenset[str] = frozenset(),
    *,
    builtin: bool = True,
) -> list[Choice]:
    """The schema each structured file is validated against (files without one are left out).

    ``schema_refs`` maps a file to its resolved ``$schema``/modeline target (from the references);
    ``declared`` holds files whose ``$schema`` could not be resolved in the tree (with the URL
    they declare, when a mapping): the built-in catalogue may serve that URL, no catalog
    second-guesses it.
    Order: the schema map, the file's ``$schema``, Helm's ``values.schema.json`` for a chart's
    ``values.yaml``, the catalogs in the tree, then (``builtin``) kb's built-in catalogue: by path
    (SchemaStore's ``fileMatch``), then by content (Kubernetes manifests of built-in kinds). A
    file that several catalog entries (with different schemas) claim is left alone: guessing
    between them makes false alarms (``manifest.json`` is a web app manifest and a browser
    extension manifest).
    """
    catalog = []
    for cpath, globs, url in index.catalog_entries:
        for g in globs:
            if g.startswith("!"):
                continue
            g = g.lstrip("/")
            try:
                rx = schemastore.file_match_regex(g)
            except (ValueError, re.error):
                continue
            catalog.append((rx, url, cpath))
    out: list[Choice] = []
    manifests: dict[str, tuple[list[tuple[str, str]], bool]] | None = None
    for path, fmt in sorted(corpus.formats.items()):
        if fmt not in _VALIDATED_FORMATS:
            continue
        m = schema_map.match(path) if schema_map.entries else None
        if m:
            out.append(Choice(path, m[0], f"schema map '{m[1]}'"))
            continue
        if path in schema_refs:
            target, line = schema_refs[path]
            out.append(Choice(path, target, "$schema", line))
            continue
        folder, name = posixpath.split(path)
        if name == "values.yaml" and posixpath.join(folder, "Chart.yaml") in corpus.formats:
            helm_schema = posixpath.join(folder, "values.schema.json")
            if helm_schema in corpus.formats:
                out.append(Choice(path, helm_schema, "Helm's values.schema.json"))
            continue
        if path in index.schema_files:
            continue  # a schema is not validated against a catalog entry for its own name
        if path in declared:
            said = declared.get(path) if isinstance(declared, Mapping) else None
            if builtin and said and schemastore.load(said) is not None:
                out.append(
                    Choice(path, said, f"$schema (built-in catalogue: {schemastore.name(said) or said})", builtin=True)
                )
            continue
        urls = {url: cpath for rx, url, cpath in catalog if rx.match(path)}
        if len(urls) == 1:
            url, cpath = next(iter(urls.items()))
            local = index.lookup(url)
            if local and local != path:
                out.append(Choice(path, local, f"catalog {cpath}"))
                continue
        elif len(urls) > 1:
            continue
        if builtin:
            if manifests is None:
                manifests = kubernetes_manifests(corpus)
            choice = _builtin(corpus, path, fmt, manifests)
            if choice is not None:
                out.append(choice)
    return out


def _builtin(
    corpus: Corpus, path: str, fmt: str, manifests: dict[str, tuple[list[tuple[str, str]], bool]]
) -> Choice | None:
    """kb's built-in catalogue: by the path, else by the Kubernetes kinds inside."""
    sid = schemastore.match(path)
    if sid is not None:
        return Choice(path, sid, f"built-in catalogue ({schemastore.name(sid) or sid})", builtin=True)
    if path not in manifests:
        return None
    kinds, several = manifests[path]
    sid = schemastore.kubernetes_schema(kinds, dispatch=several)
    if sid is None:
        return None
    names = ", ".join(sorted({k for _, k in kinds}))
    return Choice(path, sid, f"built-in catalogue (Kubernetes {names})", builtin=True)


def kubernetes_manifests(corpus: Corpus) -> dict[str, tuple[list[tuple[str, str]], bool]]:
    """Files whose every (non-empty) document is a Kubernetes object: path -> ``(apiVersion,
    kind)`` pairs, and whether the file holds several documents (each then checked by its kind)."""
    rows = corpus.catalogue.query(
        """SELECT d.path, d.doc, d.data = 'null', a.value, k.value
           FROM documents d
           LEFT JOIN records a ON a.path = d.path AND a.doc = d.doc AND a.key_path = 'apiVersion'
                AND a.value_type = 'str'
           LEFT JOIN records k ON k.path = d.path AND k.doc = d.doc AND k.key_path = 'kind'
                AND k.value_type = 'str'
           WHERE d.path IN (SELECT path FROM records WHERE key_path = 'kind' AND doc >= 0)"""
    )
    docs: dict[str, list[tuple[bool, Any, Any]]] = {}
    for path, _doc, empty, api, kind in rows:
        docs.setdefault(path, []).append((bool(empty), api, kind))
    out: dict[str, tuple[list[tuple[str, str]], bool]] = {}
    for path, items in docs.items():
        pairs = [(api, kind) for empty, api, kind in items if not empty]
        if pairs and all(isinstance(a, str) and isinstance(k, str) for a, k in pairs):
            out[path] = (pairs, len(items) > 1)
    return out
