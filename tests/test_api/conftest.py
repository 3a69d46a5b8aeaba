"""Fixtures for the HTTP API: a small tree, a KB built from it with the hash embedder, test clients
(Litestar's ``TestClient``) and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree

XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'

TREE: dict[str, str] = {
    "services/payments/config/base.yaml": (
        "service: payments\n"
        "fraud:\n"
        "  review_threshold: 0.85\n"
        "  queue: fraud-review\n"
        "database:\n"
        "  url: ${DATABASE_URL}\n"
        "  pool_size: 10\n"
    ),
    "services/payments/config/production.yaml": (
        "service: payments\nfraud:\n  review_threshold: 0.95\ndatabase:\n  pool_size: 50\n"
    ),
    "services/payments/.env": "DATABASE_URL=postgres://db.internal:5432/payments\nLOG_LEVEL=info\n",
    "services/orders/config/base.yaml": (
        "service: orders\n"
        "retry:\n"
        "  attempts: 5\n"
        "  backoff_ms: 250\n"
        "logging:\n"
        "  level: info\n"
        "  format: json\n"
        "  sink: stdout\n"
        "  sample_rate: 1\n"
        "  redact: true\n"
    ),
    "services/billing/config/base.yaml": (
        "service: billing\nlogging:\n  level: info\n  format: json\n  sink: stdout\n  sample_rate: 1\n  redact: true\n"
    ),
    "docs/fraud.md": (
        "# Fraud review\n\n"
        "Payments above the review threshold are held for a person to check.\n"
        "See [the payments config](../services/payments/config/base.yaml).\n"
    ),
    "docs/untrusted.md": f"# Untrusted snippet\n\nzebraquokka marker {XSS}\n",
    "deploy/compose.yml": (
        "services:\n"
        "  payments:\n"
        "    image: acme/payments:1.4\n"
        "    env_file: ../services/payments/.env\n"
        "    depends_on: [db]\n"
        "  db:\n"
        "    image: postgres:16\n"
    ),
    "broken.json": '{"a": 1,, }\n',
    "legacy/aws.ini": "[billing]\naws_access_key_id = AKIAIOSFODNN7EXAMPLQ\nregion = eu-west-1\n",
    "copies/one.json": '{"name": "same", "size": 3}\n',
    "copies/two.json": '{"name": "same", "size": 3}\n',
    ".kbignore": "ignored/\n",
    "ignored/on-disk-only.yaml": "marker: ondisk-only-marker\n",
}


def build_kb(root: Path, db: Path, **settings: Any):
    """Ingest ``root`` into ``db`` with the hash embedder; return the Settings the API should use."""
    from kb.knowledge import KnowledgeBase
    from kb.settings import Settings

    kb = KnowledgeBase.build(root, db=db, model="hash", workers=1)
    kb.close()
    return Settings(db=db, root=root, model="hash", workers=1, **settings)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(root, db) of a KB built once per session; copy it before writing to it."""
    base = tmp_path_factory.mktemp("api_kb")
    root = write_tree(base / "tree", TREE)
    db = base / "kb"
    build_kb(root, db)
    return root, db


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, Path]:
    """(root, db) of a KB of its own that a test may change and re-ingest (a copy would record
    another root, and the next ingest would start over)."""
    root = write_tree(tmp_path / "tree", TREE)
    db = tmp_path / "kb"
    build_kb(root, db)
    return root, db


@pytest.fixture
def make_settings(built):
    def make(**overrides: Any):
        from kb.settings import Settings

        root, db = built
        values: dict[str, Any] = {"db": db, "root": root, "model": "hash", "workers": 1}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def make_client(make_settings):
    """make_client(**settings) -> a started TestClient (lifespan run); closed at teardown."""
    from litestar.testing import TestClient

    from kb.api.app import create_app

    opened: list[Any] = []

    def make(*, watch: bool = False, **overrides: Any):
        app = create_app(make_settings(**overrides), watch=watch)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for c in reversed(opened):
        c.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


class LiveServer:
    """uvicorn serving ``app`` in a thread on a loopback socket bound to a free port."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture
def live_server() -> Iterator[Callable[..., LiveServer]]:
    """live_server(app) -> a started LiveServer; stopped at teardown."""
    running: list[LiveServer] = []

    def start(app: Any) -> LiveServer:
        srv = LiveServer(app).__enter__()
        running.append(srv)
        return srv

    yield start
    for srv in reversed(running):
        srv.__exit__(None, None, None)
