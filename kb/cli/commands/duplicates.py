"""``kb duplicates``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kb.cli import EXIT_FOUND, db_option, emit_json, json_option, open_kb

KIND_CHOICES = ("exact", "canonical", "block", "near", "semantic")


@click.command("duplicates")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(KIND_CHOICES),
    help="Only this kind (repeatable). Default: exact, canonical, block and near; semantic only when named.",
)
@click.option(
    "--min-leaves",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Smallest block (leaf values) reported by block and near.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.8,
    show_default=True,
    help="Jaccard similarity for near duplicates.",
)
@click.option(
    "--semantic-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.9,
    show_default=True,
    help="Cosine similarity for semantic duplicates (with --kind semantic).",
)
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    type=click.Choice((*KIND_CHOICES, "any")),
    help="Exit 1 when a group of this kind is found (repeatable; `any`: any reported kind). For CI.",
)
@click.option("--suggest", is_flag=True, help="For near-duplicate files, propose a base plus per-file overlays.")
@db_option
@json_option
def command(
    kinds: tuple[str, ...],
    min_leaves: int,
    threshold: float,
    semantic_threshold: float,
    suggest: bool,
    fail_on: tuple[str, ...],
    db: Path | None,
    as_json: bool,
) -> None:
    """Find repeated configuration: identical files, the same data in another format, copied
    blocks, near-duplicate files or blocks, and near-identical prose, as N-way groups.

    Kinds: exact (same bytes), canonical (same parsed data, any format or key order), block
    (an identical subtree of at least --min-leaves values in two or more files), near (key-value
    sets with Jaccard >= --threshold), semantic (Markdown sections whose embeddings reach
    --semantic-threshold; opt-in: only with --kind semantic). Each group shows file:line ranges
    and the lines folding it would save. --fail-on KIND exits 1 when a group of that kind is
    found (CI: `kb duplicates --fail-on exact --fail-on canonical`).

    Example: kb duplicates --kind block --kind near --suggest
    """
    groups, summary = open_kb(db).duplicate_report(
        list(kinds) or None,
        min_leaves=min_leaves,
        threshold=threshold,
        semantic_threshold=semantic_threshold,
        suggest=suggest,
    )
    why_not = summary.get("semantic_skipped")
    failing = {g.kind for g in groups} & (set(KIND_CHOICES) if "any" in fail_on else set(fail_on))
    if as_json:
        emit_json({"groups": groups, "summary": summary})
        if failing:
            sys.exit(EXIT_FOUND)
        return
    for i, g in enumerate(groups, 1):
        head = f"[{i}] {g.kind}  {len(g.members)} copies  similarity {g.similarity:.2f}  saves {g.lines_saved} lines"
        click.echo(click.style(head, bold=True))
        for m in g.members:
            where = f"{m.path}:{m.line_start}" + (f"-{m.line_end}" if m.line_end and m.line_end != m.line_start else "")
            click.echo(f"    {where}" + (f"  {m.key_path}" if m.key_path else ""))
        if g.suggestion:
            click.echo("    suggestion:")
            for line in g.suggestion.rstrip("\n").splitlines():
                click.echo(f"      {line}")
    by_kind = ", ".join(f"{k} {n}" for k, n in summary["groups_by_kind"].items() if n)
    click.echo(
        f"{summary['groups']} groups ({by_kind or 'none'}); {summary['lines_saved']} lines in removable copies; "
        f"duplication ratio {summary['duplication_ratio']:.1%} "
        f"({summary['duplicated_leaf_values']} of {summary['leaf_values']} leaf values)",
        err=True,
    )
    if why_not:
        click.echo(f"semantic: skipped, {why_not}", err=True)
    if failing:
        click.echo(f"failing: {', '.join(sorted(failing))} duplicates found (--fail-on)", err=True)
        sys.exit(EXIT_FOUND)
