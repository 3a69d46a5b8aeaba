"""Reference extraction: catalogue rows in, :class:`Reference` rows out.

Ingest and graph talk through the catalogue: this module reads ``files``, ``records`` and
``documents`` (never the parsers) and finds, per format, every place where one file points at
another file, at a place inside a file, at a service, at a variable or at a cluster object:

==========================  =====================================================================
kind                        where it comes from
==========================  =====================================================================
``file``                    a path in a value (``"config": "features/analytics.json"``,
                            ``./templates/x.yml``, ``file:x.json``) ending in a config/doc suffix
``include``                 the same under an include-like key (``extends``, ``include``,
                            ``imports``, kustomize ``resources`` ...): these must not form cycles
``schema``                  ``$schema`` values and ``# yaml-language-server: $schema=`` modelines
``json-ref``                JSON Schema / OpenAPI ``$ref`` (the JSON pointer must exist)
``compose-*``               docker compose ``extends``, ``env_file``, ``depends_on``, bind-mount
                            sources, ``build.context``, ``dockerfile``, ``include``, config files
``variable``                ``${VAR}``, ``${VAR:?err}``, ``$VAR`` (compose) in compose, .env,
                            properties and YAML files
``markdown-link``           Markdown links and images to local files and ``#anchors``
``k8s-configmap``/``-secret``  ``configMapRef``, ``secretRef``, ``configMapKeyRef``, ... names
``helm-value``              ``.Values.a.b`` in chart templates, looked up in ``values.yaml``
==========================  =====================================================================

Strings that only look like paths are not references: URLs, MIME types, ``read/write``, dates,
globs, image names, cron lines, absolute host/container paths.

Each reference has a ``status``: ``ok`` (resolved), ``broken`` (points nowhere), ``undefined``
(a variable nobody defines), ``external`` (a URL, host path or remote that cannot be checked
offline) or ``optional`` (missing, but declared optional).
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from kb.catalogue import Catalogue
from kb.errors import ConfigError
from kb.keypaths import join_key_path, key_join, split_key_path
from kb.settings import Settings

__all__ = [
    "Reference",
    "REFERENCE_COLUMNS",
    "CYCLE_KINDS",
    "KINDS",
    "Corpus",
    "SchemaIndex",
    "ReferenceExtractor",
    "extract_references",
    "key_join",
    "split_key_path",
    "scan_variables",
    "looks_like_path",
    "service_node",
]

# ---------------------------------------------------------------------------------------------
# The row
# ---------------------------------------------------------------------------------------------

REFERENCE_COLUMNS: list[tuple[str, str]] = [
    ("path", "VARCHAR"), ("doc", "INTEGER"), ("line", "INTEGER"), ("key_path", "VARCHAR"),
    ("kind", "VARCHAR"), ("target", "VARCHAR"), ("resolved", "VARCHAR"), ("status", "VARCHAR"),
    ("severity", "VARCHAR"), ("detail", "VARCHAR"),
]

KINDS = (
    "file", "include", "schema", "json-ref", "compose-extends", "compose-env-file",
    "compose-depends-on", "compose-volume", "compose-build-context", "compose-dockerfile",
    "compose-include", "compose-file", "variable", "markdown-link", "k8s-configmap", "k8s-secret",
    "helm-value",
)

# References whose cycles are errors (a file that includes itself, services that wait on each
# other). ``$ref`` recursion and Markdown link loops are normal, so they are not here.
CYCLE_KINDS = frozenset({"include", "compose-extends", "compose-depends-on", "compose-include"})


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

    def row(self) -> tuple:
        return (self.path, self.doc, self.line, self.key_path, self.kind, self.target, self.resolved,
                self.status, self.severity, self.detail)


key_path_of = join_key_path  # the name graph has always exported


def _last_key(kp: str) -> str:
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


# ---------------------------------------------------------------------------------------------
# Path-likeness
# ---------------------------------------------------------------------------------------------

# Suffixes of files a path in a config value is taken to point at (config and docs formats).
REF_SUFFIXES = frozenset({
    "json", "jsonc", "json5", "yaml", "yml", "toml", "ini", "cfg", "conf", "cnf", "env", "properties",
    "md", "markdown", "mdx", "tpl", "hcl", "tf", "tfvars",
})
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_MIME_TOP = ("application/", "text/", "image/", "audio/", "video/", "multipart/", "font/", "model/",
             "message/", "chemical/", "x-conference/")
_DATE = re.compile(r"^\d{1,4}[/\-.]\d{1,2}[/\-.]\d{1,4}$")
_CIDR = re.compile(r"^[\d.]+/\d{1,2}$|^[0-9a-fA-F:]+/\d{1,3}$")
_GLOB_CHARS = set("*?[]{}")
_BAD_CHARS = set(" \t\r\n\"'<>|`,;()=&^!")
# Keys whose values are paths even without a slash (``extends: base.json``).
_PATH_KEYS = frozenset({
    "extends", "extend", "include", "includes", "import", "imports", "inherit", "inherits", "base",
    "bases", "parent", "parents", "based_on", "basedon", "config", "configs", "configfile",
    "config_file", "config-file", "file", "files", "path", "paths", "schema", "ref", "template",
    "templates", "values", "valuefiles", "valuesfiles", "resources", "components", "patches",
    "patchesstrategicmerge", "envfile", "env_file", "env-file", "env_files", "source", "src",
    "manifest", "manifests", "filename", "location", "overlay", "overlays", "crds", "openapi",
    "spec", "specs", "definition", "definitions_file", "fragment", "fragments", "partial", "partials",
})
_NOT_PATH_KEYS = frozenset({"subpath", "mountpath", "hostpath", "image", "url", "uri", "href", "homepage"})
# Include-like keys: a reference under one of these must not close a cycle.
_INCLUDE_KEYS = frozenset({
    "extends", "extend", "include", "includes", "import", "imports", "inherit", "inherits", "base",
    "bases", "parent", "parents", "based_on", "basedon", "resources", "components", "overlays",
})
# Key-path segments under which values are data about paths, not references.
_SKIP_SEGMENTS = frozenset({
    "default", "defaults", "examples", "example", "enum", "const", "pattern", "patterns",
    "description", "title", "markdowndescription", "$comment", "filematch", "exclude", "excludes",
    "ignore", "ignores", "ignorepatterns", "ignore_patterns", "ignore-paths", "paths-ignore",
    "skip", "glob", "globs", "match", "matches", "watch", "on", "$id", "id", "$schema", "$ref",
    "with",  # GitHub Actions inputs: paths in the runner's workspace, made at run time
})


def looks_like_path(value: str, key_path: str = "") -> bool:
    """Whether a config value is a reference to a file in the tree.

    A path ends in a config/doc suffix (``.json``, ``.yaml``, ``.md``, ...) and is relative, has
    no spaces, glob characters, scheme or tag; without a ``/`` it also needs a path-like key
    (``extends``, ``config``, ``include``, ``*file``, ...). ``file:`` prefixes are stripped.
    """
    v = value.strip()
    if not v or len(v) > 300:
        return False
    if v.startswith("file:") and not v.startswith("file://"):
        v = v[5:]
    elif _SCHEME.match(v):  # URLs, s3://, image:tag, C:\ ...
        return False
    if v[0] in "/~@$%{\\" or "$" in v or "{{" in v or "://" in v or "\\" in v or "[REDACTED:" in v:
        return False
    if any(c in _BAD_CHARS or c in _GLOB_CHARS for c in v):
        return False
    if v.lower().startswith(_MIME_TOP) or _DATE.match(v) or _CIDR.match(v):
        return False
    clean = v.split("#", 1)[0].split("?", 1)[0].rstrip("/")
    name = clean.rsplit("/", 1)[-1]
    if "." not in name:
        return False
    suffix = name.rsplit(".", 1)[-1].lower()
    if suffix not in REF_SUFFIXES or name.startswith(".") and name.count(".") == 1 and suffix != "env":
        return False
    if ":" in clean:  # nginx:1.25.yaml? tag-like
        return False
    if "/" in clean:
        return True
    key = _last_key(key_path)
    if key in _NOT_PATH_KEYS:
        return False
    return key in _PATH_KEYS or key.endswith(("file", "files", "_path", "-path", "config"))


_DATA_SEGMENTS = frozenset({"default", "defaults", "examples", "example", "enum", "const"})


def _in_data_subtree(kp: str) -> bool:
    """Whether ``kp`` lies under a JSON-Schema keyword whose value is instance data."""
    return any(isinstance(p, str) and p.lower() in _DATA_SEGMENTS for p in split_key_path(kp)[:-1])


def _skipped_key_path(kp: str) -> bool:
    return any(isinstance(p, str) and p.lower() in _SKIP_SEGMENTS for p in split_key_path(kp)[:-1]) or (
        _last_key(kp) in {"$id", "id", "$schema", "$ref", "description", "title", "pattern"}
    )


# ---------------------------------------------------------------------------------------------
# Variables
# ---------------------------------------------------------------------------------------------

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass(slots=True)
class VarUse:
    name: str
    required: bool      # no default: must be defined
    raw: str            # the text as written, ``${NAME:?msg}``


def scan_variables(text: str, *, bare: bool = False, dotted: bool = False,
                   colon_default: bool = False) -> list[VarUse]:
    """Variable uses in a string, compose-style.

    ``$$`` is an escape; ``${VAR:-x}``, ``${VAR-x}``, ``${VAR:+x}``, ``${VAR+x}`` have a default;
    ``${VAR:?err}``/``${VAR?err}``/``${VAR}`` need a definition; ``$VAR`` counts only with
    ``bare``. Variables inside a default are optional. ``dotted`` allows Spring-style names
    (``${spring.datasource.url}``) and ``colon_default`` reads ``${name:default}`` as a default.
    ``${{ ... }}`` (GitHub Actions) and ``$(...)`` are not variables.
    """
    out: list[VarUse] = []
    i, n = 0, len(text)
    name_re = _DOTTED_NAME if dotted else _NAME
    while i < n:
        j = text.find("$", i)
        if j < 0 or j + 1 >= n:
            break
        c = text[j + 1]
        if c == "$":
            i = j + 2
            continue
        if c == "{":
            depth, k = 1, j + 2
            while k < n and depth:
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                k += 1
            if depth:
                break  # unterminated
            inner = text[j + 2:k - 1]
            m = name_re.match(inner)
            if m:
                name, rest = m.group(0), inner[m.end():]
                if dotted:
                    name = name.rstrip(".-")
                    rest = inner[len(name):]
                if rest == "" or rest[:2] in (":?",) or rest[:1] == "?":
                    out.append(VarUse(name, True, text[j:k]))
                elif rest[:2] in (":-", ":+") or rest[:1] in ("-", "+") or (colon_default and rest[:1] == ":"):
                    out.append(VarUse(name, False, text[j:k]))
                    # variables inside a default are used only when NAME is unset: optional
                    for u in scan_variables(rest, bare=bare, dotted=dotted, colon_default=colon_default):
                        out.append(VarUse(u.name, False, u.raw))
                # anything else (${a[0]}, ${#a}, ${a/b/c}) is shell, not interpolation
            i = k
            continue
        if bare:
            m = _NAME.match(text, j + 1)
            if m:
                out.append(VarUse(m.group(0), True, text[j:m.end()]))
                i = m.end()
                continue
        i = j + 1
    return out


_WHOLE_VAR = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(?::?[-?+][^}]*)?\}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Variables every process environment has; never undefined.
ALWAYS_ENV = frozenset({"HOME", "PATH", "USER", "PWD", "SHELL", "HOSTNAME", "LANG", "TERM", "TMPDIR"})
# Keys whose values are shell scripts run later, where ``${VAR}`` is the shell's business.
_SCRIPT_KEYS = frozenset({
    "run", "script", "scripts", "command", "commands", "args", "entrypoint", "cmd", "shell",
    "before_script", "after_script", "before_install", "install", "test", "build", "steps",
    "exec", "hook", "hooks", "pre", "post", "lifecycle", "prestop", "poststart",
})


# ---------------------------------------------------------------------------------------------
# The corpus view
# ---------------------------------------------------------------------------------------------


class Corpus:
    """What reference resolution needs from the catalogue: files, folders, documents, records.

    Existence is decided by the catalogue first (files and their folders), then, for targets kb
    does not catalogue (images, source folders, Dockerfiles in ignored folders), by a ``stat``
    under the corpus root when it is available.
    """

    def __init__(self, catalogue: Catalogue, settings: Settings) -> None:
        self.catalogue = catalogue
        self.settings = settings
        rows = catalogue.query("SELECT path, format, status FROM files")
        self.formats: dict[str, str] = {p: f for p, f, _ in rows}
        self.status: dict[str, str] = {p: st for p, _, st in rows}
        self.dirs: set[str] = {""}
        for p in self.formats:
            d = posixpath.dirname(p)
            while d not in self.dirs:
                self.dirs.add(d)
                d = posixpath.dirname(d)
        root = settings.root or catalogue.get_meta("root")
        self.root: Path | None = Path(root) if root else None
        if self.root is not None and not self.root.is_dir():
            self.root = None
        extra = settings.ref_roots
        self.extra_roots: list[str] = [posixpath.normpath(str(r)).strip("/") for r in extra]
        self._disk: dict[str, bool | None] = {}
        self.basenames: set[str] = {posixpath.basename(p) for p in self.formats}
        self._docs: dict[tuple[str, int], Any] = {}
        self._doc_index: dict[str, set[int]] = defaultdict(set)

    # -- existence ------------------------------------------------------------------------------

    def _on_disk(self, rel: str) -> str | None:
        """'file', 'dir' or None for a path under the root that the catalogue does not hold."""
        if self.root is None:
            return None
        if rel not in self._disk:
            p = self.root / rel
            self._disk[rel] = True if p.is_file() else (False if p.is_dir() else None)
        v = self._disk[rel]
        return None if v is None else ("file" if v else "dir")

    def kind_of(self, rel: str) -> str | None:
        if rel in self.formats:
            return "file"
        if rel in self.dirs:
            return "dir"
        if rel.startswith("../") or rel == "..":
            return None
        return self._on_disk(rel)

    def exists(self, rel: str) -> bool:
        return self.kind_of(rel) is not None

    def is_file(self, rel: str) -> bool:
        return self.kind_of(rel) == "file"

    # -- resolution -----------------------------------------------------------------------------

    def candidates(self, source: str, target: str, *, root_relative: bool = True) -> list[str]:
        """Where a relative ``target`` written in ``source`` may point, in resolution order."""
        base = posixpath.dirname(source)
        out = [posixpath.normpath(posixpath.join(base, target))]
        if root_relative and not target.startswith(("./", "../")):
            out.append(posixpath.normpath(target))
            out += [posixpath.normpath(posixpath.join(r, target)) for r in self.extra_roots]
        return [("" if c == "." else c) for c in out]

    def resolve(self, source: str, target: str, *, root_relative: bool = True,
                want: str | None = None) -> str | None:
        for c in self.candidates(source, target, root_relative=root_relative):
            if c.startswith("../") or c == "..":
                continue
            k = self.kind_of(c)
            if k is not None and (want is None or k == want):
                return c
        return None

    def best_guess(self, source: str, target: str) -> str:
        """The path a broken relative reference most likely meant (for the message)."""
        cands = self.candidates(source, target)
        if len(cands) > 1 and not target.startswith(("./", "../")):
            first = target.split("/", 1)[0]
            if "/" in target and first in self.dirs and first != "":
                return cands[1]
        return cands[0]

    def escapes_root(self, source: str, target: str) -> bool:
        c = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
        return c == ".." or c.startswith("../")

    # -- documents ------------------------------------------------------------------------------

    def document(self, path: str, doc: int = 0) -> Any:
        key = (path, doc)
        if key not in self._docs:
            rows = self.catalogue.query("SELECT data FROM documents WHERE path = ? AND doc = ?", [path, doc])
            self._docs[key] = json.loads(rows[0][0]) if rows else None
            self._doc_index[path].add(doc)
        return self._docs[key]

    def load_documents(self, paths: Iterable[str]) -> None:
        """Bulk-load documents of ``paths`` into the cache."""
        want = [p for p in set(paths) if (p, 0) not in self._docs]
        if not want:
            return
        rows = self.catalogue.query(
            "SELECT path, doc, data FROM documents WHERE path IN (SELECT unnest(?))", [want])
        for p in want:
            self._docs.setdefault((p, 0), None)
            self._doc_index[p].add(0)
        for p, d, data in rows:
            try:
                self._docs[(p, d)] = json.loads(data)
            except ValueError:
                self._docs[(p, d)] = None
            self._doc_index[p].add(d)

    def documents_of(self, path: str) -> list[tuple[int, Any]]:
        out = [(d, self._docs.get((path, d))) for d in sorted(self._doc_index.get(path, ()))]
        return [(d, v) for d, v in out if v is not None]

    def forget(self, path: str) -> None:
        """Drop ``path``'s documents from the cache (memory stays flat over big trees)."""
        for d in self._doc_index.pop(path, ()):
            self._docs.pop((path, d), None)


