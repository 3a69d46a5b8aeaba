"""Shared fixtures: settings for a temporary KB, tree builders, the bundled sample."""

from __future__ import annotations

import os
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
    from ingest.pipeline import run_ingest
    from kb.catalogue import Catalogue

    opened: list[Catalogue] = []

    def run(root: Path, **overrides):
        s = settings.replace(root=root, **overrides)
        if not opened:
            opened.append(Catalogue(s.db))
        return opened[0], run_ingest(opened[0], s)

    yield run
    for c in opened:
        c.close()
