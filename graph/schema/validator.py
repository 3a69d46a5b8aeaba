"""Validation of documents against JSON Schemas, as SchemaStore's CI (ajv) validates them.

Drafts 4, 6, 7, 2019-09 and 2020-12 (draft 7 when ``$schema`` is absent); ``pattern``,
``patternProperties`` and ``additionalProperties`` through ECMA-262 regular expressions
(:mod:`kb.graph.schema.ecma_regex`); ``const``, ``contains``, ``propertyNames`` and
``if``/``then``/``else`` honoured in draft-4/6 schemas as ajv does; the ajv-formats formats
(:mod:`kb.graph.schema.formats`); ``$ref``s resolved offline through ``referencing`` against the
schemas in the tree (a ``$ref`` that needs the network makes the schema unusable, never guessed).
"""

from __future__ import annotations

import difflib
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
from jsonschema import validators
from jsonschema.exceptions import ValidationError, best_match
from referencing.exceptions import NoSuchResource, Unresolvable

from kb import schemastore
from kb.graph.refs import Corpus, SchemaIndex
from kb.graph.schema import ecma_regex
from kb.graph.schema.formats import NUMBER_FORMATS, STRING_FORMATS
from kb.keypaths import join_key_path

__all__ = ["SchemaValidator", "Violation", "FILE_BASE", "MAX_ERRORS_PER_DOCUMENT"]

FILE_BASE = "kbfile:///"
MAX_ERRORS_PER_DOCUMENT = 20
_REDACTED = "[REDACTED:"

# ---------------------------------------------------------------------------------------------
# ajv-like keywords and validator classes
# ---------------------------------------------------------------------------------------------


def _unchecked(what: str, pattern: str) -> ValidationError:
    return ValidationError(
        f"{what} was not checked against the pattern {pattern!r}: it can backtrack catastrophically "
        f"(nested quantifiers like (a+)+), matching was stopped at {ecma_regex.REGEX_TIME_LIMIT:g} s; simplify the pattern"
    )


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string"):
        found = ecma_regex.ecma_search(patrn, instance)
        if found is None:
            yield _unchecked(_short(instance), patrn)
        elif not found:
            yield ValidationError(f"{_short(instance)} does not match {patrn!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for k, v in instance.items():
            found = ecma_regex.ecma_search(pattern, k)
            if found is None:
                yield _unchecked(f"The property name {_short(k)}", pattern)
            elif found:
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _extras(instance, schema) -> list[str]:
    """Properties that no ``properties`` or ``patternProperties`` entry covers. A name whose
    match against a pattern could not be decided in time counts as covered: the
    ``patternProperties`` keyword reports it as not checked."""
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}) or {})
    return [
        k for k in instance if k not in props and not any(ecma_regex.ecma_search(p, k) is not False for p in patterns)
    ]