class LineIndex:
    """key_path -> line for one file's records; a mapping key takes its first child's line."""

    def __init__(self, rows: Iterable[tuple[int, str, int]]) -> None:
        self.exact: dict[tuple[int, str], int] = {}
        self.sorted: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for doc, kp, line in rows:
            if line is None:
                continue
            self.exact[(doc, kp)] = line
            self.sorted[doc].append((kp, line))
        for v in self.sorted.values():
            v.sort()

    def line(self, doc: int, kp: str) -> int | None:
        if (doc, kp) in self.exact:
            return self.exact[(doc, kp)]
        items = self.sorted.get(doc)
        if not items:
            return None
        best = None
        if kp == "":
            return min(line for _, line in items)
        i = bisect.bisect_left(items, (kp, -1))
        while i < len(items) and items[i][0].startswith(kp):
            rest = items[i][0][len(kp):]
            if rest[:1] in (".", "["):
                best = items[i][1] if best is None else min(best, items[i][1])
            i += 1
        if best is not None:
            return best
        parts = split_key_path(kp)
        if len(parts) > 1:  # not in the file (a missing property): its parent's line
            return self.line(doc, join_key_path(parts[:-1]))
        return min(line for _, line in items)


def _line_indexes(catalogue: Catalogue, paths: Iterable[str]) -> dict[str, LineIndex]:
    paths = list(set(paths))
    if not paths:
        return {}
    rows = catalogue.query(
        "SELECT path, doc, key_path, line FROM records WHERE path IN (SELECT unnest(?))", [paths])
    by_path: dict[str, list[tuple[int, str, int]]] = defaultdict(list)
    for p, d, kp, line in rows:
        by_path[p].append((d, kp, line))
    return {p: LineIndex(by_path.get(p, [])) for p in paths}


