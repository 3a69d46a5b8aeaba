"""Search end to end: ingest -> chunks -> index -> hybrid/keyword/semantic search, CLI, secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb import KnowledgeBase
from kb.errors import BadRequestError, EmbedderMismatchError
from kb.linepaths import line_key_paths
from kb.search import is_literal_query, query_identifiers, search

REPO = Path(__file__).resolve().parents[2]
PROD = "services/payments/config/production.yaml"


def hits_of(kb, query, **kw):
    return kb.search(query, as_frame=False, **kw)


# ---------------------------------------------------------------------------------------------
# Ranking and hits
# ---------------------------------------------------------------------------------------------


def test_identifier_lands_on_its_definition_file_line_and_key_path(tiny_kb):
    top = hits_of(tiny_kb, "review_threshold", k=3)[0]
    assert (top.path, top.key_path, top.format) == (PROD, "fraud.review_threshold", "yaml")
    assert top.line_start <= 12 <= top.line_end and top.line_end - top.line_start <= 4
    assert "review_threshold: 0.85" in top.snippet


def test_env_variable_finds_the_env_file_defining_it(tiny_kb):
    hits = hits_of(tiny_kb, "DATABASE_URL", k=3)
    env = [h for h in hits if h.path == "services/payments/.env.example"]
    assert env and env[0].line_start <= 2 <= env[0].line_end and env[0].key_path == "DATABASE_URL"


def test_exact_key_path_outranks_a_partial_match(tiny_kb):
    top = hits_of(tiny_kb, "payments.retry.max_attempts", k=3)[0]
    assert (top.path, top.key_path) == (PROD, "payments.retry.max_attempts")
    camel = hits_of(tiny_kb, "maxConnections", k=1)[0]
    assert (camel.path, camel.key_path) == ("services/orders/config/base.json", "database.maxConnections")


def test_file_name_match(tiny_kb):
    assert hits_of(tiny_kb, "production.yaml", k=1)[0].path == PROD


def test_every_mode_answers_and_hits_are_unique(tiny_kb):
    for mode in ("hybrid", "semantic", "keyword"):
        hits = hits_of(tiny_kb, "payments fraud review", k=10, mode=mode)
        assert hits, mode
        keys = [(h.path, h.line_start, h.line_end) for h in hits]
        assert len(keys) == len(set(keys)), mode
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_k_limits_hits(tiny_kb):
    assert len(hits_of(tiny_kb, "service", k=2)) == 2


def test_filters_by_format_path_glob_and_folder(tiny_kb):
    assert {h.format for h in hits_of(tiny_kb, "orders", format="json")} == {"json"}
    globbed = hits_of(tiny_kb, "max_attempts", path="services/orders/*")
    assert globbed[0].path == "services/orders/settings.toml"
    assert {h.path for h in globbed} <= {"services/orders/settings.toml", "services/orders/config/base.json"}
    assert {h.path for h in hits_of(tiny_kb, "visibility_timeout", path="services/*", mode="keyword")} == {
        "services/orders/settings.toml"
    }
    assert {h.path for h in hits_of(tiny_kb, "payments", path="services/payments")} == {
        PROD,
        "services/payments/.env.example",
    }
    assert hits_of(tiny_kb, "payments", path="nowhere/*") == []


def test_a_path_filter_on_disk_inside_the_root_means_its_relative_path(tiny_kb, tiny_tree):
    """As in ``kb findings --path``, ``kb show`` and ``/files?path=``: the folder given as it lies
    on disk selects the same files as its path relative to the corpus root."""
    on_disk = str(tiny_tree / "services" / "payments")
    assert {h.path for h in hits_of(tiny_kb, "payments", path=on_disk)} == {PROD, "services/payments/.env.example"}


@pytest.fixture(scope="module")
def wide_kb(tmp_path_factory):
    """250 short .env files full of APP_ENV (they win any unfiltered ranking) and 6 YAML files
    that mention it once among other keys."""
    from tests.conftest import write_tree

    files = {f"noise/n{i:03}/.env.production": f"APP_ENV=production\nAPP_ENV_NAME=n{i}\n" for i in range(250)}
    for i in range(6):
        files[f"teams/t{i}/app.yaml"] = (
            "\n".join(f"setting_{j}: value {j} of team {i}" for j in range(12)) + f"\nAPP_ENV: team{i}\n"
        )
    root = write_tree(tmp_path_factory.mktemp("wide") / "tree", files)
    kb = KnowledgeBase.build(root, db=root.parent / "kb", model="hash", workers=1)
    yield kb
    kb.close()


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
def test_path_filter_over_many_files_returns_the_best_matching_hits(wide_kb, mode):
    """A filter never falls back to filtering the unfiltered top candidates (which hold no YAML
    here): the best matching chunks among the files it selects come back."""
    hits = hits_of(wide_kb, "APP_ENV", path="teams/*.yaml", k=5, mode=mode)
    assert len(hits) == 5 and all(h.path.startswith("teams/") for h in hits)
    if mode == "keyword":
        assert all(h.key_path == "APP_ENV" for h in hits)


def test_filtered_vector_candidates_are_exactly_the_nearest_that_pass(wide_kb):
    """The exact scan keeps precisely the nearest chunks among the filtered files."""
    import numpy as np

    from kb.index import chunk_vectors
    from kb.search import stores
    from kb.search.candidates import resolve_paths

    with wide_kb.snapshot() as snap:
        cv = chunk_vectors(snap)
        vec = wide_kb.embedder("query").encode(["team settings"])[0]
        everything = cv.nearest(vec, len(cv.chunk_ids))
        assert len(everything) == int((cv.rows >= 0).sum())
        sims = [s for _, s in everything]
        assert sims == sorted(sims, reverse=True)
        path_of = dict(snap.catalogue.query("SELECT chunk_id, path FROM chunks"))
        for glob in ("teams/*", "noise/n0*", "noise/n1*"):
            paths = resolve_paths(stores.open_stores(snap, wide_kb.settings), glob)
            expected = [cid for cid, _ in everything if path_of[cid] in set(paths)][:50]
            got = cv.nearest(vec, 50, paths=paths)
            assert [cid for cid, _ in got] == expected, glob
            assert np.allclose([s for _, s in got], [dict(everything)[c] for c in expected])
        assert cv.nearest(vec, 5, format="dotenv") and all(
            path_of[c].endswith(".env.production") for c, _ in cv.nearest(vec, 5, format="dotenv")
        )
        assert cv.nearest(vec, 5, paths=[]) == []


def test_chunk_counts_for_the_hub_penalty_follow_an_incremental_ingest(tiny_tree, tmp_path):
    """The chunks per file that fusion weighs (counted in the keyword index, for the candidates'
    files only) equal the catalogue's, after a file grew, one shrank and one went away."""
    from kb.search import stores

    kb = KnowledgeBase.build(tiny_tree, db=tmp_path / "kb", model="hash", workers=1)
    try:
        (tiny_tree / "grown.yaml").write_text("".join(f"section{i}:\n  key{i}: value {i}\n" for i in range(400)))
        prod = tiny_tree / PROD
        prod.write_text("payments:\n  retry: 3\n")
        gone = next(p for p in sorted(tiny_tree.rglob("*")) if p.is_file() and p != prod and p.name != "grown.yaml")
        gone_rel = gone.relative_to(tiny_tree).as_posix()
        gone.unlink()
        kb.ingest()
        with kb.snapshot() as snap:
            truth = {p: int(n) for p, n in snap.catalogue.query("SELECT path, count(*) FROM chunks GROUP BY path")}
            st = stores.open_stores(snap, kb.settings)
            asked = [*truth, gone_rel]
            counts = stores.file_chunk_counts(st, asked)
            assert {p: counts[p] for p in asked} == {**truth, gone_rel: 0}
            assert truth["grown.yaml"] > 10 and truth[PROD] == 1
            assert stores.file_chunk_counts(st, ["grown.yaml"])["grown.yaml"] == truth["grown.yaml"]  # kept
    finally:
        kb.close()


