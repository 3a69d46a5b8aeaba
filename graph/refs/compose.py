"""Docker compose: ``extends``, ``env_file``, ``depends_on``, bind mounts, ``build``, ``include``
and config files, with the services each compose file sees (its own, same-folder overrides,
included files and files that include it)."""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kb.catalogue import Catalogue
from kb.graph.refs.corpus import Corpus, LineIndex, line_indexes
from kb.graph.refs.model import Reference, ReferenceSink, Status
from kb.graph.refs.paths import is_remote
from kb.keypaths import key_join

__all__ = ["ComposeReferences", "extract_compose", "find_compose_files", "is_compose"]

_COMPOSE_NAME = re.compile(r"^(docker-)?compose([.\-_][^/]*)?\.ya?ml$", re.I)
_COMPOSE_TOP = frozenset(
    {"version", "services", "networks", "volumes", "configs", "secrets", "include", "name", "models"}
)
_SERVICE_KEYS = frozenset(
    {
        "image",
        "build",
        "extends",
        "depends_on",
        "ports",
        "volumes",
        "environment",
        "command",
        "env_file",
        "profiles",
        "networks",
        "container_name",
        "restart",
        "deploy",
        "healthcheck",
        "entrypoint",
        "expose",
        "labels",
        "working_dir",
    }
)


def is_compose(path: str, data: Any) -> bool:
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


def find_compose_files(catalogue: Catalogue, corpus: Corpus) -> dict[str, dict[str, Any]]:
    """Compose files (by name, or by a ``services`` mapping that looks like one) -> their first document."""
    names = [p for p, f in corpus.formats.items() if f == "yaml" and _COMPOSE_NAME.match(posixpath.basename(p))]
    by_content = [
        r[0]
        for r in catalogue.query(
            """SELECT DISTINCT r.path FROM records r JOIN files f ON f.path = r.path
           WHERE f.format = 'yaml' AND r.doc = 0 AND starts_with(r.key_path, 'services.')"""
        )
    ]
    cands = sorted(set(names) | set(by_content))
    corpus.load_documents(cands)
    files: dict[str, dict[str, Any]] = {}
    for p in cands:
        data = corpus.document(p, 0)
        if is_compose(p, data):
            files[p] = data
    return files


@dataclass(slots=True)
class ComposeReferences:
    """What the compose extractor found: its references, the compose files, and the env files
    each compose file's services load (for the variable check)."""

    references: list[Reference]
    files: dict[str, dict[str, Any]]
    env_files: dict[str, list[str]]


def extract_compose(catalogue: Catalogue, corpus: Corpus) -> ComposeReferences:
    """Every reference in the tree's compose files."""
    files = find_compose_files(catalogue, corpus)
    return _ComposeExtractor(corpus, files, line_indexes(catalogue, files)).run()


