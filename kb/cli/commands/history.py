"""``kb history``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


@click.command("history")
@db_option
@json_option
@click.option("--limit", "-n", type=int, default=20, show_default=True, help="How many runs.")
@click.option("--run", "run_id", type=int, default=None, help="List the files one run added, changed, removed.")
def command(db: Path | None, as_json: bool, limit: int, run_id: int | None) -> None:
    """Ingest runs, newest first: files added, changed, removed and unchanged.

    Example: kb history --run 3
    """
    kb = open_kb(db)
    data = kb.run_files(run_id) if run_id is not None else kb.runs(limit)
    if as_json:
        emit_json(data)
        return
    from rich.table import Table

    if run_id is not None:
        t = Table("change", "path", title=f"Run {run_id}", title_justify="left")
        for r in data:
            t.add_row(r["change"], r["path"])
    else:
        t = Table("run", "started", "status", "files", "added", "changed", "removed", "unchanged", "seconds")
        for r in data:
            t.add_row(
                *(
                    str(r[k])
                    for k in (
                        "id",
                        "started_at",
                        "status",
                        "files_seen",
                        "added",
                        "changed",
                        "removed",
                        "unchanged",
                        "seconds",
                    )
                )
            )
    console().print(t)
