"""``kb graph stats|deps|impact|export``."""

from __future__ import annotations

from pathlib import Path

import click

from kb.cli import db_option, emit_json, json_option, open_kb


@click.group("graph")
def command() -> None:
    """Explore the dependency graph: files are nodes, references are typed edges with their line.

    Edges come from `kb validate`'s references table when it is up to date, else they are
    extracted afresh (nothing is written).

    Example: kb graph impact schemas/common.schema.json
    """


@command.command("stats")
@db_option
@json_option
def stats_cmd(db: Path | None, as_json: bool) -> None:
    """Count files, edges, references (broken ones too), edges by kind; list the most depended-on files.

    Example: kb graph stats --json
    """
    s = open_kb(db).graph_stats()
    if as_json:
        emit_json(s)
        return
    click.echo(
        f"{s['files']} files, {s['edges']} edges from {s['references']} references "
        f"({s['broken_references']} broken or undefined), {s['isolated_files']} isolated files, "
        f"{s['components']} components, {s['file_cycles']} file cycles"
    )
    for kind, n in s["edges_by_kind"].items():
        click.echo(f"  {kind:<24} {n}")
    if s["most_depended_on"]:
        click.echo("most depended on:")
        for row in s["most_depended_on"]:
            click.echo(f"  {row['dependents']:>5}  {row['path']}")


@command.command("deps")
@click.argument("file")
@db_option
@json_option
@click.option("--transitive", "-t", is_flag=True, help="Also what the dependencies depend on, recursively.")
def deps_cmd(file: str, db: Path | None, as_json: bool, transitive: bool) -> None:
    """List the files FILE references (path relative to the corpus root), with kind and line.

    Example: kb graph deps deploy/compose/docker-compose.yml --transitive
    """
    rows = open_kb(db).links(file, "deps", transitive=transitive)
    if as_json:
        emit_json({"path": file, "dependencies": rows})
        return
    for r in rows:
        via = f"  (via {r.via})" if r.via and r.depth > 1 else ""
        click.echo(f"{r.path}  {r.kinds}  line {r.line}{via}")
    click.echo(f"{len(rows)} dependencies", err=True)


@command.command("impact")
@click.argument("file")
@db_option
@json_option
def impact_cmd(file: str, db: Path | None, as_json: bool) -> None:
    """List every file that depends on FILE, directly (depth 1) or through others.

    Example: kb graph impact schemas/common.schema.json
    """
    rows = open_kb(db).links(file, "impact")
    if as_json:
        emit_json({"path": file, "dependents": rows})
        return
    for r in rows:
        how = f"{r.kind} at line {r.line}" if r.kind else f"via {r.via}"
        click.echo(f"{r.depth}  {r.path}  ({how})")
    click.echo(f"{len(rows)} dependents", err=True)


@command.command("export")
@db_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["graphml", "json", "dot"]),
    default="graphml",
    show_default=True,
    help="GraphML (Gephi, yEd), node-link JSON, or Graphviz DOT.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
def export_cmd(db: Path | None, fmt: str, output: Path | None) -> None:
    """Write the whole dependency graph for other tools.

    Example: kb graph export --format dot -o kb.dot && dot -Tsvg kb.dot > kb.svg
    """
    text = open_kb(db).export_graph(fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
