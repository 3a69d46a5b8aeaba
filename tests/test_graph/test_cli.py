"""`kb validate` and `kb graph` through click: formats, exit codes, baseline, schema map."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kb.cli import cli
from tests.test_graph.conftest import FIXTURES


@pytest.fixture
def kbdir(build_kb):
    cat, settings = build_kb(FIXTURES / "planted")
    cat.close()
    return settings.db


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_validate_prints_path_line_severity_rule_message_and_exits_1(kbdir):
    r = run("validate", "--db", str(kbdir))
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert "configs/app.json:5  error  broken-reference  " in r.stdout
    assert all(line.count("  ") >= 3 for line in lines)
    assert "findings (" in r.stderr


def test_validate_json_includes_ingest_findings_and_baseline_hides_known_ones(kbdir, tmp_path):
    r = run("validate", "--db", str(kbdir), "--json")
    data = json.loads(r.stdout)
    rules = {f["rule"] for f in data["findings"]}
    assert {"broken-reference", "undefined-variable", "reference-cycle", "schema-violation"} <= rules
    assert set(data) == {"findings"}
    base = tmp_path / "baseline.json"
    base.write_text(r.stdout, encoding="utf-8")
    again = run("validate", "--db", str(kbdir), "--baseline", str(base), "--json")
    assert again.exit_code == 0 and json.loads(again.stdout) == {"findings": []}
    # a baseline ignores line moves: drop one finding from it and only that one comes back
    data["findings"] = [f for f in data["findings"] if f["rule"] != "reference-cycle"]
    for f in data["findings"]:
        f["line"] = (f["line"] or 0) + 100
    base.write_text(json.dumps(data), encoding="utf-8")
    third = run("validate", "--db", str(kbdir), "--baseline", str(base), "--json")
    assert {f["rule"] for f in json.loads(third.stdout)["findings"]} == {"reference-cycle"}
    assert third.exit_code == 1


def test_validate_sarif_is_sarif_2_1_0(kbdir):
    r = run("validate", "--db", str(kbdir), "--sarif")
    log = json.loads(r.stdout)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1
    run0 = log["runs"][0]
    ids = [rule["id"] for rule in run0["tool"]["driver"]["rules"]]
    assert {"broken-reference", "undefined-variable", "reference-cycle", "schema-violation", "orphan"} <= set(ids)
    res = run0["results"][0]
    assert res["ruleId"] == ids[res["ruleIndex"]]
    assert res["level"] in ("error", "warning", "note")
    assert res["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    assert res["partialFingerprints"]


def test_validate_schema_map_flag(tree, build_kb):
    root = tree({"schemas/svc.json": json.dumps({"type": "object", "required": ["port"]}), "svc/a.yaml": "name: a\n"})
    cat, settings = build_kb(root)
    cat.close()
    r = run("validate", "--db", str(settings.db), "--schema-map", "svc/*.yaml=schemas/svc.json")
    assert (
        r.exit_code == 1 and "svc/a.yaml:1  error  schema-violation  (document root): 'port' is a required" in r.stdout
    )
    bad = run("validate", "--db", str(settings.db), "--schema-map", "svc/{x}.yaml=schemas/{y}.json")
    assert bad.exit_code == 2 and "does not capture" in bad.stderr


def test_validate_without_kb_names_the_fix(tmp_path):
    r = run("validate", "--db", str(tmp_path / "none"))
    assert r.exit_code == 2 and "kb ingest" in r.stderr


def test_validate_rejects_json_and_sarif_together(kbdir):
    r = run("validate", "--db", str(kbdir), "--json", "--sarif")
    assert r.exit_code == 2


def test_graph_commands(kbdir, tmp_path):
    s = json.loads(run("graph", "stats", "--db", str(kbdir), "--json").stdout)
    assert s["files"] > 10 and s["edges"] > 5
    deps = json.loads(run("graph", "deps", "configs/app.json", "--db", str(kbdir), "--json").stdout)
    assert {d["path"] for d in deps["dependencies"]} == {"schemas/app.schema.json", "configs/extra.yaml"}
    imp = run("graph", "impact", "schemas/common.schema.json", "--db", str(kbdir))
    assert "schemas/app.schema.json" in imp.stdout and "configs/app.json" in imp.stdout
    out = tmp_path / "g.graphml"
    assert run("graph", "export", "--format", "graphml", "-o", str(out), "--db", str(kbdir)).exit_code == 0
    assert out.read_text().startswith("<?xml")
    missing = run("graph", "deps", "nope.json", "--db", str(kbdir))
    assert missing.exit_code == 2 and "relative to the corpus root" in missing.stderr


def test_help_texts_end_with_an_example():
    for args in (
        ["validate"],
        ["graph"],
        ["graph", "stats"],
        ["graph", "deps"],
        ["graph", "impact"],
        ["graph", "export"],
    ):
        r = run(*args, "--help")
        assert "Example:" in r.stdout, args


def test_sarif_validates_against_the_sarif_schema_when_available(kbdir):
    from pathlib import Path

    import jsonschema

    schema_file = Path(__file__).resolve().parents[3] / "shared/corpora/dev/schemastore/src/schemas/json/sarif.json"
    if not schema_file.is_file():
        pytest.skip("the dev corpus (with SchemaStore's sarif.json) is not next to the repository")
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    log = json.loads(run("validate", "--db", str(kbdir), "--sarif").stdout)
    errors = list(jsonschema.validators.validator_for(schema)(schema).iter_errors(log))
    assert not errors, [e.message for e in errors[:3]]


def test_validate_files_reports_only_those_files_but_checks_the_whole_tree(kbdir, tmp_path):
    r = run("validate", "--db", str(kbdir), "docs/guide.md", "--json")
    found = json.loads(r.stdout)["findings"]
    assert {f["path"] for f in found} == {"docs/guide.md"} and r.exit_code == 1
    assert {f["target"] for f in found} == {"docs/missing.md", "docs/other.md#no-such-heading"}
    # a folder selects what is under it; a clean file passes although the tree has errors
    r = run("validate", "--db", str(kbdir), "deploy/")
    assert r.exit_code == 1 and {ln.split(":")[0] for ln in r.stdout.splitlines()} == {"deploy/docker-compose.yml"}
    assert "only in the 1 given files" in r.stderr
    assert run("validate", "--db", str(kbdir), "docs/other.md").exit_code == 0
    # a path that selects no catalogued file passes (nothing in it is wrong) but says so
    r = run("validate", "--db", str(kbdir), "docs/nosuch.md")
    assert r.exit_code == 0 and "note: 'docs/nosuch.md' is no catalogued file or folder" in r.stderr
    # with a baseline only new errors in the given files fail
    base = tmp_path / "baseline.json"
    base.write_text(run("validate", "--db", str(kbdir), "--json").stdout, encoding="utf-8")
    assert run("validate", "--db", str(kbdir), "--baseline", str(base), "docs/guide.md").exit_code == 0


def test_validate_ingest_refreshes_the_tree_first_and_maps_disk_paths(tree, tmp_path, monkeypatch):
    root = tree({"docs/index.md": "# Index\n\nSee [setup](setup.md).\n", "docs/setup.md": "# Setup\n"})
    db = tmp_path / "fresh-kb"
    monkeypatch.chdir(root)
    r = run("validate", "--db", str(db), "--ingest", ".", "docs/index.md")
    assert r.exit_code == 0 and "ingested .: 2 files (2 added" in r.stderr
    (root / "docs" / "setup.md").unlink()
    r = run("validate", "--db", str(db), "--ingest", str(root), str(root / "docs" / "index.md"))
    assert r.exit_code == 1 and "docs/index.md:3  error  broken-reference" in r.stdout
    assert "1 removed" in r.stderr
