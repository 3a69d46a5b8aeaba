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
    from kb.errors import NotIndexedError

    with open_kb(db).snapshot() as snap:
        cat = snap.catalogue
        rel = file.replace("\\", "/").removeprefix("./")
        row = cat.file_row(rel)
        if row is None:
            root = cat.get_meta("root")
            if root and Path(file).resolve().is_relative_to(Path(root)):
                rel = Path(file).resolve().relative_to(Path(root)).as_posix()
                row = cat.file_row(rel)
        if row is None:
            like = [
                r[0]
                for r in cat.query(
                    "SELECT path FROM files WHERE path LIKE ? ORDER BY path LIMIT 5", [f"%{Path(rel).name}%"]
                )
            ]
            hint = (
                f" Did you mean: {', '.join(like)}?" if like else ' List files with `kb sql "SELECT path FROM files"`.'
            )
            raise NotIndexedError(f"'{file}' is not in the catalogue.{hint}")
        records = cat.query_dicts(
            "SELECT doc, key_path, value, value_type, line FROM records WHERE path = ? ORDER BY doc, line, key_path",
            [rel],
        )
        findings = cat.query_dicts(
            "SELECT rule, severity, line, message, target FROM findings WHERE path = ? ORDER BY line", [rel]
        )
    if as_json:
        emit_json({"file": row, "records": records, "findings": findings})
        return
    from rich.markup import escape
    from rich.table import Table

    con = console()
    con.print(f"[bold]{escape(rel)}[/]  {row['format']}  {row['size']} bytes  status={row['status']}")
    t = Table("line", "key path", "value", "type")
    for r in records:
        t.add_row(
            str(r["line"]),
            escape(r["key_path"]),
            escape("" if r["value"] is None else str(r["value"])[:120]),
            r["value_type"],
        )
    con.print(t)
    for f in findings:
        con.print(f"{escape(rel)}:{f['line'] or ''}  {f['severity']}  {f['rule']}  {escape(f['message'])}")
