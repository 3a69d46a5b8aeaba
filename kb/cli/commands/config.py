"""``kb config``."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import click

from kb.cli import console, db_option, emit_json, json_option, load_settings

_URL_USERINFO = re.compile(r"(\w[\w+.\-]*://)(?:([^:@/\s]*):)?[^@/\s]*@")
# query parameters whose values are credentials (KB_CHROMA_URL=https://host/?token=...)
_SECRET_PARAM = re.compile(r"token|key|secret|pass|pwd|auth|sig|credential|session", re.IGNORECASE)


def redact_url(value: str) -> str:
    """A URL with its password and credential-like query values shown as ``***``."""
    out = _URL_USERINFO.sub(lambda m: m.group(1) + ("***" if m.group(2) is None else m.group(2) + ":***") + "@", value)
    try:
        parts = urlsplit(out)
    except ValueError:
        return out
    if not parts.query:
        return out
    query = [(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


@click.command("config")
@db_option
@json_option
def command(db, as_json: bool) -> None:
    """Show the settings in force, where each value comes from, and how to set it.

    Layers: defaults < [tool.kb] in ./pyproject.toml < KB_* environment variables < flags. Each
    line says which layer gave the value (default, pyproject.toml [tool.kb], env KB_NAME, flag).
    Secrets are never shown: API keys, and passwords or tokens inside URLs (KB_CHROMA_URL), print
    as ***. --json prints {"settings": {name: value}, "sources": {name: layer}}.

    Example: KB_MODEL=hash kb config --json
    """
    from kb.settings import Settings

    s = load_settings(db=db)
    sources = Settings.sources({"db": db})
    values = {
        k: (str(v) if v is not None and not isinstance(v, (int, float, bool, list)) else v)
        for k, v in s.model_dump().items()
    }
    for secret in ("api_key", "api_read_key"):
        if values.get(secret):
            values[secret] = "***"
    for k, v in values.items():  # a password or token inside a URL is not shown
        if isinstance(v, str) and "://" in v:
            values[k] = redact_url(v)
    if as_json:
        emit_json({"settings": values, "sources": sources})
        return
    from rich.markup import escape

    docs = Settings.documentation()
    con = console()
    for k, v in values.items():
        con.print(
            f"[bold]{k}[/] = {escape(repr(v))}   [cyan]{escape(sources[k])}[/]   "
            f"[dim](KB_{k.upper()}) {escape(docs.get(k, ''))}[/]"
        )
