"""``kb show FILE``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("show")
@click.argument("file")
@db_option
@json_option
def command(file: str, db: Path | None, as_json: bool) -> None:
    """Show a catalogued FILE: its format, status, records (key path, value, line) and findings.

    FILE is the path relative to the corpus root, as in `kb sql "SELECT path FROM files"`.

    Example: kb show services/payments/config/production.yaml
    """
    detail = open_kb(db).file(file)
    if as_json:
        emit_json({"file": detail.file, "records": detail.records, "findings": detail.findings})
        return
    from rich.markup import escape
    from rich.table import Table

    info = detail.file
    con = console()
    con.print(f"[bold]{escape(info.path)}[/]  {info.format}  {info.size} bytes  status={info.status}")
    t = Table("line", "key path", "value", "type")
    for r in detail.records:
        t.add_row(
            str(r.line),
            escape(r.key_path),
            escape("" if r.value is None else str(r.value)[:120]),
            r.value_type,
        )
    con.print(t)
    for f in detail.findings:
        con.print(f"{escape(info.path)}:{f.line or ''}  {f.severity}  {f.rule}  {escape(f.message)}")
