"""The schema map: ``GLOB=SCHEMA`` pairs (``--schema-map``, ``[tool.kb] schema_map``) and the glob
dialect they and catalog ``fileMatch`` entries use: ``**``, ``*``, ``?``, and ``{name}`` captures
(schema maps) or ``{a,b}`` alternatives (catalogs), over corpus-relative paths."""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kb.errors import ConfigError

__all__ = ["SchemaMapEntry", "SchemaMap", "parse_schema_map", "glob_regex", "schema_outside_tree"]


@dataclass(frozen=True)
class SchemaMapEntry:
    glob: str
    schema: str
    regex: re.Pattern[str]


def glob_regex(glob: str, *, captures: bool = True) -> re.Pattern[str]:
    """A glob as a regex over corpus-relative paths: ``**``, ``*``, ``?``, and either ``{name}``
    captures (schema maps) or ``{a,b}`` alternatives (catalog ``fileMatch``)."""
    out, i = [], 0
    g = glob.strip()[2:] if glob.strip().startswith("./") else glob.strip()
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
        elif c == "{" and not captures:
            j = g.find("}", i)
            if j < 0:
                raise ConfigError(f"Glob '{glob}': unclosed '{{'.")
            alts = [re.escape(a).replace(r"\*", "[^/]*") for a in g[i + 1 : j].split(",")]
            out.append("(?:" + "|".join(alts) + ")")
            i = j + 1
        elif c == "{":
            j = g.find("}", i)
            name = g[i + 1 : j] if j > 0 else ""
            if j < 0 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ConfigError(f"Schema map glob '{glob}': '{{' must open a capture like {{name}}.")
            out.append(f"(?P<{name}>[^/]+)")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if "/" not in g:
        body = "(?:.*/)?" + body  # a bare name matches in any folder
    return re.compile(body + r"\Z")


def parse_schema_map(items: Iterable[str]) -> list[SchemaMapEntry]:
    """``["GLOB=SCHEMA", ...]`` -> entries; a malformed item is a :class:`ConfigError`."""
    entries = []
    for item in items:
        glob, sep, schema = item.partition("=")
        if not sep or not glob.strip() or not schema.strip():
            raise ConfigError(
                f"Bad schema map entry '{item}': expected GLOB=SCHEMA, e.g. 'config/*.json=schemas/config.json'."
            )
        regex = glob_regex(glob.strip())
        names = set(regex.groupindex)
        for used in re.findall(r"\{([^}]*)\}", schema):
            if used not in names:
                raise ConfigError(f"Schema map entry '{item}': SCHEMA uses {{{used}}} but GLOB does not capture it.")
        entries.append(SchemaMapEntry(glob.strip(), schema.strip(), regex))
    return entries


def schema_outside_tree(item: str, root: str | os.PathLike[str] | None) -> bool:
    """Whether the SCHEMA of a ``GLOB=SCHEMA`` item points outside the corpus root: an absolute or
    home path, a drive, a URL, ``..`` past the root, or a link in the tree that leads out of it.
    Decided without reading the schema (so the answer tells nothing about files outside)."""
    schema = re.sub(r"\{[^}]*\}", "x", item.partition("=")[2].strip())
    if not schema or schema.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:", schema) or "://" in schema:
        return True
    norm = posixpath.normpath(schema.replace("\\", "/"))
    if norm == ".." or norm.startswith("../"):
        return True
    if root is not None:
        base = os.path.realpath(root)
        real = os.path.realpath(os.path.join(base, norm))
        return real != base and not real.startswith(base + os.sep)
    return False


class SchemaMap:
    def __init__(self, entries: list[SchemaMapEntry]) -> None:
        self.entries = entries

    def match(self, path: str) -> tuple[str, str] | None:
        """(schema path, the entry's GLOB) for ``path``, or None."""
        for e in self.entries:
            m = e.regex.match(path)
            if m:
                schema = e.schema
                for k, v in m.groupdict().items():
                    schema = schema.replace("{" + k + "}", v)
                return posixpath.normpath(schema) if not schema.startswith("/") else schema, e.glob
        return None
