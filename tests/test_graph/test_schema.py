"""Schema choice (map, $schema, Helm, catalog) and ajv-compatible validation, offline."""

from __future__ import annotations

import json

import pytest

from kb.errors import ConfigError


def test_schema_map_captures_name():
    from kb.graph.schema import SchemaMap, parse_schema_map

    m = SchemaMap(parse_schema_map(["src/test/{name}/**=src/schemas/json/{name}.json"]))
    assert m.match("src/test/foo-1.0/a/b.json") == ("src/schemas/json/foo-1.0.json", "src/test/{name}/**")
    assert m.match("src/other/x.json") is None
    bare = SchemaMap(parse_schema_map(["*.flags.json=schemas/flags.json"]))
    assert bare.match("deep/dir/a.flags.json")[0] == "schemas/flags.json"


@pytest.mark.parametrize("bad", ["no-equals", "=schema.json", "glob/**=", "a/{name}/x=s/{other}.json", "a/{1x}=s.json"])
def test_schema_map_errors_say_how_to_write_it(bad):
    from kb.graph.schema import parse_schema_map

    with pytest.raises(ConfigError):
        parse_schema_map([bad])


def _validate(tree, build_kb, files, **overrides):
    from kb.graph.rules import validate

    cat, settings = build_kb(tree(files), **overrides)
    return [f for f in validate(cat, settings) if f.rule == "schema-violation"], cat


DRAFT4 = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "type": "object",
    "properties": {"kind": {"const": "a"}, "id": {"type": "string", "pattern": "^(?<p>[a-z]+)-\\d+$"}},
}


def test_draft4_honours_const_and_ecma_named_groups_like_ajv(tree, build_kb):
    found, _ = _validate(
        tree,
        build_kb,
        {
            "s.json": json.dumps(DRAFT4),
            "ok.json": json.dumps({"$schema": "./s.json", "kind": "a", "id": "ab-12"}),
            "bad.json": json.dumps({"$schema": "./s.json", "kind": "b", "id": "AB"}),
        },
    )
    assert sorted((f.path, f.line) for f in found) == [("bad.json", 1), ("bad.json", 1)]
    assert any("'a' was expected" in f.message for f in found)


def test_formats_are_checked_as_ajv_formats_does(tree, build_kb):
    schema = {
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
            "color": {"type": "string", "format": "color"},
        },
    }
    found, _ = _validate(
        tree,
        build_kb,
        {
            "s.json": json.dumps(schema),
            "ok.yaml": "# yaml-language-server: $schema=./s.json\nat: '2024-01-02T10:00:00Z'\nsite: https://x.io\ncolor: nope\n",
            "bad.yaml": "# yaml-language-server: $schema=./s.json\nat: '2024-01-02 25:00'\nsite: not a uri\n",
        },
    )
    assert sorted((f.path, f.line) for f in found) == [("bad.yaml", 2), ("bad.yaml", 3)]


def test_schema_map_wins_and_lines_point_at_the_instance(tree, build_kb):
    schema = {
        "type": "object",
        "properties": {"server": {"type": "object", "properties": {"port": {"type": "integer"}}}},
    }
    found, _ = _validate(
        tree,
        build_kb,
        {
            "schemas/svc.json": json.dumps(schema),
            "svc/prod.yaml": "name: x\nserver:\n  host: a\n  port: '80'\n",
        },
        schema_map=["svc/*.yaml=schemas/svc.json"],
    )
    assert [(f.path, f.line, f.target) for f in found] == [("svc/prod.yaml", 4, "schemas/svc.json")]
    assert found[0].message.startswith("server.port: '80' is not of type 'integer'")


def test_remote_refs_make_a_schema_unusable_not_a_violation(tree, build_kb):
    from kb.graph.rules import validate

    schema = {"$ref": "https://unreachable.example/schema.json"}
    cat, settings = build_kb(tree({"s.json": json.dumps(schema), "a.json": json.dumps({"$schema": "./s.json"})}))
    found = validate(cat, settings)
    assert not [f for f in found if f.rule == "schema-violation"]
    notes = json.loads(cat.get_meta("validate_notes"))
    assert notes and "cannot be used offline" in notes[0]


