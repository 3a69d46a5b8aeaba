"""``kb demo``: the whole job on the bundled sample corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from kb.cli import console, emit_json, json_option, load_settings
from kb.cli.commands.ingest import print_summary
from kb.cli.commands.search import print_hits
from kb.cli.progress import progress_reporter

QUESTION_QUERY = "Where is the fraud-review threshold for payments in production?"
LITERAL_QUERY = "DATABASE_URL"


def sample_root() -> Path:
    """The bundled sample corpus (inside the installed package)."""
    from kb.knowledge import KnowledgeBase

    return KnowledgeBase.sample_path()


@click.command("demo")
@click.option(
    "--db",
    "db",
    type=click.Path(path_type=Path),
    default=Path(".kb-demo"),
    show_default=True,
    help="KB directory for the demo (rebuilt from scratch).",
)
@json_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(db: Path, as_json: bool, quiet: bool) -> None:
    """Ingest the bundled sample platform tree, then search and validate it, printing each step.

    Example: kb demo && kb search "retry policy" --db .kb-demo
    """
    from rich.markup import escape

    from kb.knowledge import KnowledgeBase

    if db.exists():
        shutil.rmtree(db)
    settings = load_settings(db=db)
    kb = KnowledgeBase(settings)
    con = console()
    out: dict = {}
    with progress_reporter("demo", enabled=not quiet, every=settings.progress_every) as bar:
        summary = kb.ingest(sample_root(), progress=bar)
    out["ingest"] = summary
    if not as_json:
        con.rule("[bold]1. Ingest the bundled sample corpus")
        print_summary(summary, con)

    if settings.embed:
        out["search"] = {}
        for label, q in (("hybrid, a question", QUESTION_QUERY), ("hybrid, an identifier", LITERAL_QUERY)):
            hits = kb.search(q, k=3, as_frame=False)
            out["search"][q] = hits
            if not as_json:
                con.rule(f"[bold]2. Search ({label}): {escape(q)}")
                print_hits(q, hits)

    findings = kb.validate(as_frame=False)
    stored = kb.findings_page(limit=None).findings
    out["findings"] = stored
    if not as_json:
        con.rule("[bold]3. Validate: references, variables, cycles, schemas, secrets")
        for f in stored:
            if f.severity == "info":
                continue
            line = f":{f.line}" if f.line else ""
            con.print(f"{escape(f.path)}{line}  [red]{f.severity}[/]  {f.rule}  {escape(f.message)}")
        con.print(
            f"\n{len(findings)} validation findings; {len(stored)} findings in all. "
            f'Explore: kb search "..." --db {db}, kb sql "SELECT * FROM files" --db {db}'
        )
    else:
        emit_json(out)
