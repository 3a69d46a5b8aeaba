"""``kb.duplicates`` and ``kb duplicates``: planted groups in ``fixtures_dup/tree`` are found, the
negative controls under ``neg/`` never appear, and the bundled sample's planted duplicates are found.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from kb.catalogue import Catalogue
from kb.duplicates import KINDS, duplication_summary, find_duplicates, semantic_unavailable, split_key_path
from kb.errors import BadRequestError
from kb.settings import Settings
from kb.types import DuplicateGroup

HERE = Path(__file__).resolve().parent
TREE = HERE / "fixtures_dup" / "tree"
REPO = HERE.parents[1]
SAMPLE = REPO / "kb" / "sample"


def _build(root: Path, db: Path, **settings):
    from kb.knowledge import KnowledgeBase

    return KnowledgeBase.build(root, db=db, embed=False, workers=1, **settings)


@pytest.fixture(scope="module")
def fixture_kb(tmp_path_factory):
    """The fixture tree's KB, reopened read-only (as the CLI opens it, so both can share it)."""
    from kb.knowledge import KnowledgeBase

    db = tmp_path_factory.mktemp("dup") / "kb"
    _build(TREE, db).close()
    kb = KnowledgeBase.open(db, read_only=True)
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def groups(fixture_kb) -> list[DuplicateGroup]:
    return find_duplicates(fixture_kb.catalogue, fixture_kb.settings)


def _members(g: DuplicateGroup) -> set[tuple[str, str | None]]:
    return {(m.path, m.key_path) for m in g.members}


def _find(groups, kind, members) -> DuplicateGroup:
    hits = [g for g in groups if g.kind == kind and _members(g) == set(members)]
    assert hits, f"no {kind} group with {sorted(members)}; got " + json.dumps(
        [[g.kind, sorted(_members(g), key=str)] for g in groups], default=str
    )
    return hits[0]


# -- planted groups ---------------------------------------------------------------------------


def test_exact_duplicates_are_one_three_way_group(groups):
    g = _find(groups, "exact", {(f"exact/{d}/settings.yaml", None) for d in "abc"})
    assert g.similarity == 1.0
    assert all(m.line_start == 1 and m.line_end == 5 for m in g.members)
    assert g.lines_saved == 10  # two redundant copies of a 5-line file


def test_canonical_duplicate_across_json_and_yaml(groups):
    g = _find(groups, "canonical", {("canonical/payments.json", None), ("canonical/payments.yaml", None)})
    assert g.lines_saved == 8  # keep the longer (9-line YAML), fold the 8-line JSON
    # byte-identical files are exact, never also canonical
    assert not [g for g in groups if g.kind == "canonical" and any(m.path.startswith("exact/") for m in g.members)]


def test_logging_block_copied_into_four_formats_is_one_group(groups):
    g = _find(
        groups,
        "block",
        {
            ("services/orders/config.yaml", "logging"),
            ("services/billing/config.json", "logging"),
            ("services/search/config.toml", "logging"),
            ("services/users/settings.yaml", "observability.log"),
        },
    )
    lines = {m.path: (m.line_start, m.line_end) for m in g.members}
    assert lines["services/orders/config.yaml"] == (3, 9)  # the `logging:` line through its last leaf
    assert lines["services/billing/config.json"][0] == 4
    assert g.lines_saved > 0


def test_block_groups_are_maximal_not_nested(groups):
    _find(groups, "block", {("db/primary/database.yaml", "database"), ("db/replica/database.json", "database")})
    # The pool sub-block is reported only because a third file holds it on its own.
    pool = _find(
        groups,
        "block",
        {
            ("db/primary/database.yaml", "database.pool"),
            ("db/replica/database.json", "database.pool"),
            ("db/cache/pool.yaml", "pool"),
        },
    )
    assert len(pool.members) == 3
    block_members = [_members(g) for g in groups if g.kind == "block"]
    assert {
        ("db/primary/database.yaml", "database.pool"),
        ("db/replica/database.json", "database.pool"),
    } not in block_members


def test_near_duplicate_service_configs(groups):
    g = _find(groups, "near", {(f"near/{s}-gateway.yaml", None) for s in ("api", "auth", "web")})
    assert 0.8 <= g.similarity < 1.0
    assert g.lines_saved > 0


