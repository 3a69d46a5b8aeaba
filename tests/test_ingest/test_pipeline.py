"""The ingest pipeline end to end over hostile input: every case becomes a finding, the run goes on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.conftest import write_tree

GOOD = {"ok/app.yaml": "service:\n  name: api\n  port: 8080\n", "ok/app.json": '{"a": {"b": [1, 2]}}'}


def findings(cat, rule=None):
    sql = "SELECT rule, severity, path, line, message FROM findings"
    rows = cat.query_dicts(sql + (" WHERE rule = ?" if rule else ""), [rule] if rule else [])
    return {r["path"]: r for r in rows}


def assert_good_files_catalogued(cat):
    n = cat.query("SELECT count(*) FROM records WHERE path IN ('ok/app.yaml', 'ok/app.json')")[0][0]
    assert n == 4  # the rest of the run is not lost


@pytest.mark.parametrize(
    "name,content,line",
    [
        ("broken.json", '{\n  "a": 1,\n  "b": \n}\n', 4),
        ("broken.yaml", "a:\n  b: 1\n c: 2\n", 3),
        ("broken.toml", "[a]\nx = 1\ny = \n", 3),
    ],
)
def test_broken_syntax_is_a_parse_error_with_its_line(make_tree, ingest, name, content, line):
    cat, summary = ingest(make_tree({**GOOD, name: content}))
    f = findings(cat, "parse-error")[name]
    assert f["severity"] == "error" and f["line"] == line
    assert cat.file_row(name)["status"] == "error"
    assert_good_files_catalogued(cat)
    assert summary.findings_by_rule["parse-error"] == 1


def test_binary_file_named_json_is_skipped_with_a_finding(make_tree, ingest):
    cat, _ = ingest(make_tree({**GOOD, "image.json": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))}))
    f = findings(cat)["image.json"]
    assert f["rule"] == "binary-file" and "NUL" in f["message"]
    assert cat.file_row("image.json")["status"] == "skipped"
    assert_good_files_catalogued(cat)


def test_non_utf8_text_is_decoded_with_replacement_and_a_finding(make_tree, ingest):
    cat, _ = ingest(make_tree({**GOOD, "latin.yaml": "name: ok\ncity: Z\xfcrich\n".encode("latin-1")}))
    f = findings(cat)["latin.yaml"]
    assert f["rule"] == "non-utf8" and f["line"] == 2
    values = dict(cat.query("SELECT key_path, value FROM records WHERE path = 'latin.yaml'"))
    assert values == {"name": "ok", "city": "Z\ufffdrich"}


def test_empty_file_is_catalogued_with_an_info_finding(make_tree, ingest):
    cat, _ = ingest(make_tree({**GOOD, "empty.json": "", "blank.yaml": "  \n\n"}))
    assert findings(cat)["empty.json"]["rule"] == "empty-file"
    assert findings(cat)["blank.yaml"]["severity"] == "info"
    assert cat.file_row("empty.json")["status"] == "ok"


def test_files_empty_by_convention_are_no_finding(make_tree, ingest):
    """A ``.gitkeep``, a package's ``__init__.py``, an empty stylesheet or script, a Helm chart's
    chart-testing values (``ci/default-values.yaml``: install with the defaults) and its emptied
    ``templates/NOTES.txt``: empty on purpose."""
    empty = {
        "logs/.gitkeep": "",
        "app/__init__.py": "",
        "src/app.component.css": "",
        "wwwroot/site.min.js": "",
        "charts/promtail/ci/default-values.yaml": "",
        "charts/promtail/templates/NOTES.txt": "",
    }
    cat, _ = ingest(make_tree({**GOOD, **empty, "settings.toml": "", "charts/promtail/values.yaml": ""}))
    found = findings(cat)
    assert not set(empty) & set(found)
    assert found["settings.toml"]["rule"] == "empty-file"
    assert found["charts/promtail/values.yaml"]["rule"] == "empty-file"  # a chart's own values are not
    assert all(cat.file_row(p)["status"] == "ok" for p in empty)


def test_json_nested_20000_levels_is_a_parse_error_not_a_crash(make_tree, ingest):
    deep = "[" * 20000 + "]" * 20000
    t0 = time.perf_counter()
    cat, _ = ingest(make_tree({**GOOD, "deep.json": deep, "deep.yaml": "a: " + "[" * 20000 + "]" * 20000}))
    assert time.perf_counter() - t0 < 30
    for name in ("deep.json", "deep.yaml"):
        f = findings(cat)[name]
        assert f["rule"] == "parse-error" and ("deep" in f["message"] or "nesting" in f["message"]), f
    assert_good_files_catalogued(cat)


BOMB = """a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_yaml_alias_bomb_is_capped_in_time_and_memory(make_tree, ingest):
    import tracemalloc

    root = make_tree({**GOOD, "bomb.yaml": BOMB})
    tracemalloc.start()
    t0 = time.perf_counter()
    cat, _ = ingest(root)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 20
    assert peak < 100 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"
    f = findings(cat)["bomb.yaml"]
    assert f["rule"] == "parse-error" and "alias" in f["message"].lower()
    assert cat.query("SELECT count(*) FROM records WHERE path = 'bomb.yaml'")[0][0] < 200_001
    assert_good_files_catalogued(cat)


