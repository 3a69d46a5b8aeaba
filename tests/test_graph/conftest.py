"""Fixtures for graph tests: fixture trees ingested into a temporary KB, then validated.

A fixture tree is a folder under ``fixtures/`` with a sibling ``<name>.expected.json`` that lists
every finding ``kb validate`` must report for it (and the settings to use). Adding a case adds files,
not code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "kb" / "sample"
SAMPLE_TRUTH = REPO / "kb" / "sample_truth.json"


def fixture_cases() -> list[str]:
    return sorted(p.name[: -len(".expected.json")] for p in FIXTURES.glob("*.expected.json"))


def expected(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.expected.json").read_text(encoding="utf-8"))


@pytest.fixture
def build_kb(tmp_path: Path):
    """build_kb(root, **settings) -> (Catalogue, Settings): ingest ``root`` (embed off) into a temp KB."""
    from kb.catalogue import Catalogue
    from kb.ingest.pipeline import run_ingest
    from kb.settings import Settings

    opened: list = []

    def build(root: Path, **overrides):
        n = len(opened)
        settings = Settings(db=tmp_path / f"kb{n}", embed=False, workers=1, root=Path(root)).replace(**overrides)
        cat = Catalogue(settings.db)
        opened.append(cat)
        run_ingest(cat, settings)
        return cat, settings

    yield build
    for c in opened:
        c.close()


@pytest.fixture
def tree(tmp_path: Path):
    """tree(files) -> root: write ``{relative path: text}`` under a fresh folder."""

    def make(files: dict[str, str], name: str = "tree") -> Path:
        root = tmp_path / name
        for rel, text in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, encoding="utf-8")
        return root

    return make


@pytest.fixture
def copy_fixture(tmp_path: Path):
    """copy_fixture(name) -> a writable copy of ``fixtures/<name>``."""

    def copy(name: str) -> Path:
        dst = tmp_path / "copy" / name
        shutil.copytree(FIXTURES / name, dst)
        return dst

    return copy


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory):
    """The bundled sample corpus, ingested and validated once per module: (Catalogue, Settings, findings)."""
    from kb.catalogue import Catalogue
    from kb.graph.rules import validate
    from kb.ingest.pipeline import run_ingest
    from kb.settings import Settings

    settings = Settings(db=tmp_path_factory.mktemp("sample") / "kb", embed=False, workers=1, root=SAMPLE)
    cat = Catalogue(settings.db)
    run_ingest(cat, settings)
    found = validate(cat, settings)
    yield cat, settings, found
    cat.close()
