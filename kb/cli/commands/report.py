"""``kb report``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, load_settings


@click.command("report")
@db_option
@json_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML page.",
)
@click.option(
    "--no-validate",
    is_flag=True,
    help="Use the stored validation even when stale (default: validate first when needed).",
)
def command(db: Path | None, as_json: bool, output: Path, no_validate: bool) -> None:
    """Write the health report: one self-contained HTML page (no network needed to view it) with a
    health score and how it is computed, findings by rule and folder, duplication, drift, schema
    coverage, the most depended-on files, recent changes and trends across runs. With --json,
    print the numbers behind it instead.

    Example: kb report -o report.html
    """
    from kb.knowledge import KnowledgeBase

    settings = load_settings(db=db)
    with KnowledgeBase.open(settings.db) as kb:  # no KB: a message saying how to build one
        data = kb.report(validate=not no_validate)
        if as_json:
            emit_json(data)
            return
        kb.report_html(output, data=data)
    s = data["score"]
    console().print(f"Health {s['value']:.1f}/100 (grade {s['grade']}): wrote {output} in {data['seconds']:.2f}s")