def test_a_200_mb_file_is_skipped_without_reading_it(make_tree, ingest):
    import psutil

    root = make_tree(GOOD)
    with open(root / "huge.json", "wb") as fh:  # sparse: costs no disk
        fh.truncate(200 * 1024 * 1024)
    rss0 = psutil.Process().memory_info().rss
    cat, _ = ingest(root)
    assert psutil.Process().memory_info().rss - rss0 < 100 * 1024 * 1024
    f = findings(cat)["huge.json"]
    assert f["rule"] == "file-too-large" and "200.0 MB" in f["message"] and "max_file_size" in f["message"]
    assert cat.file_row("huge.json")["status"] == "skipped"
    assert_good_files_catalogued(cat)


def test_symlink_loop_and_unicode_paths(make_tree, ingest):
    root = make_tree({**GOOD, "my dir/café config.yaml": "x: 1\n", "日本/設定.json": '{"k": "v"}'})
    os.symlink(root / "ok", root / "ok" / "loop")
    cat, _ = ingest(root)
    assert findings(cat, "symlink")["ok/loop"]["severity"] == "warning"
    paths = {r[0] for r in cat.query("SELECT path FROM files")}
    assert {"my dir/café config.yaml", "日本/設定.json"} <= paths
    assert cat.query("SELECT value FROM records WHERE path = '日本/設定.json'")[0][0] == "v"


def test_a_file_deleted_during_the_walk_is_a_finding(make_tree, settings):
    from kb.ingest.pipeline import process_file
    from kb.ingest.walk import walk_tree

    root = make_tree({**GOOD, "gone.yaml": "a: 1\n"})
    entries = {e.rel: e for e in walk_tree(root).entries}
    (root / "gone.yaml").unlink()
    res = process_file(entries["gone.yaml"], None, 1)
    assert res.kind == "vanished" and "vanished" in res.walk_problem.message


def test_incremental_reingest_parses_only_what_changed(make_tree, ingest):
    root = make_tree({**GOOD, "c.toml": "[a]\nb = 1\n", "d.env": "A=1\n"})
    cat, s1 = ingest(root)
    assert (s1.added, s1.changed, s1.removed) == (4, 0, 0)
    cat, s2 = ingest(root)
    assert (s2.added, s2.changed, s2.removed, s2.unchanged) == (0, 0, 0, 4)
    # same bytes, new mtime: hashed, not parsed
    os.utime(root / "c.toml", (time.time() + 5, time.time() + 5))
    (root / "ok/app.yaml").write_text("service:\n  name: api\n  port: 9090\n")
    (root / "d.env").unlink()
    (root / "e.properties").write_text("x.y=1\n")
    cat, s3 = ingest(root)
    assert (s3.added, s3.changed, s3.removed, s3.unchanged) == (1, 1, 1, 2)
    assert cat.query("SELECT value FROM records WHERE path='ok/app.yaml' AND key_path='service.port'")[0][0] == "9090"
    assert cat.query("SELECT count(*) FROM records WHERE path = 'd.env'")[0][0] == 0
    changes = {(r["path"], r["change"]) for r in cat.run_changes(s3.run_id)}
    assert changes == {("ok/app.yaml", "changed"), ("d.env", "removed"), ("e.properties", "added")}
    hist = cat.history()
    assert [h["status"] for h in hist] == ["complete"] * 3
    # the touched file's new mtime was stored, so the next run costs only stats
    _, s4 = ingest(root)
    assert s4.unchanged == 4 and s4.added == s4.changed == 0


