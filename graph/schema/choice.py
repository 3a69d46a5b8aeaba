"""Which schema each structured file is validated against: the schema map, the file's own
``$schema``, Helm's ``values.schema.json``, then SchemaStore-style catalogs in the tree."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from graph.refs import Corpus, SchemaIndex
from graph.schema.mapping import SchemaMap, glob_regex
from kb.errors import ConfigError

__all__ = ["Choice", "choose_schemas"]


@dataclass(slots=True)
class Choice:
    path: str
    schema: str
    why: str  # "schema map 'GLOB'", "$schema", "catalog <file>"
    line: int | None = None


_VALIDATED_FORMATS = ("json", "yaml", "toml")


def choose_schemas(
    corpus: Corpus,
    index: SchemaIndex,
    schema_map: SchemaMap,
    schema_refs: dict[str, tuple[str, int | None]],
    declared: set[str] | frozenset[str] = frozenset(),
) -> list[Choice]:
    """The schema each structured file is validated against (files without one are left out).

    ``schema_refs`` maps a file to its resolved ``$schema``/modeline target (from the references);
    ``declared`` holds files whose ``$schema`` could not be resolved offline: a catalog does not
    second-guess them.
    Order: the schema map, the file's ``$schema``, Helm's ``values.schema.json`` for a chart's
    ``values.yaml``, then the catalogs. A file that several catalog entries (with different
    schemas) claim is left alone: guessing between them makes false alarms (``manifest.json``
    is a web app manifest and a browser extension manifest).
    """
    catalog = []
    for cpath, globs, url in index.catalog_entries:
        for g in globs:
            if g.startswith("!"):
                continue
            g = g.lstrip("/")
            try:
                rx = glob_regex(g if g.startswith("**/") or "/" not in g else "**/" + g, captures=False)
            except (ConfigError, re.error):
                continue
            catalog.append((rx, url, cpath))
    out: list[Choice] = []
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
        if path in index.schema_files or path in declared or not catalog:
            continue  # a schema is not validated against a catalog entry for its own name
        urls = {url: cpath for rx, url, cpath in catalog if rx.match(path)}
        if len(urls) == 1:
            url, cpath = next(iter(urls.items()))
            local = index.lookup(url)
            if local and local != path:
                out.append(Choice(path, local, f"catalog {cpath}"))
    return out
