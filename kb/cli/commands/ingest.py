"""``kb ingest PATH``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, json_option, kept_on_interrupt, load_settings
from kb.cli.progress import progress_reporter


def print_summary(summary, con) -> None:
    from rich.table import Table

    con.print(
        f"[bold]Ingested[/] {summary.root} in {summary.seconds:.2f}s: {summary.files_seen} files "
        f"({summary.added} added, {summary.changed} changed, {summary.removed} removed, "
        f"{summary.unchanged} unchanged); {summary.chunks_embedded} texts embedded"
        f"{f' by {summary.embedder}' if summary.embedder else ''}, "
        f"{summary.chunks_skipped} not embedded (no meaning for the model); "
        f"{summary.embedded_share:.1%} of the KB embedded; generation {summary.generation}"
    )
    if summary.key_changes or summary.history_commits:
        replayed = f", {summary.history_commits} git commits replayed" if summary.history_commits else ""
        con.print(f"{summary.key_changes} key changes recorded{replayed}: `kb changes` lists them")
    for note in summary.notes:
        con.print(f"note: {note}")
    t = Table("format", "files", title="Files by format", title_justify="left")
    for fmt, n in summary.by_format.items():
        t.add_row(fmt, str(n))
    con.print(t)
    if summary.findings_by_rule:
        t = Table("rule", "findings", title="Findings by rule", title_justify="left")
        for rule, n in summary.findings_by_rule.items():
            t.add_row(rule, str(n))
        con.print(t)


@click.command("ingest")
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@db_option
@json_option
@click.option(
    "--no-embed", is_flag=True, help="Catalogue and keyword index only; the next `kb ingest` embeds what is missing."
)
@click.option(
    "--backend",
    type=click.Choice(["auto", "openvino", "onnx", "torch"]),
    default=None,
    help="Embedding backend (default: the `backend` setting, auto).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16", "int8", "int8-mixed"]),
    default=None,
    help="Embedding precision (int8 and int8-mixed make other vectors: a KB keeps one).",
)
@click.option("--device", default=None, help="Embedding device: auto, cpu, cuda, mps.")
@click.option("--workers", type=int, default=None, help="Parser processes (default: one per core).")
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Parse and embed on a Ray cluster: auto, local, host:6379 or ray://host:10001 (env KB_RAY_ADDRESS; "
    "needs pip install 'kb[ray]'). This process stays the one writer.",
)
@click.option("--max-file-size", type=int, default=None, help="Skip files larger than this many bytes.")
@click.option(
    "--quiet", "-q", is_flag=True, help="No progress (bar in a terminal, a line every few seconds elsewhere)."
)
@click.option(
    "--git-history",
    type=click.IntRange(0, 100_000),
    default=0,
    metavar="N",
    help="Replay the last N git commits into the change log (a new KB starts with history).",
)
def command(
    path: Path,
    db: Path | None,
    as_json: bool,
    no_embed: bool,
    backend: str | None,
    precision: str | None,
    device: str | None,
    workers: int | None,
    ray_address: str | None,
    max_file_size: int | None,
    quiet: bool,
    git_history: int,
) -> None:
    """Ingest the configuration tree at PATH into the KB (incrementally).

    Unchanged files cost a stat; changed files are re-parsed; deleted files are dropped. The
    catalogue and keyword index are published first (searchable at once), then the texts without
    vectors are embedded, with a progress bar and ETA (in a pipe or CI log: a line every
    `progress_every` seconds with phase, done/total, rate and ETA); an interrupted run (Ctrl-C:
    exit 130) keeps what was published and resumes there. Prints files by format, findings by
    rule and the time taken.

    With --ray ADDRESS the files are parsed as Ray tasks and the texts embedded by Ray actors (a
    GPU each where the cluster has GPUs); every node needs kb and the tree at the same path. The
    result is the same KB as a local build.

    Example: kb ingest ./platform --db .kb
    """
    from kb.errors import ingest_command
    from kb.knowledge import KnowledgeBase

    overrides = {
        "db": db,
        "workers": workers,
        "max_file_size": max_file_size,
        "embed": False if no_embed else None,
        "backend": backend,
        "precision": precision,
        "device": device,
        "ray_address": ray_address,
    }
    settings = load_settings(**overrides)
    kb = KnowledgeBase(settings)
    kept_on_interrupt(
        "the last published generation is intact and searchable (files catalogued and texts embedded so far "
        f"are kept); run `{ingest_command(settings.db, path)}` again to resume"
    )
    with progress_reporter("ingest", enabled=not quiet, every=settings.progress_every) as bar:
        summary = kb.ingest(path, progress=bar, git_history=git_history)
    if as_json:
        emit_json(summary)
    else:
        print_summary(summary, console())
