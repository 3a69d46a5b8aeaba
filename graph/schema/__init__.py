"""JSON Schema validation of catalogued documents. With :mod:`kb.graph.refs.pointers` (``referencing``
for JSON pointers), the only package that imports ``jsonschema``, ``referencing`` and ``regress``.

Which schema a file gets, first match wins:

1. the schema map (``--schema-map`` flags, then ``[tool.kb] schema_map``): ``GLOB=SCHEMA`` pairs,
   GLOB relative to the corpus root with ``*``, ``**``, ``?`` and ``{name}`` captures that SCHEMA
   may use (``schemastore/src/test/{name}/**=schemastore/src/schemas/json/{name}.json``);
2. the file's own ``$schema`` (or ``# yaml-language-server: $schema=`` modeline): a path relative to
   the file, or a URL that a schema in the tree declares as its ``$id`` or that a catalog maps;
3. a SchemaStore-style catalog in the tree (``{"schemas": [{"fileMatch": [...], "url": ...}]}``)
   whose ``url`` is served by a schema in the tree.

Validation follows what SchemaStore's own CI (ajv) accepts, so that the verdicts match upstream's:
drafts 4, 6, 7, 2019-09 and 2020-12 (draft 7 when ``$schema`` is absent); ECMA-262 regular
expressions through ``regress`` (named groups, ``\\p{L}``); ``const``, ``contains``,
``propertyNames`` and ``if``/``then``/``else`` honoured in draft-4/6 schemas as ajv does; the
ajv-formats formats checked (``date-time``, ``uri``, ``email``, ...), unknown formats ignored;
``$ref``s resolved offline through ``referencing`` against the schemas in the tree. A ``$ref`` that
needs the network makes that file unvalidatable: it is skipped, never guessed.

A ``pattern`` that can backtrack catastrophically (``^(a+)+$``) cannot hang validation: such a
pattern runs on RE2 in linear time when it is a true regular expression, else in a helper process
under a time limit; a value not checked in time is reported as such, never passed silently.

Modules: :mod:`~kb.graph.schema.mapping` (the schema map and its globs), :mod:`~kb.graph.schema.choice`
(which schema a file gets), :mod:`~kb.graph.schema.validator` (the ajv-like validator, loading schemas
offline), :mod:`~kb.graph.schema.formats`, :mod:`~kb.graph.schema.ecma_regex` (ECMA-262 patterns, guarded)
and :mod:`~kb.graph.schema.regex_helper` (the child process for risky patterns). Importing this package
is cheap: the names below load their module on first use, so the helper process starts fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "SchemaMap",
    "SchemaValidator",
    "SkippedCheck",
    "Violation",
    "choose_schemas",
    "ecma_search",
    "parse_schema_map",
]

_WHERE = {
    "SchemaMap": "mapping",
    "parse_schema_map": "mapping",
    "choose_schemas": "choice",
    "SchemaValidator": "validator",
    "Violation": "validator",
    "SkippedCheck": "ecma_regex",
    "ecma_search": "ecma_regex",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"kb.graph.schema.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'kb.graph.schema' has no attribute {name!r}")
