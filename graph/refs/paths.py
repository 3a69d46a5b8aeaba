"""Path-likeness: which config values are references to files in the tree."""

from __future__ import annotations

import re

from kb.graph.refs.model import last_key
from kb.keypaths import split_key_path

__all__ = [
    "REF_SUFFIXES",
    "SCHEME",
    "INCLUDE_KEYS",
    "looks_like_path",
    "in_data_subtree",
    "skipped_key_path",
    "is_remote",
]

# Suffixes of files a path in a config value is taken to point at (config and docs formats).
REF_SUFFIXES = frozenset(
    {
        "json",
        "jsonc",
        "json5",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "cnf",
        "env",
        "properties",
        "md",
        "markdown",
        "mdx",
        "tpl",
        "hcl",
        "tf",
        "tfvars",
    }
)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_MIME_TOP = (
    "application/",
    "text/",
    "image/",
    "audio/",
    "video/",
    "multipart/",
    "font/",
    "model/",
    "message/",
    "chemical/",
    "x-conference/",
)
_DATE = re.compile(r"^\d{1,4}[/\-.]\d{1,2}[/\-.]\d{1,4}$")
_CIDR = re.compile(r"^[\d.]+/\d{1,2}$|^[0-9a-fA-F:]+/\d{1,3}$")
_GLOB_CHARS = set("*?[]{}")
_BAD_CHARS = set(" \t\r\n\"'<>|`,;()=&^!")
# Include-like keys: a reference under one of these must not close a cycle.
INCLUDE_KEYS = frozenset(
    {
        "extends",
        "extend",
        "include",
        "includes",
        "import",
        "imports",
        "inherit",
        "inherits",
        "base",
        "bases",
        "parent",
        "parents",
        "based_on",
        "basedon",
        "resources",
        "components",
        "overlays",
    }
)
# Keys whose values are paths even without a slash (``extends: base.json``): the include-like
# keys and these.
_PATH_KEYS = INCLUDE_KEYS | frozenset(
    {
        "config",
        "configs",
        "configfile",
        "config_file",
        "config-file",
        "file",
        "files",
        "path",
        "paths",
        "schema",
        "ref",
        "template",
        "templates",
        "values",
        "valuefiles",
        "valuesfiles",
        "patches",
        "patchesstrategicmerge",
        "envfile",
        "env_file",
        "env-file",
        "env_files",
        "source",
        "src",
        "manifest",
        "manifests",
        "filename",
        "location",
        "overlay",
        "crds",
        "openapi",
        "spec",
        "specs",
        "definition",
        "definitions_file",
        "fragment",
        "fragments",
        "partial",
        "partials",
    }
)
_NOT_PATH_KEYS = frozenset({"subpath", "mountpath", "hostpath", "image", "url", "uri", "href", "homepage"})
# Key-path segments under which values are data about paths, not references.
_SKIP_SEGMENTS = frozenset(
    {
        "default",
        "defaults",
        "examples",
        "example",
        "enum",
        "const",
        "pattern",
        "patterns",
        "description",
        "title",
        "markdowndescription",
        "$comment",
        "filematch",
        "exclude",
        "excludes",
        "ignore",
        "ignores",
        "ignorepatterns",
        "ignore_patterns",
        "ignore-paths",
        "paths-ignore",
        "skip",
        "glob",
        "globs",
        "match",
        "matches",
        "watch",
        "on",
        "$id",
        "id",
        "$schema",
        "$ref",
        "with",  # GitHub Actions inputs: paths in the runner's workspace, made at run time
    }
)


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
    elif SCHEME.match(v):  # URLs, s3://, image:tag, C:\ ...
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
    key = last_key(key_path)
    if key in _NOT_PATH_KEYS:
        return False
    return key in _PATH_KEYS or key.endswith(("file", "files", "_path", "-path", "config"))


_DATA_SEGMENTS = frozenset({"default", "defaults", "examples", "example", "enum", "const"})


def in_data_subtree(kp: str) -> bool:
    """Whether ``kp`` lies under a JSON-Schema keyword whose value is instance data."""
    return any(isinstance(p, str) and p.lower() in _DATA_SEGMENTS for p in split_key_path(kp)[:-1])


def skipped_key_path(kp: str) -> bool:
    return any(isinstance(p, str) and p.lower() in _SKIP_SEGMENTS for p in split_key_path(kp)[:-1]) or (
        last_key(kp) in {"$id", "id", "$schema", "$ref", "description", "title", "pattern"}
    )


def is_remote(target: str) -> bool:
    """A URL (but not ``file:``), or a git remote."""
    return bool(SCHEME.match(target)) and not target.startswith("file:") or target.startswith(("git@", "github.com/"))