# ---------------------------------------------------------------------------------------------
# JSON pointers and the schema URI index
# ---------------------------------------------------------------------------------------------


def pointer_exists(data: Any, pointer: str) -> bool:
    """Whether RFC 6901 ``pointer`` (``/a/b/0``, percent-decoded) exists in ``data``."""
    if pointer == "":
        return True
    if not pointer.startswith("/"):
        return False
    cur = data
    for raw in pointer[1:].split("/"):
        tok = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict):
            if tok not in cur:
                return False
            cur = cur[tok]
        elif isinstance(cur, list):
            if not tok.isdigit() or int(tok) >= len(cur):
                return False
            cur = cur[int(tok)]
        else:
            return False
    return True


def _anchor_exists(data: Any, name: str) -> bool:
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if cur.get("$anchor") == name or cur.get("$dynamicAnchor") == name:
                return True
            for k in ("$id", "id"):
                v = cur.get(k)
                if isinstance(v, str) and v.endswith("#" + name):
                    return True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


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
               WHERE key_path IN ('$schema', '$id', 'id') AND value_type = 'str' AND doc = 0""")
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
        cat_paths = [r[0] for r in cat.query(
            "SELECT DISTINCT path FROM records WHERE key_path LIKE 'schemas[%].url' AND doc = 0")]
        corpus.load_documents(cat_paths)
        catalogs = [(cp, corpus.document(cp)) for cp in cat_paths]
        for configured in getattr(corpus.settings, "schema_catalogs", None) or []:
            cpath = Path(configured)
            if not cpath.is_absolute() and corpus.root is not None:
                cpath = corpus.root / cpath
            try:
                catalogs.append((str(configured), json.loads(cpath.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"schema catalog '{configured}' cannot be read ({exc}); "
                                  "check the schema_catalogs setting") from exc
        for cp, data in catalogs:
            if not isinstance(data, dict) or not isinstance(data.get("schemas"), list):
                continue
            for entry in data["schemas"]:
                if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                    continue
                fm = entry.get("fileMatch") or []
                globs = [g for g in fm if isinstance(g, str)] if isinstance(fm, list) else []
                self.catalog_entries.append((cp, globs, entry["url"]))
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
        if len(cands) == 1 and not self._site_of_file(cands[0]):
            # a schema without $id, named like the URL, on a site that serves a catalog here
            if any(_site(e[2]) == site for e in self.catalog_entries):
                return cands[0]
        return None


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

_STRUCTURED = ("json", "yaml", "toml", "ini", "properties", "dotenv")
_COMPOSE_NAME = re.compile(r"^(docker-)?compose([.\-_][^/]*)?\.ya?ml$", re.I)
_COMPOSE_TOP = frozenset({"version", "services", "networks", "volumes", "configs", "secrets", "include",
                          "name", "models"})
_SERVICE_KEYS = frozenset({"image", "build", "extends", "depends_on", "ports", "volumes", "environment",
                           "command", "env_file", "profiles", "networks", "container_name", "restart",
                           "deploy", "healthcheck", "entrypoint", "expose", "labels", "working_dir"})
_MODELINE = re.compile(r"#\s*yaml-language-server:\s*\$schema=(\S+)")


def _is_compose(path: str, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    keys = {k for k in data if not str(k).startswith("x-")}
    if not keys or not keys <= _COMPOSE_TOP:
        return False
    services = data.get("services")
    if services is None:
        return "include" in data and _COMPOSE_NAME.match(posixpath.basename(path)) is not None
    if not isinstance(services, dict):
        return False
    if _COMPOSE_NAME.match(posixpath.basename(path)):
        return True
    return any(isinstance(s, dict) and (set(s) & _SERVICE_KEYS) for s in services.values()) or not services


class ReferenceExtractor:
    """Runs every extractor over a catalogue; keeps the corpus view and schema index for reuse."""

    def __init__(self, catalogue: Catalogue, settings: Settings, progress: Any = None) -> None:
        self.cat = catalogue
        self.settings = settings
        self.corpus = Corpus(catalogue, settings)
        self.progress = progress
        self.refs: list[Reference] = []
        self.known_env = list(settings.known_env or [])
        self._schema_index: SchemaIndex | None = None

    @property
    def schema_index(self) -> SchemaIndex:
        if self._schema_index is None:
            self._schema_index = SchemaIndex(self.corpus)
        return self._schema_index

    def add(self, *args: Any, **kw: Any) -> Reference:
        r = Reference(*args, **kw)
        self.refs.append(r)
        return r

    # -- the run --------------------------------------------------------------------------------

    def run(self) -> list[Reference]:
        steps = [self.compose, self.values, self.schema_modelines, self.markdown, self.kubernetes,
                 self.helm, self.variables]
        for i, step in enumerate(steps):
            step()
            if self.progress:
                self.progress("refs", i + 1, len(steps))
        return self.refs

    # -- candidate rows -------------------------------------------------------------------------

    def _candidate_values(self) -> list[tuple[str, int, str, str, int, str]]:
        """String records that may hold a path, a ``$ref`` or a ``$schema``."""
        suffixes = "|".join(sorted(REF_SUFFIXES))
        return self.cat.query(
            f"""SELECT r.path, r.doc, r.key_path, r.value, r.line, f.format
                FROM records r JOIN files f ON f.path = r.path
                WHERE r.value_type = 'str' AND f.format IN ('json', 'yaml', 'toml', 'ini', 'properties', 'dotenv')
                  AND length(r.value) < 1000
                  AND (regexp_matches(r.key_path, '(^|[.\\]])\\$(ref|schema)$')
                       OR regexp_matches(lower(r.value), '\\.({suffixes})([#?].*)?$')
                       OR starts_with(r.value, 'file:'))
                ORDER BY r.path, r.doc, r.line""")

    # -- compose --------------------------------------------------------------------------------

    def compose(self) -> None:
        names = [p for p, f in self.corpus.formats.items() if f == "yaml" and _COMPOSE_NAME.match(posixpath.basename(p))]
        by_content = [r[0] for r in self.cat.query(
            """SELECT DISTINCT r.path FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'yaml' AND r.doc = 0 AND starts_with(r.key_path, 'services.')""")]
        cands = sorted(set(names) | set(by_content))
        self.corpus.load_documents(cands)
        self.compose_files: dict[str, dict] = {}
        for p in cands:
            data = self.corpus.document(p, 0)
            if _is_compose(p, data):
                self.compose_files[p] = data
        lines = _line_indexes(self.cat, self.compose_files)
        self._compose_lines = lines
        self.compose_env_files: dict[str, list[str]] = defaultdict(list)  # compose path -> env files
        # services visible from each compose file: its own, same-folder compose files (overrides),
        # included files (transitively) and files that include it
        includes: dict[str, list[str]] = defaultdict(list)
        for p, data in self.compose_files.items():
            for _, _, target in self._compose_include_targets(p, data):
                resolved = self.corpus.resolve(p, target, root_relative=False)
                if resolved:
                    includes[p].append(resolved)
        by_dir: dict[str, list[str]] = defaultdict(list)
        for p in self.compose_files:
            by_dir[posixpath.dirname(p)].append(p)

        def services_of(p: str) -> dict[str, str]:
            data = self.compose_files.get(p) or {}
            s = data.get("services")
            return {str(k): p for k in s} if isinstance(s, dict) else {}

        self.compose_scope: dict[str, dict[str, str]] = {}
        for p in self.compose_files:
            scope: dict[str, str] = {}
            seen, stack = set(), [p]
            while stack:  # included files, transitively
                q = stack.pop()
                if q in seen:
                    continue
                seen.add(q)
                stack.extend(includes.get(q, []))
            seen |= {q for q, inc in includes.items() if p in inc}
            seen |= set(by_dir[posixpath.dirname(p)])
            for q in sorted(seen - {p}):
                for name, where in services_of(q).items():
                    scope.setdefault(name, where)
            scope.update(services_of(p))
            self.compose_scope[p] = scope

        for p, data in self.compose_files.items():
            self._compose_file(p, data, lines[p])

    def _compose_include_targets(self, p: str, data: dict) -> Iterator[tuple[str, str, str]]:
        inc = data.get("include")
        if not isinstance(inc, list):
            return
        for i, item in enumerate(inc):
            if isinstance(item, str):
                yield f"include[{i}]", "", item
            elif isinstance(item, dict):
                paths = item.get("path")
                if isinstance(paths, str):
                    yield f"include[{i}].path", "", paths
                elif isinstance(paths, list):
                    for j, x in enumerate(paths):
                        if isinstance(x, str):
                            yield f"include[{i}].path[{j}]", "", x

    def _remote(self, target: str) -> bool:
        return bool(_SCHEME.match(target)) and not target.startswith("file:") or target.startswith(("git@", "github.com/"))

    def _compose_path_ref(self, p: str, li: LineIndex, kp: str, kind: str, target: str, *,
                          want: str | None = None, base_dir: str | None = None, optional: bool = False,
                          severity: str = "error", what: str = "file") -> Reference | None:
        if not isinstance(target, str) or not target:
            return None
        line = li.line(0, kp)
        if "${" in target or "$" in target.replace("$$", ""):
            return None  # interpolated: the variable is checked instead
        if self._remote(target) or target.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", target):
            return self.add(p, 0, line, kp, kind, target, None, "external", severity,
                            "absolute, home or remote path: not checked")
        src = p if base_dir is None else posixpath.join(base_dir, "_")
        if self.corpus.escapes_root(src, target):
            return self.add(p, 0, line, kp, kind, target, None, "external", severity,
                            "outside the corpus root: not checked")
        resolved = self.corpus.resolve(src, target, root_relative=False, want=want)
        if resolved is not None:
            return self.add(p, 0, line, kp, kind, target, resolved, "ok", severity)
        guess = self.corpus.best_guess(src, target) if base_dir is None else posixpath.normpath(
            posixpath.join(base_dir, target))
        status = "optional" if optional else "broken"
        other = self.corpus.resolve(src, target, root_relative=False) if want else None
        if other is not None:
            wrong = {"dir": "a folder", "file": "a file"}
            return self.add(p, 0, line, kp, kind, other, None, status, severity,
                            f"{what} '{target}' is {wrong[self.corpus.kind_of(other) or 'file']}, "
                            f"not {wrong.get(want, want)}")
        return self.add(p, 0, line, kp, kind, guess, None, status, severity,
                        f"{what} '{target}' does not exist (looked for {guess})")

    def _compose_file(self, p: str, data: dict, li: LineIndex) -> None:
        base = posixpath.dirname(p)
        scope = self.compose_scope[p]
        for kp, _, target in self._compose_include_targets(p, data):
            self._compose_path_ref(p, li, kp, "compose-include", target)
        for top in ("configs", "secrets"):
            block = data.get(top)
            if isinstance(block, dict):
                for name, spec in block.items():
                    if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                        kp = key_join(key_join(top, name), "file")
                        self._compose_path_ref(p, li, kp, "compose-file", spec["file"])
        services = data.get("services")
        if not isinstance(services, dict):
            return
        for name, svc in services.items():
            if not isinstance(svc, dict):
                continue
            skp = key_join("services", name)
            self._compose_extends(p, li, skp, svc.get("extends"), scope)
            env = svc.get("env_file")
            items = [env] if isinstance(env, (str, dict)) else (env if isinstance(env, list) else [])
            for i, item in enumerate(items):
                kp = key_join(skp, "env_file") + ("" if isinstance(env, (str, dict)) else f"[{i}]")
                if isinstance(item, str):
                    r = self._compose_path_ref(p, li, kp, "compose-env-file", item, want="file", what="env_file")
                elif isinstance(item, dict) and isinstance(item.get("path"), str):
                    r = self._compose_path_ref(p, li, key_join(kp, "path"), "compose-env-file", item["path"],
                                               want="file", optional=item.get("required") is False,
                                               what="env_file")
                else:
                    r = None
                if r is not None and r.resolved:
                    self.compose_env_files[p].append(r.resolved)
            self._compose_depends_on(p, li, skp, svc.get("depends_on"), scope)
            self._compose_build(p, li, skp, svc.get("build"))
            vols = svc.get("volumes")
            if isinstance(vols, list):
                for i, v in enumerate(vols):
                    kp = f"{key_join(skp, 'volumes')}[{i}]"
                    src = None
                    if isinstance(v, str):
                        parts = v.split(":")
                        if len(parts) >= 2 and parts[0].startswith((".", "/", "~")):
                            src = parts[0]  # a host path (anything else names a volume)
                    elif isinstance(v, dict) and v.get("type") == "bind" and isinstance(v.get("source"), str):
                        src = v["source"]
                        kp = key_join(kp, "source")
                    if src is not None:
                        self._compose_path_ref(p, li, kp, "compose-volume", src, severity="warning",
                                               what="bind-mount source")

    def _compose_extends(self, p: str, li: LineIndex, skp: str, ext: Any, scope: dict[str, str]) -> None:
        if ext is None:
            return
        kp = key_join(skp, "extends")
        if isinstance(ext, str):
            service, file = ext, None
        elif isinstance(ext, dict) and isinstance(ext.get("service"), str):
            service, file = ext["service"], ext.get("file")
            kp_file = key_join(kp, "file")
        else:
            return
        line = li.line(0, kp)
        if file is None:
            where = p if service in (self.compose_files.get(p, {}).get("services") or {}) else None
            if where:
                self.add(p, 0, line, kp, "compose-extends", service, f"{p}#{key_join('services', service)}", "ok")
            else:
                self.add(p, 0, line, kp, "compose-extends", service, None, "broken", "error",
                         f"service '{service}' is not defined in {p}")
            return
        if not isinstance(file, str):
            return
        if "$" in file:
            return
        if self._remote(file) or file.startswith("/"):
            self.add(p, 0, li.line(0, kp_file), kp_file, "compose-extends", file, None, "external", "error",
                     "remote or absolute file: not checked")
            return
        resolved = self.corpus.resolve(p, file, root_relative=False, want="file")
        if resolved is None:
            guess = self.corpus.best_guess(p, file)
            self.add(p, 0, li.line(0, kp_file), kp_file, "compose-extends", guess, None, "broken", "error",
                     f"extends file '{file}' does not exist (looked for {guess})")
            return
        other = self.compose_files.get(resolved)
        if other is None:
            self.corpus.load_documents([resolved])
            other = self.corpus.document(resolved)
        svcs = other.get("services") if isinstance(other, dict) else None
        if isinstance(svcs, dict) and service in svcs:
            self.add(p, 0, line, kp, "compose-extends", f"{file}#{service}",
                     f"{resolved}#{key_join('services', service)}", "ok")
        else:
            self.add(p, 0, line, kp, "compose-extends", f"{file}#{service}", None, "broken", "error",
                     f"service '{service}' is not defined in {resolved}")

    def _compose_depends_on(self, p: str, li: LineIndex, skp: str, dep: Any, scope: dict[str, str]) -> None:
        base_kp = key_join(skp, "depends_on")
        if isinstance(dep, list):
            items = [(f"{base_kp}[{i}]", d, True) for i, d in enumerate(dep) if isinstance(d, str)]
        elif isinstance(dep, dict):
            items = [(key_join(base_kp, d), d, not (isinstance(spec, dict) and spec.get("required") is False))
                     for d, spec in dep.items()]
        else:
            return
        for kp, name, required in items:
            name = str(name)
            line = li.line(0, kp)
            where = scope.get(name)
            if where is not None:
                self.add(p, 0, line, kp, "compose-depends-on", name, f"{where}#{key_join('services', name)}", "ok")
            else:
                self.add(p, 0, line, kp, "compose-depends-on", name, None,
                         "broken" if required else "optional", "error",
                         f"service '{name}' is not defined in {p} or the compose files it is merged with")

    def _compose_build(self, p: str, li: LineIndex, skp: str, build: Any) -> None:
        if build is None:
            return
        kp = key_join(skp, "build")
        if isinstance(build, str):
            context, dockerfile, ctx_kp, inline = build, None, kp, False
        elif isinstance(build, dict):
            context = build.get("context", ".")
            dockerfile = build.get("dockerfile")
            ctx_kp = key_join(kp, "context") if "context" in build else kp
            inline = "dockerfile_inline" in build
        else:
            return
        if not isinstance(context, str):
            return
        r = self._compose_path_ref(p, li, ctx_kp, "compose-build-context", context, want="dir",
                                   what="build context")
        if r is None or r.status != "ok" or inline:
            return
        ctx = r.resolved or ""
        df_kp = key_join(kp, "dockerfile") if isinstance(dockerfile, str) else ctx_kp
        if dockerfile is None:
            dockerfile = "Dockerfile"
        if not isinstance(dockerfile, str):
            return
        self._compose_path_ref(p, li, df_kp, "compose-dockerfile", dockerfile, want="file",
                               base_dir=ctx, what="Dockerfile")

    # -- values: file paths, $ref, $schema ------------------------------------------------------

    def values(self) -> None:
        rows = self._candidate_values()
        k8s_docs = self._k8s_docs()
        compose = getattr(self, "compose_files", {})
        refs_by_target: dict[str, list[tuple]] = defaultdict(list)
        for path, doc, kp, value, line, fmt in rows:
            last = _last_key(kp)
            if last == "$ref" and fmt in ("json", "yaml"):
                if not _in_data_subtree(kp):
                    refs_by_target[path].append((doc, kp, value, line))
                continue
            if kp == "$schema" and fmt in ("json", "yaml", "toml"):
                self._schema_ref(path, doc, kp, value, line)
                continue
            if path in compose or (path, doc) in k8s_docs:
                continue
            if _skipped_key_path(kp) or not looks_like_path(value, kp):
                continue
            self._file_ref(path, doc, kp, value, line)
        for path, items in refs_by_target.items():
            for doc, kp, value, line in items:
                self._json_ref(path, doc, kp, value, line)

    def _k8s_docs(self) -> set[tuple[str, int]]:
        rows = self.cat.query(
            """SELECT path, doc FROM records WHERE key_path = 'kind' AND value_type = 'str'
               AND value <> 'Kustomization'
               INTERSECT SELECT path, doc FROM records WHERE key_path = 'apiVersion'""")
        return {(p, d) for p, d in rows}

    def _file_ref(self, path: str, doc: int, kp: str, value: str, line: int) -> None:
        target = value.strip()
        if target.startswith("file:"):
            target = target[5:]
        clean = target.split("#", 1)[0].split("?", 1)[0]
        kind = "include" if _last_key(kp) in _INCLUDE_KEYS else "file"
        if self.corpus.escapes_root(path, clean) and self.corpus.resolve(path, clean) is None:
            self.add(path, doc, line, kp, kind, value, None, "external", "error", "outside the corpus root")
            return
        if "node_modules/" in clean:
            self.add(path, doc, line, kp, kind, value, None, "external", "error", "an installed dependency")
            return
        resolved = self.corpus.resolve(path, clean)
        if resolved is not None:
            self.add(path, doc, line, kp, kind, value, resolved, "ok")
        elif "/" not in clean and clean in self.corpus.basenames:
            # a bare name that exists elsewhere: the tool has its own search path
            self.add(path, doc, line, kp, kind, value, None, "external", "error",
                     "a bare file name found elsewhere in the tree; resolved by the tool's own search path")
        else:
            guess = self.corpus.best_guess(path, clean)
            self.add(path, doc, line, kp, kind, guess, None, "broken", "error",
                     f"'{value}' does not exist (looked for {guess})")

    def _schema_ref(self, path: str, doc: int, kp: str, value: str, line: int | None) -> None:
        v = value.strip()
        if not v:
            return
        if is_meta_schema_url(v):
            return  # the file is itself a schema; $schema names its dialect
        if "://" in v:
            local = self.schema_index.lookup(v)
            if local:
                self.add(path, doc, line, kp, "schema", v, local, "ok")
            else:
                self.add(path, doc, line, kp, "schema", v, None, "external", "error", "remote schema")
            return
        clean = v[5:] if v.startswith("file:") else v
        clean = clean.split("#", 1)[0]
        if clean.startswith("/") or "node_modules/" in clean or self.corpus.escapes_root(path, clean):
            self.add(path, doc, line, kp, "schema", v, None, "external", "error", "not in the tree")
            return
        resolved = self.corpus.resolve(path, clean, root_relative=False, want="file")
        if resolved:
            self.add(path, doc, line, kp, "schema", v, resolved, "ok")
        else:
            guess = self.corpus.best_guess(path, clean)
            self.add(path, doc, line, kp, "schema", guess, None, "broken", "error",
                     f"schema '{v}' does not exist (looked for {guess})")

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
            target_path = self.schema_index.lookup(uri)
            tdoc = 0
            if target_path is None:
                self.add(path, doc, line, kp, "json-ref", v, None, "external", "error", "remote $ref")
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
                    target_path = self.schema_index.lookup(urljoin(base, uri))
                    if target_path is None:
                        self.add(path, doc, line, kp, "json-ref", v, None, "external", "error",
                                 f"resolves against $id {base}; not in the tree")
                        return
            if target_path is None:
                guess = self.corpus.best_guess(path, uri)
                self.add(path, doc, line, kp, "json-ref", guess + (f"#{frag}" if frag else ""), None, "broken",
                         "error", f"$ref file '{uri}' does not exist (looked for {guess})")
                return
        if not frag:
            self.add(path, doc, line, kp, "json-ref", v, target_path, "ok")
            return
        data = self.corpus.document(target_path, tdoc)
        if data is None:
            self.corpus.load_documents([target_path])
            data = self.corpus.document(target_path, tdoc)
        resolved = f"{target_path}#{frag}"
        if data is None:  # not parsed (unknown format): the file exists, do not guess
            self.add(path, doc, line, kp, "json-ref", v, resolved, "ok", "error", "pointer not checked")
            return
        if uri == "":
            data = _scope_for_local_ref(data, kp)
        ok = pointer_exists(data, frag) if frag.startswith("/") else _anchor_exists(data, frag)
        if ok:
            self.add(path, doc, line, kp, "json-ref", v, resolved, "ok")
        else:
            self.add(path, doc, line, kp, "json-ref", resolved, None, "broken", "error",
                     f"{target_path} has no '#{frag}'")

    def schema_modelines(self) -> None:
        """``# yaml-language-server: $schema=...`` comments, read from the first section's text."""
        rows = self.cat.query(
            """SELECT s.path, s.text, s.line_start FROM sections s JOIN files f ON f.path = s.path
               WHERE f.format = 'yaml' AND s.line_start <= 3 AND contains(s.text, 'yaml-language-server')""")
        # YAML files without sections (comments only, empty): read their first lines from disk
        if self.corpus.root is not None:
            bare = self.cat.query(
                """SELECT f.path FROM files f WHERE f.format = 'yaml' AND f.status = 'ok'
                   AND NOT EXISTS (SELECT 1 FROM sections s WHERE s.path = f.path)""")
            for (path,) in bare:
                try:
                    with open(self.corpus.root / path, encoding="utf-8-sig", errors="replace") as fh:
                        head = "".join(fh.readline() for _ in range(3))
                except OSError:
                    continue
                if "yaml-language-server" in head:
                    rows.append((path, head, 1))
        seen = set()
        for path, text, start in rows:
            if path in seen:
                continue
            for off, ln in enumerate(text.splitlines()[:5]):
                m = _MODELINE.search(ln)
                if m:
                    seen.add(path)
                    self._schema_ref(path, 0, "$schema", m.group(1), start + off)
                    break

    # -- markdown -------------------------------------------------------------------------------

    def markdown(self) -> None:
        rows = self.cat.query(
            """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'markdown' AND starts_with(r.key_path, 'links[') AND r.value_type = 'str'
               ORDER BY r.path, r.line""")
        heads = self.cat.query(
            """SELECT r.path, r.value FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'markdown' AND starts_with(r.key_path, 'headings[')
               ORDER BY r.path, r.line""")
        slugs: dict[str, set[str]] = defaultdict(set)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for path, title in heads:
            s = slugify(title or "")
            n = counts[(path, s)]
            counts[(path, s)] += 1
            slugs[path].add(_loose(s if n == 0 else f"{s}-{n}"))
            for name in _HTML_ANCHOR.findall(title or ""):
                slugs[path].add(_loose(name))
        # explicit HTML anchors (<a name="x">, id="x") anywhere in the text
        for path, text in self.cat.query(
                """SELECT s.path, s.text FROM sections s JOIN files f ON f.path = s.path
                   WHERE f.format = 'markdown' AND (contains(s.text, 'name=') OR contains(s.text, 'id='))"""):
            for name in _HTML_ANCHOR.findall(text or ""):
                slugs[path].add(_loose(name))
        for path, kp, value, line in rows:
            self._md_link(path, kp, value.strip(), line, slugs)

    def _md_link(self, path: str, kp: str, target: str, line: int, slugs: dict[str, set[str]]) -> None:
        if target.startswith("<") and target.endswith(">"):
            target = target[1:-1]
        if not target or target.startswith(("//", "{{", "{%", "$")) or _SCHEME.match(target) or "[REDACTED:" in target:
            return
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        if file_part == "":
            resolved = path
        elif file_part.startswith("/"):
            rel = file_part.lstrip("/")
            if "." not in posixpath.basename(rel.rstrip("/")):
                # a site route (/reference/cli/), as documentation generators use: not a file
                self.add(path, 0, line, kp, "markdown-link", target, None, "external", "error",
                         "a site-absolute route, not a file")
                return
            resolved = None
            d = posixpath.dirname(path)
            tried = []
            while True:  # the repository root may be any ancestor folder
                c = posixpath.normpath(posixpath.join(d, rel))
                tried.append(c)
                if self.corpus.exists(c):
                    resolved = c
                    break
                if d == "":
                    break
                d = posixpath.dirname(d)
            if resolved is None:
                self.add(path, 0, line, kp, "markdown-link", rel, None, "broken", "error",
                         f"link target '{target}' does not exist")
                return
        else:
            if self.corpus.escapes_root(path, file_part):
                self.add(path, 0, line, kp, "markdown-link", target, None, "external", "error",
                         "outside the corpus root")
                return
            resolved = self.corpus.resolve(path, file_part, root_relative=False)
            if resolved is None:
                guess = posixpath.normpath(posixpath.join(posixpath.dirname(path), file_part))
                self.add(path, 0, line, kp, "markdown-link", guess, None, "broken", "error",
                         f"link target '{file_part}' does not exist (looked for {guess})")
                return
        if not anchor or self.corpus.formats.get(resolved) != "markdown" or re.match(r"^L\d+", anchor):
            self.add(path, 0, line, kp, "markdown-link", target, resolved, "ok")
            return
        full = f"{resolved}#{anchor}"
        have = slugs.get(resolved, set())
        if _loose(unquote(anchor)) in have:
            self.add(path, 0, line, kp, "markdown-link", target, full, "ok")
        else:
            self.add(path, 0, line, kp, "markdown-link", full, None, "broken", "error",
                     f"{resolved} has no heading for '#{anchor}'")

    # -- kubernetes -----------------------------------------------------------------------------

    _K8S_REF = re.compile(
        r"(?:^|\.)(?P<obj>configMapRef|secretRef|configMapKeyRef|secretKeyRef|configMap|secret)\.(?P<field>name|secretName)$")

    def kubernetes(self) -> None:
        objs = self.cat.query(
            """SELECT k.path, k.doc, k.value, n.value FROM records k
               JOIN records n ON n.path = k.path AND n.doc = k.doc AND n.key_path = 'metadata.name'
               WHERE k.key_path = 'kind' AND k.value IN ('ConfigMap', 'Secret', 'SealedSecret', 'ExternalSecret')""")
        defined: dict[tuple[str, str], str] = {}
        for path, _doc, kind, name in objs:
            k = "ConfigMap" if kind == "ConfigMap" else "Secret"
            defined.setdefault((k, name), path)
        gens = self.cat.query(
            """SELECT path, key_path, value FROM records
               WHERE regexp_matches(key_path, '^(configMapGenerator|secretGenerator)\\[\\d+\\]\\.name$')""")
        for path, kp, name in gens:
            defined.setdefault(("ConfigMap" if kp.startswith("configMap") else "Secret", name), path)
        rows = self.cat.query(
            """SELECT r.path, r.doc, r.key_path, r.value, r.line FROM records r
               WHERE r.value_type = 'str'
                 AND regexp_matches(r.key_path, '(configMapRef|secretRef|configMapKeyRef|secretKeyRef|configMap|secret)\\.(name|secretName)$')
                 AND (r.path, r.doc) IN (SELECT path, doc FROM records WHERE key_path = 'apiVersion')""")
        if not rows:
            return
        optional = {(p, d, kp) for p, d, kp, v in self.cat.query(
            """SELECT path, doc, key_path, value FROM records WHERE value = 'true'
               AND (ends_with(key_path, '.optional'))""")}
        for path, doc, kp, name, line in rows:
            m = self._K8S_REF.search(kp)
            if not m:
                continue
            obj, field = m.group("obj"), m.group("field")
            if (obj == "secret") != (field == "secretName") and obj in ("secret",):
                continue
            if obj == "configMap" and field != "name":
                continue
            kind = "Secret" if obj.startswith("secret") else "ConfigMap"
            if "{{" in name or "$" in name:
                continue
            parent = kp[: -len(field) - 1]
            ref_kind = "k8s-secret" if kind == "Secret" else "k8s-configmap"
            where = defined.get((kind, name))
            if where:
                self.add(path, doc, line, kp, ref_kind, name, where, "ok", "warning")
            elif (path, doc, parent + ".optional") in optional:
                self.add(path, doc, line, kp, ref_kind, name, None, "optional", "warning")
            else:
                self.add(path, doc, line, kp, ref_kind, name, None, "broken", "warning",
                         f"no {kind} named '{name}' in the tree")

    # -- helm -----------------------------------------------------------------------------------

    def helm(self) -> None:
        rows = self.cat.query(
            """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'helm-template' AND starts_with(r.key_path, 'values_refs[')
               ORDER BY r.path, r.line""")
        if not rows:
            return
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

        pending: list[Reference] = []
        for path, kp, value, line in rows:
            chart = chart_of(path)
            if chart is None:
                continue
            if chart not in chart_info:
                cfile = posixpath.join(chart, "Chart.yaml")
                vfile = posixpath.join(chart, "values.yaml")
                self.corpus.load_documents([cfile, vfile])
                meta = self.corpus.document(cfile) or {}
                deps = set()
                if isinstance(meta, dict) and isinstance(meta.get("dependencies"), list):
                    for d in meta["dependencies"]:
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
                self.add(path, 0, line, kp, "helm-value", value, None, "broken", "error",
                         f"the chart {chart or '.'} has no values.yaml")
                continue
            if keys[0] in deps or keys[0] == "global":
                self.add(path, 0, line, kp, "helm-value", value, vfile, "ok")
                continue
            missing = _missing_value(values, keys)
            if missing is None:
                self.add(path, 0, line, kp, "helm-value", value, f"{vfile}#{value}", "ok")
            else:
                pending.append(self.add(path, 0, line, kp, "helm-value", value, None, "broken", "error",
                                        f"{vfile} has no '{missing}'"))
        # A missing value that the template tests (if/with/default/coalesce/...) is optional.
        texts = self._line_texts({r.path for r in pending})
        tested: dict[str, set[str]] = defaultdict(set)  # path -> values an if/with/... tests
        for (p, _), text in texts.items():
            tested[p].update(_tested_values(text))
        for r in pending:
            text = texts.get((r.path, r.line or 0), "")
            parts = r.target.split(".")
            prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
            if _guarded(text, r.target) or prefixes & tested[r.path]:
                r.status = "optional"
                r.detail += " (the template guards it)"

    def _line_texts(self, paths: set[str]) -> dict[tuple[str, int], str]:
        """(path, line) -> source line, from the sections' text (no file reads)."""
        out: dict[tuple[str, int], str] = {}
        if not paths:
            return out
        for path, start, text in self.cat.query(
                "SELECT path, line_start, text FROM sections WHERE path IN (SELECT unnest(?))", [sorted(paths)]):
            for i, ln in enumerate((text or "").split("\n")):
                out.setdefault((path, start + i), ln)
        return out

    # -- variables ------------------------------------------------------------------------------

    def variables(self) -> None:
        compose = getattr(self, "compose_files", {})
        env_rows = self.cat.query(
            """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
               WHERE f.format = 'dotenv'""")
        defs_by_file: dict[str, dict[str, int]] = defaultdict(dict)
        for path, key, _value, line in env_rows:
            defs_by_file[path].setdefault(key, line)
        env_by_dir: dict[str, list[str]] = defaultdict(list)
        for path in defs_by_file:
            env_by_dir[posixpath.dirname(path)].append(path)
        for path, f in self.corpus.formats.items():  # empty env files define nothing but exist
            if f == "dotenv" and path not in defs_by_file:
                env_by_dir[posixpath.dirname(path)].append(path)
        prop_keys: dict[str, set[str]] = defaultdict(set)
        rows = self.cat.query(
            """SELECT r.path, r.doc, r.key_path, r.value, r.line, f.format FROM records r
               JOIN files f ON f.path = r.path
               WHERE r.value_type = 'str' AND contains(r.value, '$')
                 AND f.format IN ('yaml', 'json', 'toml', 'ini', 'dotenv', 'properties')
               ORDER BY r.path, r.line""")
        if any(fmt == "properties" for *_, fmt in rows):
            for p, k in self.cat.query(
                    """SELECT r.path, r.key_path FROM records r JOIN files f ON f.path = r.path
                       WHERE f.format IN ('properties')"""):
                prop_keys[posixpath.dirname(p)].add(k)
        known = self.known_env
        schema_files = self.schema_index.schema_files
        # what compose passes to containers (service environment / env_file), by compose folder:
        # app configs below it (properties, YAML) read those variables at run time
        container_env: dict[str, set[str]] = defaultdict(set)
        for cp, data in compose.items():
            names = container_env[posixpath.dirname(cp)]
            for f in self.compose_env_files.get(cp, []):
                names.update(defs_by_file.get(f, {}))
            for svc in (data.get("services") or {}).values() if isinstance(data.get("services"), dict) else ():
                env = svc.get("environment") if isinstance(svc, dict) else None
                if isinstance(env, dict):
                    names.update(str(k) for k in env)
                elif isinstance(env, list):
                    names.update(str(e).split("=", 1)[0] for e in env if isinstance(e, str))

        def container_defines(path: str, name: str) -> str | None:
            d = posixpath.dirname(path)
            while True:
                if name in container_env.get(d, ()):
                    return d
                if d == "":
                    return None
                d = posixpath.dirname(d)

        def scope_files(path: str) -> Iterator[str]:
            d = posixpath.dirname(path)
            while True:
                yield from sorted(env_by_dir.get(d, []))
                if d == "":
                    return
                d = posixpath.dirname(d)

        scope_cache: dict[str, list[str]] = {}

        def env_scope(path: str) -> list[str]:
            if path not in scope_cache:
                scope_cache[path] = list(scope_files(path)) + self.compose_env_files.get(path, [])
            return scope_cache[path]

        def lookup(path: str, name: str, line: int) -> tuple[str | None, str]:
            if name in ALWAYS_ENV:
                return None, "set in every environment"
            if any(fnmatch.fnmatchcase(name, pat) for pat in known):
                return None, "known_env"
            for f in env_scope(path):
                defs = defs_by_file.get(f, {})
                if name in defs and (f != path or defs[name] < line):
                    return f"{f}#{name}", ""
            return None, "undefined"

        for path, doc, kp, value, line, fmt in rows:
            if fmt == "yaml" and path in compose:
                uses = scan_variables(value, bare=True)
            elif fmt in ("yaml", "json", "toml", "ini"):
                # a config value that a loader interpolates: only where an env file is in scope, or
                # when the whole value is one ${VAR}; never in multi-line strings or scripts
                v = value.strip()
                if "\n" in v or not (env_scope(path) or _WHOLE_VAR.match(v)):
                    continue
                if path in schema_files or _in_data_subtree(kp + ".x"):
                    continue
                if any(isinstance(p, str) and p.lower() in _SCRIPT_KEYS for p in split_key_path(kp)):
                    continue
                # environment variables are upper-case by convention; ${message}, ${workspaceFolder}
                # are a logger's or an editor's own placeholders
                uses = [u for u in scan_variables(value) if _ENV_NAME.match(u.name)]
            elif fmt == "dotenv":
                uses = scan_variables(value)
            else:  # properties: Spring placeholders, ${name:default}
                uses = scan_variables(value, dotted=True, colon_default=True)
            for u in uses:
                if not u.required:
                    self.add(path, doc, line, kp, "variable", u.name, None, "ok", "error", "has a default")
                    continue
                if fmt == "properties" and u.name in prop_keys.get(posixpath.dirname(path), set()):
                    self.add(path, doc, line, kp, "variable", u.name, path, "ok")
                    continue
                resolved, why = lookup(path, u.name, line or 0)
                if resolved is None and why == "undefined" and path not in compose and fmt != "dotenv":
                    d = container_defines(path, u.name)
                    if d is not None:
                        why = f"set in the container environment by the compose file in {d or '.'}"
                if resolved is not None:
                    self.add(path, doc, line, kp, "variable", u.name, resolved, "ok")
                elif why != "undefined":
                    self.add(path, doc, line, kp, "variable", u.name, None, "ok", "error", why)
                else:
                    scope = env_scope(path)
                    where = ", ".join(scope[:3]) + (" ..." if len(scope) > 3 else "") if scope else "none"
                    self.add(path, doc, line, kp, "variable", u.name, None, "undefined", "error",
                             f"{u.raw} has no default and no .env in scope defines it (env files in scope: {where})")


