"""Issue 21: a file that says nothing about itself carries what its folder says it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.ingest.about import ABOUT_WORDS, about_for, chart_about, folder_abouts, readme_about
from kb.ingest.walk import walk_tree

CHART = (
    "apiVersion: v2\nname: ledger\ndescription: Double-entry bookkeeping service for merchant payouts\nversion: 1.2.0\n"
)
VALUES = "replicaCount: 2\nimage:\n  repository: ledger\n  tag: 1.2.0\n"


def test_readme_about_takes_headings_and_the_first_sentence_cleaned():
    text = (
        "# Billing [![build](https://ci.example/badge.svg)](https://ci.example)\n"
        "\n"
        "[![cov](https://x/y.svg)](https://x)\n"
        "<p align='center'><img src='logo.png'></p>\n"
        "## Overview\n"
        "### Third heading is not kept\n"
        "Handles **invoices** for the [payments](docs/payments.md) team, see https://wiki.example for more. More text.\n"
        "Second line of the same paragraph.\n"
        "\n"
        "Another paragraph.\n"
    )
    assert readme_about(text) == "Billing Overview Handles invoices for the payments team, see for more."


def test_readme_about_skips_code_fences_lists_and_colon_intros():
    text = "```\n# not a heading\n```\nInstall it with:\n- step one\nThe tool syncs configs. Then more.\n"
    assert readme_about(text) == "The tool syncs configs."


def test_abouts_are_cut_to_sixteen_words():
    long = " ".join(f"w{i}" for i in range(40))
    assert len(readme_about(f"# Title\n{long}.\n").split()) == ABOUT_WORDS
    assert len(chart_about(f"name: x\ndescription: {long}\n").split()) == ABOUT_WORDS


def test_chart_about_is_name_and_description_and_nothing_from_broken_yaml():
    assert chart_about(CHART) == "ledger Double-entry bookkeeping service for merchant payouts"
    assert chart_about("name: [unclosed\n") == ""
    assert chart_about("- a list\n- not a chart\n") == ""
    assert chart_about("name: a\n---\nname: b\n") == ""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    assert chart_about(bomb + "name: boom\n") == ""


def _abouts(root: Path) -> dict[str, str]:
    return folder_abouts(walk_tree(root).entries)


def test_a_chart_beats_a_readme_and_lookup_goes_one_folder_up(make_tree):
    root = make_tree(
        {
            "charts/ledger/Chart.yaml": CHART,
            "charts/ledger/README.md": "# Something else\nNot used.\n",
            "charts/ledger/values.yaml": VALUES,
            "charts/ledger/templates/deploy.yaml": "kind: Deployment\n",
            "charts/ledger/templates/sub/deep.yaml": "kind: Service\n",
            "svc/README": "# Search\nFull-text search over orders.\n",
            "svc/app.toml": "port = 1\n",
        }
    )
    abouts = _abouts(root)
    assert abouts == {
        "charts/ledger": "ledger Double-entry bookkeeping service for merchant payouts",
        "svc": "Search Full-text search over orders.",
    }
    assert about_for("charts/ledger/values.yaml", abouts) == abouts["charts/ledger"]
    assert about_for("charts/ledger/templates/deploy.yaml", abouts) == abouts["charts/ledger"]
    assert about_for("charts/ledger/templates/sub/deep.yaml", abouts) == ""
    assert about_for("charts/ledger/README.md", abouts) == ""
    assert about_for("svc/app.toml", abouts) == "Search Full-text search over orders."


def _chunks(cat, path: str) -> list[tuple[str, str]]:
    return cat.query("SELECT text, text_sha FROM chunks WHERE path = ? ORDER BY ordinal", [path])


def test_chunks_carry_the_folder_about_unless_the_file_has_its_own(make_tree, ingest):
    about = "ledger Double-entry bookkeeping service for merchant payouts"
    root = make_tree(
        {
            "charts/ledger/Chart.yaml": CHART,
            "charts/ledger/README.md": "# Ledger chart\nInstalls the ledger.\n",
            "charts/ledger/values.yaml": VALUES,
            "charts/ledger/values.schema.json": '{\n  "title": "Ledger values",\n  "type": "object"\n}\n',
            "charts/ledger/templates/deploy.yaml": "kind: Deployment\n",
            "charts/ledger/templates/sub/deep.yaml": "kind: Service\n",
        }
    )
    cat, _ = ingest(root)
    first_line = {p: _chunks(cat, p)[0][0].split("\n")[0] for (p,) in cat.query("SELECT DISTINCT path FROM chunks")}
    assert first_line["charts/ledger/values.yaml"].endswith(f"| {about}")
    assert first_line["charts/ledger/templates/deploy.yaml"].endswith(f"| {about}")
    assert about not in first_line["charts/ledger/templates/sub/deep.yaml"]
    assert about not in first_line["charts/ledger/README.md"]
    assert first_line["charts/ledger/values.schema.json"].endswith("| Ledger values")
    carried = cat.folder_abouts()
    assert carried["charts/ledger/values.yaml"] == about
    assert carried["charts/ledger/templates/sub/deep.yaml"] == ""
    assert "charts/ledger/README.md" not in carried and "charts/ledger/values.schema.json" not in carried


def test_folder_about_off_adds_nothing(make_tree, ingest, monkeypatch):
    from kb.ingest import chunk

    root = make_tree({"charts/ledger/Chart.yaml": CHART, "charts/ledger/values.yaml": VALUES})
    monkeypatch.setattr(chunk, "FOLDER_ABOUT", False)
    cat, _ = ingest(root)
    assert "bookkeeping" not in _chunks(cat, "charts/ledger/values.yaml")[0][0]


def test_an_edited_chart_description_rechunks_its_files_and_only_them(make_tree, ingest):
    root = make_tree(
        {
            "charts/ledger/Chart.yaml": CHART,
            "charts/ledger/values.yaml": VALUES,
            "charts/ledger/templates/deploy.yaml": "kind: Deployment\n",
            "charts/other/Chart.yaml": "name: other\ndescription: Something unrelated\n",
            "charts/other/values.yaml": "replicaCount: 1\n",
            "svc/app.yaml": "port: 8080\n",
        }
    )
    cat, first = ingest(root)
    before = {p: _chunks(cat, p) for p in ("charts/other/values.yaml", "svc/app.yaml")}
    run_of = dict(cat.query("SELECT path, run_id FROM files"))
    (root / "charts/ledger/Chart.yaml").write_text(CHART.replace("merchant payouts", "partner settlements"))
    cat, second = ingest(root)
    changed = {r["path"] for r in cat.run_changes(second.run_id)}
    # the chart itself (its bytes), its values and its template (their folder about)
    assert changed == {"charts/ledger/Chart.yaml", "charts/ledger/values.yaml", "charts/ledger/templates/deploy.yaml"}
    assert second.changed == 3 and second.unchanged == 3
    assert any("2 files chunked again" in n for n in second.notes)
    for p in ("charts/ledger/values.yaml", "charts/ledger/templates/deploy.yaml"):
        assert "partner settlements" in _chunks(cat, p)[0][0] and "merchant" not in _chunks(cat, p)[0][0]
    after = {p: _chunks(cat, p) for p in before}
    assert after == before
    now = dict(cat.query("SELECT path, run_id FROM files"))
    assert now["charts/other/values.yaml"] == run_of["charts/other/values.yaml"]
    # nothing changed: nothing is chunked again
    _, third = ingest(root)
    assert third.changed == 0 and third.added == 0 and not third.notes


def test_a_chart_added_or_removed_rechunks_the_files_below_it(make_tree, ingest):
    root = make_tree({"charts/ledger/values.yaml": VALUES, "svc/app.yaml": "port: 8080\n"})
    cat, _ = ingest(root)
    assert "bookkeeping" not in _chunks(cat, "charts/ledger/values.yaml")[0][0]
    (root / "charts/ledger/Chart.yaml").write_text(CHART)
    cat, run = ingest(root)
    assert "bookkeeping" in _chunks(cat, "charts/ledger/values.yaml")[0][0]
    assert {r["path"] for r in cat.run_changes(run.run_id)} == {"charts/ledger/Chart.yaml", "charts/ledger/values.yaml"}
    (root / "charts/ledger/Chart.yaml").unlink()
    cat, run = ingest(root)
    assert "bookkeeping" not in _chunks(cat, "charts/ledger/values.yaml")[0][0]
    assert {(r["path"], r["change"]) for r in cat.run_changes(run.run_id)} == {
        ("charts/ledger/Chart.yaml", "removed"),
        ("charts/ledger/values.yaml", "changed"),
    }


def test_a_kb_from_before_folder_abouts_rechunks_only_the_files_that_gain_one(make_tree, settings):
    """An old catalogue has no folder_about column: the migration says its chunks carry none, so
    the files under a folder that says something are chunked once more (Chart.yaml too: whether a
    file has an about of its own is known only once it is parsed; its chunks come out the same)."""
    from kb.catalogue import Catalogue
    from kb.ingest.pipeline import run_ingest

    root = make_tree({"charts/ledger/Chart.yaml": CHART, "charts/ledger/values.yaml": VALUES, "svc/app.yaml": "a: 1\n"})
    s = settings.replace(root=root)
    with Catalogue(s.db) as cat:
        run_ingest(cat, s)
        cat.con.execute("ALTER TABLE files DROP COLUMN folder_about")
        cat.con.execute("UPDATE chunks SET text = replace(text, ' | ledger Double-entry bookkeeping', '')")
        chart_chunks = _chunks(cat, "charts/ledger/Chart.yaml")
    with Catalogue(s.db) as cat:
        summary = run_ingest(cat, s)
        assert {r["path"] for r in cat.run_changes(summary.run_id)} == {
            "charts/ledger/Chart.yaml",
            "charts/ledger/values.yaml",
        }
        assert _chunks(cat, "charts/ledger/Chart.yaml") == chart_chunks
        assert run_ingest(cat, s).changed == 0
        assert "bookkeeping" in cat.query("SELECT text FROM chunks WHERE path = 'charts/ledger/values.yaml'")[0][0]


def test_an_edited_readme_sentence_reaches_the_kb_through_the_facade(tmp_path):
    from kb import KnowledgeBase

    tree = tmp_path / "tree"
    files = {
        "payments/README.md": "# Payments\nMoves money between merchants and banks.\n",
        "payments/config.yaml": "retries: 3\n",
        "search/config.yaml": "shards: 4\n",
    }
    for rel, text in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        sql = "SELECT path, text_sha FROM chunks ORDER BY path"
        before = dict(kb.sql_rows(sql)[1])
        (tree / "payments/README.md").write_text("# Payments\nSettles card refunds nightly.\n")
        summary = kb.ingest(tree)
        after = dict(kb.sql_rows(sql)[1])
        assert summary.changed == 2  # the README (its bytes) and config.yaml (its folder about)
        assert after["search/config.yaml"] == before["search/config.yaml"]
        assert after["payments/config.yaml"] != before["payments/config.yaml"]
        hits = kb.search_result("card refunds nightly", k=3, mode="keyword").hits
        assert "payments/config.yaml" in {h.path for h in hits}


@pytest.mark.model
def test_real_model_finds_a_values_file_by_what_its_chart_says(tmp_path):
    from kb import KnowledgeBase

    charts = {  # chart names say nothing: only the descriptions tell the charts apart
        "alpha": "Sends transactional emails such as password resets",
        "bravo": "Double-entry bookkeeping service for merchant payouts",
        "charlie": "Resizes uploaded product photos into thumbnails",
    }
    tree = tmp_path / "tree"
    for name, description in charts.items():
        d = tree / "charts" / name
        (d / "templates").mkdir(parents=True)
        (d / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\ndescription: {description}\nversion: 0.1.0\n")
        (d / "values.yaml").write_text("replicaCount: 2\nresources:\n  limits:\n    memory: 256Mi\n")
        (d / "templates" / "deployment.yaml").write_text("kind: Deployment\n")
    with KnowledgeBase.build(tree, db=tmp_path / "kb", workers=1) as kb:
        hits = kb.search_result("how much memory may the image resizing service use", k=9, mode="semantic").hits
        top = [h.path for h in hits if h.path.endswith("values.yaml")]
        assert top[0] == "charts/charlie/values.yaml", [h.path for h in hits]
