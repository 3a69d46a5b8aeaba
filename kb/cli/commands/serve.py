"""``kb serve``: the HTTP API and the search page (uvicorn around ``kb.api.app.create_app``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kb.cli import db_option, json_option, load_settings


@click.command("serve")
@db_option
@click.option(
    "--root",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    default=None,
    help="Corpus root to re-ingest (default: $KB_ROOT or the root recorded in the KB).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface to listen on. On a loopback address only requests for localhost/127.0.0.1/::1 are "
    "answered (a DNS-rebinding page gets a 400); on 0.0.0.0 any Host header is.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    help="Another Host header name to answer (repeatable), e.g. kb.internal.example.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="TCP port; 0 picks a free one (printed at startup).",
)
@click.option("--watch", is_flag=True, help="Re-ingest files saved under the root (incremental, within seconds).")
@click.option("--model", default=None, help="Embedding model (default: the one configured; must match the KB's).")
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="uvicorn's log level.",
)
@json_option
def command(
    db: Path | None,
    root: Path | None,
    host: str,
    allow_hosts: tuple[str, ...],
    port: int,
    watch: bool,
    model: str | None,
    log_level: str,
    as_json: bool,
) -> None:
    """Serve the KB over HTTP: JSON endpoints, OpenAPI at /schema, a search page at /.

    The model and the stores are opened once at startup. Reads are open unless KB_API_READ_KEY is
    set; POST /ingest needs KB_API_KEY as a bearer token. With --watch, saved files are re-ingested
    and searches see them within about two seconds. Once the server is ready it prints its URL
    (with --json: one JSON line with url, db, root, watch and writes).

    Example: KB_API_KEY=s3cret kb serve --db .kb --root ./platform --watch --port 8000
    """
    import uvicorn

    from kb.api.app import allowed_hosts_for, create_app

    settings = load_settings(db=db, root=root, model=model)
    app = create_app(settings, watch=watch, allowed_hosts=allowed_hosts_for(host, allow_hosts))
    service = app.state.service
    service.preflight()  # a missing KB is a one-line error here, not a startup traceback

    from kb.api.http_protocol import protocol_class

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10, http=protocol_class()
    )  # a malformed request line is a JSON 400 too
    try:
        sock = config.bind_socket()  # on failure uvicorn logs why and exits 3 ("KB damaged" in kb's codes)
    except SystemExit:
        click.echo(
            f"Error: cannot listen on {host}:{port} (the reason is above). Another process may hold the "
            "port, or the host is not an address of this machine: give another --port (0 picks a free "
            "one) or --host.",
            err=True,
        )
        sys.exit(2)
    bound = sock.getsockname()
    shown_host = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{shown_host}:{bound[1]}"

    class _Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                s = service.settings
                if as_json:
                    click.echo(
                        json.dumps(
                            {
                                "url": url,
                                "db": str(s.db),
                                "root": str(s.root) if s.root else None,
                                "watch": watch,
                                "writes": service.writable,
                            }
                        ),
                        nl=True,
                    )
                else:
                    click.echo(f"kb serving {s.db} at {url}  (search page {url}/, API docs {url}/schema/swagger)")

    _Server(config).run(sockets=[sock])