def test_parse_error_findings_are_replaced_when_the_file_is_fixed(make_tree, ingest):
    root = make_tree({"a.json": "{"})
    cat, _ = ingest(root)
    assert "a.json" in findings(cat, "parse-error")
    (root / "a.json").write_text('{"fixed": true}')
    cat, _ = ingest(root)
    assert findings(cat, "parse-error") == {}
    assert cat.file_row("a.json")["status"] == "ok"


def test_canonical_hash_is_format_independent(make_tree, ingest):
    cat, _ = ingest(
        make_tree(
            {
                "a.json": '{"b": [1, 2], "a": {"x": "y"}}',
                "b.yaml": "# comment\na:\n  x: 'y'\nb:\n  - 1\n  - 2\n",
                "c.yaml": "a:\n  x: z\n",
            }
        )
    )
    sha = dict(cat.query("SELECT path, canonical_sha FROM files"))
    assert sha["a.json"] == sha["b.yaml"] != sha["c.yaml"]


def test_planted_secrets_never_reach_the_kb_or_any_output(make_tree, ingest, tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    aws = "AKIA" + "ZX3Q9PLM4TRW8YUE"
    stripe = "sk_live_" + "Lq7Vx2Mn8Rt4Yb6Kc1Wd9Fz3"
    pw = "Tr0ub4dor-and-3"
    root = make_tree(
        {
            "legacy/billing.env": f"STRIPE_API_KEY={stripe}\nDB_PASSWORD={pw}\nPLACEHOLDER_PASSWORD=changeme\n",
            "legacy/aws.ini": f"[default]\naws_access_key_id = {aws}\nregion = eu-west-1\n",
            "docs/setup.md": f"# Setup\n\nRun with `STRIPE_KEY={stripe}`.\n",
            "app.json": json.dumps({"db": {"password": pw, "host": "db"}}),
            "app.yaml": f'db:\n  password: "{pw}"\n',
        }
    )
    cat, summary = ingest(root)
    secrets = [aws, stripe, pw]
    fs = cat.query_dicts("SELECT path, line, target, fingerprint FROM findings WHERE rule = 'plaintext-secret'")
    assert {(f["path"], f["line"]) for f in fs} >= {
        ("legacy/billing.env", 1),
        ("legacy/billing.env", 2),
        ("legacy/aws.ini", 2),
        ("docs/setup.md", 3),
        ("app.yaml", 2),
    }
    assert all(f["fingerprint"] for f in fs)
    db = Path(cat.db_dir)
    cat.con.execute("CHECKPOINT")
    runner = CliRunner()
    outputs = [
        runner.invoke(cli, args + ["--db", str(db)]).output
        for args in (
            ["findings", "--json"],
            ["stats", "--json"],
            ["sql", "SELECT * FROM records", "--json"],
            ["sql", "SELECT * FROM sections", "--json"],
            ["sql", "SELECT * FROM documents", "--json"],
            ["show", "legacy/billing.env", "--json"],
            ["show", "app.json"],
        )
    ]
    outputs.append(summary.model_dump_json())
    for f in db.rglob("*"):
        if f.is_file():
            outputs.append(f.read_bytes().decode("latin-1"))
    blob = "\n".join(outputs)
    for s in secrets:
        assert s not in blob, s
    assert "REDACTED" in blob


@pytest.mark.slow
def test_kill_9_halfway_leaves_the_published_generation_and_the_next_run_completes(tmp_path):
    import signal
    import subprocess
    import sys

    from kb.knowledge import KnowledgeBase

    files = {
        f"svc{i:04d}/config.yaml": f"svc:\n  id: {i}\n  tags: [a, b, c]\n  port: {8000 + i}\n" for i in range(3000)
    }
    root = write_tree(tmp_path / "tree", files)
    db = tmp_path / "kb"
    env = {**os.environ, "KB_EMBED": "0", "KB_BATCH_FILES": "50", "KB_WORKERS": "1"}
    cmd = [sys.executable, "-c", "from kb.cli import main; main()", "ingest", str(root), "--db", str(db), "-q"]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    for i in range(3000):  # every file changes: the second run rewrites the whole catalogue
        (root / f"svc{i:04d}/config.yaml").write_text(f"svc:\n  id: {i}\n  tags: [x]\n  port: {20000 + i}\n")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    wals = lambda: [p for p in db.glob("catalogue-*.tmp.wal") if p.stat().st_size > 200_000]  # noqa: E731
    while time.time() < deadline and not wals():
        time.sleep(0.02)
    assert wals(), "the second run never got going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kb = KnowledgeBase.open(db, read_only=True)
    # readers see the last published generation, whole: every file with its records, old values
    assert kb.sql("SELECT count(*) AS n FROM files")["n"][0] == 3000
    bad = kb.sql(
        "SELECT count(*) AS n FROM files f WHERE records != (SELECT count(*) FROM records r WHERE r.path = f.path)"
    )
    assert bad["n"][0] == 0
    assert kb.sql("SELECT count(*) AS n FROM records WHERE key_path = 'svc.port' AND value::INT >= 20000")["n"][0] == 0
    assert [h["status"] for h in kb.history().to_dict("records")] == ["complete"]
    done = subprocess.run(cmd[:-1] + ["--json"], env=env, capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout)
    assert summary["changed"] == 3000
    assert (
        kb.sql("SELECT count(*) AS n FROM records WHERE key_path = 'svc.port' AND value::INT >= 20000")["n"][0] == 3000
    )
    assert [h["status"] for h in kb.history().to_dict("records")] == ["complete", "interrupted", "complete"]
    assert not list(db.glob("catalogue-*.tmp*")), "the killed run's private copy was left behind"


def test_raising_the_size_cap_picks_up_a_skipped_file_and_the_message_reads_well(make_tree, ingest):
    root = make_tree({"x.yaml": "a: 1\nb: 2\n", "y.yaml": "c: 3\n"})
    cat, _ = ingest(root, max_file_size=8)
    f = findings(cat)["x.yaml"]
    assert f["rule"] == "file-too-large" and "file is 10 bytes, over the 8 bytes cap" in f["message"]
    _, again = ingest(root, max_file_size=8)
    assert again.changed == 0 and again.unchanged == 2  # same limits: nothing re-read
    cat, raised = ingest(root)
    assert (raised.changed, raised.unchanged) == (1, 1) and cat.file_row("x.yaml")["status"] == "ok"
    assert "x.yaml" not in findings(cat)


def test_validation_findings_are_dropped_when_an_ingest_changes_files(make_tree, ingest):
    from kb.graph.rules import validate

    root = make_tree({"a.json": '{"config": "b.json"}', "b.json": "{}"})
    cat, _ = ingest(root)
    (root / "b.json").unlink()
    cat, _ = ingest(root)
    from kb.settings import Settings

    validate(cat, Settings(db=cat.db_dir, root=root))
    assert findings(cat, "broken-reference")
    (root / "b.json").write_text("{}")
    cat, _ = ingest(root)
    assert findings(cat, "broken-reference") == {}
    assert cat.get_meta("validation_stale") == "true"


def test_an_interrupted_run_keeps_the_counts_it_committed(tmp_path):
    from kb.catalogue import Catalogue

    cat = Catalogue(tmp_path / "kb")
    run = cat.start_run("/r")
    cat.insert_rows("run_changes", [(run, "a", "added"), (run, "b", "added"), (run, "c", "changed")])
    cat.close_interrupted_runs()
    h = cat.history()[0]
    assert (h["status"], h["added"], h["changed"], h["removed"]) == ("interrupted", 2, 1, 0)
    cat.close()


def test_lone_surrogates_and_non_utf8_names_do_not_stop_the_run(make_tree, ingest):
    root = make_tree({**GOOD, "emoji.json": '{"a": "\\ud83d\\ude00", "b": "\\ud800"}'})
    (root / "bad\udcffname.yaml").write_bytes(b"k: v\n") if os.name == "posix" else None
    cat, summary = ingest(root)
    assert_good_files_catalogued(cat)
    assert cat.query("SELECT count(*) FROM files")[0][0] == len(GOOD) + 1
    bad = cat.query_dicts("SELECT path, message FROM findings WHERE rule = 'bad-file-name'")
    assert len(bad) == 1 and "not valid UTF-8" in bad[0]["message"] and bad[0]["path"] == "bad\ufffdname.yaml"
    _, again = ingest(root)
    assert (again.added, again.changed, again.removed) == (0, 0, 0)


def test_secrets_in_broken_escaped_keyed_and_paired_shapes_never_reach_the_kb(make_tree, tmp_path):
    from kb import KnowledgeBase

    pw, tok, aws = "S0me-Str0ng-pass!", "sk_live_" + "Qw3Er5Ty7Ui9Op1As3Df5Gh7", "AKIA" + "J7K3M9P2Q8R4T6V1"
    root = make_tree(
        {
            "broken/bad.yaml": f"db:\n  password: {pw}\n  host: [unclosed\n",
            "broken/bad.toml": f'[db]\npassword = "{pw}"\nhost = \n',
            "escaped.json": '{"db": {"password": "S0me\\u002dStr0ng\\u002dpass!"}}',
            "keyed.yaml": f"owners:\n  {tok}: ci\ntokens:\n  {aws}: deploy\n",
            "k8s.yaml": f'env:\n  - name: DB_PASSWORD\n    value: "{pw}"\n  - name: MODE\n    value: fast\n',
            "numeric.json": '{"admin": {"password": 847362519}}',
            "spring.properties": f"spring.datasource.password=${{DB_PASSWORD:{pw}}}\n",
            "short.env": f"DB_PASS={pw}\n",
        }
    )
    kb = KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1)
    found = kb.findings(rule="plaintext-secret")
    assert set(found["path"]) == {
        "broken/bad.yaml",
        "broken/bad.toml",
        "escaped.json",
        "keyed.yaml",
        "k8s.yaml",
        "numeric.json",
        "spring.properties",
        "short.env",
    }, found
    hits = kb.search("password", mode="keyword", k=50)
    kb.catalogue.con.execute("CHECKPOINT")
    kb.close()
    blob = hits.to_json() + "".join(
        f.read_bytes().decode("latin-1") for f in (tmp_path / "kb").rglob("*") if f.is_file()
    )
    for secret in (pw, "S0me\\u002dStr0ng", tok, aws, "847362519"):
        assert secret not in blob, secret


def test_another_tree_into_the_same_kb_starts_over_and_says_so(make_tree, ingest):
    """A KB holds one tree: ingesting another (a mistyped path, a run from a subfolder) removes the
    first tree's files, and the summary says which tree they came from and how to keep both."""
    first = make_tree({"a.yaml": "a: 1\n", "b.yaml": "b: 2\n"}, name="first")
    second = make_tree({"c.yaml": "c: 3\n"}, name="second")
    _, run = ingest(first)
    assert run.notes == []
    cat, run = ingest(second)
    assert (run.added, run.removed) == (1, 2)
    assert run.notes[0].startswith(f"this KB held the tree at {first.resolve()}; it now holds {second.resolve()}")
    assert "--db NEW_DIR" in run.notes[0]
    assert [r[0] for r in cat.query("SELECT path FROM files")] == ["c.yaml"]
