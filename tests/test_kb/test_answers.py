"""Answer lines: within a hit, the lines that answer the query, in every format; list questions get
each file once; answers never show a secret; the real model end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb import KnowledgeBase
from kb.search.answers import pick_answers
from kb.search.query import ParsedQuery

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "kb" / "sample"


def answer(
    fmt: str, text: str, query: str, key_path: str = ""
) -> tuple[list[tuple[int, str | None, str | None]], int, int]:
    """(answers as (1-based line, key path, value), first line, last line) of ``text`` for ``query``."""
    found = pick_answers(fmt, text.split("\n"), key_path, ParsedQuery.parse(query))
    return [(i + 1, p, v) for i, p, v in found.lines], found.lo + 1, found.hi + 1


RETRY_YAML = """\
payments:
  capture_mode: manual
  retry:
    max_attempts: 3
    initial_backoff: 250ms
    max_backoff: 10s
  settlement:
    cron: "0 2 * * *"
"""


def test_yaml_a_matched_mapping_answers_with_its_leaf_values():
    got, lo, hi = answer("yaml", RETRY_YAML, "how long does the payment service retry")
    assert got == [
        (4, "payments.retry.max_attempts", "3"),
        (5, "payments.retry.initial_backoff", "250ms"),
        (6, "payments.retry.max_backoff", "10s"),
    ]
    assert (lo, hi) == (1, 6)  # the keys above it that the question names ("payment"), then the values


def test_the_hit_is_named_by_the_matched_mapping_not_its_first_leaf():
    found = pick_answers("yaml", RETRY_YAML.split("\n"), "payments", ParsedQuery.parse("payment retry"))
    assert found.key_path == "payments.retry"


def test_yaml_a_leaf_answers_with_its_value_and_not_its_neighbours():
    got, lo, hi = answer("yaml", RETRY_YAML, "what is the settlement cron schedule")
    assert got[0] == (8, "payments.settlement.cron", "0 2 * * *")
    assert lo <= 8 <= hi


def test_yaml_a_list_item_answers_with_its_fields():
    text = """\
containers:
  - name: server
    env:
      - name: HUGGING_FACE_HUB_TOKEN
        valueFrom:
          secretKeyRef:
            name: hf-secret
            key: token
      - name: OTHER
        value: x
"""
    got, lo, hi = answer("yaml", text, "Where does the pod get HUGGING_FACE_HUB_TOKEN from?")
    lines = [g[0] for g in got]
    assert lines[0] == 4 and 7 in lines and 8 in lines
    assert 9 not in lines and 10 not in lines  # the next item is not part of it
    assert lo == 4 and hi == 8


def test_yaml_a_helm_param_comment_points_at_the_value_line_and_is_shown():
    text = """\
## @param arbiter.enabled Enable deploying the arbiter
##   https://docs.example.com/arbiter
arbiter:
  ## @param arbiter.enabled Enable deploying the arbiter
  enabled: false
  ## @param arbiter.hostAliases Add deployment host aliases
  hostAliases: []
