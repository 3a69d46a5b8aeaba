"""``kb blame FILE KEY``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("blame")
@click.argument("file")
@click.argument("key")
@db_option
@json_option
@click.option("--doc", type=int, default=None, help="Document index in a multi-document YAML file (from 0).")
def command(file: str, key: str, db: Path | None, as_json: bool, doc: int | None) -> None:
    """The history of one KEY of FILE: its value now, who last touched its line (git), and every
    recorded change, newest first, with the file's earlier paths when it moved.

    FILE is the path relative to the corpus root; KEY a key path as `kb show FILE` lists it.

    Example: kb blame services/payments/config/production.yaml database.timeout
    """
    h = open_kb(db).blame(file, key, doc=doc)
    if as_json:
        emit_json(h)
        return
    from rich.markup import escape
    from rich.table import Table

    con = console()
    if h.exists:
        who = ""
        if h.commit:
            who = f"  last touched by {h.author} in {h.commit[:10]} on {h.committed_at:%Y-%m-%d}"
        con.print(f"[bold]{escape(h.path)}:{h.line}[/]  {escape(h.key_path)} = {escape(str(h.value))}{escape(who)}")
    else:
        con.print(f"[bold]{escape(h.path)}[/]  {escape(h.key_path)} is not in the file now")
    if h.paths:
        con.print(f"earlier paths: {escape(', '.join(h.paths))}")
    if not h.history:
        con.print("No recorded change to this key (the first ingest is the baseline).")
        return
    t = Table("when (UTC)", "run", "change", "old", "new", "line", "who", "source")
    for r in h.history:
        t.add_row(
            r.changed_at.strftime("%Y-%m-%d %H:%M"),
            str(r.run_id),
            r.change,
            escape("" if r.old_value is None else str(r.old_value)),
            escape("" if r.new_value is None else str(r.new_value)),
            str(r.line or ""),
            escape(f"{r.author or ''} {(r.commit or '')[:8]}".strip() or "—"),
            r.source + (f" ({r.path})" if r.path != h.path else ""),
        )
    con.print(t)