def test_dataframe_api(tiny_kb):
    df = tiny_kb.search("review_threshold", k=2)
    assert list(df.columns) == ["path", "score", "line_start", "line_end", "key_path", "snippet", "format", "answer"]
    assert df["path"][0] == PROD


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "fuzzy"}, "Unknown search mode"),
        ({"k": 0}, "from 1 to 100"),
        ({"k": 101}, "from 1 to 100"),
        ({"query": "   "}, "Empty query"),
        ({"query": "x" * 1001}, "limit is 1000"),
        ({"format": "hcl"}, "Unknown format 'hcl'"),
    ],
)
def test_bad_requests_say_what_to_do(tiny_kb, kwargs, message):
    args = {"query": "fraud", **kwargs}
    with pytest.raises(BadRequestError, match=message):
        tiny_kb.search(args.pop("query"), **args)


def test_search_on_a_read_only_kb(tiny_kb):
    db = tiny_kb.settings.db
    tiny_kb.close()
    with KnowledgeBase.open(db, read_only=True, model="hash") as kb:
        with kb.snapshot() as snap:
            result = search(snap, kb.settings, "DATABASE_URL", k=3, embedder=kb.embedder("query"))
        assert result.hits and result.hits[0].path in ("services/payments/.env.example", "deploy/compose.yml")
        assert result.embedded_share == 1.0 and result.notice is None


