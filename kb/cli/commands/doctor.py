"""``kb doctor``."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import click

from kb.cli import db_option, emit_json, json_option, load_settings, terminal_safe


@click.command("doctor")
@db_option
@json_option
def command(db: Path | None, as_json: bool) -> None:
    """Check a KB's files against its HEAD.json and say what to do about each problem.

    Looks at HEAD.json, the catalogue it names, the keyword index, each vector segment's rows and
    the Chroma copy, and at files an interrupted run left. Reads only. Exit 0 when all is sound,
    1 when a problem was found (each line names its fix).

    Example: kb doctor --db .kb
    """
    from kb.knowledge import KnowledgeBase

    checks = KnowledgeBase.doctor(load_settings(db=db).db)
    if as_json:
        emit_json([asdict(c) for c in checks])
    else:
        for c in checks:
            line = f"{'ok     ' if c.ok else 'PROBLEM'}  {c.name}: {c.detail}"
            click.echo(terminal_safe(line + (f" -> {c.fix}" if c.fix else "")))
    sys.exit(0 if all(c.ok for c in checks) else 1)
