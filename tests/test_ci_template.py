"""The GitHub Actions template in examples/ci: it is a valid workflow by SchemaStore's schema, checked
with kb itself (ingest + `kb validate --schema-map`), and it does what the README says."""

from __future__ import annotations

import json
import shutil

import yaml
from click.testing import CliRunner

from kb.cli import cli
from tests.conftest import DEV_CORPUS, REPO

WORKFLOW = REPO / "examples" / "ci" / "kb-validate.yml"
SCHEMA = DEV_CORPUS / "schemastore" / "src" / "schemas" / "json" / "github-workflow.json"
MAP = ".github/workflows/*.yml=schemas/github-workflow.json"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_workflow_validates_against_schemastore_with_kb(tmp_path, monkeypatch):
    monkeypatch.setenv("KB_EMBED", "0")
    assert SCHEMA.is_file(), f"SchemaStore's github-workflow schema is expected at {SCHEMA}"
    root = tmp_path / "tree"
    (root / ".github" / "workflows").mkdir(parents=True)
    (root / "schemas").mkdir()
    shutil.copy(WORKFLOW, root / ".github" / "workflows" / "kb-validate.yml")
    shutil.copy(SCHEMA, root / "schemas" / "github-workflow.json")
    # a negative control: the same workflow with its runner and steps broken must fail the same check
    text = WORKFLOW.read_text()
    assert "    runs-on: ubuntu-latest\n" in text and "timeout-minutes: 30" in text
    broken = text.replace("    runs-on: ubuntu-latest\n", "").replace("timeout-minutes: 30", "timeout-minutes: soon")
    (root / ".github" / "workflows" / "broken.yml").write_text(broken)
    db = tmp_path / "kb"
    assert run("ingest", str(root), "--db", str(db), "-q", "--workers", "1").exit_code == 0
    r = run("validate", "--db", str(db), "--schema-map", MAP, "--json")
    found = json.loads(r.stdout)["findings"]
    ours = [f for f in found if f["path"] == ".github/workflows/kb-validate.yml"]
    assert ours == [], ours
    bad = [f for f in found if f["path"] == ".github/workflows/broken.yml"]
    assert bad and all(f["rule"] == "schema-violation" and f["target"] == "schemas/github-workflow.json" for f in bad)
    assert any("runs-on" in f["message"] for f in bad) and any(f["line"] == 31 for f in bad)
    assert "note:" not in r.stderr  # the schema was used whole (no remote $ref skipped)


def test_workflow_builds_validates_and_uploads_sarif():
    wf = yaml.safe_load(WORKFLOW.read_text())
    assert set(wf[True]) == {"pull_request", "push", "workflow_dispatch"}  # PyYAML reads the `on` key as True
    assert wf["permissions"]["security-events"] == "write"
    steps = wf["jobs"]["validate"]["steps"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "kb ingest . --db .kb --no-embed" in runs and "kb validate --db .kb --sarif" in runs and "> kb.sarif" in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif@"))
    assert upload["with"]["sarif_file"] == "kb.sarif" and upload["if"] == "always()"
    assert steps[-1]["if"] == "steps.validate.outputs.status != '0'"  # the job fails after the upload


def test_readme_shows_the_workflow_as_it_is():
    assert WORKFLOW.read_text() in (REPO / "README.md").read_text()
