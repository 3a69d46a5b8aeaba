"""The analyst notebooks: stored without outputs, and each runs top to bottom without an error.

Each notebook is executed with nbclient in a fresh kernel. The kernel is this test process's own
interpreter (``sys.executable``), through a ``python3`` kernelspec written into a temporary
``JUPYTER_PATH`` directory, so a ``python3`` kernel installed elsewhere on the machine is never
picked up. With ``KB_DIR = None`` every notebook builds its own KB from the bundled sample; the
catalogue notebooks also run once more with ``KB_DIR`` set to an existing KB, the parameter
replaced in the tagged cell as papermill would.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbclient  # the dev extra brings nbclient, nbformat, ipykernel and matplotlib
import nbformat
import pytest

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT = 180  # seconds per cell; the slowest cell builds the sample KB with the real model


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _run(nb, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp: Path) -> None:
    """Execute ``nb`` in place in a fresh kernel; fail on the first error, a foreign interpreter,
    or anything the kernel left in its temporary folder ``tmp`` after it shut down."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TMPDIR", str(tmp))  # the kernel's tempfile folder (this process's is cached)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in Jupyter
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    # a last cell reports the kernel's interpreter: it must be this one (the venv's)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable, end='')"))
    client.execute()  # raises CellExecutionError, naming the cell and the traceback, on the first error
    probe = nb.cells.pop()
    assert probe.outputs and probe.outputs[0].get("text") == sys.executable
    # the kernel exited on its own and ran atexit: a killed one leaves the KB it built behind, and
    # multiprocessing's pymp-* folder (a library's session marker file may stay)
    assert sorted(p.name for p in tmp.iterdir() if p.is_dir()) == []


def _set_parameters(nb, **values: str) -> None:
    """Give parameters new values in the tagged cell, as papermill would."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in values.items():
        cell.source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", cell.source, flags=re.M)
        assert n == 1, f"no parameter {name} in {cell.source!r}"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for the kernel: a JUPYTER_PATH whose ``python3`` kernel is this interpreter."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec_dir = jupyter / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (kb tests)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return {"JUPYTER_PATH": str(jupyter), "HF_HUB_OFFLINE": "1"}


def test_there_are_four_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_catalogue.ipynb",
        "02_search.ipynb",
        "03_graph.ipynb",
        "04_duplicates_and_drift.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has outputs: clear them before committing"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state in its metadata"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_has_one_parameters_cell_first(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one code cell must be tagged 'parameters'"
    assert tagged[0] is code[0], f"{path.name}: the parameters cell must be the first code cell"
    assert "KB_DIR = None" in tagged[0].source


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, marks=pytest.mark.model) if p.stem == "02_search" else p for p in NOTEBOOKS],
    ids=_ids(NOTEBOOKS),
)
def test_notebook_runs_top_to_bottom(
    path: Path, kernel_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """KB_DIR = None: the notebook builds a KB from the bundled sample in a temporary folder, runs
    every cell, and the folder is gone when the kernel shuts down."""
    _run(nbformat.read(path, as_version=4), kernel_env, monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def sample_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample ingested without embeddings (what 01, 03 and 04 need), closed."""
    from kb import KnowledgeBase

    db = tmp_path_factory.mktemp("kb") / "sample-kb"
    with KnowledgeBase.build(REPO / "kb" / "sample", db, embed=False, workers=1):
        pass
    return db


@pytest.mark.parametrize(
    ("name", "extra"),
    [("01_catalogue", {}), ("03_graph", {"FOCUS": "features/checkout.json"}), ("04_duplicates_and_drift", {})],
)
def test_notebook_opens_an_existing_kb(
    name: str,
    extra: dict[str, str],
    sample_kb: Path,
    kernel_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    """KB_DIR = a path: the notebook opens that KB (read-only where it only reads) instead of building."""
    nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
    _set_parameters(nb, KB_DIR=str(sample_kb), **extra)
    _run(nb, kernel_env, monkeypatch, tmp_path)
    assert str(sample_kb) in "".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
