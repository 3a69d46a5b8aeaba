"""``kb validate``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from kb.cli import db_option, emit_json, json_option, open_kb
from kb.types import SEVERITIES


def _baseline_keys(path: Path) -> set[tuple]:
    from kb.errors import ConfigError
    from kb.types import stable_message

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["findings"] if isinstance(data, dict) else data
        return {(f["rule"], f["path"], f.get("target"), stable_message(f["message"])) for f in items}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"Cannot read the baseline '{path}': {exc}. Give a file written by `kb validate --json > {path.name}`."
        ) from exc


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
    from kb.errors import BadRequestError, no_kb

    if as_json and sarif:
        raise BadRequestError("Choose one of --json and --sarif.")
    kb = open_kb(db, read_only=False)
    if ingest_root is None and kb.generation() is None:
        raise no_kb(kb.settings.db, then="first, or pass --ingest PATH")
    keys = _baseline_keys(baseline) if baseline is not None else None
    t0 = time.perf_counter()
    if ingest_root is not None:
        run = kb.ingest(ingest_root, embed=False)
        click.echo(
            f"ingested {ingest_root}: {run.files_seen} files ({run.added} added, {run.changed} changed, "
            f"{run.removed} removed) in {run.seconds:.1f}s",
            err=True,
        )
    problems = kb.problems(list(files) or None, schema_map=list(schema_map), store=True)
    seconds = time.perf_counter() - t0
    findings, notes = problems.findings, problems.notes
    suppressed = 0
    if keys is not None:
        kept = [f for f in findings if f.key() not in keys]
        suppressed = len(findings) - len(kept)
        findings = kept
    if as_json:
        emit_json({"findings": findings})
    elif sarif:
        emit_json(kb.sarif(findings, kb.settings.root))
    else:
        for f in findings:
            loc = f"{f.path}:{f.line}" if f.line else f.path
            click.echo(f"{loc}  {f.severity}  {f.rule}  {f.message}")
    if not as_json and not sarif:
        by = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
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