def test_url_schema_resolves_through_id_and_catalog(tree, build_kb):
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "https://json.example.org/tool.json",
        "type": "object",
        "required": ["name"],
    }
    catalog = {
        "schemas": [
            {"name": "tool", "fileMatch": ["tool.json", "**/.toolrc"], "url": "https://www.example.org/tool.json"},
            {"name": "web", "fileMatch": ["manifest.json"], "url": "https://json.example.org/tool.json"},
            {"name": "ext", "fileMatch": ["manifest.json"], "url": "https://elsewhere.example/ext.json"},
        ]
    }
    found, _ = _validate(
        tree,
        build_kb,
        {
            "schemas/tool.json": json.dumps(schema),
            "api/catalog.json": json.dumps(catalog),
            "a/tool.json": "{}",  # by catalog fileMatch
            "b/x.json": json.dumps({"$schema": "https://json.example.org/tool.json"}),  # by $schema URL = $id
            "c/manifest.json": "{}",  # two catalog entries: left alone
        },
    )
    assert sorted(f.path for f in found) == ["a/tool.json", "b/x.json"]


def test_helm_values_schema_validates_values_yaml(tree, build_kb):
    found, _ = _validate(
        tree,
        build_kb,
        {
            "chart/Chart.yaml": "apiVersion: v2\nname: c\nversion: 1.0.0\n",
            "chart/values.yaml": "replicas: many\n",
            "chart/values.schema.json": json.dumps({"type": "object", "properties": {"replicas": {"type": "integer"}}}),
        },
    )
    assert [(f.path, f.line) for f in found] == [("chart/values.yaml", 1)]


def test_empty_yaml_is_validated_as_null(tree, build_kb):
    found, _ = _validate(
        tree,
        build_kb,
        {
            "s.json": json.dumps({"type": "object"}),
            "empty.yaml": "# yaml-language-server: $schema=./s.json\n",
        },
    )
    assert [f.path for f in found] == ["empty.yaml"] and "empty" in found[0].message


def test_redacted_secrets_do_not_fail_patterns(tree, build_kb):
    schema = {"type": "object", "properties": {"key": {"type": "string", "pattern": "^sk_live_[A-Za-z0-9]{24}$"}}}
    found, cat = _validate(
        tree,
        build_kb,
        {
            "s.json": json.dumps(schema),
            "a.json": json.dumps({"$schema": "./s.json", "key": "sk_live_" + "aB3dE5gH7jK9mN1pQ3rS5tU7"}),
        },
    )
    assert cat.query("SELECT count(*) FROM findings WHERE rule = 'plaintext-secret'")[0][0] == 1
    assert found == []


def test_a_key_redacted_as_a_secret_does_not_fail_the_key_patterns(tree, build_kb):
    """A password equal to a service's and a volume's name redacts the names too (a real compose
    file, Haxxnet/Compose-Examples' chevereto stack); the volume-name pattern's error is about the
    marker, not the tree. A key that breaks the pattern by itself is still reported."""
    schema = {
        "type": "object",
        "properties": {
            "volumes": {"type": "object", "patternProperties": {"^[a-z_]+$": {}}, "additionalProperties": False}
        },
    }
    stack = (
        "# yaml-language-server: $schema=./s.json\n"
        "services:\n"
        "  chevereto:\n"
        "    image: ghcr.io/chevereto/chevereto:4.4\n"
        "    container_name: chevereto\n"
        "    volumes: ['chevereto:/var/www/html/images']\n"
        "    environment:\n"
        "      CHEVERETO_DB_USER: chevereto\n"
        "      CHEVERETO_DB_PASS: chevereto\n"
        "      CHEVERETO_DB_NAME: chevereto\n"
        "  mariadb:\n"
        "    image: mariadb\n"
        "    environment:\n"
        "      MYSQL_DATABASE: chevereto\n"
        "      MYSQL_USER: chevereto\n"
        "      MYSQL_PASSWORD: chevereto\n"
        "      MARIADB_ROOT_PASSWORD: chevereto\n"
        "volumes:\n"
        "  chevereto: {}\n"
    )
    found, cat = _validate(
        tree, build_kb, {"s.json": json.dumps(schema), "a.yaml": stack, "b.yaml": stack + "  Bad Key!: {}\n"}
    )
    assert cat.query("SELECT count(*) FROM findings WHERE rule = 'plaintext-secret' AND path = 'a.yaml'")[0][0] >= 1
    assert [(f.path, "Bad Key!" in f.message) for f in found] == [("b.yaml", True)]


# ---------------------------------------------------------------------------------------------
# Patterns that backtrack catastrophically (``^(a+)+$``) must not hang `kb validate`
# ---------------------------------------------------------------------------------------------

