"""Shared fixtures: settings for a temporary KB, tree builders, the bundled sample."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "kb" / "sample"
DEV_CORPUS = REPO.parent / "shared" / "corpora" / "dev"


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path -> text or bytes) under ``root``."""
    for rel, content in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")
    return root


@pytest.fixture
def make_tree(tmp_path: Path):
    def make(files: dict[str, str | bytes], name: str = "tree") -> Path:
        return write_tree(tmp_path / name, files)

    return make


@pytest.fixture
def settings(tmp_path: Path):
    """Catalogue-only settings for a KB in a temporary folder (no embedding)."""
    from kb.settings import Settings

    return Settings(db=tmp_path / "kbdir", embed=False, workers=1)


@pytest.fixture
def ingest(settings):
    """ingest(root, **overrides) -> (Catalogue, RunSummary); the catalogue is closed at teardown."""
    from kb.catalogue import Catalogue
    from kb.ingest.pipeline import run_ingest

    opened: list[Catalogue] = []

    def run(root: Path, **overrides):
        s = settings.replace(root=root, **overrides)
        if not opened:
            opened.append(Catalogue(s.db))
        return opened[0], run_ingest(opened[0], s)

    yield run
    for c in opened:
        c.close()


# A real Chroma server on loopback (KB_CHROMA_URL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chroma_cli() -> str | None:
    exe = Path(sys.executable).parent / "chroma"
    return str(exe) if exe.exists() else shutil.which("chroma")


@pytest.fixture
def chroma_server(tmp_path):
    """A real Chroma server (`chroma run`, shipped with chromadb) on a loopback port; its URL."""
    cli = _chroma_cli()
    if cli is None:
        pytest.skip("the `chroma` CLI is not installed")
    port = free_port()
    log = (tmp_path / "chroma.log").open("wb")
    proc = subprocess.Popen(
        [cli, "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma run exited early: {(tmp_path / 'chroma.log').read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("chroma run did not answer its heartbeat within 60 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