"""
    got, lo, hi = answer("yaml", text, "how do I enable deploying the arbiter member", "arbiter")
    assert got[0] == (5, "arbiter.enabled", "false")
    assert lo <= 4  # the @param line that documents it is in the hit
    assert all(g[0] != 7 for g in got)


def test_json_keys_values_and_parent_objects():
    text = """\
{
  "database": {
    "host": "orders-db",
    "maxConnections": 40,
    "timeoutMs": 5000
  }
}"""
    got, _, _ = answer("json", text, "how many connections may the orders database open at most")
    assert got[0] == (4, "database.maxConnections", "40")
    got, lo, hi = answer("json", text, "database settings")
    assert [g[0] for g in got] == [3, 4, 5] and lo == 2


@pytest.mark.parametrize(
    ("fmt", "text", "query", "want"),
    [
        (
            "dotenv",
            "APP_ENV=prod\nTZ=Europe/Berlin\nLOG_LEVEL=info\n",
            "which timezone do the containers use",
            (2, "TZ", "Europe/Berlin"),
        ),
        (
            "dotenv",
            "# inherited from the shell\nFOO=bar\nVAR_FROM_SHELL\n",
            "variable from shell",
            (3, "VAR_FROM_SHELL", None),
        ),
        (
            "properties",
            "spring.datasource.url=jdbc:mysql://db:3306/app\nserver.port=8080\n",
            "what port does the server listen on",
            (2, "server.port", "8080"),
        ),
        (
            "ini",
            "[server]\nhost = 0.0.0.0\nport = 8080\n\n[log]\nlevel = debug\n",
            "how verbose is logging level",
            (6, "log.level", "debug"),
        ),
        (
            "toml",
            '[hooks.apply.pre]\ncommand = "echo"\nscript = "pre.sh"\n',
            "which script runs before apply",
            (3, "hooks.apply.pre.script", "pre.sh"),
        ),
        (
            "dockerfile",
            "FROM rust:1.80 AS build\nRUN cargo build \\\n    --release\nEXPOSE 8080\n",
            "which port does the container expose",
            (4, None, "8080"),
        ),
    ],
)
def test_flat_table_and_dockerfile_formats_answer_with_the_key_line(fmt, text, query, want):
    got, lo, hi = answer(fmt, text, query)
    line, key, value = want
    assert got[0][0] == line and got[0][2] == value
    if key is not None:
        assert got[0][1] == key
    assert lo <= line <= hi


GENERATE_CONFIG = """\
#!/bin/bash
ACL_ANYONE=disallow

# Garbage collector cleanup
# Deleted domains and mailboxes are moved to /var/vmail/_garbage
# How long should objects remain in the garbage until they are being deleted? (value in minutes)
MAILDIR_GC_TIME=7200

