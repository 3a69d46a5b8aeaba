"""``kb search QUERY``: hybrid, semantic or keyword search over the KB."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import console, db_option, emit_json, handle_errors, json_option, open_kb
from kb.limits import DEFAULT_K, DEFAULT_MODE, MAX_K, MODES


@click.command("search")
@click.argument("query")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    default=DEFAULT_MODE,
    show_default=True,
    help="hybrid fuses keyword (BM25) and semantic (vector) results; the others use one of them.",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="FORMAT",
    help="Only files of this format (yaml, json, dotenv, markdown, ...).",
)
@click.option(
    "--path",
    "path_glob",
    default=None,
    metavar="GLOB",
    help="Only files whose path matches GLOB (e.g. 'services/*/config/*'), or lie under this folder.",
)
@click.option(
    "-k", "k", type=click.IntRange(1, MAX_K), default=DEFAULT_K, show_default=True, help=f"Number of hits (1-{MAX_K})."
)
@click.option("--model", default=None, help="Embedding model (default: the one configured; must match the KB's).")
@db_option
@json_option
@handle_errors
def command(
    query: str,
    mode: str,
    fmt: str | None,
    path_glob: str | None,
    k: int,
    model: str | None,
    db: Path | None,
    as_json: bool,
) -> None:
    """Search the knowledge base in natural language or by identifier.

    Prints, per hit, `path:line_start-line_end  key_path  score` and the matching lines with the
    query's terms highlighted; --json prints an object: query, mode, generation, embedded_share
    (below 1 while the KB is still being embedded), notice, and hits (path, score, line_start,
    line_end, key_path, snippet, format).

    Example: kb search "Where is the fraud-review threshold for payments in production?"
    """
    kb = open_kb(db, model=model)
    result = kb.search_result(query, k=k, mode=mode, format=fmt, path=path_glob)
    if as_json:
        emit_json(result)
        return
    _print_hits(query, result.hits)
    if result.notice:
        click.echo(f"Note: {result.notice}", err=True)


def _print_hits(query: str, hits: list) -> None:
    from rich.text import Text

    from kb.keyword import STOPWORDS, identifier_parts
    from kb.search import query_identifiers

    out = console()
    if not hits:
        out.print("No hits. Try other words, --mode keyword for an exact identifier, or fewer filters.")
        return
    words = {w for w in identifier_parts(query) if len(w) > 2 and w not in STOPWORDS}
    words |= set(query_identifiers(query))
    for i, hit in enumerate(hits):
        if i:
            out.print()
        head = Text()
        head.append(f"{hit.path}:{hit.line_start}-{hit.line_end}", style="bold cyan")
        if hit.key_path:
            head.append("  ")
            head.append(hit.key_path, style="magenta")
        head.append(f"  {hit.score:.4f}", style="dim")
        out.print(head)
        width = len(str(hit.line_end))
        for n, line in enumerate(hit.snippet.split("\n"), start=hit.line_start):
            text = Text(f"  {n:>{width}} │ ", style="dim")
            body = Text(line)
            body.highlight_words(sorted(words, key=len, reverse=True), style="bold yellow", case_sensitive=False)
            text.append_text(body)
            out.print(text)