def _scope_for_local_ref(data: Any, kp: str) -> Any:
    """The resource a ``#/pointer`` at ``kp`` is relative to: the nearest enclosing ``$id``."""
    cur = data
    scope = data
    for part in split_key_path(kp)[:-1]:
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            break
        if isinstance(cur, dict) and isinstance(cur.get("$id"), str) and not cur["$id"].startswith("#"):
            scope = cur
    return scope


_GUARDS = re.compile(r"\b(if|with|default|coalesce|or|and|not|empty|hasKey|ternary|required|dig|kindIs|typeIs|eq|ne)\b")


def _guarded(line: str, ref: str) -> bool:
    """Whether ``.Values.<ref>`` sits in a ``{{ }}`` action that tests it or gives a fallback."""
    needle = ".Values." + ref
    for m in re.finditer(r"\{\{(.*?)\}\}", line):
        action = m.group(1)
        if needle in action and _GUARDS.search(action):
            return True
    return False


_TEST_ACTION = re.compile(r"\{\{-?\s*(?:if|with|else if)\b(.*?)-?\}\}")
_VALUES_PATH = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _tested_values(line: str) -> set[str]:
    """Values that an ``if``/``with`` action on this line tests (``{{ if .Values.a.b }}`` -> a.b)."""
    out = set()
    for m in _TEST_ACTION.finditer(line):
        out.update(v[1:] for v in _VALUES_PATH.findall(m.group(1)))
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


_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)
_HTML_ANCHOR = re.compile(r"""(?:<a\s[^>]*?(?:name|id)|\sid)\s*=\s*["']([^"']+)["']""")


def _loose(anchor: str) -> str:
    """An anchor compared loosely: letters and digits only (renderers differ on emoji, '/', '&')."""
    return "".join(c for c in anchor.lower() if c.isalnum())


def slugify(title: str) -> str:
    """GitHub's heading anchor: lower-case, punctuation dropped, spaces to hyphens."""
    t = re.sub(r"<[^>]+>", "", title)  # inline html
    t = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", t)  # links keep their text
    t = t.replace("`", "").strip().lower()
    t = _SLUG_DROP.sub("", t)
    return t.replace(" ", "-")


def extract_references(catalogue: Catalogue, settings: Settings, progress: Any = None) -> list[Reference]:
    """Every reference in the catalogued tree, resolved."""
    return ReferenceExtractor(catalogue, settings, progress).run()


def table_rows(refs: Iterable[Reference]) -> list[tuple]:
    return [r.row() for r in refs]


def from_rows(rows: Iterable[tuple]) -> list[Reference]:
    return [Reference(*row) for row in rows]