def test_negative_controls_produce_no_group(groups):
    offenders = [(g.kind, m.path) for g in groups for m in g.members if m.path.startswith("neg/")]
    assert offenders == []


def test_small_block_is_found_only_below_min_leaves(fixture_kb):
    found = find_duplicates(fixture_kb.catalogue, fixture_kb.settings, kinds=["block"], min_leaves=3)
    assert any(_members(g) == {("neg/small-block/x.yaml", "retry"), ("neg/small-block/y.json", "retry")} for g in found)


def test_kinds_filter_and_order(fixture_kb):
    only = find_duplicates(fixture_kb.catalogue, fixture_kb.settings, kinds=["near", "exact"])
    assert {g.kind for g in only} == {"exact", "near"}
    kinds = [g.kind for g in only]
    assert kinds == sorted(kinds, key=KINDS.index)


def test_unknown_kind_names_the_known_ones(fixture_kb):
    with pytest.raises(BadRequestError, match="known: exact, canonical"):
        find_duplicates(fixture_kb.catalogue, fixture_kb.settings, kinds=["fuzzy"])


def test_suggest_proposes_a_base_and_overlays(fixture_kb):
    found = find_duplicates(fixture_kb.catalogue, fixture_kb.settings, kinds=["near"], suggest=True)
    g = _find(found, "near", {(f"near/{s}-gateway.yaml", None) for s in ("api", "auth", "web")})
    text = g.suggestion
    assert text and text.startswith("# base: near/_base.yaml")
    base_text = text.split("# overlay:")[0]
    base = yaml.safe_load(base_text)
    assert base["upstream"]["max_connections"] == 512 and "image" not in base
    assert "# overlay: near/auth-gateway.yaml" in text and "gateway:1.4.3" in text
    removed = int(text.rstrip().rsplit(" ", 1)[1])
    assert removed == g.lines_saved > 0


def test_summary_counts_and_ratio(fixture_kb, groups):
    s = duplication_summary(fixture_kb.catalogue, groups)
    assert s["groups"] == len(groups)
    assert s["groups_by_kind"]["exact"] == 1 and s["groups_by_kind"]["canonical"] == 1
    assert 0 < s["duplicated_leaf_values"] < s["leaf_values"]
    assert s["duplication_ratio"] == round(s["duplicated_leaf_values"] / s["leaf_values"], 4)


def test_summary_counts_each_removable_line_once():
    """An exact copy of a file is also a block group's member: the summary's lines count it once
    (elastic/helm-charts: goss.yaml files counted in an exact group and two block groups)."""
    from kb.duplicates import _distinct_lines

    rows = [
        ("b.yaml", None, 1, 41),
        ("b.yaml", "tests", 3, 26),
        ("b.yaml", "tests.http", 10, 31),
        ("c.yaml", None, 5, 6),
    ]
    assert _distinct_lines(rows) == 41 + 2
    assert _distinct_lines([("a", None, 0, 10), ("a", None, 1, 2**31 - 1)]) == 0  # no line range: not counted


def test_semantic_without_vectors_returns_nothing_and_says_why(fixture_kb):
    assert find_duplicates(fixture_kb.catalogue, fixture_kb.settings, kinds=["semantic"]) == []
    assert "embeddings" in (semantic_unavailable(fixture_kb.catalogue, fixture_kb.settings) or "")


# -- hand-inserted rows (the SQL against the schema, no parser involved) ----------------------


def test_block_hash_ignores_key_order_and_name_over_hand_inserted_rows(tmp_path):
    cat = Catalogue(tmp_path / "kb")
    leaves = [
        ("host", "db", "str"),
        ("port", "5432", "int"),
        ("user", "app", "str"),
        ("ssl", "true", "bool"),
        ("pool", "10", "int"),
    ]
    files, records = [], []
    for i, (path, prefix, order) in enumerate(
        [
            ("a.yaml", "db", leaves),
            ("b.json", "database", leaves[::-1]),
            ("c.toml", "x.storage", leaves[1:] + leaves[:1]),
        ]
    ):
        files.append((path, "yaml", 100, f"sha{i}", 0.0, "ok", 6, f"canon{i}", 1, None))  # run_id, folder_about
        records.append((path, 0, "name", path, "str", 1))
        for j, (k, v, t) in enumerate(order):
            records.append((path, 0, f"{prefix}.{k}", v, t, j + 2))
    cat.insert_rows("files", files)
    cat.insert_rows("records", records)
    found = find_duplicates(cat, Settings(db=tmp_path / "kb"), kinds=["block"])
    assert [_members(g) for g in found] == [{("a.yaml", "db"), ("b.json", "database"), ("c.toml", "x.storage")}]
    assert all((m.line_start, m.line_end) == (2, 6) for m in found[0].members)
    cat.close()


