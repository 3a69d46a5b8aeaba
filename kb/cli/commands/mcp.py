"""``kb mcp``: the KB as a Model Context Protocol server (stdio, or streamable HTTP with ``--http``)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from kb.cli import db_option, json_option, load_settings

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@click.command("mcp")
@db_option
@click.option("--model", default=None, help="Embedding model (default: the one configured; must match the KB's).")
@click.option(
    "--allow-ingest",
    is_flag=True,
    help="Open the KB writable and add the `ingest` tool (re-ingest the root incrementally).",
)
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="With --allow-ingest: the corpus root (default: $KB_ROOT or the root recorded in the KB).",
)
@click.option("--http", "http", is_flag=True, help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="With --http: interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="With --http: TCP port; 0 picks a free one (printed at startup).",
)
@click.option(
    "--max-chars",
    type=click.IntRange(2_000, 1_000_000),
    default=None,
    help="Budget of one tool answer, in characters (default 20,000); longer answers are cut and say so.",
)
@json_option
def command(
    db: Path | None,
    model: str | None,
    allow_ingest: bool,
    root: Path | None,
    http: bool,
    host: str,
    port: int,
    max_chars: int | None,
    as_json: bool,
) -> None:
    """Serve the KB to coding assistants over the Model Context Protocol.

    Tools: search, show_file, find_key, validate, findings, duplicates, drift, impact, dependencies
    and read-only sql (plus ingest with --allow-ingest); resources kb://about and kb://stats. Every
    answer cites path:line, is cut to --max-chars, and shows secrets only redacted. Speaks stdio
    (the assistant starts `kb mcp`); with --http, streamable HTTP on loopback, honouring
    KB_API_READ_KEY as a bearer token (--json prints one line {"url", "db"} once ready).

    Example: kb mcp --db /path/to/platform/.kb
    """
    from kb.api.mcp.server import MAX_CHARS, KBTools, create_server

    settings = load_settings(db=db, model=model, root=root)
    tools = KBTools(settings, allow_ingest=allow_ingest, max_chars=max_chars or MAX_CHARS)
    tools.preflight()  # a missing KB is a one-line error, not a broken server
    server = create_server(tools)
    import threading

    warm = threading.Thread(target=tools.warm, name="kb-mcp-warm", daemon=True)
    warm.start()
    if not http:
        server.run("stdio")
        _leave(warm)
        return
    _serve_http(server, settings, host, port, as_json)


def _leave(warm: Any) -> None:
    """The client closed stdin. If the model is still loading in the warm-up thread, end the
    process now: letting the interpreter tear down under a thread that is inside torch or ONNX
    Runtime aborts with "terminate called without an active exception" (exit 134)."""
    if warm.is_alive():
        import os

        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def _serve_http(server, settings, host: str, port: int, as_json: bool) -> None:
    import uvicorn

    from kb.api.mcp.server import require_bearer

    app = require_bearer(server.streamable_http_app(host=host), settings.api_read_key)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    sock = config.bind_socket()
    bound = sock.getsockname()
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{shown_host}:{bound[1]}/mcp"
    if host not in _LOOPBACK and not settings.api_read_key:
        click.echo(
            f"warning: serving {host} without a key: anyone who can reach it can read the KB. "
            "Set KB_API_READ_KEY to require a bearer token.",
            err=True,
        )

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                if as_json:
                    click.echo(json.dumps({"url": url, "db": str(settings.db)}))
                else:
                    click.echo(f"kb mcp serving {settings.db} at {url} (streamable HTTP)")
                sys.stdout.flush()

    _Server(config).run(sockets=[sock])
