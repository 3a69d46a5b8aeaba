"""``kb stats``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("stats")
@db_option
@json_option
def command(db: Path | None, as_json: bool) -> None:
    """Counts: files by format and status, records, chunks, findings by rule, the last run.

    Example: kb stats --json
    """
    st = open_kb(db).stats()
    if as_json:
        emit_json(st)
        return
    from rich.table import Table

    con = console()
    con.print(
        f"[bold]{st['db']}[/] (root {st['root']}): {st['files']} files, {st['bytes']:,} bytes, "
        f"{st['records']:,} records, {st['sections']:,} sections, {st['chunks']:,} chunks, "
        f"{st['findings']:,} findings"
    )
    con.print(
        f"generation {st['generation']}: {st['embedded']:,} of {st['embeddable']:,} texts embedded "
        f"({st['embedded_share']:.1%}); {st['chunk_texts_not_embedded']:,} not embedded (no meaning for "
        f"the model); embedder {st['embedder'] or '-'}"
    )
    for title, key in (
        ("Files by format", "files_by_format"),
        ("Files by status", "files_by_status"),
        ("Findings by rule", "findings_by_rule"),
    ):
        t = Table("name", "count", title=title, title_justify="left")
        for k, v in st[key].items():
            t.add_row(str(k), str(v))
        con.print(t)