@pytest.mark.parametrize(
    "key_path, segments",
    [
        ("a.b[0].c", ["a", "b", 0, "c"]),
        ('["x.y"].z', ["x.y", "z"]),
        ('a["b.c"][2]', ["a", "b.c", 2]),
        ('a["say \\"hi\\""]', ["a", 'say "hi"']),
    ],
)
def test_split_key_path(key_path, segments):
    assert split_key_path(key_path) == segments


# -- the bundled sample -----------------------------------------------------------------------


@pytest.mark.skipif(not (REPO / "kb" / "sample_truth.json").exists(), reason="sample corpus not bundled")
def test_sample_planted_duplicates_are_found(tmp_path):
    truth = json.loads((REPO / "kb" / "sample_truth.json").read_text())["problems"]
    kb = _build(SAMPLE, tmp_path / "kb")
    found = find_duplicates(kb.catalogue, kb.settings, kinds=["exact", "canonical", "block"])
    for problem in truth:
        if problem["kind"] == "duplicate-block":
            want = {(m["path"], m["key_path"], m["line_start"], m["line_end"]) for m in problem["members"]}
            assert any(
                {(m.path, m.key_path, m.line_start, m.line_end) for m in g.members} == want
                for g in found
                if g.kind == "block"
            ), problem["details"]
        elif problem["kind"] == "canonical-duplicate":
            want = {m["path"] for m in problem["members"]}
            assert any({m.path for m in g.members} == want for g in found if g.kind == "canonical")
    kb.close()


# -- CLI --------------------------------------------------------------------------------------


def _cli(*args: str):
    from kb.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_duplicates_json(fixture_kb):
    res = _cli("duplicates", "--db", str(fixture_kb.settings.db), "--json", "--kind", "block", "--kind", "exact")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"groups", "summary"}
    g = out["groups"][0]
    assert {"kind", "similarity", "members", "lines_saved"} <= set(g)
    assert set(g["members"][0]) == {"path", "key_path", "line_start", "line_end"}
    assert out["summary"]["groups_by_kind"]["block"] >= 1


def test_cli_duplicates_text_shows_file_lines_and_semantic_reason(fixture_kb):
    res = _cli("duplicates", "--db", str(fixture_kb.settings.db))
    assert res.exit_code == 0
    assert "services/orders/config.yaml:3-9  logging" in res.stdout
    assert "semantic" not in res.stderr  # semantic groups are opt-in
    res = _cli("duplicates", "--db", str(fixture_kb.settings.db), "--kind", "semantic")
    assert res.exit_code == 0 and "semantic: skipped" in res.stderr


def test_cli_duplicates_fail_on_kinds_for_ci(fixture_kb):
    db = str(fixture_kb.settings.db)
    found = {g["kind"] for g in json.loads(_cli("duplicates", "--db", db, "--json").stdout)["groups"]}
    assert "block" in found and "semantic" not in found
    assert _cli("duplicates", "--db", db, "--fail-on", "block").exit_code == 1
    assert _cli("duplicates", "--db", db, "--fail-on", "any", "--json").exit_code == 1
    assert _cli("duplicates", "--db", db, "--fail-on", "semantic").exit_code == 0
    res = _cli("duplicates", "--db", db, "--kind", "near", "--fail-on", "block")
    assert res.exit_code == 0  # only the kinds reported can fail


def test_cli_duplicates_without_kb_says_how_to_fix(tmp_path):
    res = _cli("duplicates", "--db", str(tmp_path / "nothing"))
    assert res.exit_code == 2 and "kb ingest" in res.stderr


def test_cli_help_ends_with_example():
    for name in ("duplicates", "drift"):
        res = _cli(name, "--help")
        assert "Example:" in res.stdout


# -- semantic, with the real model ------------------------------------------------------------


