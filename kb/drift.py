"""Drift between sibling configuration files, and the effective configuration of one environment.

Siblings are files that play the same role for different environments. They are found by name,
per folder, first rule first (a file joins one group only):

=====================  ===================================================  ====================
rule                   example                                              base (the layer)
=====================  ===================================================  ====================
dotenv                 ``.env.development``, ``.env.production``            ``.env``
helm values            ``values-staging.yaml``, ``values.prod.yaml``        ``values.yaml``
name-env               ``application-prod.properties``, ``app_dev.yml``     ``application.properties``
name.env               ``appsettings.Production.json``, ``compose.prod.yml`` ``appsettings.json``
env files              ``config/{development,staging,production}.*``        ``config/{base,default,common,shared}.*``
env folders            ``envs/{dev,prod}/app.yaml``, ``overlays/*/...``     ``.../base/app.yaml``
=====================  ===================================================  ====================

Except for Helm values (any suffix) and dotenv (any suffix), the environment part must be a known
environment word (dev, development, test, qa, uat, stage, staging, preprod, prod, production,
local, ...). ``.env.example`` / ``.sample`` / ``.template`` / ``.dist`` are *templates*.

How the base participates: the base is the layer every environment starts from, not an
environment. Each environment's *effective* configuration is the base deep-merged with the
environment file (mappings merge key by key; a list, or a scalar replacing a mapping, replaces the
base's value whole). Drift compares the environments' effective configurations:

* ``missing``: a key some environments have and others lack (``missing_in`` lists the environment
  files, and any template that does not declare it). A key the base defines is inherited, so it is
  never missing from an environment.
* ``differing``: a key every environment has, with two or more distinct values. ``values`` maps
  each environment file to its effective value, plus the base file to the base's value when the
  base defines the key (so an environment that shows the base's value inherits it).

A drift group needs two or more environments (a base with one environment cannot drift; it still
has an effective configuration, see :func:`effective_config`); groups where
the environments agree are not reported. Only the first document of a multi-document file is
compared. Values compare as text (``5432`` in YAML equals ``5432`` in a ``.properties`` file).
Values are the catalogue's, so secrets appear only as their redaction markers.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kb.duplicates import _unflatten, key_segments, typed_value
from kb.errors import BadRequestError
from kb.formats import formats_with
from kb.globs import PathFilter
from kb.keypaths import SEGMENT
from kb.types import DriftDiffering, DriftGroup, DriftMissing

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.settings import Settings

__all__ = ["find_drift", "effective_config", "sibling_groups", "environments", "key_lines", "Siblings", "ENV_WORDS"]

CONFIG_FORMATS = formats_with(lambda t: t.layered)
"""Formats of configuration that sibling files override per environment (``layered``, :mod:`kb.formats`)."""

ENV_WORDS: dict[str, str] = {
    "dev": "development",
    "develop": "development",
    "development": "development",
    "test": "test",
    "testing": "test",
    "tst": "test",
    "qa": "qa",
    "uat": "uat",
    "int": "integration",
    "integration": "integration",
    "stage": "staging",
    "staging": "staging",
    "stg": "staging",
    "preprod": "preprod",
    "pre-prod": "preprod",
    "preproduction": "preprod",
    "prod": "production",
    "production": "production",
    "prd": "production",
    "live": "production",
    "local": "local",
    "sandbox": "sandbox",
    "demo": "demo",
    "ci": "ci",
    "perf": "perf",
    "canary": "canary",
    "dr": "dr",
}
"""Environment words recognised in file and folder names, with their normal form."""

BASE_WORDS = ("base", "default", "defaults", "common", "shared", "global")
TEMPLATE_WORDS = ("example", "sample", "template", "dist", "tpl", "defaults.example")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.\-]*)(?:(:-|-|:)([^}]*))?\}")


@dataclass
class Siblings:
    """One group of sibling files: bases, environments (path -> env name) and templates."""

    rule: str
    label: str
    bases: list[str] = field(default_factory=list)
    envs: dict[str, str] = field(default_factory=dict)
    templates: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return sorted(self.bases) + sorted(self.envs) + sorted(self.templates)


def normal_env(name: str) -> str:
    n = name.lower()
    return ENV_WORDS.get(n, n)


# ---------------------------------------------------------------------------------------------
# Grouping siblings
# ---------------------------------------------------------------------------------------------


def _split(path: str) -> tuple[str, str]:
    return path.rsplit("/", 1) if "/" in path else ("", path)  # type: ignore[return-value]


def _stem_ext(name: str) -> tuple[str, str]:
    i = name.rfind(".")
    return (name, "") if i <= 0 else (name[:i], name[i:])


def sibling_groups(paths: list[str], *, single: bool = False) -> list[Siblings]:
    """Group catalogued config file paths into sibling sets (see the module docstring).

    Drift needs two or more environments per group. With ``single=True`` (the effective
    configuration of one environment), a base with a single environment (``config/base.yaml`` +
    ``config/production.yaml``) is a group too: such groups are formed after, and from the files
    left by, the groups of two or more, so the latter are the same either way."""
    candidates: list[dict[tuple, Siblings]] = [{} for _ in range(6)]

    def add(rule_no: int, key: tuple, rule: str, label: str, path: str, role: str, env: str = "") -> None:
        g = candidates[rule_no].setdefault(key, Siblings(rule, label))
        if role == "base":
            g.bases.append(path)
        elif role == "template":
            g.templates.append(path)
        else:
            g.envs[path] = env

    for path in paths:
        d, name = _split(path)
        low = name.lower()
        prefix = f"{d}/" if d else ""
        # 1. dotenv
        if low == ".env":
            add(0, (d,), "dotenv", f"{prefix}.env*", path, "base")
        elif low.startswith(".env."):
            rest = name[5:]
            role = "template" if rest.lower() in TEMPLATE_WORDS else "env"
            add(0, (d,), "dotenv", f"{prefix}.env*", path, role, rest)
        elif low.endswith(".env") and low != ".env":
            stem = name[:-4]
            if stem.lower() in ENV_WORDS:
                add(0, (d, "suffix"), "dotenv", f"{prefix}*.env", path, "env", stem)
            elif stem.lower() in BASE_WORDS:
                add(0, (d, "suffix"), "dotenv", f"{prefix}*.env", path, "base")
        stem, ext = _stem_ext(name)
        # 2. Helm values
        if ext.lower() in (".yaml", ".yml"):
            sl = stem.lower()
            if sl == "values":
                add(1, (d,), "helm-values", f"{prefix}values*.yaml", path, "base")
            elif sl.startswith(("values-", "values.", "values_")) and len(sl) > 7:
                add(1, (d,), "helm-values", f"{prefix}values*.yaml", path, "env", stem[7:])
        # 3. name-env / name_env
        m = re.match(r"^(.+?)[-_]([A-Za-z\-]+)$", stem)
        if m and m.group(2).lower() in ENV_WORDS and not stem.lower().startswith("values"):
            add(2, (d, m.group(1).lower()), "name-env", f"{prefix}{m.group(1)}-*.*", path, "env", m.group(2))
        # 4. name.env.ext
        if "." in stem:
            base_stem, env = stem.rsplit(".", 1)
            if env.lower() in ENV_WORDS and base_stem and not base_stem.lower().startswith("values"):
                add(3, (d, base_stem.lower()), "name.env", f"{prefix}{base_stem}.*{ext}", path, "env", env)
        # 5. env files in one folder
        if stem.lower() in ENV_WORDS:
            add(4, (d,), "env-files", f"{prefix}{{env}}.*", path, "env", stem)
        elif stem.lower() in BASE_WORDS:
            add(4, (d,), "env-files", f"{prefix}{{env}}.*", path, "base")
        # 6. one folder per environment
        parts = path.split("/")
        for i in range(len(parts) - 2, -1, -1):
            word = parts[i].lower()
            if word in ENV_WORDS or word in BASE_WORDS:
                parent, rest = "/".join(parts[:i]), "/".join(parts[i + 1 :])
                label = f"{parent + '/' if parent else ''}*/{rest}"
                add(5, (parent, rest), "env-folders", label, path, "base" if word in BASE_WORDS else "env", parts[i])
                break

    # Bases for the name-env and name.env rules: the file named like the stem, same folder.
    by_dir_stem: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in paths:
        d, name = _split(path)
        by_dir_stem[(d, _stem_ext(name)[0].lower())].append(path)
    for rule_no in (2, 3):
        for key, g in candidates[rule_no].items():
            g.bases.extend(by_dir_stem.get(key, []))

    used: set[str] = set()
    out: list[Siblings] = []
    for min_envs in (2, 1) if single else (2,):
        for rule_groups in candidates:
            for g0 in rule_groups.values():
                g = Siblings(g0.rule, g0.label)
                g.bases = [p for p in g0.bases if p not in used and p not in g0.envs]
                g.envs = {p: e for p, e in g0.envs.items() if p not in used}
                g.templates = [p for p in g0.templates if p not in used]
                if len(g.envs) < min_envs:
                    continue
                used.update(g.files)
                if g.rule == "env-files":
                    stems = sorted({_stem_ext(_split(p)[1])[0] for p in [*g.bases, *g.envs]})
                    g.label = g.label.replace("{env}", "{" + ",".join(stems) + "}")
                out.append(g)
    out.sort(key=lambda g: g.files[0])
    return out


def _config_paths(catalogue: Catalogue) -> list[str]:
    rows = catalogue.query(
        "SELECT path FROM files WHERE status = 'ok' AND format IN (SELECT unnest(?)) ORDER BY path",
        [list(CONFIG_FORMATS)],
    )
    return [p for (p,) in rows]


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def _load(catalogue: Catalogue, paths: list[str]) -> dict[str, dict[str, tuple[str, Any, int, str]]]:
    """path -> key_path -> (compared text, typed value, line, value_type) for document 0."""
    out: dict[str, dict[str, tuple[str, Any, int, str]]] = {p: {} for p in paths}
    if not paths:
        return out
    rows = catalogue.query(
        """SELECT path, key_path, value, value_type, line FROM records
           WHERE doc = 0 AND path IN (SELECT unnest(?)) ORDER BY path, line""",
        [paths],
    )
    for path, key, value, vtype, line in rows:
        text = "\x00null" if value is None else (value.lower() if vtype == "bool" else value)
        out[path][key] = (text, typed_value(value, vtype), int(line or 0), vtype)
    return out


_segs = key_segments


Effective = dict[str, tuple[str, Any, str, int]]  # key_path -> (compared text, value, path, line)


def _merge(layers: list[tuple[str, dict[str, tuple[str, Any, int, str]]]], start: Effective | None = None) -> Effective:
    """Deep-merge layers (first is lowest) over ``start``: key_path -> (text, value, path, line).

    Mappings merge key by key; an overlay's scalar (or list, or ``[]``) replaces whatever the lower
    layers hold at that key, a list is replaced whole, and ``key: {}`` over a mapping adds nothing.
    """
    eff: Effective = dict(start or {})
    for path, recs in layers:
        over = {_segs(k): (k, vtype) for k, (_x, _v, _l, vtype) in recs.items()}
        if eff:
            prefixes = {s[:i] for s in over for i in range(1, len(s))}
            list_roots = {s[:i] for s in over for i, seg in enumerate(s) if isinstance(seg, int)}
            lower_prefixes = {s[:i] for k in eff for s in [_segs(k)] for i in range(1, len(s))}
            for k in list(eff):
                s = _segs(k)
                if s in prefixes or any(
                    (s[:i] in over and over[s[:i]][1] != "object") or s[:i] in list_roots for i in range(1, len(s))
                ):
                    del eff[k]
        else:
            prefixes = lower_prefixes = set()
        for s, (k, vtype) in over.items():
            if vtype == "object" and s in lower_prefixes and s not in prefixes:
                continue  # ``key: {}`` over a mapping merges nothing
            text, value, line, _t = recs[k]
            eff[k] = (text, value, path, line)
    return eff


@functools.lru_cache(maxsize=1 << 18)
def _list_root(key: str) -> str | None:
    """``'retry.retry_on[2]'`` -> ``'retry.retry_on'``: the key of the outermost list holding it."""
    segs = SEGMENT.findall(key)
    for i, seg in enumerate(segs):
        if seg.startswith("[") and not seg.startswith('["'):
            return "".join(segs[:i]) if i else None
    return None


def _units(eff: Effective) -> Effective:
    """Lists as single keys: merges replace lists whole, so drift compares them whole too
    (one ``retry_on`` entry, not one per item)."""
    out: Effective = {}
    lists: dict[str, list[tuple[str, tuple[str, Any, str, int]]]] = defaultdict(list)
    for k, v in eff.items():
        root = _list_root(k)
        if root is None:
            out[k] = v
        else:
            lists[root].append((k, v))
    for root, items in lists.items():
        items.sort(key=lambda kv: _sort_key(kv[0]))
        n = len(key_segments(root))
        value = _unflatten([([], [(list(key_segments(k))[n:], v[1]) for k, v in items])])
        text = json.dumps([(k[len(root) :], v[0]) for k, v in items])
        out[root] = (text, value, items[0][1][2], min(v[3] for _, v in items))
    return out


# ---------------------------------------------------------------------------------------------
# Drift
# ---------------------------------------------------------------------------------------------


def intended(settings: Settings, files: list[str], key: str) -> bool:
    """Whether the ``drift_ignore`` setting declares ``key`` of these sibling files an intended
    difference: an entry is ``KEY_GLOB`` (any files) or ``FILE_GLOB:KEY_GLOB``, fnmatch globs."""
    for entry in settings.drift_ignore or []:
        file_glob, sep, key_glob = entry.rpartition(":")
        if not fnmatch.fnmatchcase(key, key_glob):
            continue
        if not sep or any(fnmatch.fnmatchcase(f, file_glob) for f in files):
            return True
    return False


def find_drift(catalogue: Catalogue, settings: Settings, *, declared: list[int] | None = None) -> list[DriftGroup]:
    """Drift groups: sibling files whose environments miss keys or disagree on values.

    Keys the ``drift_ignore`` setting declares intended are left out; ``declared``, when given,
    gets one more item per key left out that way (the report counts them)."""
    groups = sibling_groups(_config_paths(catalogue))
    records = _load(catalogue, sorted({p for g in groups for p in g.files}))
    out: list[DriftGroup] = []
    for g in groups:
        base_eff = _merge([(b, records[b]) for b in sorted(g.bases)])
        base = _units(base_eff)
        effective = {e: _units(_merge([(e, records[e])], start=base_eff)) for e in sorted(g.envs)}
        templates = {t: _units(_merge([(t, records[t])])) for t in sorted(g.templates)}
        envs = sorted(g.envs)
        all_keys: dict[str, None] = {}
        for e in envs:
            all_keys.update(dict.fromkeys(effective[e]))
        for t in templates.values():
            all_keys.update(dict.fromkeys(t))
        missing, differing = [], []
        for key in sorted(all_keys, key=_sort_key):
            if settings.drift_ignore and intended(settings, g.files, key):
                if declared is not None and (
                    any(key not in effective[e] for e in envs) or len({effective[e][key][0] for e in envs}) > 1
                ):
                    declared.append(1)
                continue
            lacking = [e for e in envs if key not in effective[e]]
            lacking += [t for t, keys in templates.items() if key not in keys]
            if lacking:
                missing.append(DriftMissing(key_path=key, missing_in=lacking))
                continue
            texts = {effective[e][key][0] for e in envs}
            if len(texts) > 1:
                values: dict[str, Any] = {}
                if key in base:
                    values[base[key][2]] = base[key][1]
                for e in envs:
                    values[e] = effective[e][key][1]
                differing.append(DriftDiffering(key_path=key, values=values))
        if missing or differing:
            out.append(DriftGroup(files=g.files, missing=missing, differing=differing))
    return out


def key_lines(catalogue: Catalogue, groups: list[DriftGroup]) -> dict[tuple[str, str], int]:
    """(path, key_path) -> first line, for every key a drift group reports, in the files setting it
    (a list's key gets its first item's line)."""
    wanted = {
        (p, item.key_path) for g in groups for items in (g.missing, g.differing) for item in items for p in g.files
    }
    if not wanted:
        return {}
    rows = catalogue.query(
        "SELECT path, key_path, line FROM records WHERE doc = 0 AND path IN (SELECT unnest(?))",
        [sorted({p for p, _ in wanted})],
    )
    out: dict[tuple[str, str], int] = {}
    for path, key, line in rows:
        for k in (key, _list_root(key)):
            if k is not None and (path, k) in wanted and (out.get((path, k)) or 1 << 30) > line:
                out[(path, k)] = int(line)
    return out


@functools.lru_cache(maxsize=1 << 18)
def _sort_key(key: str) -> tuple:
    return tuple((0, s, 0) if isinstance(s, str) else (1, "", s) for s in key_segments(key))


# ---------------------------------------------------------------------------------------------
# Effective configuration
# ---------------------------------------------------------------------------------------------


def environments(catalogue: Catalogue) -> list[str]:
    """Normalised environment names found among sibling groups."""
    return sorted(
        {
            normal_env(_env_core(e))
            for g in sibling_groups(_config_paths(catalogue), single=True)
            for e in g.envs.values()
        }
    )


def _env_core(env: str) -> str:
    return env[:-6] if env.lower().endswith(".local") else env


def effective_config(
    catalogue: Catalogue, settings: Settings, env: str, path_glob: PathFilter | str | None = None
) -> list[dict[str, Any]]:
    """Each key's final value in environment ``env``, with the file:line it came from.

    For every sibling group with an ``env`` file (``prod`` matches ``production``), a base with a
    single environment file included (``config/base.yaml`` + ``config/production.yaml``): the bases,
    then the environment file, then its ``.local`` variant (``.env.production.local``), merged as
    in :func:`find_drift`. ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and Spring's
    ``${key:default}`` in string values are resolved from, in order: the same effective
    configuration (a key named ``VAR``), then the ``.env`` and ``.env.<env>`` files of the file's
    folder and its parents (nearest first), then the default. Rows: ``group``, ``env``,
    ``key_path``, ``value``, ``path``, ``line``, ``source`` (``path:line``), ``layer`` (base |
    env), ``variables`` (each ``{name, source}`` used) and ``unresolved`` (names left as written).
    ``path_glob`` (a :class:`~kb.globs.PathFilter` or its text) keeps groups with a file it matches.
    """
    wanted = normal_env(env)
    paths = _config_paths(catalogue)
    groups = sibling_groups(paths, single=True)  # a base and one environment have an effective config too
    flt = path_glob if isinstance(path_glob, PathFilter) else PathFilter.of(path_glob)
    if flt is not None:
        groups = [g for g in groups if any(flt.matches(p) for p in g.files)]
    chosen = []
    for g in groups:
        primary = sorted(p for p, e in g.envs.items() if normal_env(e) == wanted)
        local = sorted(
            p for p, e in g.envs.items() if e.lower().endswith(".local") and normal_env(_env_core(e)) == wanted
        )
        if primary or local:
            chosen.append((g, primary + local))
    if not chosen:
        known = ", ".join(sorted({normal_env(_env_core(e)) for g in groups for e in g.envs.values()})) or "none"
        where = f" matching '{path_glob}'" if path_glob else ""
        raise BadRequestError(
            f"No environment '{env}' among sibling config files{where} (known: {known}). "
            "Try `kb drift` to see the sibling groups."
        )
    dotenv = _dotenv_index(catalogue, paths, wanted)
    records = _load(catalogue, sorted({p for g, files in chosen for p in g.bases + files}))
    rows: list[dict[str, Any]] = []
    for g, files in chosen:
        layers = [(b, records[b]) for b in sorted(g.bases)] + [(f, records[f]) for f in files]
        eff = _merge(layers)
        flat = {k: v[1] for k, v in eff.items()}
        for key in sorted(eff, key=_sort_key):
            text, value, path, line = eff[key]
            used: list[dict[str, str]] = []
            unresolved: list[str] = []
            if isinstance(value, str) and "${" in value:
                value = _interpolate(value, path, key, flat, eff, dotenv, used, unresolved)
            rows.append(
                {
                    "group": g.label,
                    "env": env,
                    "key_path": key,
                    "value": value,
                    "path": path,
                    "line": line,
                    "source": f"{path}:{line}",
                    "layer": "base" if path in g.bases else "env",
                    "variables": used,
                    "unresolved": unresolved,
                }
            )
    return rows


def _dotenv_index(catalogue: Catalogue, paths: list[str], env: str) -> dict[str, list[dict[str, tuple[Any, str, int]]]]:
    """folder -> variable layers (highest first): ``.env.<env>.local``, ``.env.<env>``, ``.env``."""
    candidates: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for p in paths:
        d, name = _split(p)
        low = name.lower()
        if low == ".env":
            candidates[d].append((2, p))
        elif low.startswith(".env."):
            rest = name[5:]
            if rest.lower().endswith(".local") and normal_env(_env_core(rest)) == env:
                candidates[d].append((0, p))
            elif normal_env(rest) == env:
                candidates[d].append((1, p))
    flat_paths = sorted(p for ps in candidates.values() for _, p in ps)
    recs = _load(catalogue, flat_paths)
    out: dict[str, list[dict[str, tuple[Any, str, int]]]] = {}
    for d, ps in candidates.items():
        out[d] = [{k: (v[1], p, v[2]) for k, v in recs[p].items()} for _, p in sorted(ps)]
    return out


def _interpolate(
    value: str,
    path: str,
    key: str,
    flat: dict[str, Any],
    eff: dict,
    dotenv: dict,
    used: list[dict[str, str]],
    unresolved: list[str],
    depth: int = 0,
) -> str:
    folder = _split(path)[0]

    def lookup(name: str) -> tuple[Any, str] | None:
        if name in flat and name != key:
            _t, v, p, ln = eff[name]
            return v, f"{p}:{ln}"
        d: str | None = folder
        while d is not None:
            for layer in dotenv.get(d, []):
                if name in layer:
                    v, p, ln = layer[name]
                    return v, f"{p}:{ln}"
            d = None if d == "" else (d.rsplit("/", 1)[0] if "/" in d else "")
        return None

    def repl(m: re.Match) -> str:
        name, op, default = m.group(1), m.group(2), m.group(3)
        found = lookup(name)
        if found is not None and not (op == ":-" and found[0] in ("", None)):
            v, source = found
            used.append({"name": name, "source": source})
            text = "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
            if "${" in text and depth < 5:
                text = _interpolate(text, path, name, flat, eff, dotenv, used, unresolved, depth + 1)
            return text
        if op is not None:
            used.append({"name": name, "source": "default"})
            return default or ""
        unresolved.append(name)
        return m.group(0)

    return _VAR.sub(repl, value)
