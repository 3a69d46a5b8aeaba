"""``kb findings``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("findings")
@db_option
@json_option
@click.option("--rule", help="Only this rule (e.g. parse-error, plaintext-secret).")
@click.option("--severity", type=click.Choice(["error", "warning", "info"]), help="Only this severity.")
@click.option("--path", "path_glob", help="Only this file, folder or glob (services/*/config/*.yaml).")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "never"]),
    default="never",
    show_default=True,
    help="Exit 1 when a finding of this severity (or worse) is listed.",
)
def command(
    db: Path | None, as_json: bool, rule: str | None, severity: str | None, path_glob: str | None, fail_on: str
) -> None:
    """List stored findings (from ingest and the last `kb validate`), worst first.

    Example: kb findings --rule parse-error --json
    """
    kb = open_kb(db)
    page = kb.findings_page(rule=rule, severity=severity, path=path_glob, limit=None)
    rows: list[dict[str, Any]] = [f.model_dump() for f in page.findings]
    if as_json:
        emit_json(page.model_dump(mode="json"))  # total, offset, limit, findings: the API's page
    else:
        from rich.markup import escape

        con = console()
        for r in rows:
            loc = f"{r['path']}:{r['line']}" if r.get("line") else r["path"]
            con.print(f"{escape(loc)}  {r['severity']}  {r['rule']}  {escape(r['message'])}")
        click.echo(f"{len(rows)} findings", err=True)
        if kb.validation_stale():
            click.echo(
                "Note: files changed since the last `kb validate`; run it again for reference, "
                "variable, cycle and schema findings.",
                err=True,
            )
    levels = {"error": ("error",), "warning": ("error", "warning"), "never": ()}[fail_on]
    if any(r["severity"] in levels for r in rows):
        sys.exit(1)
