"""Variables: ``${VAR}``, ``${VAR:?err}``, ``$VAR`` (compose) in compose, .env, properties and
YAML/JSON/TOML/INI files, looked up in the ``.env`` files in scope, compose ``env_file``s,
what compose passes to containers, and ``known_env``."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kb.catalogue import Catalogue
from kb.formats import formats_with, traits
from kb.globs import glob_match
from kb.graph.refs.corpus import Corpus
from kb.graph.refs.model import Reference, ReferenceSink
from kb.graph.refs.paths import in_data_subtree
from kb.keypaths import split_key_path

__all__ = ["VarUse", "scan_variables", "check_variables", "ALWAYS_ENV"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOTTED_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")

_WITH_VARIABLES = formats_with(lambda t: t.variables is not None)
"""Formats whose values carry ``${VAR}`` references (``variables``, :mod:`kb.formats`)."""


@dataclass(slots=True)
class VarUse:
    name: str
    required: bool  # no default: must be defined
    raw: str  # the text as written, ``${NAME:?msg}``


def scan_variables(text: str, *, bare: bool = False, dotted: bool = False, colon_default: bool = False) -> list[VarUse]:
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
            inner = text[j + 2 : k - 1]
            m = name_re.match(inner)
            if m:
                name, rest = m.group(0), inner[m.end() :]
                if dotted:
                    name = name.rstrip(".-")
                    rest = inner[len(name) :]
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
                out.append(VarUse(m.group(0), True, text[j : m.end()]))
                i = m.end()
                continue
        i = j + 1
    return out


_WHOLE_VAR = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*(?::?[-?+][^}]*)?\}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Variables every process environment has; never undefined.
ALWAYS_ENV = frozenset({"HOME", "PATH", "USER", "PWD", "SHELL", "HOSTNAME", "LANG", "TERM", "TMPDIR"})
# Keys whose values are shell scripts run later, where ``${VAR}`` is the shell's business.
_SCRIPT_KEYS = frozenset(
    {
        "run",
        "script",
        "scripts",
        "command",
        "commands",
        "args",
        "entrypoint",
        "cmd",
        "shell",
        "before_script",
        "after_script",
        "before_install",
        "install",
        "test",
        "build",
        "steps",
        "exec",
        "hook",
        "hooks",
        "pre",
        "post",
        "lifecycle",
        "prestop",
        "poststart",
    }
)


def check_variables(
    catalogue: Catalogue,
    corpus: Corpus,
    *,
    known_env: Sequence[str] = (),
    schema_files: Collection[str] = (),
    compose_files: Mapping[str, dict[str, Any]] | None = None,
    compose_env_files: Mapping[str, list[str]] | None = None,
) -> list[Reference]:
    """Every variable use, resolved against the ``.env`` files in scope.

    ``compose_files`` (path -> first document) and ``compose_env_files`` (compose path -> the env
    files its services load), from the compose extractor, say which YAML files interpolate bare
    ``$VAR``s, which env files a compose file loads, and what compose passes to containers;
    ``schema_files`` are never interpolated; ``known_env`` globs name variables set from outside.
    """
    compose_files = compose_files or {}
    compose_env_files = compose_env_files or {}
    out = ReferenceSink()
    env_rows = catalogue.query(
        """SELECT r.path, r.key_path, r.value, r.line FROM records r JOIN files f ON f.path = r.path
           WHERE f.format = 'dotenv'"""
    )
    defs_by_file: dict[str, dict[str, int]] = defaultdict(dict)
    for path, key, _value, line in env_rows:
        defs_by_file[path].setdefault(key, line)
    env_by_dir: dict[str, list[str]] = defaultdict(list)
    for path in defs_by_file:
        env_by_dir[posixpath.dirname(path)].append(path)
    for path, f in corpus.formats.items():  # empty env files define nothing but exist
        if traits(f).env_file and path not in defs_by_file:
            env_by_dir[posixpath.dirname(path)].append(path)
    prop_keys: dict[str, set[str]] = defaultdict(set)
    rows = catalogue.query(
        """SELECT r.path, r.doc, r.key_path, r.value, r.line, f.format FROM records r
           JOIN files f ON f.path = r.path
           WHERE r.value_type = 'str' AND contains(r.value, '$')
             AND f.format IN (SELECT unnest(?))
           ORDER BY r.path, r.line""",
        [list(_WITH_VARIABLES)],
    )
    spring = [fmt for fmt in _WITH_VARIABLES if traits(fmt).variables == "spring"]
    if any(fmt in spring for *_, fmt in rows):
        for p, k in catalogue.query(
            """SELECT r.path, r.key_path FROM records r JOIN files f ON f.path = r.path
                   WHERE f.format IN (SELECT unnest(?))""",
            [spring],
        ):
            prop_keys[posixpath.dirname(p)].add(k)
    # what compose passes to containers (service environment / env_file), by compose folder:
    # app configs below it (properties, YAML) read those variables at run time
    container_env: dict[str, set[str]] = defaultdict(set)
    for cp, data in compose_files.items():
        names = container_env[posixpath.dirname(cp)]
        for f in compose_env_files.get(cp, []):
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
            scope_cache[path] = list(scope_files(path)) + compose_env_files.get(path, [])
        return scope_cache[path]

    def lookup(path: str, name: str, line: int) -> tuple[str | None, str]:
        if name in ALWAYS_ENV:
            return None, "set in every environment"
        if any(glob_match(name, pat) for pat in known_env):
            return None, "known_env"
        for f in env_scope(path):
            defs = defs_by_file.get(f, {})
            if name in defs and (f != path or defs[name] < line):
                return f"{f}#{name}", ""
        linked = dangling_env(path)
        if linked:  # mailcow: .env -> mailcow.conf, written by generate_config.sh
            return None, f"{linked} is a link to a file that is not in the tree (generated at setup?): not checked"
        return None, "undefined"

    # .env files the walk could not follow (a link to a file not in the tree): found as findings
    unfollowed = {
        p
        for (p,) in catalogue.query("SELECT path FROM findings WHERE rule = 'symlink'")
        if posixpath.basename(p) == ".env"
    }

    def dangling_env(path: str) -> str | None:
        """The ``.env`` in scope that is a link the walk could not follow, if any: its variables
        cannot be known, so none is reported undefined (the walk's finding names the link)."""
        if not unfollowed:
            return None
        d = posixpath.dirname(path)
        while True:
            env = posixpath.join(d, ".env")
            if env in unfollowed:
                return env
            if not d:
                return None
            d = posixpath.dirname(d)

    # Grafana dashboards: their ${DS_...} are the dashboard's import inputs (``__inputs``, filled in
    # when an export is imported) or its own variables (``templating.list``: ${DS_PROMETHEUS} a
    # data source variable, ${host_name} a query variable), never environment variables (Grafana
    # interpolates the environment in provisioning files, not in dashboard JSON)
    grafana = {
        p
        for (p,) in catalogue.query(
            """SELECT DISTINCT path FROM records WHERE starts_with(key_path, '__inputs')
               UNION SELECT path FROM (SELECT path FROM records WHERE key_path = 'schemaVersion'
                 INTERSECT SELECT path FROM records WHERE starts_with(key_path, 'panels['))"""
        )
    }
    for path, doc, kp, value, line, fmt in rows:
        kind = traits(fmt).variables
        if path in grafana:
            continue
        if kind == "loader" and path in compose_files:
            uses = scan_variables(value, bare=True)
        elif kind == "loader":
            # a config value that a loader interpolates: only where an env file is in scope, or
            # when the whole value is one ${VAR}; never in multi-line strings or scripts
            v = value.strip()
            if "\n" in v or not (env_scope(path) or _WHOLE_VAR.match(v)):
                continue
            if path in schema_files or in_data_subtree(kp + ".x"):
                continue
            if any(isinstance(p, str) and p.lower() in _SCRIPT_KEYS for p in split_key_path(kp)):
                continue
            # environment variables are upper-case by convention; ${message}, ${workspaceFolder}
            # are a logger's or an editor's own placeholders
            uses = [u for u in scan_variables(value) if _ENV_NAME.match(u.name)]
        elif kind == "shell":
            uses = scan_variables(value)
        else:  # spring: Spring placeholders, ${name:default}
            uses = scan_variables(value, dotted=True, colon_default=True)
        for u in uses:
            if not u.required:
                out.add(path, doc, line, kp, "variable", u.name, None, "ok", "error", "has a default")
                continue
            if kind == "spring" and u.name in prop_keys.get(posixpath.dirname(path), set()):
                out.add(path, doc, line, kp, "variable", u.name, path, "ok")
                continue
            resolved, why = lookup(path, u.name, line or 0)
            if resolved is None and why == "undefined" and path not in compose_files and kind != "shell":
                d = container_defines(path, u.name)
                if d is not None:
                    why = f"set in the container environment by the compose file in {d or '.'}"
            if resolved is not None:
                out.add(path, doc, line, kp, "variable", u.name, resolved, "ok")
            elif why != "undefined":
                out.add(path, doc, line, kp, "variable", u.name, None, "ok", "error", why)
            else:
                scope = env_scope(path)
                where = ", ".join(scope[:3]) + (" ..." if len(scope) > 3 else "") if scope else "none"
                out.add(
                    path,
                    doc,
                    line,
                    kp,
                    "variable",
                    u.name,
                    None,
                    "undefined",
                    "error",
                    f"{u.raw} has no default and no .env in scope defines it (env files in scope: {where})",
                )
    return out.references
