"""``kb sql``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, handle_errors, json_option, open_kb


@click.command("sql")
@click.argument("query")
@db_option
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@handle_errors
def command(query: str, db: Path | None, as_json: bool, as_csv: bool) -> None:
    """Run a read-only SQL QUERY over the catalogue.

    Tables: files, records, sections, chunks, documents, findings, runs, run_changes, meta (and
    "references"/refs after `kb validate`). Output: a table, --csv, or --json (an array of objects
    keyed by column). Read-only: no writes, and no reading or writing other files from SQL.

    Example: kb sql "SELECT format, count(*) FROM files GROUP BY 1"
    """
    with open_kb(db).snapshot() as snap:
        columns, rows = snap.catalogue.sql(query)
    if as_json:
        emit_json([dict(zip(columns, r)) for r in rows])
    elif as_csv:
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows(rows)
    else:
        from rich.markup import escape
        from rich.table import Table

        t = Table(*[escape(c) for c in columns])
        for r in rows:
            t.add_row(*[escape("" if v is None else str(v)) for v in r])
        console().print(t)
        click.echo(f"({len(rows)} rows)", err=True)