echo "Done"
"""


def test_text_a_comment_block_points_at_the_setting_below_it(monkeypatch):
    """Plain text (a shell script writing a config's defaults): the comment that matches the
    question documents the assignment below it, which answers with its value; read as prose, the
    comment itself was the answer and the value was not shown."""
    from kb.search import answers

    q = "How long do deleted mailboxes sit in the garbage before they are removed?"
    got, lo, hi = answer("text", GENERATE_CONFIG, q)
    assert got[0] == (7, "MAILDIR_GC_TIME", "7200")
    assert lo <= 7 <= hi
    got, lo, hi = answer("text", "server.port: 8080\nThis sentence: is prose, not a setting\n", "server port")
    assert got[0][0] == 1 and got[0][2] == "8080"
    got, lo, hi = answer("text", "DATA_DIR=/var/vmail\nURL http://x:80/a\nif [ $a == b ]; then\n", "data dir")
    assert got[0] == (1, "DATA_DIR", "/var/vmail")  # a path is a value; a URL or a test is not a setting
    from kb.search.answers import read_units

    assert [u.kind for u in read_units("text", ["URL http://x:80/a", "if [ $a == b ]; then"], None)] == ["prose"] * 2
    monkeypatch.setattr(answers, "TEXT_SETTINGS", False)
    got, lo, hi = answer("text", GENERATE_CONFIG, q)
    assert hi < 7  # the comment lines, without the value


HCL = """\
# The GKE cluster used for pull-request staging deployments.
resource "google_container_cluster" "prs_gke_cluster" {
  name                = "prs-gke-cluster"
  location            = "us-central1"
  deletion_protection = true
  tags = {
    team = "ci"
  }
}

variable "filepath_manifest" {
  type        = string
  description = "Path to the Kubernetes resources"
  default     = "../kustomize/"
}
"""


def test_hcl_a_block_answers_with_its_attributes_and_an_attribute_with_its_value():
    """HCL's blocks in braces: a matched block shows its attributes (a variable's ``default``); a
    matched attribute is the answer; key paths as the parser spells them."""
    import kb.ingest.parsers  # noqa: F401  registers the HCL parser, whose traits declare its layout

    got, lo, hi = answer("hcl", HCL, "Is deletion protection enabled on the cluster?")
    assert got[0] == (5, "resource.google_container_cluster.prs_gke_cluster.deletion_protection", "true")
    got, lo, hi = answer("hcl", HCL, "What path does filepath_manifest default to?")
    assert (14, "variable.filepath_manifest.default", "../kustomize/") in got
    assert lo == 11 and hi >= 14
    from kb.linepaths import line_key_paths

    paths = line_key_paths("hcl", HCL.split("\n"), None)
    assert paths[0] is None  # the comment
    assert paths[1] == "resource.google_container_cluster.prs_gke_cluster"
    assert paths[6] == "resource.google_container_cluster.prs_gke_cluster.tags.team"
    assert paths[7] == "resource.google_container_cluster.prs_gke_cluster"  # the object's closing brace
    assert paths[11] == "variable.filepath_manifest.type"
    # a comment ends a line only outside quotes: a URL's // and a # in a string stay in the value
    from kb.linepaths import brace_lines

    _, kinds = brace_lines(['module "x" { # pinned', '  source = "https://h/a#ref" // why', "}"], "")
    assert kinds[:2] == [("block", "module x", ""), ("attr", "source", '"https://h/a#ref"')]
    # a heredoc's text, a list spread over lines and a /* */ comment leave the blocks as they were
    lines = [
        'resource "aws_iam_role" "r" {',
        "  policy = <<EOF",
        '{"Statement": [',
        "]}",
        "PORT=8080",
        "EOF",
        '  cidr_blocks = ["a",',
        '    "b"]',
        "  /* old",
        "     name = 2 */",
        '  name = "x"',
        "}",
    ]
    paths, kinds = brace_lines(lines, "")
    assert paths[2:6] == ["resource.aws_iam_role.r.policy"] * 4 and kinds[2:6] == [None] * 4
    assert kinds[6] == ("open", "cidr_blocks", "") and kinds[8:10] == [None, None]
    assert paths[10] == "resource.aws_iam_role.r.name"
    # a chunk that starts mid-block at an attribute named like the block's label keeps the label
    assert brace_lines(['  bucket = "x"'], "resource.aws_s3_bucket.bucket")[0] == [
        "resource.aws_s3_bucket.bucket.bucket"
    ]
    # a chunk that starts at its own block: its key path is not repeated
    assert line_key_paths("hcl", HCL.split("\n")[10:12], "variable.filepath_manifest") == [
        "variable.filepath_manifest",
        "variable.filepath_manifest.type",
    ]


@pytest.mark.parametrize(
    ("fmt", "line", "want"),
    [
        ("yaml", "timeout: 30{pad}s", "30{pad}s"),
        ("json", '"timeout": "30{pad}s",', "30{pad}s"),
        ("text", "TIMEOUT=30{pad}s;", "30{pad}s"),
        ("ini", "timeout = 30{pad}s", "30{pad}s"),
        ("dotenv", "TIMEOUT=30{pad}s", "30{pad}s"),
        ("dockerfile", "ENV TIMEOUT 30{pad}s", "TIMEOUT 30{pad}s"),
        ("hcl", "timeout = 30{pad}s", "30{pad}s"),
        ("markdown", "## Timeout{pad}##", None),
    ],
)
def test_a_value_padded_with_a_long_run_of_blanks_is_read_like_any_other(fmt, line, want):
    """A hostile line (50,000 blanks inside a value, or before a heading's closing hashes) is read
    like any other. The value patterns once ended ``(.*?)\\s*,?\\s*$``, which backtracks cubically on
    such a run: this line took hours."""
    import kb.ingest.parsers  # noqa: F401  HCL's traits

    pad = " " * 50_000
    found = pick_answers(fmt, [line.format(pad=pad)], None, ParsedQuery.parse("timeout"))
    if want is None:
        from kb.search.answers import read_units

        assert read_units(fmt, [line.format(pad=pad)], None)[0].value == "Timeout"
    else:
        assert found.lines[0][2] == _clip(want.format(pad=pad))


def _clip(v: str) -> str:
    from kb.search.answers import VALUE_CHARS

    return v if len(v) <= VALUE_CHARS else v[: VALUE_CHARS - 1] + "…"


def test_a_kb_remembers_a_plugin_formats_traits_for_a_search_that_loads_no_parser(tmp_path):
    """HCL is declared by its parser, like a plugin; a process that only searches never imports it.
    The KB saves the traits in HEAD.json, and a search declares them before reading answers; a
    saved value kb cannot take is left at its default."""
    import json

    from kb import formats

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "main.tf").write_text(HCL)
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1):
        pass
    saved = json.loads((tmp_path / "kb" / "HEAD.json").read_text())["formats"]
    assert saved["hcl"]["line_paths"] == "braces"
    assert "yaml" not in saved  # built-in formats are declared by kb itself
    table = formats._DECLARED
    formats._DECLARED = {k: v for k, v in table.items() if k != "hcl"}  # as in a process with no parser
    formats._version += 1
    try:
        assert formats.traits("hcl") == formats.Traits()
        with KnowledgeBase.open(tmp_path / "kb", read_only=True, model="hash") as kb:
            top = kb.search_result("is deletion protection enabled", k=1, mode="keyword").hits[0]
        assert formats.traits("hcl").line_paths == "braces"
        assert top.answer[0].key_path == "resource.google_container_cluster.prs_gke_cluster.deletion_protection"
        assert top.answer[0].value == "true" and top.line_start <= 5 <= top.line_end
        formats.declare_saved({"odd": {"line_paths": "nonsense", "structured": "yes", "prose": True, "new": 1}})
        assert formats.traits("odd") == formats.Traits(prose=True)
    finally:
        formats._DECLARED = table
        formats._version += 1  # views computed meanwhile compute again


def test_dockerfile_a_continued_instruction_shows_its_continuation():
    text = 'FROM rust:1.80\nRUN cargo build \\\n    --target wasm32-wasi \\\n    --release\nCMD ["app"]\n'
    got, lo, hi = answer("dockerfile", text, "how is the wasm target built with cargo")
    assert got[0][0] == 2 and "--target wasm32-wasi" in (got[0][2] or "")
    assert (lo, hi) == (2, 4)


def test_markdown_a_sentence_a_table_row_and_a_bullets_lead_in():
    text = """\
# Deploying

Each example must include its own README covering:

- Prerequisites
- Cleanup commands to remove all resources
- The last validated version

| Parameter | Description | Default |
| --- | --- | --- |
| `replicaCount` | Number of replicas | `1` |
| `image.tag` | Image tag | `latest` |
"""
    got, lo, hi = answer("markdown", text, "what cleanup commands must an example document", "Deploying")
    assert got[0][0] == 6 and lo == 3  # the bullet, with the sentence that introduces the list
    got, lo, hi = answer("markdown", text, "how many replicas by default", "Deploying")
    assert got[0][0] == 11 and got[0][2] == "`replicaCount` | Number of replicas | `1`"  # the whole row


def test_markdown_a_long_paragraph_answers_with_its_best_sentence():
    para = (
        "This chart bootstraps a deployment on a cluster using the package manager. "
        + "It has many options that are documented in the table below and in the values file. " * 2
        + "To report a vulnerability, open a private security advisory on the repository. "
        + "Contributions are welcome."
    )
    got, _, _ = answer("markdown", f"# About\n\n{para}\n", "how do I report a security vulnerability", "About")
    assert (
        got[0][0] == 3 and got[0][2] == "To report a vulnerability, open a private security advisory on the repository."
    )


def test_a_chunk_with_no_matching_word_still_answers_with_its_first_value():
    got, lo, hi = answer("yaml", "# settings\nserver:\n  port: 8080\n", "zzz qqq")
    assert got and lo <= got[0][0] <= hi


# ---------------------------------------------------------------------------------------------
# Through search
# ---------------------------------------------------------------------------------------------


def test_hits_carry_answer_lines_that_their_line_range_covers(tiny_kb):
    hits = tiny_kb.search("review_threshold", k=3, as_frame=False)
    for h in hits:
        assert h.answer, h
        assert all(h.line_start <= a.line <= h.line_end for a in h.answer)
    top = hits[0].answer[0]
    assert (top.key_path, top.value) == ("fraud.review_threshold", "0.85")


def test_a_which_question_returns_each_file_once(tmp_path):
    tree = tmp_path / "tree"
    for name in ("a", "b", "c"):
        d = tree / name
        d.mkdir(parents=True)
        (d / "compose.yaml").write_text(
            "services:\n  app:\n    image: app\n    depends_on:\n      db:\n        condition: service_healthy\n"
            "  db:\n    image: postgres\n    healthcheck:\n      test: pg_isready\n"
        )
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        plain = kb.search_result("app depends_on db condition service_healthy healthcheck", k=6)
        assert not plain.grouped
        result = kb.search_result("Which stacks wait for their database's health check?", k=6)
        assert result.grouped
        paths = [h.path for h in result.hits]
        assert sorted(paths) == ["a/compose.yaml", "b/compose.yaml", "c/compose.yaml"]
        every = kb.search_result("service_healthy", all_files=True)
        assert every.grouped and len({h.path for h in every.hits}) == len(every.hits) == 3


def test_answers_never_show_a_secret(tmp_path):
    secret = "Zq8vN3xLr5TgW2mKp9Yd"
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.yaml").write_text(f"database:\n  host: db\n  user: app\n  password: {secret}\n  port: 5432\n")
    (tree / ".env").write_text(f"DB_HOST=db\nDB_PASSWORD={secret}\n")
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        for q in ("database password", "DB_PASSWORD", "what are the database credentials"):
            result = kb.search_result(q, k=5)
            assert result.hits
            dumped = result.model_dump_json()
            assert secret not in dumped and secret[:8] not in dumped
            assert any(a.key_path in ("database.password", "DB_PASSWORD") for h in result.hits for a in h.answer)


@pytest.mark.model
def test_real_model_answers_the_retry_question_with_its_values(tmp_path):
    with KnowledgeBase.build(SAMPLE, db=tmp_path / "kb", workers=1) as kb:
        top = kb.search_result("how long does the payment service retry", k=3).hits[0]
        assert top.path.startswith("services/payments/config/")
        lines = (SAMPLE / top.path).read_text().splitlines()
        keys = ("max_attempts", "initial_backoff", "max_backoff")
        want = {i for i, ln in enumerate(lines, 1) if ln.strip().split(":")[0] in keys}
        got = {a.line for a in top.answer}
        assert want <= got, top
        assert top.line_start <= min(got) and max(got) <= top.line_end
        assert all(a.value for a in top.answer)


# ---------------------------------------------------------------------------------------------
# Answers that run past the chunk: its neighbours in the file are read with it
# ---------------------------------------------------------------------------------------------


def _chunk(ordinal: int, start: int, body: list[str], key_path: str, fmt: str = "yaml", path: str = "a.yaml"):
    from kb.keyword import ChunkDoc

    text = f"{path} | {key_path}\n" + "\n".join(body)
    return ChunkDoc(f"{path}#{ordinal}", path, fmt, key_path, start, start + len(body) - 1, text)


def test_a_list_item_cut_by_the_chunks_end_answers_with_its_fields_from_the_next_chunk():
    from kb.search.snippets import make_hit

    before = _chunk(0, 1, ["spec:", "  containers:", "    - name: web", "      env:"], "spec")
    own = _chunk(
        1, 5, ["        - name: LOG_LEVEL", "          value: info", "        - name: HF_TOKEN"], "spec.containers.env"
    )
    after = _chunk(
        2,
        8,
        [
            "          valueFrom:",
            "            secretKeyRef:",
            "              name: hf-secret",
            "              key: token",
            "    volumes: []",
        ],
        "spec.containers.env",
    )
    q = ParsedQuery.parse("Where does the pod get HF_TOKEN from?")
    alone = make_hit(own, 1.0, q)
    assert [a.line for a in alone.answer] == [7]  # the chunk ends at the item's name
    hit = make_hit(own, 1.0, q, around=(before, after))
    lines = [a.line for a in hit.answer]
    assert lines[0] == 7 and 10 in lines and 11 in lines  # secretKeyRef name and key, past the chunk
    assert 12 not in lines  # the next mapping is not part of the item
    assert hit.line_start <= 7 and hit.line_end >= 11
    assert hit.path == "a.yaml" and "hf-secret" in hit.snippet


def test_neighbour_lines_take_their_key_paths_from_their_own_chunk():
    from kb.search.snippets import make_hit

    # JSON: the chunk before sits deeper than the chunk found; reading the joined text from the
    # first chunk's key path alone would misname the found chunk's keys
    before = _chunk(
        0,
        1,
        ['      "command": {', '        "type": "string"', "      }", "    }", "  },"],
        "definitions.hookCommand.properties",
        "json",
        "c.json",
    )
    own = _chunk(
        1,
        6,
        ['  "hook": {', '    "description": "Commands run before and after an event"', "  }"],
        "definitions",
        "json",
        "c.json",
    )
    hit = make_hit(own, 1.0, ParsedQuery.parse("commands run before an event"), around=(before, None))
    assert hit.answer[0].line == 7
    assert hit.answer[0].key_path == "definitions.hook.description"
    assert hit.key_path == "definitions.hook.description"


def test_a_tie_between_the_chunk_and_its_neighbour_stays_in_the_chunk_found():
    from kb.search.snippets import make_hit

    before = _chunk(0, 1, ["cache:", "  timeout: 30s"], "cache")
    own = _chunk(1, 3, ["http:", "  timeout: 10s"], "http")
    hit = make_hit(own, 1.0, ParsedQuery.parse("timeout"), around=(before, None))
    assert hit.answer[0].line == 4 and hit.answer[0].value == "10s"  # first: the chunk's own line
    assert hit.key_path == "http.timeout"


def test_search_reads_each_hits_neighbouring_chunks_from_the_index(tmp_path):
    from kb.search import stores

    tree = tmp_path / "tree"
    tree.mkdir()
    lines = [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "spec:",
        "  template:",
        "    spec:",
        "      containers:",
        "        - name: web",
        "          env:",
    ]
    for i in range(40):
        lines += [
            f"            - name: VAR_{i:02d}",
            "              valueFrom:",
            "                secretKeyRef:",
            f"                  name: secret-{i:02d}",
            f"                  key: key-{i:02d}",
        ]
    (tree / "deploy.yaml").write_text("\n".join(lines) + "\n")
    (tree / "long.json").write_text('{"blob": "' + " ".join(f"word{i}" for i in range(3000)) + '"}\n')
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:
        spans = kb.sql(
            "SELECT chunk_id, line_start, line_end FROM chunks WHERE path = 'deploy.yaml' ORDER BY ordinal"
        ).values.tolist()
        assert len(spans) >= 4
        long_ids = [r[0] for r in kb.sql("SELECT chunk_id FROM chunks WHERE path = 'long.json'").values.tolist()]
        assert len(long_ids) >= 2  # one long line split into several chunks
        with kb.snapshot() as snap:
            st = stores.open_stores(snap, kb._resolved(snap), None)
            docs = stores.fetch_chunks(st, [spans[0][0], spans[2][0], spans[-1][0], *long_ids])
            around = stores.neighbour_chunks(st, list(docs.values()))
        first, middle, last = (around[spans[i][0]] for i in (0, 2, -1))
        assert first[0] is None and first[1] is not None and first[1].chunk_id == spans[1][0]
        assert middle[0] is not None and middle[1] is not None
        assert (middle[0].chunk_id, middle[1].chunk_id) == (spans[1][0], spans[3][0])
        assert middle[0].line_end < spans[2][1] and middle[1].line_start > spans[2][2]
        assert last[1] is None
        assert all(cid not in around for cid in long_ids)  # chunks of one line have no line neighbours
        # through search: every hit's answers lie within its line range
        for h in kb.search_result("Where does the pod get VAR_07 from?", k=5).hits:
            assert h.answer and all(h.line_start <= a.line <= h.line_end for a in h.answer)
