"""What ``pip install kb`` puts in site-packages (issue 23): one top-level package, ``kb``.

The sources stay in the folders the layout names (``ingest/``, ``graph/``, ``api/``); the wheel
holds them as ``kb.ingest``, ``kb.graph`` and ``kb.api``, so kb never takes generic top-level names
that other projects install too. Built here from a copy of the source tree with setuptools' own
backend (no network, no build isolation), then imported from the wheel's files alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "kb", "ingest", "graph", "api")

pytestmark = pytest.mark.slow  # builds and unpacks a wheel (a few seconds)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        p = REPO / name
        if p.is_dir() and not p.is_symlink():
            shutil.copytree(p, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(p, src / name, follow_symlinks=False)
    out = tmp_path_factory.mktemp("dist")
    code = f"from setuptools import build_meta; print(build_meta.build_wheel({str(out)!r}))"
    run = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return out / run.stdout.strip().splitlines()[-1]


def test_the_wheel_installs_one_top_level_package_with_every_source_file(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"kb", wheel.name.split("-py3")[0] + ".dist-info"}
    for folder in ("ingest", "graph", "api"):
        sources = {f.relative_to(REPO).as_posix() for f in (REPO / folder).rglob("*.py")}
        assert sources and {f"kb/{s}" for s in sources} <= set(names), folder
    assert "kb/api/static/index.html" in names  # package data comes along
    assert any(n.startswith("kb/sample/") for n in names)


def test_the_installed_subpackages_import_by_their_kb_names_only(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = (
        "import importlib.util, kb.ingest.pipeline, kb.graph.rules, kb.api.app\n"
        "print(kb.ingest.pipeline.__file__)\n"
        "print([m for m in ('ingest', 'graph', 'api') if importlib.util.find_spec(m) is not None])\n"
    )
    # only the unpacked wheel on the path for kb (the project's own editable install maps just ``kb``)
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    where, top = run.stdout.strip().splitlines()[-2:]
    assert Path(where).is_relative_to(site / "kb" / "ingest")
    assert top == "[]"
