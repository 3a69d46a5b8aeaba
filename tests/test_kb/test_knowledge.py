"""The Python API returns DataFrames over a real DuckDB catalogue."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from kb import KnowledgeBase
from kb.errors import BadRequestError, NotIndexedError, ReadOnlyError


@pytest.fixture
def kb(make_tree, tmp_path):
    root = make_tree(
        {
            "svc/config.yaml": "server:\n  port: 8080\n  timeout_ms: 500\n",
            "svc/app.toml": "[db]\npool_size = 10\n",
            "broken.json": '{"a": ',
        }
    )
    k = KnowledgeBase.build(root, db=tmp_path / "kb", embed=False, workers=1)
    yield k
    k.close()


def test_files_records_findings_sql_are_dataframes(kb):
    files = kb.files()
    assert isinstance(files, pd.DataFrame)
    assert list(files["path"]) == ["broken.json", "svc/app.toml", "svc/config.yaml"]
    assert list(kb.files(format="toml")["path"]) == ["svc/app.toml"]
    recs = kb.records("svc/*", key="%port%")
    assert recs[["path", "key_path", "value", "line"]].values.tolist() == [
        ["svc/config.yaml", "server.port", "8080", 2]
    ]
    f = kb.findings(rule="parse-error")
    assert f["path"].tolist() == ["broken.json"] and f["severity"].tolist() == ["error"]
    assert kb.sql("SELECT count(*) AS n FROM records")["n"][0] == 3
    assert kb.sql("SELECT path FROM files WHERE format = ?", ["toml"])["path"].tolist() == ["svc/app.toml"]
    with pytest.raises(ReadOnlyError, match="Only a SELECT"):  # a notebook cannot change the catalogue
        kb.sql("DELETE FROM files")
    with pytest.raises(BadRequestError, match="SQL error: .*nosuch"):
        kb.sql("SELECT * FROM nosuch")
    assert kb.sql("SELECT count(*) AS n FROM files")["n"][0] == 3
    assert kb.history()["added"].tolist() == [3]
    assert kb.stats()["files"] == 3


def test_reopen_read_only_and_missing_kb(kb, tmp_path):
    db = kb.settings.db
    kb.close()
    again = KnowledgeBase.open(db, read_only=True)
    assert again.settings.root is not None and len(again.files()) == 3
    again.close()
    with pytest.raises(NotIndexedError, match="kb ingest"):
        KnowledgeBase.open(tmp_path / "missing", read_only=True)


def test_graph_helpers_duplication_summary_and_read_only_validate(tmp_path):
    from kb.errors import ReadOnlyError

    k = KnowledgeBase.build(KnowledgeBase.sample_path(), db=tmp_path / "s", embed=False, workers=1)
    k.validate()
    imp = k.impact("features/seasonal-flags.json")
    assert "features/promo-flags.json" in set(imp["path"])
    deps = k.dependencies("features/checkout.json")
    assert len(deps) >= 1
    assert k.graph_stats()["files"] >= 150
    summary = k.duplication_summary()
    assert 0 < summary["duplication_ratio"] < 1
    db = k.settings.db
    k.close()
    ro = KnowledgeBase.open(db, read_only=True)
    with pytest.raises(ReadOnlyError, match="open the KB writable"):
        ro.validate()
    ro.close()


def test_find_key_check_and_effective(make_tree, tmp_path):
    root = make_tree(
        {
            "svc/config/base.yaml": "server:\n  ports: [80, 443]\n  Read_Timeout: 5s\ndocs: see [x](missing.md)\n",
            "svc/config/production.yaml": "server:\n  Read_Timeout: 9s\n",
            "docs/a.md": "# A\n\nSee [gone](gone.md).\n",
            "weird.json": '{"a_b": 1, "a%b": 2, "axb": 3}\n',
        },
        name="fk",
    )
    with KnowledgeBase.build(root, db=tmp_path / "fk-kb", embed=False, workers=1) as built:
        db = built.settings.db
    with KnowledgeBase.open(db, read_only=True) as kb:
        # case-insensitive glob; brackets literal; a bare name matches the last segments too
        assert kb.find_key("SERVER.PORTS[1]")["value"].tolist() == ["443"]
        assert kb.find_key("*timeout")[["path", "line"]].values.tolist() == [
            ["svc/config/base.yaml", 3],
            ["svc/config/production.yaml", 2],
        ]
        assert kb.find_key("read_timeout", path="svc/config/prod*")["value"].tolist() == ["9s"]
        assert kb.find_key("a_b")["key_path"].tolist() == ["a_b"]  # _ and % are literal
        assert kb.find_key("a?b")["key_path"].tolist() == ["a_b", "axb"]
        assert kb.find_key("*a%b*")["key_path"].tolist() == ['["a%b"]']  # a quoted key, % literal
        assert len(kb.find_key("*", limit=2, offset=1)) == 2
        # every rule, nothing stored, on a read-only KB
        found, notes = kb.check()
        assert {(f.rule, f.path, f.line) for f in found} == {("broken-reference", "docs/a.md", 3)} and notes == []
        assert kb.findings().empty
        eff = kb.effective("production", as_frame=False)
        assert {r["key_path"]: (r["value"], r["source"]) for r in eff}["server.Read_Timeout"] == (
            "9s",
            "svc/config/production.yaml:2",
        )
        assert list(kb.effective("production").columns)[:3] == ["group", "env", "key_path"]


def test_a_generation_that_left_the_chunks_alone_links_the_chunk_map(make_tree, tmp_path):
    from kb.index import chunk_map_path

    root = make_tree({"a.yaml": "server:\n  port: 8080\n", "b.env": "LOG_LEVEL=debug\n"})
    db = tmp_path / "kb"

    def current_map():
        head = json.loads((db / "HEAD.json").read_text())
        path = chunk_map_path(db, head["catalogue"])
        return path, path.stat().st_ino  # older generations' files go once no reader needs them

    k = KnowledgeBase.build(root, db=db, embed=False, workers=1)
    first, first_ino = current_map()
    k.ingest(embed=False)  # nothing changed: the same map, linked
    k.validate()  # validation writes findings, not chunks
    second, second_ino = current_map()
    assert second != first and second_ino == first_ino
    (root / "b.env").write_text("LOG_LEVEL=debug\nPORT_OFFSET=7\n")
    k.ingest(embed=False)  # a changed file: a new map that knows the new chunk
    third, third_ino = current_map()
    assert third != second and third_ino != second_ino
    assert k.search("PORT_OFFSET", mode="keyword", k=3)["path"].iloc[0] == "b.env"
    k.close()
