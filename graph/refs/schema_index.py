"""Schema URLs to corpus files: ``$id``s, catalog ``url``s, then a basename on the same site."""

from __future__ import annotations

import json
import posixpath
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

from kb.errors import ConfigError
from kb.graph.refs.corpus import Corpus

__all__ = ["SchemaIndex", "META_SCHEMA_HOSTS", "is_meta_schema_url"]


def _site(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return ".".join(host.split(".")[-2:])


def _norm_url(url: str) -> str:
    u = url.split("#", 1)[0]
    if u.startswith("http://"):
        u = "https://" + u[7:]
    return u


META_SCHEMA_HOSTS = ("json-schema.org",)


def is_meta_schema_url(url: str) -> bool:
    return _site(url) in META_SCHEMA_HOSTS or url.startswith(("https://spec.openapis.org/oas",))


class SchemaIndex:
    """Maps schema URLs to corpus files: ``$id``s, catalog ``url``s, then basename on the same site.

    Built from the catalogue: every JSON/YAML document that declares a JSON-Schema ``$schema`` or
    an ``$id``, and every SchemaStore-style catalog (``{"schemas": [{"url", "fileMatch"}]}``).
    """

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        cat = corpus.catalogue
        rows = cat.query(
            """SELECT path, key_path, value FROM records
               WHERE key_path IN ('$schema', '$id', 'id') AND value_type = 'str' AND doc = 0"""
        )
        self.schema_files: set[str] = set()
        self.by_id: dict[str, str] = {}
        for path, kp, value in rows:
            if kp == "$schema" and is_meta_schema_url(value):
                self.schema_files.add(path)
        for path, kp, value in rows:
            if kp in ("$id", "id") and path in self.schema_files and "://" in value:
                self.by_id.setdefault(_norm_url(value), path)
            elif kp == "$id" and "://" in value and corpus.formats.get(path) in ("json", "yaml"):
                self.schema_files.add(path)
                self.by_id.setdefault(_norm_url(value), path)
        self.by_base: dict[str, list[str]] = defaultdict(list)
        for p in self.schema_files:
            self.by_base[posixpath.basename(p)].append(p)
        # catalogs: {"schemas": [{"name", "url", "fileMatch": [...]}]}
        self.catalog_entries: list[tuple[str, list[str], str]] = []  # (catalog path, globs, url)
        # earlier versions a catalog entry lists ({"versions": {"4": "https://.../labeler-4.json"}}):
        # named by the catalog, chosen by no fileMatch
        self.catalog_versions: list[str] = []
        cat_paths = [
            r[0]
            for r in cat.query("SELECT DISTINCT path FROM records WHERE key_path LIKE 'schemas[%].url' AND doc = 0")
        ]
        corpus.load_documents(cat_paths)
        catalogs = [(cp, corpus.document(cp)) for cp in cat_paths]
        for configured in corpus.settings.schema_catalogs or []:
            cpath = Path(configured)
            if not cpath.is_absolute() and corpus.root is not None:
                cpath = corpus.root / cpath
            try:
                catalogs.append((str(configured), json.loads(cpath.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"schema catalog '{configured}' cannot be read ({exc}); check the schema_catalogs setting"
                ) from exc
        for cp, data in catalogs:
            if not isinstance(data, dict) or not isinstance(data.get("schemas"), list):
                continue
            for entry in data["schemas"]:
                if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                    continue
                fm = entry.get("fileMatch") or []
                globs = [g for g in fm if isinstance(g, str)] if isinstance(fm, list) else []
                self.catalog_entries.append((cp, globs, entry["url"]))
                versions = entry.get("versions")
                if isinstance(versions, dict):
                    self.catalog_versions.extend(v for v in versions.values() if isinstance(v, str))
        self._site_of: dict[str, str] = {}

    def _site_of_file(self, path: str) -> str:
        if path not in self._site_of:
            site = ""
            for u, p in self.by_id.items():
                if p == path:
                    site = _site(u)
                    break
            self._site_of[path] = site
        return self._site_of[path]

    def named_by_catalogs(self) -> set[str]:
        """The schema files the catalogs name, by an entry's URL or one of its ``versions``. A catalog
        in the tree names the tree's schemas by where they are served (www.schemastore.org,
        raw.githubusercontent.com), while their ``$id`` may point elsewhere: a file name only one
        schema here has is that schema (for orphans only; choosing a schema keeps :meth:`lookup`)."""
        out: set[str] = set()
        for url in [*(u for _, _, u in self.catalog_entries), *self.catalog_versions]:
            found = self.lookup(url)
            if found:
                out.add(found)
            same_name = self.by_base.get(posixpath.basename(urlsplit(url).path), [])
            if len(same_name) == 1:
                out.add(same_name[0])
        return out

    def lookup(self, url: str) -> str | None:
        """The corpus file serving schema ``url``, or None (it would need the network)."""
        u = _norm_url(url)
        if u in self.by_id:
            return self.by_id[u]
        alt = u[:-5] if u.endswith(".json") else u + ".json"
        if alt in self.by_id:
            return self.by_id[alt]
        path = urlsplit(u).path
        base = posixpath.basename(path)
        if not base:
            return None
        if "." not in base:
            base += ".json"
        cands = self.by_base.get(base, [])
        site = _site(u)
        same = [c for c in cands if self._site_of_file(c) == site]
        if len(same) == 1:
            return same[0]
        # a schema without $id, named like the URL, on a site that serves a catalog here
        if (
            len(cands) == 1
            and not self._site_of_file(cands[0])
            and any(_site(e[2]) == site for e in self.catalog_entries)
        ):
            return cands[0]
        return None