@pytest.mark.model
def test_semantic_finds_near_identical_markdown_sections(tmp_path):
    from kb.knowledge import KnowledgeBase

    section = (
        "## Rolling back a release\n\nIf a deployment misbehaves, roll it back with `kubectl rollout undo "
        "deployment/{svc}`, confirm the previous ReplicaSet is serving, then open an incident ticket "
        "and page the on-call engineer.\n"
    )
    files = {
        "docs/orders.md": "# Runbook\n\n" + section.format(svc="orders"),
        "docs/payments.md": "# Runbook\n\n" + section.format(svc="payments"),
        "docs/other.md": "# Fonts\n\nOur brand typeface is set in the marketing site's stylesheet.\n",
    }
    root = tmp_path / "tree"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    kb = KnowledgeBase.build(root, db=tmp_path / "kb", workers=1)
    with kb.snapshot() as snap:
        assert semantic_unavailable(snap.catalogue, kb.settings, snap) is None
        found = find_duplicates(snap.catalogue, kb.settings, kinds=["semantic"], semantic_threshold=0.9, snapshot=snap)
    assert kb.duplicates(["semantic"], as_frame=False, semantic_threshold=0.9) == found
    assert any({m.path for m in g.members} == {"docs/orders.md", "docs/payments.md"} for g in found), found
    assert not any("docs/other.md" in {m.path for m in g.members} for g in found)
    kb.close()


# -- MinHash LSH: the numpy banding equals datasketch's ----------------------------------------


def test_lsh_banding_matches_datasketch():
    import numpy as np
    from datasketch import LeanMinHash, MinHashLSH

    from kb.duplicates import _lsh_candidates, _signatures

    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, size=40, dtype=np.uint64)
    sets = []
    for i in range(300):  # families of overlapping sets, so that some pairs collide
        fam = base + np.uint64(i % 10)
        keep = rng.random(40) < 0.85
        sets.append(np.unique(np.r_[fam[keep], rng.integers(0, 2**63, size=3, dtype=np.uint64)]))
    cid = np.concatenate([np.full(len(s), i) for i, s in enumerate(sets)])
    sig = _signatures(cid, np.concatenate(sets), len(sets))
    bands, rows = 21, 6
    a, b = _lsh_candidates(sig, bands, rows, min_bands=1)
    ours = set(zip(a.tolist(), b.tolist()))
    lsh = MinHashLSH(num_perm=sig.shape[1], params=(bands, rows))
    hashes = [LeanMinHash(seed=1, hashvalues=row, scheme="affine32") for row in sig]
    for i, m in enumerate(hashes):
        lsh.insert(i, m)
    theirs = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if i != j}
    assert ours == theirs and len(ours) > 100


def test_semantic_groups_leave_out_chunks_of_a_few_words(tmp_path):
    """A chunk of a few words is embedded mostly as its context line (its path, what its folder
    says it is): two such chunks look alike whatever they say (seen on elastic/helm-charts:
    LICENSE's "the Work and Derivative Works thereof." beside a Makefile's "fi; done")."""
    import numpy as np

    from kb.duplicates import SEMANTIC_MIN_WORDS, _semantic_groups
    from kb.knowledge import KnowledgeBase

    long = "Roll the deployment back with kubectl rollout undo, then confirm the previous ReplicaSet serves traffic."
    files = {
        "docs/a.md": f"# A\n\n{long}\n",
        "docs/b.md": f"# B\n\n{long}\n",
        "docs/c.md": "# C\n\nthe Work thereof.\n",
    }
    files["docs/d.md"] = "# D\n\nfi; done\n"
    root = tmp_path / "tree"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1) as kb, kb.snapshot() as snap:
        ids = [r[0] for r in snap.catalogue.query("SELECT chunk_id FROM chunks ORDER BY path")]
        same = np.ones((len(ids), 8), dtype=np.float32)  # every chunk's vector alike: only the words decide
        groups = _semantic_groups(snap.catalogue, ids, same, 0.9)
    assert len(long.split()) >= SEMANTIC_MIN_WORDS
    from kb.duplicates import _words_of_body

    russian = "docs/ru.md | markdown\nОткатите развёртывание командой отмены, затем проверьте, что прежний набор реплик обслуживает весь трафик снова."
    assert _words_of_body(russian) >= SEMANTIC_MIN_WORDS  # words of any script count
    assert [sorted(m.path for m in g.members) for g in groups] == [["docs/a.md", "docs/b.md"]]