def test_a_kb_without_vectors_searches_by_keyword_and_says_how_much_is_embedded(make_tree, tmp_path):
    root = make_tree({"a.yaml": "alpha: one\n", "b.yaml": "beta: two\n"})
    with KnowledgeBase.build(root, db=tmp_path / "plain", embed=False, workers=1, model="hash") as kb:
        result = kb.search_result("alpha")
        assert [h.path for h in result.hits] == ["a.yaml"]
        assert result.embedded_share == 0.0 and "0 of 2 texts" in result.notice
        assert kb.search("alpha", mode="semantic").empty
        summary = kb.ingest(root, embed=True)  # the next run with embedding on embeds what is missing
        assert summary.chunks_embedded == 2 and summary.embedded_share == 1.0
        assert kb.search_result("alpha").notice is None


# ---------------------------------------------------------------------------------------------
# Index maintenance
# ---------------------------------------------------------------------------------------------


def _sections_yaml(names: list[str]) -> str:
    out = []
    for n in names:
        out.append(f"{n}:")
        for i in range(8):
            out.append(f"  {n}_setting_{i}: some configured value number {i} for {n}")
        out.append("")
    return "\n".join(out)


def test_no_change_reingest_embeds_nothing_and_changes_embed_only_new_texts(make_tree, tmp_path):
    root = make_tree({"app/config.yaml": _sections_yaml(["alpha", "beta", "gamma"]), "app/.env": "A=1\n"})
    kb = KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1)
    n_chunks = int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
    assert n_chunks >= 4
    assert kb.history()["added"].tolist() == [2]
    rows = kb.generation().vector_rows

    assert kb.ingest(root).chunks_embedded == 0  # nothing changed
    assert kb.generation().vector_rows == rows

    # one section edited: one new text
    edited = _sections_yaml(["alpha", "beta", "gamma"]).replace("number 3 for gamma", "number 7 for gamma")
    (root / "app/config.yaml").write_text(edited)
    assert kb.ingest(root).chunks_embedded == 1

    # a section inserted at the top: the others move (new ordinals, new lines) but keep their vectors
    (root / "app/config.yaml").write_text(_sections_yaml(["zeta"]) + "\n" + edited)
    assert kb.ingest(root).chunks_embedded == 1
    top = hits_of(kb, "gamma_setting_3", k=1)[0]
    assert top.key_path == "gamma.gamma_setting_3" and top.line_start <= 31 + 4 <= top.line_end + 4

    # a file removed: its keyword documents go, and no search returns it
    (root / "app/.env").unlink()
    kb.ingest(root)
    for mode in ("keyword", "semantic", "hybrid"):
        assert all(h.path != "app/.env" for h in hits_of(kb, "A", k=20, mode=mode))
    with kb.snapshot() as snap:
        assert snap.keyword.count() == int(kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
    kb.close()


def test_identical_texts_are_embedded_once(make_tree, tmp_path):
    block = "## Notes\n\n" + " ".join(f"word{i}" for i in range(80)) + "\n\n"
    root = make_tree({"docs/notes.md": "# Notes\n\n" + block * 3})
    with KnowledgeBase.build(root, db=tmp_path / "kb", model="hash", workers=1, embed=False) as kb:
        counts = kb.sql("SELECT count(*) AS n, count(DISTINCT text_sha) AS u FROM chunks")
        n, u = int(counts["n"][0]), int(counts["u"][0])
        assert n > u
        assert kb.ingest(root, embed=True).chunks_embedded == u
        assert kb.generation().vector_rows == u


def test_a_model_of_ones_own_is_named_by_its_path_in_the_mismatch_message(tiny_tree, tmp_path):
    """A KB built with a model folder (``--model ~/models/adapted``) carries the folder's name as its
    identity; the error met with another model says the path that gives it back (the real model)."""
    from kb.embed import bundled_model_dir

    own = tmp_path / "my models" / "adapted"
    own.mkdir(parents=True)
    for entry in bundled_model_dir().iterdir():  # the bundled weights under another folder's name
        (own / entry.name).symlink_to(entry)
    with KnowledgeBase.build(tiny_tree, db=tmp_path / "kb", model=str(own), workers=1) as kb:
        assert kb.generation().embedder["name"] == "adapted"
        assert kb.generation().embedder["model"] == str(own.resolve())
        assert not kb.search("fraud review threshold", mode="semantic").empty
    with KnowledgeBase.open(tmp_path / "kb") as other, pytest.raises(EmbedderMismatchError) as err:
        other.search("fraud review threshold")  # with the bundled model
    assert f"--model '{own.resolve()}'" in str(err.value), str(err.value)


def test_embedder_mismatch_is_a_clear_error(tiny_kb):
    with KnowledgeBase.open(tiny_kb.settings.db, model="hash:32") as other:
        with pytest.raises(EmbedderMismatchError, match=r"hash-64.*--model hash:64.*fresh KB directory"):
            other.search("fraud")
        with pytest.raises(EmbedderMismatchError):
            other.ingest()
        # keyword search needs no embedder
        assert not other.search("fraud", mode="keyword").empty
    assert tiny_kb.generation().embedder["name"] == "hash-64" and tiny_kb.generation().dim == 64


def test_a_lost_keyword_index_is_rebuilt_by_the_next_ingest(tiny_kb):
    import shutil

    db = Path(tiny_kb.settings.db)
    n = int(tiny_kb.sql("SELECT count(*) AS n FROM chunks")["n"][0])
    shutil.rmtree(db / "keyword" / tiny_kb.generation().keyword)
    assert tiny_kb.ingest().chunks_embedded == 0
    with tiny_kb.snapshot() as snap:
        assert snap.keyword.count() == n
    assert hits_of(tiny_kb, "review_threshold", k=1, mode="keyword")[0].path == PROD


# ---------------------------------------------------------------------------------------------
# Secrets never reach the index or the output
# ---------------------------------------------------------------------------------------------

STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
AWS = "AKIA" + "QX7R2M4K9T3B8N6P"


def test_planted_secrets_appear_in_no_byte_of_the_kb_and_no_search_output(make_tree, tmp_path):
    assert len(STRIPE) == len("sk_live_") + 24
    root = make_tree(
        {
            "billing/.env": f"STRIPE_SECRET_KEY={STRIPE}\nREGION=eu-west-1\n",
            "billing/aws.yaml": f"aws:\n  access_key_id: {AWS}\n  region: eu-west-1\n",
            "billing/notes.md": f"# Billing\n\nThe old key {STRIPE} was rotated; AWS key {AWS} too.\n",
        }
    )
    db = tmp_path / "kb"
    outputs: list[str] = []
    with KnowledgeBase.build(root, db=db, model="hash", workers=1) as kb:
        for q in ("STRIPE_SECRET_KEY", "access_key_id", "billing key rotated", STRIPE, AWS):
            for mode in ("hybrid", "keyword", "semantic"):
                outputs.append(json.dumps([h.model_dump() for h in hits_of(kb, q, k=10, mode=mode)]))
        assert any("STRIPE_SECRET_KEY" in o for o in outputs)  # the key name is searchable, not the value
        # every text column of every catalogue table
        for table in kb.catalogue.tables():
            cols = [
                r[0]
                for r in kb.catalogue.query(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND data_type = 'VARCHAR'",
                    [table],
                )
            ]
            for col in cols:
                for (v,) in kb.catalogue.query(f'SELECT "{col}" FROM {table} WHERE "{col}" IS NOT NULL'):
                    assert STRIPE not in v and AWS not in v, (table, col)
        # every stored document of the keyword index (stored compressed, so read it back)
        with kb.snapshot() as snap:
            stored = snap.keyword.fetch([r[0] for r in kb.catalogue.query("SELECT chunk_id FROM chunks")])
        assert stored and all(STRIPE not in d.text and AWS not in d.text for d in stored.values())
    runner = CliRunner()
    env = {"KB_MODEL": "hash"}
    for args in (
        ["search", "STRIPE_SECRET_KEY"],
        ["search", "aws key", "--json"],
        ["search", STRIPE, "--mode", "keyword"],
    ):
        res = runner.invoke(_cli(), [*args, "--db", str(db)], env=env)
        assert res.exit_code == 0, res.output
        outputs.append(res.output)
    for o in outputs:
        assert STRIPE not in o and AWS not in o
    # and every raw byte under the KB directory (Chroma's SQLite and segments included)
    files = [p for p in db.rglob("*") if p.is_file()]
    assert any("chroma" in p.parts for p in files)
    for p in files:
        data = p.read_bytes()
        assert STRIPE.encode() not in data and AWS.encode() not in data, p
        assert STRIPE.encode("utf-16-le") not in data and AWS.encode("utf-16-le") not in data, p


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _cli():
    from kb.cli import cli

    return cli


def test_cli_search_json_and_readable(tiny_kb):
    db = str(tiny_kb.settings.db)
    tiny_kb.close()
    runner = CliRunner()
    res = runner.invoke(
        _cli(), ["search", "review_threshold", "--db", db, "--json", "-k", "2"], env={"KB_MODEL": "hash"}
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["embedded_share"] == 1.0 and data["generation"] >= 1 and data["notice"] is None
    assert data["hits"][0]["path"] == PROD and data["hits"][0]["key_path"] == "fraud.review_threshold"
    assert set(data["hits"][0]) == {
        "path",
        "score",
        "line_start",
        "line_end",
        "key_path",
        "snippet",
        "format",
        "answer",
    }
    first_answer = data["hits"][0]["answer"][0]
    assert first_answer["key_path"] == "fraud.review_threshold" and first_answer["value"] == "0.85"
    res = runner.invoke(
        _cli(), ["search", "review_threshold", "--db", db, "--format", "yaml"], env={"KB_MODEL": "hash"}
    )
    assert res.exit_code == 0
    first = res.output.splitlines()[0]
    assert re.match(rf"{re.escape(PROD)}:\d+-\d+\s+fraud\.review_threshold\s+\d+\.\d+", first)
    assert "review_threshold: 0.85" in res.output


def test_cli_errors_exit_2_with_the_fix(tiny_kb):
    db = str(tiny_kb.settings.db)
    tiny_kb.close()
    runner = CliRunner()
    res = runner.invoke(_cli(), ["search", "fraud", "--db", db], env={"KB_MODEL": "hash:8"})
    assert res.exit_code == 2 and "--model hash:64" in res.output
    res = runner.invoke(_cli(), ["search", "fraud", "--db", db, "--format", "hcl"], env={"KB_MODEL": "hash"})
    assert res.exit_code == 2 and "Unknown format" in res.output


def test_cli_help_ends_with_an_example():
    res = CliRunner().invoke(_cli(), ["search", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output and "--mode" in res.output


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def test_line_key_paths_per_format():
    yaml_lines = ["fraud:", "  rules:", "    - name: big", "      limit: 5", "  review_threshold: 0.8"]
    assert line_key_paths("yaml", yaml_lines, "fraud") == [
        "fraud",
        "fraud.rules",
        "fraud.rules.name",
        "fraud.rules.limit",
        "fraud.review_threshold",
    ]
    assert line_key_paths("yaml", ["    image: x", "  web:", "    image: y"], "services")[-1] == "services.web.image"
    assert line_key_paths("json", ['  "db": {', '    "pool": 5', "  },"], "db") == ["db", "db.pool", "db"]
    assert line_key_paths("toml", ["[tool.kb]", "model = 'x'"], "tool.kb") == ["tool.kb", "tool.kb.model"]
    assert line_key_paths("ini", ["[tokens]", "access_token_ttl = 15m"], "tokens") == [
        "tokens",
        "tokens.access_token_ttl",
    ]
    assert line_key_paths("dotenv", ["# c", "export A_B=1"], "") == [None, "A_B"]
    assert line_key_paths("markdown", ["## Setup", "text", "## Usage"], "Guide > Setup") == [
        "Guide > Setup",
        "Guide > Setup",
        "Guide > Usage",
    ]


def test_query_analysis():
    assert query_identifiers("Where is DATABASE_URL set?") == ["database_url"]
    assert is_literal_query("`--set`") and is_literal_query("`KUBE_HOSTS`") and not is_literal_query("is `--set` used?")
    assert query_identifiers("What timeout does the gateway apply to the payments API?") == []
    assert is_literal_query("payments.retry.max_attempts") and not is_literal_query("fraud review threshold")


# ---------------------------------------------------------------------------------------------
# The real model on the bundled sample
# ---------------------------------------------------------------------------------------------


@pytest.mark.model
def test_real_model_on_the_sample_corpus(tmp_path):
    sample = REPO / "kb" / "sample"
    if not (sample / PROD).exists():
        pytest.skip("the sample corpus is not there")
    lines = (sample / PROD).read_text().splitlines()
    want = next(i for i, ln in enumerate(lines, 1) if ln.strip().startswith("review_threshold:"))
    with KnowledgeBase.build(sample, db=tmp_path / "kb", workers=1) as kb:
        hits = hits_of(kb, "Where is the fraud-review threshold for payments in production?", k=3)
        ours = [h for h in hits if h.path == PROD]
        assert ours, [h.path for h in hits]
        assert ours[0].line_start <= want <= ours[0].line_end
        hits = hits_of(kb, "DATABASE_URL", k=3)
        env = [h for h in hits if Path(h.path).name.startswith(".env")]
        assert env, [h.path for h in hits]
        text = (sample / env[0].path).read_text().splitlines()
        assert any(text[i - 1].startswith("DATABASE_URL=") for i in range(env[0].line_start, env[0].line_end + 1))
        assert kb.ingest(sample).chunks_embedded == 0


def test_line_key_paths_spell_keys_as_the_parsers_do():
    """Quoted keys (dots, slashes, spaces) use kb.keypaths' quoting, in every format that has them."""
    assert line_key_paths("yaml", ["labels:", '  "app.kubernetes.io/name": web', "  tier: front"], "labels") == [
        "labels",
        'labels["app.kubernetes.io/name"]',
        "labels.tier",
    ]
    assert line_key_paths("json", ['"a.b": {', '  "c": 1'], "") == ['["a.b"]', '["a.b"].c']
    assert line_key_paths("ini", ["[my section]", "key = 1"], "") == ['["my section"]', '["my section"].key']
    assert line_key_paths("toml", ['[servers."eu.west"]', "ip = '1'"], "") == [
        'servers["eu.west"]',
        'servers["eu.west"].ip',
    ]


def test_one_split_key_path():
    """kb.keypaths is the only definition (the search package re-uses it)."""
    import kb.search
    from kb.keypaths import split_key_path

    assert split_key_path('a.b[0]["c.d"]') == ["a", "b", 0, "c.d"]
    assert not hasattr(kb.search, "split_key_path")


@pytest.mark.parametrize(
    "query, idents",
    [
        ("How do I add a small member, e.g. when a third zone is down?", []),
        ("i.e. the same as a.k.a. the other one", []),
        ("May a before/after-event action define both?", []),
        ("Does TCP/IP matter here?", []),
        ("Where is services/payments/config/production.yaml used?", ["services/payments/config/production.yaml"]),
        ("Which pods carry app.kubernetes.io/name?", ["app.kubernetes.io/name"]),
        ("services/payments", ["services/payments"]),
        ("What does the canary pass as `-labelname` by default?", ["-labelname"]),
        ("Where does `--kubelet-service` point, and is `replicas` set?", ["--kubelet-service", "replicas"]),
        ("Is `the` `42` quoted?", []),
        ("Does `docker compose up` start `worker`?", ["worker"]),
        ("Is `--set` like `FOO=bar`, `${PORT}` or `_JAVA_OPTIONS`?", ["--set", "foo", "port", "_java_options"]),
        ("it`s `replicas` and `image`", ["replicas", "image"]),
        ("What is GOTRACEBACK set to in the images?", ["gotraceback"]),  # capitals, six letters on
        ("Does the HTTP API of NGINX use TLS on the CPU?", []),  # acronyms
        ("WHERE IS THE DATABASE PASSWORD CONFIGURED?", []),  # shouted
    ],
)
def test_prose_in_questions_is_not_an_identifier(query, idents):
    """Abbreviations and words joined by a slash earn no exact-match boost (and abbreviations no
    BM25 term): a chunk that merely says "e.g." must not outrank the answer."""
    from kb.search.query import ParsedQuery

    assert query_identifiers(query) == idents
    terms = ParsedQuery.parse(query).terms
    assert not {"e.g", "e", "g", "i.e", "a.k.a", "k"} & set(terms)


def test_hits_of_a_long_file_do_not_fill_the_list(tiny_kb):
    """File evidence lifts a file's best chunk only: the first hits come from several files."""
    hits = hits_of(tiny_kb, "payments service configuration retry database", k=5)
    assert len({h.path for h in hits}) >= 3
