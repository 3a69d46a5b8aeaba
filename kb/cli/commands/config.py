"""``kb config``."""

from __future__ import annotations

import re

import click

from kb.cli import console, db_option, emit_json, json_option, load_settings

_URL_USERINFO = re.compile(r"(\w[\w+.\-]*://)(?:([^:@/\s]*):)?[^@/\s]*@")


@click.command("config")
@db_option
@json_option
def command(db, as_json: bool) -> None:
    """Show the settings in force and where each can be set.

    Layers: defaults < [tool.kb] in ./pyproject.toml < KB_* environment variables < flags.

    Example: KB_MODEL=hash kb config --json
    """
    from kb.settings import Settings

    s = load_settings(db=db)
    values = {
        k: (str(v) if v is not None and not isinstance(v, (int, float, bool, list)) else v)
        for k, v in s.model_dump().items()
    }
    for secret in ("api_key", "api_read_key"):
        if values.get(secret):
            values[secret] = "***"
    for k, v in values.items():  # a password inside a URL (KB_CHROMA_URL=http://user:pw@host) is not shown
        if isinstance(v, str) and "://" in v and "@" in v:
            values[k] = _URL_USERINFO.sub(
                lambda m: m.group(1) + ("***" if m.group(2) is None else m.group(2) + ":***") + "@", v
            )
    if as_json:
        emit_json(values)
        return
    docs = Settings.documentation()
    con = console()
    for k, v in values.items():
        con.print(f"[bold]{k}[/] = {v!r}   [dim](KB_{k.upper()}) {docs.get(k, '')}[/]")
