"""``kb search QUERY``: hybrid, semantic or keyword search over the KB."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from kb.cli import EXIT_FOUND, console, db_option, emit_json, json_option, open_kb, terminal_safe
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
@click.option(
    "-l", "--files-with-matches", "files_only", is_flag=True, help="Print only the paths of the files hit, best first."
)
@click.option(
    "-C",
    "--context",
    "context",
    type=click.IntRange(0, 50),
    default=0,
    metavar="N",
    help="Also print N lines before and after each hit's lines.",
)
@click.option(
    "--plain", is_flag=True, help="grep-like lines, `path:line:text`, no colour, headers or rules (for scripts)."
)
@click.option(
    "--all",
    "all_files",
    is_flag=True,
    help="Every matching file once (up to 100), instead of the k best hits. 'Which ...' questions get one hit per file anyway.",
)
@db_option
@json_option
def command(
    query: str,
    mode: str,
    fmt: str | None,
    path_glob: str | None,
    k: int,
    model: str | None,
    files_only: bool,
    context: int,
    plain: bool,
    all_files: bool,
    db: Path | None,
    as_json: bool,
) -> None:
    """Search the knowledge base in natural language or by identifier.

    Prints, per hit, `path:line_start-line_end  key_path  score`, then the lines that answer the
    query as `path:line  key.path = value`, then the hit's lines with the query's terms
    highlighted. -l prints only the files hit; --plain prints `path:line:text` lines (answers as
    `path:line:key.path = value`) for grep and cut; --context N adds N lines around each hit.
    --json prints an object: query, mode, generation, embedded and embeddable (texts), embedded_share
    (below 1 while the KB is still being embedded), notice, grouped (one hit per file: a "which ..."
    question or --all),
    and hits (path, score, line_start, line_end, key_path, snippet, format, answer).

    Exit status, like grep: 0 when something was found, 1 when nothing was (with any output
    format), 2 on an error.

    Example: kb search "Where is the fraud-review threshold for payments in production?"
    """
    kb = open_kb(db, model=model)
    result = kb.search_result(query, k=k, mode=mode, format=fmt, path=path_glob, all_files=all_files)
    if as_json:
        emit_json(result)
    elif files_only:
        for path in dict.fromkeys(h.path for h in result.hits):
            click.echo(terminal_safe(path))
    else:
        around = _context_lines(kb, result.hits, context) if context else {}
        if plain:
            _print_plain(result.hits, around, context)
        else:
            print_hits(query, result.hits, around, context)
    if result.notice and not as_json:
        click.echo(f"Note: {result.notice}", err=True)
    if not result.hits:
        if not as_json and not files_only and not plain:
            click.echo("No hits. Try other words, --mode keyword for an exact identifier, or fewer filters.", err=True)
        sys.exit(EXIT_FOUND)


def answer_lines(hit: Any) -> list[str]:
    """``path:line  key.path = value`` for each line of the hit that answers the query."""
    out = []
    for a in hit.answer:
        what = " = ".join(x for x in (a.key_path, a.value) if x is not None)
        out.append(f"{hit.path}:{a.line}  {what}".rstrip())
    return out


def _context_lines(kb: Any, hits: list, n: int) -> dict[str, dict[int, str]]:
    """The stored (redacted) lines around each hit, by path and line number: read from the
    catalogue's sections, never from the disk (a secret redacted at ingest stays redacted)."""
    want: dict[str, list[tuple[int, int]]] = {}
    for h in hits:
        want.setdefault(h.path, []).append((max(1, h.line_start - n), h.line_end + n))
    return kb.stored_lines(want)


def _hit_lines(hit: Any, around: dict[str, dict[int, str]], context: int) -> list[tuple[int, str, bool]]:
    """(line number, text, inside the hit) for the hit's lines plus ``context`` lines on each side
    (``around`` holds the stored lines of every hit of the file, and whole sections: clipped here)."""
    own = list(enumerate(hit.snippet.split("\n"), start=hit.line_start))
    lines = around.get(hit.path)
    if not lines or context <= 0:
        return [(n, t, True) for n, t in own]
    first, last = own[0][0], own[-1][0]
    before = [(n, lines[n], False) for n in range(first - context, first) if n in lines]
    after = [(n, lines[n], False) for n in range(last + 1, last + context + 1) if n in lines]
    return before + [(n, t, True) for n, t in own] + after


def _print_plain(hits: list, around: dict[str, dict[int, str]], context: int) -> None:
    """``path:line:text`` (``-`` instead of the second ``:`` for context lines, as grep does)."""
    for hit in hits:
        for a in hit.answer:
            what = " = ".join(x for x in (a.key_path, a.value) if x is not None)
            click.echo(terminal_safe(f"{hit.path}:{a.line}:{what}"))
        for n, text, inside in _hit_lines(hit, around, context):
            click.echo(terminal_safe(f"{hit.path}:{n}{':' if inside else '-'}{text}"))


def print_hits(query: str, hits: list, around: dict[str, dict[int, str]] | None = None, context: int = 0) -> None:
    from rich.text import Text

    from kb.knowledge import KnowledgeBase

    out = console()
    if not hits:
        return
    words = KnowledgeBase.query_words(query)
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
        for a in answer_lines(hit):
            out.print(Text(a, style="bold"))
        lines = _hit_lines(hit, around or {}, context)
        width = len(str(max(n for n, _, _ in lines)))
        for n, line, inside in lines:
            text = Text(f"  {n:>{width}} {'│' if inside else '┆'} ", style="dim")
            body = Text(line, style="" if inside else "dim")
            if inside:
                for start, end in word_spans(line, words):
                    body.stylize("bold yellow", start, end)
            text.append_text(body)
            out.print(text)


_TOKEN = __import__("re").compile(r"[A-Za-z0-9]+")
_PART = __import__("re").compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|[0-9]+")


def word_spans(line: str, words: set[str]) -> list[tuple[int, int]]:
    """Where the query's words occur in ``line`` as whole words or identifier parts (``Review``
    in ``fraudReview``, ``max`` in ``max_retries``), never inside another word: "the" does not
    light up "other" or "theme"."""
    words = {w.lower() for w in words}
    spans = []
    for tok in _TOKEN.finditer(line):
        if tok.group().lower() in words:
            spans.append(tok.span())
            continue
        for part in _PART.finditer(tok.group()):
            if part.group().lower() in words:
                spans.append((tok.start() + part.start(), tok.start() + part.end()))
    return spans
