"""``kb sql``."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("sql")
@click.argument("query")
@db_option
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=1000,
    show_default=True,
    help="Most rows printed (0: all); a note on stderr says when more were left.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds before the query is stopped.",
)
@click.option("--memory", default="1GB", show_default=True, help="DuckDB memory_limit for the query.")
def command(query: str, db: Path | None, as_json: bool, as_csv: bool, limit: int, timeout: float, memory: str) -> None:
    """Run a read-only SQL QUERY over the catalogue.

    Tables: files, records, sections, chunks, documents, findings, runs, run_changes, meta (and
    "references"/refs after `kb validate`). Output: a table, --csv, or --json (an array of objects
    keyed by column). Read-only: no writes, and no reading or writing other files from SQL.
    Limits: --limit rows (1000), --timeout seconds (30), --memory (1GB) and 64 MB of result.

    Example: kb sql "SELECT format, count(*) FROM files GROUP BY 1"
    """
    from kb.errors import BadRequestError

    if not re.fullmatch(r"\s*\d+(?:\.\d+)?\s*(?:[KMGT]i?B)?\s*", memory, re.I):
        raise BadRequestError(f"--memory {memory!r}: give a size such as 512MB or 2GB.")
    columns, rows, truncated = open_kb(db).sql_rows(query, limit=limit or None, timeout=timeout, memory=memory.strip())
    if truncated:
        click.echo(f"(showing the first {limit} rows; more with --limit N, or all with --limit 0)", err=True)
    if as_json:
        emit_json([dict(zip(columns, r)) for r in rows])
    elif as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
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
