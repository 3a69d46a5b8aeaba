"""``kb drift``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kb.cli import db_option, emit_json, json_option, open_kb


@click.command("drift")
@click.option(
    "--effective",
    "env",
    metavar="ENV",
    help="Instead of drift, print each key's final value in ENV (base + ENV override, ${VAR} "
    "resolved) with the file:line it came from.",
)
@click.option(
    "--path", "path_glob", help="With --effective: only sibling groups with a file in this file, folder or glob."
)
@db_option
@json_option
def command(env: str | None, path_glob: str | None, db: Path | None, as_json: bool) -> None:
    """Compare sibling files that configure different environments (config/{base,staging,
    production}.*, values-*.yaml, .env.*, application-{env}.properties, *.prod.*): keys missing
    from some environments and keys whose values differ. The base file is the layer each
    environment is merged over, not an environment of its own.

    Example: kb drift --json; kb drift --effective production --path 'config/*'
    """
    kb = open_kb(db)
    if env:
        rows = kb.effective_values(env, path=path_glob)
        if as_json:
            emit_json({"env": env, "keys": rows})
            return
        group = None
        for r in rows:
            if r.group != group:
                group = r.group
                click.echo(click.style(f"{group}  ({env})", bold=True))
            extra = "".join(f"  ${{{v['name']}}} from {v['source']}" for v in r.variables)
            extra += f"  unresolved: {', '.join(r.unresolved)}" if r.unresolved else ""
            click.echo(f"    {r.key_path} = {_show(r.value)}    {r.source}{extra}")
        click.echo(f"{len(rows)} keys", err=True)
        return
    if as_json:
        emit_json({"groups": kb.drift(as_frame=False)})
        return
    groups = kb.located_drift()
    for g in groups:
        lines = {(x.path, x.key_path): x.line for x in g.locations}
        click.echo(click.style("  ".join(g.files), bold=True))
        for m in g.missing:
            have = [f"{p}:{lines[(p, m.key_path)]}" for p in g.files if (p, m.key_path) in lines]
            click.echo(f"    missing    {m.key_path}  in {', '.join(m.missing_in)}  (set in {', '.join(have)})")
        for d in g.differing:
            vals = "; ".join(
                f"{p}:{lines[(p, d.key_path)]}={_show(v)}"
                if (p, d.key_path) in lines
                else f"{p}={_show(v)} (inherited)"
                for p, v in d.values.items()
            )
            click.echo(f"    differing  {d.key_path}  {vals}")
    n_missing = sum(len(g.missing) for g in groups)
    n_diff = sum(len(g.differing) for g in groups)
    click.echo(f"{len(groups)} drifted groups: {n_missing} missing keys, {n_diff} differing keys", err=True)


def _show(value: object) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