def _include_targets(data: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
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


def _service_scopes(corpus: Corpus, files: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Compose path -> service name -> the compose file defining it, as that file sees them: its own,
    same-folder compose files (overrides), included files (transitively) and files that include it."""
    includes: dict[str, list[str]] = defaultdict(list)
    for p, data in files.items():
        for _, _, target in _include_targets(data):
            resolved = corpus.resolve(p, target, root_relative=False)
            if resolved:
                includes[p].append(resolved)
    by_dir: dict[str, list[str]] = defaultdict(list)
    for p in files:
        by_dir[posixpath.dirname(p)].append(p)

    def services_of(p: str) -> dict[str, str]:
        data = files.get(p) or {}
        s = data.get("services")
        return {str(k): p for k in s} if isinstance(s, dict) else {}

    scopes: dict[str, dict[str, str]] = {}
    for p in files:
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
        scopes[p] = scope
    return scopes


class _ComposeExtractor:
    def __init__(self, corpus: Corpus, files: dict[str, dict[str, Any]], lines: dict[str, LineIndex]) -> None:
        self.corpus = corpus
        self.files = files
        self.lines = lines
        self.scopes = _service_scopes(corpus, files)
        self.out = ReferenceSink()
        self.env_files: dict[str, list[str]] = defaultdict(list)

    def run(self) -> ComposeReferences:
        for p, data in self.files.items():
            self._file(p, data, self.lines[p])
        return ComposeReferences(self.out.references, self.files, dict(self.env_files))

    def _path_ref(
        self,
        p: str,
        li: LineIndex,
        kp: str,
        kind: str,
        target: str,
        *,
        want: str | None = None,
        base_dir: str | None = None,
        optional: bool = False,
        severity: str = "error",
        what: str = "file",
    ) -> Reference | None:
        if not isinstance(target, str) or not target:
            return None
        line = li.line(0, kp)
        if "${" in target or "$" in target.replace("$$", ""):
            return None  # interpolated: the variable is checked instead
        if is_remote(target) or target.startswith(("/", "~", "\\")) or re.match(r"^[A-Za-z]:[\\/]", target):
            return self.out.add(
                p, 0, line, kp, kind, target, None, "external", severity, "absolute, home or remote path: not checked"
            )
        src = p if base_dir is None else posixpath.join(base_dir, "_")
        if self.corpus.escapes_root(src, target):
            return self.out.add(
                p, 0, line, kp, kind, target, None, "external", severity, "outside the corpus root: not checked"
            )
        resolved = self.corpus.resolve(src, target, root_relative=False, want=want)
        if resolved is not None:
            return self.out.add(p, 0, line, kp, kind, target, resolved, "ok", severity)
        guess = (
            self.corpus.best_guess(src, target)
            if base_dir is None
            else posixpath.normpath(posixpath.join(base_dir, target))
        )
        status: Status = "optional" if optional else "broken"
        other = self.corpus.resolve(src, target, root_relative=False) if want else None
        if other is not None:
            assert want  # other is looked up only when want is given
            wrong = {"dir": "a folder", "file": "a file"}
            return self.out.add(
                p,
                0,
                line,
                kp,
                kind,
                other,
                None,
                status,
                severity,
                f"{what} '{target}' is {wrong[self.corpus.kind_of(other) or 'file']}, not {wrong.get(want, want)}",
            )
        return self.out.add(
            p,
            0,
            line,
            kp,
            kind,
            guess,
            None,
            status,
            severity,
            f"{what} '{target}' does not exist (looked for {guess})",
        )

    def _file(self, p: str, data: dict, li: LineIndex) -> None:
        scope = self.scopes[p]
        for kp, _, target in _include_targets(data):
            self._path_ref(p, li, kp, "compose-include", target)
        for top in ("configs", "secrets"):
            block = data.get(top)
            if isinstance(block, dict):
                for name, spec in block.items():
                    if isinstance(spec, dict) and isinstance(spec.get("file"), str):
                        kp = key_join(key_join(top, name), "file")
                        self._path_ref(p, li, kp, "compose-file", spec["file"])
        services = data.get("services")
        if not isinstance(services, dict):
            return
        for name, svc in services.items():
            if not isinstance(svc, dict):
                continue
            skp = key_join("services", name)
            self._extends(p, li, skp, svc.get("extends"), scope)
            env = svc.get("env_file")
            items = [env] if isinstance(env, (str, dict)) else (env if isinstance(env, list) else [])
            for i, item in enumerate(items):
                kp = key_join(skp, "env_file") + ("" if isinstance(env, (str, dict)) else f"[{i}]")
                if isinstance(item, str):
                    r = self._path_ref(p, li, kp, "compose-env-file", item, want="file", what="env_file")
                elif isinstance(item, dict) and isinstance(item.get("path"), str):
                    r = self._path_ref(
                        p,
                        li,
                        key_join(kp, "path"),
                        "compose-env-file",
                        item["path"],
                        want="file",
                        optional=item.get("required") is False,
                        what="env_file",
                    )
                else:
                    r = None
                if r is not None and r.resolved:
                    self.env_files[p].append(r.resolved)
            self._depends_on(p, li, skp, svc.get("depends_on"), scope)
            self._build(p, li, skp, svc.get("build"))
            vols = svc.get("volumes")
            if isinstance(vols, list):
                for i, v in enumerate(vols):
                    self._bind_mount(p, li, f"{key_join(skp, 'volumes')}[{i}]", v)

    def _bind_mount(self, p: str, li: LineIndex, kp: str, v: Any) -> None:
        """A bind mount's host path. A missing one is broken only when nothing creates it: Docker
        creates a missing *folder* source of the short syntax (``./data:/var/lib/db``) and of a
        long one with ``bind.create_host_path``, so a folder the container fills at run time is
        not a finding; nor is a path the tree's ``.gitignore`` ignores (kept out of git on
        purpose). A missing *file* (``./nginx.conf:/etc/nginx/nginx.conf``) stays a warning:
        Docker would mount an empty folder in its place."""
        src, creates = None, False
        if isinstance(v, str):
            parts = v.split(":")
            if len(parts) >= 2 and parts[0].startswith((".", "/", "~")):
                src, creates = parts[0], True  # a host path (anything else names a volume)
        elif isinstance(v, dict) and v.get("type") == "bind" and isinstance(v.get("source"), str):
            src, kp = v["source"], key_join(kp, "source")
            bind = v.get("bind")
            creates = isinstance(bind, dict) and bind.get("create_host_path") is True
        if src is None:
            return
        r = self._path_ref(p, li, kp, "compose-volume", src, severity="warning", what="bind-mount source")
        if r is None or r.status != "broken" or r.resolved is not None:
            return
        folder_like = src.endswith("/") or "." not in posixpath.basename(src.rstrip("/")).lstrip(".")
        if self.corpus.ignored(r.target, is_dir=folder_like):
            r.status, r.detail = "optional", f"'{src}' is ignored by the tree's .gitignore: made at run time"
        elif creates and folder_like:
            r.status, r.detail = "optional", f"folder '{src}' is created by Docker when the container starts"

    def _extends(self, p: str, li: LineIndex, skp: str, ext: Any, scope: dict[str, str]) -> None:
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
            where = p if service in (self.files.get(p, {}).get("services") or {}) else None
            if where:
                self.out.add(p, 0, line, kp, "compose-extends", service, f"{p}#{key_join('services', service)}", "ok")
            else:
                self.out.add(
                    p,
                    0,
                    line,
                    kp,
                    "compose-extends",
                    service,
                    None,
                    "broken",
                    "error",
                    f"service '{service}' is not defined in {p}",
                )
            return
        if not isinstance(file, str):
            return
        if "$" in file:
            return
        if is_remote(file) or file.startswith("/"):
            self.out.add(
                p,
                0,
                li.line(0, kp_file),
                kp_file,
                "compose-extends",
                file,
                None,
                "external",
                "error",
                "remote or absolute file: not checked",
            )
            return
        resolved = self.corpus.resolve(p, file, root_relative=False, want="file")
        if resolved is None:
            guess = self.corpus.best_guess(p, file)
            self.out.add(
                p,
                0,
                li.line(0, kp_file),
                kp_file,
                "compose-extends",
                guess,
                None,
                "broken",
                "error",
                f"extends file '{file}' does not exist (looked for {guess})",
            )
            return
        other = self.files.get(resolved)
        if other is None:
            self.corpus.load_documents([resolved])
            other = self.corpus.document(resolved)
        svcs = other.get("services") if isinstance(other, dict) else None
        if isinstance(svcs, dict) and service in svcs:
            self.out.add(
                p,
                0,
                line,
                kp,
                "compose-extends",
                f"{file}#{service}",
                f"{resolved}#{key_join('services', service)}",
                "ok",
            )
        else:
            self.out.add(
                p,
                0,
                line,
                kp,
                "compose-extends",
                f"{file}#{service}",
                None,
                "broken",
                "error",
                f"service '{service}' is not defined in {resolved}",
            )

    def _depends_on(self, p: str, li: LineIndex, skp: str, dep: Any, scope: dict[str, str]) -> None:
        base_kp = key_join(skp, "depends_on")
        if isinstance(dep, list):
            items = [(f"{base_kp}[{i}]", d, True) for i, d in enumerate(dep) if isinstance(d, str)]
        elif isinstance(dep, dict):
            items = [
                (key_join(base_kp, d), d, not (isinstance(spec, dict) and spec.get("required") is False))
                for d, spec in dep.items()
            ]
        else:
            return
        for kp, name, required in items:
            name = str(name)
            line = li.line(0, kp)
            where = scope.get(name)
            if where is not None:
                self.out.add(p, 0, line, kp, "compose-depends-on", name, f"{where}#{key_join('services', name)}", "ok")
            else:
                self.out.add(
                    p,
                    0,
                    line,
                    kp,
                    "compose-depends-on",
                    name,
                    None,
                    "broken" if required else "optional",
                    "error",
                    f"service '{name}' is not defined in {p} or the compose files it is merged with",
                )

    def _build(self, p: str, li: LineIndex, skp: str, build: Any) -> None:
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
        r = self._path_ref(p, li, ctx_kp, "compose-build-context", context, want="dir", what="build context")
        if r is None or r.status != "ok" or inline:
            return
        ctx = r.resolved or ""
        df_kp = key_join(kp, "dockerfile") if isinstance(dockerfile, str) else ctx_kp
        if dockerfile is None:
            dockerfile = "Dockerfile"
        if not isinstance(dockerfile, str):
            return
        self._path_ref(p, li, df_kp, "compose-dockerfile", dockerfile, want="file", base_dir=ctx, what="Dockerfile")
