"""``kb changes``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, open_kb


def _cell(v: object, n: int = 40) -> str:
    if v is None:
        return "∅"
    s = str(v)
    return s if len(s) <= n else s[: n - 1] + "…"


@click.command("changes")
@db_option
@json_option
@click.option("--key", help="A key path (and the keys under it), or a pattern: '*timeout*'.")
@click.option("--path", "path_glob", help="A file (its earlier paths too, when it moved), a folder or a glob.")
@click.option("--since", help="A run id (that run and later), a date or time (UTC), or an age: 7d, 12h.")
@click.option("--change", type=click.Choice(["added", "removed", "changed", "moved", "broken"]), help="Only this kind.")
@click.option(
    "--limit", "-n", type=click.IntRange(1, 1_000_000), default=100, show_default=True, help="How many changes."
)
def command(
    db: Path | None,
    as_json: bool,
    key: str | None,
    path_glob: str | None,
    since: str | None,
    change: str | None,
    limit: int,
) -> None:
    """Key-level changes recorded at ingest, newest first: added, removed and changed values (old -> new,
    secrets redacted), moved files, with file:line, run, time and, in a git work tree, the commit
    and author that last touched the line.

    Example: kb changes --key '*timeout*' --path 'services/*/config/production.yaml' --since 30d
    """
    page = open_kb(db).change_page(key=key, path=path_glob, since=since, change=change, limit=limit)
    total, rows = page.total, page.changes
    if as_json:
        emit_json({"total": total, "changes": rows})
        return
    from rich.markup import escape
    from rich.table import Table

    con = console()
    if not rows:
        con.print(
            "No recorded changes match. The first ingest is the baseline; changes appear from the next "
            "one (or replay history: `kb ingest PATH --git-history 100`)."
        )
        return
    t = Table(
        "when (UTC)",
        "run",
        "change",
        "file:line",
        "key",
        "old → new",
        "who",
        title=f"{len(rows)} of {total} changes, newest first",
        title_justify="left",
    )
    for r in rows:
        where = r.path + (f":{r.line}" if r.line else "")
        if r.old_path:
            where += f" (from {r.old_path})"
        if r.change == "changed":
            value = f"{_cell(r.old_value)} → {_cell(r.new_value)}"
        elif r.change == "added":
            value = f"→ {_cell(r.new_value)}"
        elif r.change == "removed":
            value = f"{_cell(r.old_value)} →"
        else:
            value = ""
        who = f"{r.author or ''} {(r.commit or '')[:8]}".strip() or "—"
        t.add_row(
            r.changed_at.strftime("%Y-%m-%d %H:%M"),
            str(r.run_id),
            r.change,
            escape(where),
            escape(r.key_path or ""),
            escape(value),
            escape(who),
        )
    con.print(t)
