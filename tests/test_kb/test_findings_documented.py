"""A secret a configuration holds and its documentation repeats is one finding (issue 24).

A Helm chart's README (and its ``README.md.gotmpl``) shows the chart's default password; each copy
was an error of its own, three findings for one value. Now the configuration's finding names the
documentation copies and they are not reported again, in every listing and count; a secret found
only in documentation is still reported where it is."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from kb import KnowledgeBase

VALUES = "minio:\n  rootUser: tempo\n  rootPassword: Zp4kQ9mWx2\n"
README = (
    "# Tempo\n\nStorage, as the chart's defaults set it:\n\n"
    "```yaml\nstorage:\n  s3:\n    access_key: tempo\n    secret_key: Zp4kQ9mWx2\n```\n"
)
TABLE = (  # helm-docs: the default as JSON under Default
    "| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n"
    '| minio.rootPassword | string | `"Zp4kQ9mWx2"` |  |\n'
)
OTHER = "# Other\n\n```yaml\nadminPassword: Hq7rT2wLx9\n```\n"


def _tree(root: Path) -> Path:
    chart = root / "charts" / "tempo"
    chart.mkdir(parents=True)
    (chart / "values.yaml").write_text(VALUES)
    (chart / "README.md").write_text(README)
    (chart / "values.md").write_text(TABLE)
    (chart / "README.md.gotmpl").write_text(README)
    (root / "docs").mkdir()
    (root / "docs" / "other.md").write_text(OTHER)
    # another chart with the same default: its README is not this chart's documentation
    (root / "charts" / "loki").mkdir()
    (root / "charts" / "loki" / "README.md").write_text(README)
    return root


def test_documentation_copies_are_named_in_the_configuration_finding(tmp_path: Path):
    tree = _tree(tmp_path / "tree")
    kb = KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1)
    try:
        page = kb.findings_page(rule="plaintext-secret", limit=None)
        where = sorted((f.path, f.line) for f in page.findings)
        assert where == [("charts/loki/README.md", 9), ("charts/tempo/values.yaml", 3), ("docs/other.md", 4)], where
        assert page.total == 3
        config = next(f for f in page.findings if f.path.endswith("values.yaml"))
        assert (
            "charts/tempo/README.md:9, charts/tempo/README.md.gotmpl:9, charts/tempo/values.md:3 (documentation)"
            in config.message
        ), config.message
        assert "Zp4kQ9mWx2" not in config.message
        # every count agrees with the listing
        assert kb.stats()["findings_by_rule"].get("plaintext-secret") == 3
        assert kb.findings_page(path="charts/tempo/README.md", limit=None).total == 0
        assert kb.findings_page(path="docs/other.md", limit=None).total == 1  # only in documentation: its own
        total = kb.findings_page(limit=None).total
        assert kb.counts()["findings"] == total == kb.stats()["findings"]
        # the stored rows are untouched: change the configuration and the copies are findings again
        (tree / "charts" / "tempo" / "values.yaml").write_text("minio:\n  rootUser: tempo\n")
        kb.ingest()
        where = sorted((f.path, f.line) for f in kb.findings_page(rule="plaintext-secret", limit=None).findings)
        assert where == [
            ("charts/loki/README.md", 9),
            ("charts/tempo/README.md", 9),
            ("charts/tempo/README.md.gotmpl", 9),
            ("charts/tempo/values.md", 3),
            ("docs/other.md", 4),
        ]
    finally:
        kb.close()


def test_the_cli_lists_one_finding_for_the_chart_default(tmp_path: Path):
    import json

    from kb.cli import cli

    tree = _tree(tmp_path / "tree")
    runner = CliRunner()
    db = str(tmp_path / "kb")
    assert runner.invoke(cli, ["ingest", str(tree), "--db", db, "--no-embed"], env={"KB_MODEL": "hash"}).exit_code == 0
    out = runner.invoke(cli, ["findings", "--db", db, "--json", "--rule", "plaintext-secret"])
    assert out.exit_code == 0, out.output
    found = json.loads(out.output)["findings"]
    assert [f["path"] for f in found] == ["charts/loki/README.md", "charts/tempo/values.yaml", "docs/other.md"]


def test_many_documentation_copies_are_counted_past_the_first_three(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "chart").mkdir(parents=True)
    (tree / "chart" / "values.yaml").write_text(VALUES)
    for i in range(5):
        (tree / f"page{i}.md").write_text(README)  # the documentation of the folder above
    kb = KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1)
    try:
        (config,) = kb.findings_page(rule="plaintext-secret", limit=None).findings
        assert config.path == "chart/values.yaml"
        assert config.message.endswith(
            "written in page0.md:9, page1.md:9, page2.md:9 and 2 more places (documentation): change it there too"
        ), config.message
    finally:
        kb.close()


def test_a_baseline_and_sarif_fingerprints_hold_when_the_documentation_moves(tmp_path: Path):
    """The list of documentation copies moves with them (a README gains lines): the finding is the
    same one for ``--baseline`` and for SARIF's partialFingerprints."""
    import json

    from kb.cli import cli

    tree = _tree(tmp_path / "tree")
    db = str(tmp_path / "kb")
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(tree), "--db", db, "--no-embed"], env={"KB_MODEL": "hash"}).exit_code == 0
    first = runner.invoke(cli, ["validate", "--db", db, "--json"])
    (tmp_path / "base.json").write_text(first.output)
    sarif_before = json.loads(runner.invoke(cli, ["validate", "--db", db, "--sarif"]).output)
    readme = tree / "charts" / "tempo" / "README.md"
    readme.write_text("# Tempo\n\nA new introduction.\n\n" + readme.read_text())
    assert runner.invoke(cli, ["ingest", str(tree), "--db", db, "--no-embed"], env={"KB_MODEL": "hash"}).exit_code == 0
    again = json.loads(runner.invoke(cli, ["validate", "--db", db, "--json"]).output)["findings"]
    config = next(f for f in again if f["path"] == "charts/tempo/values.yaml")
    assert "charts/tempo/README.md:13" in config["message"]  # the copy moved 4 lines down
    assert config["message"] not in {f["message"] for f in json.loads(first.output)["findings"]}
    out = runner.invoke(cli, ["validate", "--db", db, "--baseline", str(tmp_path / "base.json")])
    assert out.exit_code == 0, out.output
    assert "0 findings (0 errors, 0 warnings, 0 info)" in out.output, out.output

    def prints(sarif):
        return {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["partialFingerprints"]["kbFinding/v1"]
            for r in sarif["runs"][0]["results"]
            if r["ruleId"] == "plaintext-secret"
        }

    sarif_after = json.loads(runner.invoke(cli, ["validate", "--db", db, "--sarif"]).output)
    assert prints(sarif_before) and prints(sarif_after) == prints(sarif_before)


def test_the_ingest_rules_are_the_readmes_and_an_unknown_rule_is_refused(tmp_path: Path):
    """``kb findings --rule`` checks the name against the rules kb has (a typo exits 2, never a
    clean 0 under ``--fail-on error``); the list is the README's table of ingest findings."""
    import re

    from kb.cli import cli
    from kb.findings import INGEST_RULES

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("### Findings recorded at ingest", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.M)) == sorted(INGEST_RULES)
    db = tmp_path / "kb"
    with KnowledgeBase.build(_tree(tmp_path / "tree"), db=db, embed=False, workers=1):
        pass
    runner = CliRunner()
    typo = runner.invoke(cli, ["findings", "--db", str(db), "--rule", "plaintext-secrets", "--fail-on", "error"])
    assert typo.exit_code == 2 and "Did you mean plaintext-secret?" in typo.output
    right = runner.invoke(cli, ["findings", "--db", str(db), "--rule", "plaintext-secret", "--fail-on", "error"])
    assert right.exit_code == 1 and "plaintext-secret" in right.output
