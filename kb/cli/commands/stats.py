"""``kb stats``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, handle_errors, json_option, load_settings


@click.command("stats")
@db_option
@json_option
@handle_errors
def command(db: Path | None, as_json: bool) -> None:
    """Counts: files by format and status, records, chunks, findings by rule, the last run.

    Example: kb stats --json
    """
    from kb.catalogue import Catalogue

    settings = load_settings(db=db)
    with Catalogue(settings.db, read_only=True) as cat:
        st = cat.stats()
    if as_json:
        emit_json(st)
        return
    from rich.table import Table

    con = console()
    con.print(f"[bold]{st['db']}[/] (root {st['root']}): {st['files']} files, {st['bytes']:,} bytes, "
              f"{st['records']:,} records, {st['sections']:,} sections, {st['chunks']:,} chunks, "
              f"{st['findings']:,} findings")
    for title, key in (("Files by format", "files_by_format"), ("Files by status", "files_by_status"),
                       ("Findings by rule", "findings_by_rule")):
        t = Table("name", "count", title=title, title_justify="left")
        for k, v in st[key].items():
            t.add_row(str(k), str(v))
        con.print(t)
