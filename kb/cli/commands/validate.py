"""``kb validate``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from kb.cli import db_option, emit_json, json_option, open_kb

_ORDER = {"error": 0, "warning": 1, "info": 2}


def _finding(row: tuple):
    from kb.types import Finding

    rule, severity, path, line, message, target, fingerprint = row
    if severity not in _ORDER:
        severity = "warning"
    return Finding(
        rule=rule, severity=severity, path=path, line=line, message=message, target=target, fingerprint=fingerprint
    )


def _baseline_keys(path: Path) -> set[tuple]:
    from kb.errors import ConfigError

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["findings"] if isinstance(data, dict) else data
        return {(f["rule"], f["path"], f.get("target"), f["message"]) for f in items}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Cannot read the baseline '{path}': {exc}. Give a file written by `kb validate --json > {path.name}`."
        ) from exc


def _selected(files: tuple[str, ...], root: str | None) -> set[str]:
    """Catalogue paths for FILES: files on disk inside the corpus root, else paths relative to the root."""
    base = Path(root).resolve() if root else None
    out = set()
    for f in files:
        rel = f.replace("\\", "/").removeprefix("./")
        p = Path(f)
        if base is not None and p.exists() and p.resolve().is_relative_to(base):
            rel = p.resolve().relative_to(base).as_posix()
        out.add(rel.rstrip("/"))
    return out


def _in(path: str, selected: set[str]) -> bool:
    return path in selected or any(path.startswith(s + "/") for s in selected)


@click.command("validate")
@click.argument("files", nargs=-1, metavar="[FILES]...")
@db_option
@json_option
@click.option("--sarif", is_flag=True, help="Print SARIF 2.1.0 (for code-scanning UIs) instead of a table.")
@click.option(
    "--baseline",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A previous `kb validate --json` output: report only findings absent from it.",
)
@click.option(
    "--schema-map",
    "schema_map",
    multiple=True,
    metavar="GLOB=SCHEMA",
    help="Validate files matching GLOB against SCHEMA (paths relative to the corpus root; GLOB may "
    "capture {name} for SCHEMA). Repeatable; comes before [tool.kb] schema_map.",
)
@click.option(
    "--ingest",
    "ingest_root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="First ingest this tree incrementally (catalogue only, no embedding), so the check sees it as "
    "it is now; the KB is created if need be (the pre-commit hook runs `kb validate --ingest .`).",
)
def command(
    files: tuple[str, ...],
    db: Path | None,
    as_json: bool,
    sarif: bool,
    baseline: Path | None,
    schema_map: tuple[str, ...],
    ingest_root: Path | None,
) -> None:
    """Check references, variables, cycles and JSON Schemas; list every finding, worst first.

    Runs the rules broken-reference, undefined-variable, reference-cycle, schema-violation and
    orphan over the catalogue, stores their findings, and prints them with ingest's parse-error
    and plaintext-secret findings, as `path:line  severity  rule  message`. Exits 1 when any
    finding (after --baseline) is an error.

    With FILES (paths relative to the corpus root, or on disk inside it, or folders), the whole tree
    is still checked but only findings in those files are reported and counted: a pre-commit hook
    passes the changed files, so errors elsewhere do not block a commit.

    Example: kb validate --schema-map 'config/{name}.yaml=schemas/{name}.schema.json' --sarif > kb.sarif
    """
    from kb.errors import BadRequestError, NotIndexedError

    if as_json and sarif:
        raise BadRequestError("Choose one of --json and --sarif.")
    kb = open_kb(db, read_only=False)
    if ingest_root is None and kb.generation() is None:
        raise NotIndexedError(
            f"No knowledge base at '{kb.settings.db}'. Run `kb ingest PATH --db {kb.settings.db}` "
            "first, or pass --ingest PATH."
        )
    keys = _baseline_keys(baseline) if baseline is not None else None
    t0 = time.perf_counter()
    if ingest_root is not None:
        run = kb.ingest(ingest_root, embed=False)
        click.echo(
            f"ingested {ingest_root}: {run.files_seen} files ({run.added} added, {run.changed} changed, "
            f"{run.removed} removed) in {run.seconds:.1f}s",
            err=True,
        )
    root = str(kb.settings.root) if kb.settings.root else None
    found = kb.validate(as_frame=False, schema_map=list(schema_map))
    with kb.snapshot() as snap:
        others = snap.catalogue.query(
            "SELECT rule, severity, path, line, message, target, fingerprint FROM findings WHERE source <> 'validate'"
        )
        notes = json.loads(snap.catalogue.get_meta("validate_notes") or "[]")
    seconds = time.perf_counter() - t0
    findings = [_finding(r) for r in others] + found
    findings.sort(key=lambda f: (_ORDER.get(f.severity, 3), f.path, f.line or 0, f.rule, f.message))
    if files:
        selected = _selected(files, root)
        findings = [f for f in findings if _in(f.path, selected)]
    suppressed = 0
    if keys is not None:
        kept = [f for f in findings if (f.rule, f.path, f.target, f.message) not in keys]
        suppressed = len(findings) - len(kept)
        findings = kept
    if as_json:
        emit_json({"findings": findings})
    elif sarif:
        from graph.sarif import to_sarif

        emit_json(to_sarif(findings, root_uri=Path(root).resolve().as_uri() if root else None))
    else:
        for f in findings:
            loc = f"{f.path}:{f.line}" if f.line else f.path
            click.echo(f"{loc}  {f.severity}  {f.rule}  {f.message}")
    if not as_json and not sarif:
        by = {s: sum(1 for f in findings if f.severity == s) for s in _ORDER}
        tail = f"; {suppressed} in the baseline not shown" if keys is not None else ""
        tail += f"; only in the {len(files)} given files" if files else ""
        click.echo(
            f"{len(findings)} findings ({by['error']} errors, {by['warning']} warnings, {by['info']} info) "
            f"in {seconds:.1f}s{tail}",
            err=True,
        )
        for n in notes:
            click.echo(f"note: {n}", err=True)
    if any(f.severity == "error" for f in findings):
        sys.exit(1)