def _additional_properties(validator, ap, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        names = ", ".join(repr(e) for e in sorted(extras, key=str))
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            yield ValidationError(
                f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: {patterns}"
            )
        else:
            yield ValidationError(
                f"Additional properties are not allowed ({names} {'was' if len(extras) == 1 else 'were'} unexpected)"
            )


def _format_checker() -> jsonschema.FormatChecker:
    fc = jsonschema.FormatChecker(formats=())
    for name, fn in STRING_FORMATS.items():
        fc.checks(name)((lambda f: lambda inst: not isinstance(inst, str) or f(inst))(fn))
    for name, fn in NUMBER_FORMATS.items():
        fc.checks(name)(
            (lambda f: lambda inst: isinstance(inst, bool) or not isinstance(inst, (int, float)) or f(inst))(fn)
        )
    return fc


FORMAT_CHECKER = _format_checker()

_COMMON = {
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
}

# keywords that drafts 4 and 6 lack and ajv honours there anyway
_LATER = {k: jsonschema.Draft201909Validator.VALIDATORS[k] for k in ("const", "contains", "propertyNames", "if")}


def _ajv(cls: type, extra: dict[str, Any]) -> type:
    return validators.extend(cls, {**extra, **_COMMON})


_DRAFTS: dict[str, type] = {
    "draft4": _ajv(jsonschema.Draft4Validator, _LATER),
    "draft6": _ajv(jsonschema.Draft6Validator, {"if": _LATER["if"]}),
    "draft7": _ajv(jsonschema.Draft7Validator, {}),
    "2019-09": _ajv(jsonschema.Draft201909Validator, {}),
    "2020-12": _ajv(jsonschema.Draft202012Validator, {}),
}
_SPECS = {
    "draft4": referencing.jsonschema.DRAFT4,
    "draft6": referencing.jsonschema.DRAFT6,
    "draft7": referencing.jsonschema.DRAFT7,
    "2019-09": referencing.jsonschema.DRAFT201909,
    "2020-12": referencing.jsonschema.DRAFT202012,
}


def _dialect(schema: Any) -> str:
    s = schema.get("$schema", "") if isinstance(schema, dict) else ""
    s = s if isinstance(s, str) else ""
    for key, name in (
        ("draft-04", "draft4"),
        ("draft-03", "draft4"),
        ("draft-06", "draft6"),
        ("draft-07", "draft7"),
        ("2019-09", "2019-09"),
        ("2020-12", "2020-12"),
    ):
        if key in s:
            return name
    return "draft7"


def _short(v: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(slots=True)
class Violation:
    """One schema violation at ``key_path`` of document ``doc``."""

    doc: int
    key_path: str
    message: str
    schema_path: str
    newer: bool = False
    """What a newer version of the file's tool may allow (:func:`maybe_newer`): a required key, a
    value that is not a near miss of any allowed one. Against an old schema snapshot, not reported."""


class SchemaValidator:
    """Validates documents against schemas in (or named from) the tree, offline."""

    def __init__(self, corpus: Corpus, index: SchemaIndex) -> None:
        self.corpus = corpus
        self.index = index
        self._contents: dict[str, Any] = {}
        self._validators: dict[str, Any] = {}
        self._names: dict[str, set[str] | None] = {}
        self.errors: dict[str, str] = {}  # schema path -> why it cannot be used
        self.guard = ecma_regex.Guard()  # risky patterns whose matches ran out of time, in this run
        self.registry = referencing.Registry(retrieve=self._retrieve)  # type: ignore[call-arg]

    @property
    def skipped_checks(self) -> list[ecma_regex.SkippedCheck]:
        """Values not checked against a risky pattern in this run (each is also a violation)."""
        return self.guard.skipped

    # -- contents -------------------------------------------------------------------------------

    def load(self, path: str) -> Any:
        """A schema's contents by corpus path (or absolute path on disk), with a base id."""
        if path in self._contents:
            return self._contents[path]
        data = None
        if not path.startswith("/") and path in self.corpus.formats:
            data = self.corpus.document(path)
            if data is None:
                self.corpus.load_documents([path])
                data = self.corpus.document(path)
        if data is None and "://" in path:
            data = schemastore.load(path)  # kb's built-in catalogue (offline)
        if data is None and "://" not in path:
            disk = Path(path) if path.startswith("/") else (self.corpus.root / path if self.corpus.root else None)
            if disk is not None and disk.is_file():
                try:
                    text = disk.read_text(encoding="utf-8-sig")
                    if disk.suffix in (".yaml", ".yml"):
                        import yaml

                        data = yaml.safe_load(text)
                    else:
                        data = json.loads(text)
                except (OSError, ValueError, UnicodeDecodeError) as exc:
                    self.errors[path] = f"cannot read it: {exc}"
                except Exception as exc:
                    self.errors[path] = f"cannot parse it: {type(exc).__name__}"
        if isinstance(data, dict):
            data = dict(data)
            idkey = "id" if _dialect(data) == "draft4" else "$id"
            own = data.get(idkey)
            if not (isinstance(own, str) and "://" in own):
                data[idkey] = FILE_BASE + path.lstrip("/")
        elif data is not None and not isinstance(data, bool):
            self.errors[path] = "it is not a JSON Schema (not an object)"
            data = None
        self._contents[path] = data
        return data

    def _retrieve(self, uri: str) -> referencing.Resource:
        path: str | None
        if uri.startswith(FILE_BASE):
            path = posixpath.normpath(uri[len(FILE_BASE) :].split("#", 1)[0])
            if path not in self.corpus.formats and not self.corpus.exists(path):
                path = None
        elif "://" in uri or uri.startswith("urn:"):
            path = self.index.lookup(uri)
            if path is None and schemastore.load(uri) is not None:
                path = uri.split("#", 1)[0]  # served by kb's built-in catalogue
        else:
            # a relative $ref with no base (draft 7 ignores $id next to $ref; ajv does not):
            # a schema in the tree with that name, if there is exactly one
            cands = self.index.by_base.get(posixpath.basename(uri.split("#", 1)[0]), [])
            path = cands[0] if len(cands) == 1 else None
        contents = self.load(path) if path else None
        if contents is None:
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # referencing's stub hides attrs fields
        return referencing.Resource.from_contents(contents, default_specification=_SPECS[_dialect(contents)])

    def validator_for(self, schema_path: str) -> Any:
        if schema_path in self._validators:
            return self._validators[schema_path]
        schema = self.load(schema_path)
        v = None
        if schema is not None:
            cls = _DRAFTS[_dialect(schema)]
            try:
                v = cls(schema, registry=self.registry, format_checker=FORMAT_CHECKER)
            except Exception as exc:
                self.errors[schema_path] = f"invalid schema: {exc}"
        self._validators[schema_path] = v
        return v

    def looks_like(self, schema_path: str, documents: list[tuple[int, Any]]) -> bool:
        """Whether the documents look like what the schema describes: at least half the top-level
        keys of each mapping are properties the schema names somewhere. A file that a catalog's
        ``fileMatch`` picked by its name alone (``template.json``, ``openapi.json``) but that holds
        something else is left unvalidated instead of drowned in false violations."""
        names = self._property_names(schema_path)
        if names is None:
            return True
        for _, data in documents:
            if isinstance(data, dict) and data:
                known = sum(1 for k in data if k in names)
                if known * 2 < len(data):
                    return False
        return True

    def _property_names(self, schema_path: str) -> set[str] | None:
        """The property names the schema allows at the top level of a document (through
        ``$ref``, ``allOf``, ``anyOf``, ``oneOf``, ``then`` and ``else``), or None when it names
        none there (a schema of free-form objects)."""
        if schema_path in self._names:
            return self._names[schema_path]
        root = self.load(schema_path)
        names: set[str] = set()
        seen: set[int] = set()
        todo: list[tuple[Any, Any]] = [(root, root)]  # (node, the document it lives in)
        while todo and len(seen) < 200:
            node, doc = todo.pop()
            if not isinstance(node, dict) or id(node) in seen:
                continue
            seen.add(id(node))
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(k for k in props if isinstance(k, str))
            for key in ("allOf", "anyOf", "oneOf"):
                if isinstance(node.get(key), list):
                    todo.extend((sub, doc) for sub in node[key])
            for key in ("then", "else"):
                todo.append((node.get(key), doc))
            ref = node.get("$ref")
            if isinstance(ref, str):
                url, _, pointer = ref.partition("#")
                target = doc if not url else (self.load(url) if "://" in url else None)
                for part in [p for p in pointer.split("/") if p]:
                    target = (
                        target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
                    )
                todo.append((target, doc if not url else self.load(url)))
        self._names[schema_path] = names or None
        return self._names[schema_path]

    # -- validation -----------------------------------------------------------------------------

    def validate(self, schema_path: str, documents: list[tuple[int, Any]]) -> list[Violation] | None:
        """Violations of each ``(doc, data)``; None when the schema cannot be used offline."""
        v = self.validator_for(schema_path)
        if v is None:
            return None
        out: list[Violation] = []
        for doc, data in documents:
            data = _normalise(data)
            try:
                with ecma_regex.guarded(self.guard):
                    errors = list(v.iter_errors(data))
            except Unresolvable as exc:  # jsonschema wraps referencing's error in a subclass
                self.errors[schema_path] = f"a $ref needs a schema that is not in the tree ({_unresolved(exc)})"
                return None
            except (RecursionError, re.error) as exc:
                self.errors[schema_path] = f"the validator failed: {type(exc).__name__}"
                return None
            kept = 0
            errors = _without_cascades(errors)
            for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
                if _is_redacted(e):
                    continue
                kept += 1
                if kept > MAX_ERRORS_PER_DOCUMENT:
                    out.append(
                        Violation(
                            doc,
                            "",
                            f"... and {len(errors) - MAX_ERRORS_PER_DOCUMENT} more violations in this document",
                            "",
                        )
                    )
                    break
                desc = _describe(e)
                if data is None and not e.absolute_path:
                    desc = f"the document is empty: {desc}"
                out.append(
                    Violation(
                        doc,
                        join_key_path(e.absolute_path),
                        desc,
                        "/".join(str(p) for p in e.absolute_schema_path),
                        newer=maybe_newer(e),
                    )
                )
        return out


def _near_miss(value: str, allowed: list[Any]) -> bool:
    """``value`` is a typo of an allowed word (``Nodenext`` for ``NodeNext``, ``bundlr``)."""
    words = [a.lower() for a in allowed if isinstance(a, str)]
    return bool(difflib.get_close_matches(value.lower(), words, n=1, cutoff=0.75))


def maybe_newer(e: ValidationError) -> bool:
    """Whether a newer version of the tool may accept what ``e`` rejects: a required key (Cargo
    1.75 made ``package.version`` optional), or a string outside an ``enum``/``const`` that is
    not a near miss of an allowed value (TypeScript 5's ``moduleResolution: bundler``), also as
    the closest alternative of an ``anyOf``/``oneOf``. A wrong type or a typo is not."""
    if e.validator == "required":
        return True
    if e.validator in ("enum", "const") and isinstance(e.instance, str):
        allowed = e.validator_value if e.validator == "enum" else [e.validator_value]
        return isinstance(allowed, list) and not _near_miss(e.instance, allowed)
    if e.validator in ("anyOf", "oneOf") and e.context and isinstance(e.instance, str):
        values = [c for c in e.context if c.validator in ("enum", "const")]
        others = [c for c in e.context if c.validator not in ("enum", "const", "type", "pattern")]
        return bool(values) and not others and all(maybe_newer(c) for c in values)
    return False


def _unresolved(exc: Exception) -> str:
    ref = getattr(exc, "ref", None)
    return str(ref) if ref else type(exc).__name__


_TEMPLATE = re.compile(r"\{\{.*\}\}|<[^<>\n]{1,80}>", re.S)


def _placeholder(x: Any) -> bool:
    """A value left for a template or a person to fill in (``{{replicas}}``, ``<ADD LUN ID Here>``):
    what is checked is the value it becomes, not the placeholder."""
    return isinstance(x, str) and bool(_TEMPLATE.fullmatch(x.strip()))


def _is_redacted(e: ValidationError) -> bool:
    """Errors about a value kb redacted (a secret) are about the marker, not the value; errors
    about a placeholder are about what fills it."""

    def red(x: Any) -> bool:
        return isinstance(x, str) and x.startswith(_REDACTED)

    if red(e.instance) or _placeholder(e.instance):
        return True
    if e.validator in ("additionalProperties", "unevaluatedProperties") and isinstance(e.instance, dict):
        # a mapping key equal to a secret is redacted too (a volume named like the password):
        # the keys the message names are all markers, so the error is about them, not the tree
        named = [k for k in e.instance if isinstance(k, str) and repr(k) in e.message]
        if named and all(red(k) for k in named):
            return True
    return bool(e.context and all(red(c.instance) for c in e.context))


def _without_cascades(errors: list[ValidationError]) -> list[ValidationError]:
    """Drop an ``unevaluatedProperties`` error over a mapping that has an error of its own below
    it: a property whose subschema fails counts as unevaluated, so one bad ``environment`` made
    the compose schema also call ``image`` and ``volumes`` unexpected."""
    paths = [tuple(map(str, e.absolute_path)) for e in errors]
    above = {q[:k] for q in paths for k in range(len(q))}  # every mapping some error lies below
    return [
        e for e, p in zip(errors, paths, strict=True) if not (e.validator == "unevaluatedProperties" and p in above)
    ]


def _repeated(items: list) -> Any:
    seen: list = []
    for x in items:
        if x in seen:
            return x
        seen.append(x)
    return None


def _detail(best: ValidationError) -> str:
    if best.validator == "uniqueItems" and isinstance(best.instance, list):
        twice = _repeated(best.instance)
        if twice is not None:
            return f"the item {_short(twice, 80)} appears more than once (items must be unique)"
    return best.message if len(best.message) < 200 else best.message[:197] + "..."


def _describe(e: ValidationError) -> str:
    msg = e.message
    if e.validator in ("oneOf", "anyOf") and e.context:
        # the alternative of the instance's own type is the one meant: a list that fails a list
        # rule is closer to the list alternative than to "is not of type 'object'"
        typed = [c for c in e.context if c.validator != "type" and c.absolute_path == e.absolute_path] or [
            c for c in e.context if c.validator != "type"
        ]
        best = best_match(typed or e.context)
        where = join_key_path(best.absolute_path)
        detail = _detail(best)
        subject = (
            "is valid under more than one" if "more than one" in msg or "valid under each" in msg else "matches none"
        )
        msg = f"{_short(e.instance, 60)} {subject} of the '{e.validator}' alternatives" + (
            f"; closest: {('at ' + where + ': ') if where and where != join_key_path(e.absolute_path) else ''}{detail}"
            if subject == "matches none"
            else ""
        )
    elif e.validator == "uniqueItems":
        msg = _detail(e)
    elif len(msg) > 300:
        msg = msg[:297] + "..."
    return msg


def _normalise(data: Any) -> Any:
    """Undo what is not part of the data: a byte-order mark glued to the first key (YAML that
    puts a BOM after a comment line)."""
    if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("\ufeff") for k in data):
        return {(k.lstrip("\ufeff") if isinstance(k, str) else k): v for k, v in data.items()}
    return data