EVIL = "a" * 40 + "!"


@pytest.mark.slow
def test_kb_validate_finishes_on_a_catastrophic_pattern(tmp_path):
    """The reviewer's repro, end to end: regress alone needs days for this value."""
    import subprocess
    import sys

    from kb.knowledge import KnowledgeBase

    root = tmp_path / "tree"
    root.mkdir()
    schema = {"type": "object", "properties": {"name": {"type": "string", "pattern": "^(a+)+$"}}}
    (root / "s.json").write_text(json.dumps(schema))
    (root / "bad.json").write_text(json.dumps({"$schema": "./s.json", "name": EVIL}))
    (root / "ok.json").write_text(json.dumps({"$schema": "./s.json", "name": "a" * 40}))
    KnowledgeBase.build(root, db=tmp_path / "kb", embed=False, workers=1).close()
    try:
        res = subprocess.run(
            [
                sys.executable,
                "-c",
                "from kb.cli import main; main()",
                "validate",
                "--db",
                str(tmp_path / "kb"),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("kb validate hangs on the pattern ^(a+)+$")
    assert res.returncode == 1, res.stderr
    found = [f for f in json.loads(res.stdout)["findings"] if f["rule"] == "schema-violation"]
    assert [f["path"] for f in found] == ["bad.json"]
    assert "does not match '^(a+)+$'" in found[0]["message"]  # decided exactly, in linear time


@pytest.mark.parametrize(
    "pattern, risky",
    [
        ("^(a+)+$", True),
        ("^(a*)*$", True),
        ("^(a|aa)+$", True),
        ("^(\\w+\\s?)*$", True),
        ("(?:x+y?)+", True),
        ("^(a+){10}$", True),
        ("^((ab)+c)*$", True),
        ("^([a-z]+)$", False),
        ("^(ab)*$", False),
        ("^a+b*c?$", False),
        ("^(https?://)?[a-z.]+$", False),
        ("^([0-9a-f]{4}-){3}$", False),
        ("^[(a+)+]$", False),
        ("^\\(a+\\)+$", False),
    ],
)
def test_nested_quantifiers_are_detected(pattern, risky):
    from kb.graph.schema.ecma_regex import analyse

    assert analyse(pattern)[0] is risky


@pytest.mark.parametrize(
    "pattern, strings",
    [
        ("^(.+)+$", ["ab", "a\rb", "a\u2028b", "a\nb", "", "é😀"]),
        ("^(\\s+x)*$", [" x", "\u00a0x", "\x0bx", "\ufeffx\tx", "\u0085x", "x"]),
        ("^(\\S+|-)+$", ["ab", "a b", "\u00a0", "\x0b", "é"]),
        ("^([\\s,]+|\\w)+$", ["a, b", "a\u3000b", "a;b"]),
        ("^(\\p{L}+|\\d)*$", ["héllo1", "abc!", "Ωmega"]),
        ("^(\\p{Script=Greek}|-)+$", ["αβ", "a-", "-"]),
        ("^(\\u00e9|\\u{1F600}|\\uD83D\\uDE00)+$", ["é", "😀", "e"]),
        ("^([^]+a)+$", ["\na", "x\u2028a", "a", "ab"]),
        ("^(\\cJ|\\x41|\\0)+$", ["\n", "A", "\x00", "B"]),
        ("^([\\b]|\\bx)+$", ["\x08", "x", "b"]),
        ("(a|b)+$", ["ab\n", "ab"]),
        ("^([[:a]+)*$", ["[:a", "abc", "a]", ":a["]),
    ],
)
def test_risky_patterns_on_re2_agree_with_regress(pattern, strings):
    """RE2 runs risky patterns in linear time with ECMA-262 meanings (``.``, ``\\s``, ``\\S``,
    ``$``, ``\\p{..}``, escapes): same verdicts as regress on values regress handles quickly."""
    import regress

    from kb.graph.schema.ecma_regex import ecma_search, shape

    assert shape(pattern)[1] is not None, "expected to run on RE2"
    rx = regress.Regex(pattern, flags="u")
    for s in strings:
        assert ecma_search(pattern, s) is (rx.find(s) is not None), (pattern, s)


def test_risky_pattern_re2_cannot_run_is_reported_unchecked_never_passed(monkeypatch):
    import time

    import kb.graph.schema.ecma_regex as gs

    lookahead = "^(?!b)(a+)+$"  # a lookahead: RE2 cannot run it, the helper process does
    assert gs.shape(lookahead) == (True, None)
    guard = gs.Guard()
    with gs.guarded(guard):
        assert gs.ecma_search(lookahead, "aaaa") is True
        assert gs.ecma_search(lookahead, "aa!") is False
        monkeypatch.setattr(gs, "REGEX_TIME_LIMIT", 0.5)
        t0 = time.perf_counter()
        assert gs.ecma_search(lookahead, EVIL) is None  # out of time: not checked
        assert gs.ecma_search(lookahead, EVIL + "a") is None  # not tried again on a longer value
        assert time.perf_counter() - t0 < 10
        assert gs.ecma_search(lookahead, "aaa") is True  # a shorter value still is
        assert [(c.pattern, c.length) for c in guard.skipped] == [(lookahead, 41), (lookahead, 42)]
        monkeypatch.setattr(gs, "REGEX_TIMEOUT_BUDGET", 1)  # the budget is spent: no more tries
        t0 = time.perf_counter()
        assert gs.ecma_search("^(?!b)(a|a)*$", EVIL) is None
        assert time.perf_counter() - t0 < 0.45  # no helper run: one would take the 0.5 s limit


def test_unchecked_values_are_reported_as_findings(tree, build_kb, monkeypatch):
    import kb.graph.schema.ecma_regex as gs

    monkeypatch.setattr(gs, "REGEX_TIME_LIMIT", 0.05)
    slow = "a" * 26 + "!"  # regress: over a second; finite, so that the test fails, not hangs, without the guard
    schema = {
        "type": "object",
        "properties": {"$schema": {}, "id": {"type": "string", "pattern": "^(?!x)(a+)+$"}},
        "patternProperties": {"^(?!x)(b+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    found, _ = _validate(
        tree,
        build_kb,
        {
            "s.json": json.dumps(schema),
            "ok.json": json.dumps({"$schema": "./s.json", "id": "aaa", "bbb": 1}),
            "bad.json": json.dumps({"$schema": "./s.json", "id": "aa!", "bbb": "one", "c": 1}),
            "evil.json": json.dumps({"$schema": "./s.json", "id": slow, slow.replace("a", "b"): 1}),
        },
    )
    by_path: dict[str, list[str]] = {}
    for f in found:
        by_path.setdefault(f.path, []).append(f.message)
    assert set(by_path) == {"bad.json", "evil.json"}, by_path
    assert len(by_path["bad.json"]) == 3  # id does not match, bbb not an integer, c not allowed
    assert len(by_path["evil.json"]) == 2
    assert all(
        "was not checked against the pattern" in m and "backtrack catastrophically" in m for m in by_path["evil.json"]
    )


def test_common_files_are_validated_out_of_the_box_by_the_builtin_catalogue(tree, build_kb):
    """No schema in the tree: Chart.yaml, workflows, compose files and Kubernetes manifests are
    still checked (kb.schemastore), and a file merely named like a known one is left alone."""
    import json as _json

    files = {
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: [1, 2]\n",
        "charts/web/values.yaml": "replicaCount: 1\n",
        ".github/workflows/ci.yml": "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n",
        "stack/compose.yaml": "services:\n  web:\n    image: nginx\n    ports: ['80:80']\n",
        "k8s/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n    - port: 80\n",
        "k8s/both.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: many\n",
        "k8s/cert.yaml": "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata:\n  name: c\nspec: 3\n",
        "site/template.json": '{"data": 1, "kind": "x", "load": true}',
    }
    found, cat = _validate(tree, build_kb, files)
    by_path = {}
    for f in found:
        by_path.setdefault(f.path, []).append(f)
    assert set(by_path) == {"charts/web/Chart.yaml", "k8s/both.yaml"}, found
    assert "built-in catalogue (Helm Chart.yaml)" in by_path["charts/web/Chart.yaml"][0].message
    both = by_path["k8s/both.yaml"]
    assert {f.line for f in both} == {13}  # the second document; Deployment's own rules, not ConfigMap's
    assert sorted(f.message.split(":")[0] for f in both) == ["spec", "spec", "spec.replicas"]
    coverage = _json.loads(cat.get_meta("schema_coverage"))
    assert coverage["by_source"]["built-in catalogue"] == 5  # Chart.yaml, workflow, compose, 2 manifests


def test_builtin_catalogue_serves_a_declared_schema_url_offline(tree, build_kb):
    files = {
        "ci.yml": "# yaml-language-server: $schema=https://json.schemastore.org/github-workflow.json\n"
        "on: push\njobs: 3\n",
    }
    found, _ = _validate(tree, build_kb, files)
    assert [(f.path, f.line) for f in found] == [("ci.yml", 3)]
    assert "$schema (built-in catalogue" in found[0].message


def test_an_old_builtin_snapshot_does_not_flag_what_newer_tools_allow(tree, build_kb):
    """Against the 2022 SchemaStore snapshot: TypeScript 5's ``moduleResolution: bundler`` and a
    Cargo.toml without ``package.version`` (optional since Cargo 1.75) are newer than the schema,
    not wrong (the two false warnings of the hand-checked opentelemetry-demo sample); a typo of an
    allowed value and a wrong type still are. An override kept empty on purpose is no finding."""
    files = {
        "web/tsconfig.json": json.dumps({"compilerOptions": {"moduleResolution": "bundler"}}),
        "typo/tsconfig.json": json.dumps({"compilerOptions": {"moduleResolution": "nodenex"}}),
        "ship/Cargo.toml": '[package]\nname = "shipping"\nedition = "2021"\n',
        "bad/Cargo.toml": '[package]\nname = "bad"\nversion = 3\n',
        "compose.extras.yaml": "# intentionally empty: forks add services here\n",
    }
    found, _ = _validate(tree, build_kb, files)
    assert sorted(f.path for f in found) == ["bad/Cargo.toml", "typo/tsconfig.json"], found
    assert all(f.severity == "warning" and "snapshot of" in f.message for f in found)


def test_maybe_newer_tells_a_new_option_from_a_typo():
    from jsonschema import Draft7Validator

    from kb.graph.schema.validator import maybe_newer

    schema = {
        "properties": {
            "mode": {"enum": ["Classic", "Node", "NodeNext"]},
            "alt": {"anyOf": [{"enum": ["a-long-one", "b-long-one"]}, {"const": "cee"}]},
            "n": {"type": "integer"},
        },
        "required": ["name"],
    }

    def errors(doc):
        return {e.validator: maybe_newer(e) for e in Draft7Validator(schema).iter_errors(doc)}

    assert errors({"name": 1, "mode": "bundler"}) == {"enum": True}
    assert errors({"name": 1, "mode": "nodenxt"}) == {"enum": False}  # a typo of NodeNext
    assert errors({"mode": "Node"}) == {"required": True}
    assert errors({"name": 1, "n": "x"}) == {"type": False}
    assert errors({"name": 1, "alt": "zzz"}) == {"anyOf": True}
    assert errors({"name": 1, "alt": "a-lng-one"}) == {"anyOf": False}


def test_a_schema_a_catalog_lists_as_an_earlier_version_is_no_orphan(tree, build_kb):
    """SchemaStore's catalog names ``pull-request-labeler-4.json`` only under its entry's
    ``versions``, and others by the URL they are served from (the site, the repository) while
    their ``$id`` points elsewhere; a schema nothing names stays an orphan."""
    from kb.graph.rules import validate

    catalog = {
        "schemas": [
            {
                "name": "labeler",
                "fileMatch": ["labeler.yml"],
                "url": "https://www.schemastore.org/pull-request-labeler-5.json",
                "versions": {"4": "https://www.schemastore.org/pull-request-labeler-4.json"},
            },
            # served from the repository or from the site, with an $id elsewhere (json-e's)
            {"name": "wheel", "url": "https://raw.githubusercontent.com/o/r/master/src/schemas/json/wheel.json"},
            {"name": "json-e", "url": "https://www.schemastore.org/jsone.json"},
        ]
    }
    files = {
        "src/api/json/catalog.json": json.dumps(catalog),
        "src/schemas/json/pull-request-labeler-5.json": json.dumps(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
        ),
        "src/schemas/json/pull-request-labeler-4.json": json.dumps(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
        ),
        "src/schemas/json/wheel.json": json.dumps({"$schema": "http://json-schema.org/draft-07/schema#"}),
        "src/schemas/json/jsone.json": json.dumps(
            {"$schema": "http://json-schema.org/draft-07/schema#", "$id": "https://www.sourcemeta.com/json-e@1.json"}
        ),
        "src/schemas/json/unused.json": json.dumps(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"}
        ),
    }
    cat, settings = build_kb(tree(files))
    orphans = sorted(f.path for f in validate(cat, settings) if f.rule == "orphan")
    assert orphans == ["src/schemas/json/unused.json"]
