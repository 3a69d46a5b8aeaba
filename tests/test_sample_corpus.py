"""The bundled sample corpus (kb/sample), its ground truth (kb/sample_truth.json), and the synthetic
corpus generator (bench/gen_corpus.py).

These tests check the *data*, not kb: the sample stays parseable, the truth file points at real
files and lines, planted secrets sit exactly where the truth says, nothing but the planted problems
is wrong in the ways the truth describes, and the generator is deterministic.
"""

from __future__ import annotations

import configparser
import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "kb" / "sample"
TRUTH_PATH = REPO / "kb" / "sample_truth.json"
GEN_PATH = REPO / "bench" / "gen_corpus.py"

BROKEN = {"legacy/broken.yaml"}
HELM_TEMPLATES = "deploy/helm/acme-shop/templates/"
PATH_KINDS = {"broken-reference", "canonical-duplicate", "reference-cycle", "schema-violation"}


class _TagTolerantLoader(yaml.SafeLoader):
    """SafeLoader that builds plain values for unknown tags (CloudFormation's !Ref, !GetAtt, ...)."""


def _unknown_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_TagTolerantLoader.add_multi_constructor("!", _unknown_tag)


def _files() -> list[Path]:
    return sorted(p for p in SAMPLE.rglob("*") if p.is_file())


def _rel(p: Path) -> str:
    return p.relative_to(SAMPLE).as_posix()


def _load(p: Path):
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".yaml", ".yml"):
        return list(yaml.load_all(text, Loader=_TagTolerantLoader))
    if p.suffix == ".json":
        return json.loads(text)
    if p.suffix == ".toml":
        return tomllib.loads(text)
    raise AssertionError(p)


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(TRUTH_PATH.read_text(encoding="utf-8"))


def _gen_module():
    spec = importlib.util.spec_from_file_location("gen_corpus", GEN_PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_corpus", mod)
    spec.loader.exec_module(mod)
    return mod


# -- (a) size ---------------------------------------------------------------------------------


def test_sample_has_150_to_300_files():
    n = len(_files())
    assert 150 <= n <= 300, n


def test_sample_mixes_the_advertised_formats():
    names = [_rel(p) for p in _files()]
    suffixes = {Path(n).suffix for n in names}
    assert {".yaml", ".yml", ".json", ".toml", ".ini", ".properties", ".md", ".conf", ".tpl"} <= suffixes
    assert any(Path(n).name.startswith(".env.") for n in names)
    assert any(Path(n).name == "Dockerfile" for n in names)
    assert {".gitignore", ".kbignore"} <= {Path(n).name for n in names}


# -- (b) everything parses, except the planted broken file ------------------------------------


def test_every_structured_file_parses_except_the_planted_one():
    failures = []
    checked = 0
    for p in _files():
        rel = _rel(p)
        if p.suffix not in (".yaml", ".yml", ".json", ".toml") or rel in BROKEN or rel.startswith(HELM_TEMPLATES):
            continue
        try:
            _load(p)
            checked += 1
        except Exception as exc:
            failures.append(f"{rel}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    assert checked >= 80


def test_ini_and_env_files_parse():
    for p in _files():
        if p.suffix == ".ini":
            configparser.ConfigParser(interpolation=None).read_string(p.read_text(encoding="utf-8"))
        elif p.name.startswith(".env") or p.suffix == ".env":
            for line in p.read_text(encoding="utf-8").splitlines():
                assert not line.strip() or line.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]*=", line), (p, line)


def test_planted_broken_yaml_fails_at_the_stated_line(truth):
    (problem,) = [x for x in truth["problems"] if x["kind"] == "parse-error"]
    with pytest.raises(yaml.YAMLError) as info:
        _load(SAMPLE / problem["path"])
    assert info.value.problem_mark.line + 1 == problem["line"]


# -- (c) the truth file points at real things -------------------------------------------------


def test_truth_shape(truth):
    kinds = {p["kind"] for p in truth["problems"]}
    assert kinds == {
        "duplicate-block",
        "canonical-duplicate",
        "broken-reference",
        "undefined-variable",
        "drift",
        "reference-cycle",
        "schema-violation",
        "plaintext-secret",
        "parse-error",
    }
    queries = truth["queries"]
    assert len(queries) >= 24
    by_kind = {k: [q for q in queries if q["kind"] == k] for k in ("paraphrase", "literal")}
    assert len(by_kind["paraphrase"]) >= 12 and len(by_kind["literal"]) >= 12
    assert len(by_kind["paraphrase"]) + len(by_kind["literal"]) == len(queries)
    for q in queries:
        assert 1 <= len(q["relevant"]) <= 3, q


def test_every_path_in_truth_exists(truth):
    missing_targets = set(truth["missing_targets"])
    for problem in truth["problems"]:
        assert (SAMPLE / problem["path"]).is_file(), problem["path"]
        for member in problem.get("members", []):
            assert (SAMPLE / member["path"]).is_file(), member
        for key in ("files", "missing_in", "cycle"):
            for rel in problem.get(key, []):
                assert (SAMPLE / rel).is_file(), (key, rel)
        if problem["kind"] in PATH_KINDS and "target" in problem:
            target, _, pointer = problem["target"].partition("#")
            if target in missing_targets:
                assert not (SAMPLE / target).exists(), target
            else:
                assert (SAMPLE / target).is_file(), target
            if pointer:  # the file exists, the JSON pointer must not
                node = json.loads((SAMPLE / target).read_text(encoding="utf-8"))
                parts = pointer.lstrip("/").split("/")
                for part in parts[:-1]:
                    node = node[part]
                assert parts[-1] not in node, problem
    for q in truth["queries"]:
        for rel in q["relevant"]:
            assert (SAMPLE / rel).is_file(), (q["query"], rel)
    for ignored in truth["ignored"]:
        if ignored["path"] == "scratch.tmp" and not (SAMPLE / "scratch.tmp").exists():
            pytest.skip("kb/sample/scratch.tmp is git-ignored by kb/sample/.gitignore; add it with `git add -f`")
        assert (SAMPLE / ignored["path"]).is_file(), ignored


def test_truth_lines_point_at_the_right_text(truth):
    for problem in truth["problems"]:
        if problem.get("line") is None:
            continue
        lines = (SAMPLE / problem["path"]).read_text(encoding="utf-8").splitlines()
        line = lines[problem["line"] - 1]
        kind = problem["kind"]
        if kind == "plaintext-secret":
            assert any(s in line for s in truth["secrets"]), problem
        elif kind == "undefined-variable":
            assert "${" + problem["target"] + "}" in line
        elif kind in ("drift", "duplicate-block", "reference-cycle", "schema-violation"):
            last = re.split(r"[.\[]", problem["key_path"])[-1]
            assert last in line, (problem, line)
        elif kind == "broken-reference":
            target = problem["target"].split("#")[0]
            assert Path(target).name in line or problem["target"].split("#", 1)[-1] in line, (problem, line)
    for problem in truth["problems"]:
        for m in problem.get("members", []):
            if "line_start" in m:
                lines = (SAMPLE / m["path"]).read_text(encoding="utf-8").splitlines()
                assert m["key_path"] in lines[m["line_start"] - 1]
                assert m["line_end"] > m["line_start"]


def test_literal_queries_occur_in_every_relevant_file(truth):
    for q in truth["queries"]:
        if q["kind"] != "literal":
            continue
        for rel in q["relevant"]:
            text = (SAMPLE / rel).read_text(encoding="utf-8")
            # A dotted key path (payments.retry.max_attempts) is nested, so only its leaf is literal text.
            assert q["query"] in text or q["query"].rsplit(".", 1)[-1] in text, (q["query"], rel)


def test_literal_identifiers_are_not_scattered_elsewhere(truth):
    """A literal query's relevant list is complete: no other indexed file contains the identifier."""
    indexed = [p for p in _files() if not _rel(p).startswith(("archive/",)) and p.suffix != ".tmp"]
    for q in truth["queries"]:
        if q["kind"] != "literal" or "." in q["query"]:
            continue
        holders = {_rel(p) for p in indexed if q["query"] in p.read_text(encoding="utf-8")}
        assert holders == set(q["relevant"]), (q["query"], holders)


# -- (d) planted secrets ----------------------------------------------------------------------


def test_planted_secrets_occur_exactly_where_stated(truth):
    stated = [p for p in truth["problems"] if p["kind"] == "plaintext-secret"]
    assert len(truth["secrets"]) == len(stated) == 2
    for secret in truth["secrets"]:
        holders = []
        for p in _files():
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                if secret in line:
                    holders.append((_rel(p), i))
        assert holders == [
            (s["path"], s["line"]) for s in stated if secret in (SAMPLE / s["path"]).read_text(encoding="utf-8")
        ], (secret, holders)
    stripe, aws = truth["secrets"]
    assert re.fullmatch(r"sk_live_[A-Za-z0-9]{24}", stripe)
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", aws)


# -- the other planted problems are the only ones of their kind -------------------------------


def test_configs_validate_against_their_schemas_except_the_planted_violation(truth):
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    registry = referencing.Registry()
    for s in (SAMPLE / "schemas").glob("*.json"):
        registry = registry.with_resource(
            s.resolve().as_uri(), referencing.Resource.from_contents(json.loads(s.read_text(encoding="utf-8")))
        )
    (violation,) = [p for p in truth["problems"] if p["kind"] == "schema-violation"]
    bad = set()
    checked = 0
    for p in _files():
        target = None
        text = p.read_text(encoding="utf-8")
        if p.suffix == ".json" and p.parent.name != "schemas":
            data = json.loads(text)
            target = data.get("$schema") if isinstance(data, dict) else None
        elif p.suffix in (".yaml", ".yml") and (m := re.search(r"yaml-language-server: \$schema=(\S+)", text)):
            target, data = m.group(1), yaml.safe_load(text)
        if not target or target.startswith("http"):
            continue
        schema_path = (p.parent / target).resolve()
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        cls = jsonschema.validators.validator_for(schema)
        validator = cls({"$ref": schema_path.as_uri()}, registry=registry)
        if list(validator.iter_errors(data)):
            bad.add(_rel(p))
        checked += 1
    assert checked >= 10
    assert bad == {violation["path"]}


def test_only_the_planted_variable_is_undefined(truth):
    var = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?-[^}]*)?\}")
    defined: dict[Path, set[str]] = {}
    for p in _files():
        if p.name.startswith(".env") or p.suffix == ".env":
            keys = {
                ln.split("=", 1)[0]
                for ln in p.read_text(encoding="utf-8").splitlines()
                if "=" in ln and not ln.startswith("#")
            }
            defined.setdefault(p.parent, set()).update(keys)
    undefined = set()
    for p in _files():
        rel = _rel(p)
        if rel.startswith(HELM_TEMPLATES) or p.suffix in (".md", ".tmp"):
            continue
        text = p.read_text(encoding="utf-8")
        args = set(re.findall(r"^ARG (\w+)", text, re.M)) if p.name == "Dockerfile" else set()
        for i, line in enumerate(text.splitlines(), 1):
            for m in var.finditer(line):
                if m.group(2) or m.group(1) in args or line[: m.start()].endswith("$"):
                    continue
                scope = set()
                for folder in (p.parent, *p.parent.parents):
                    scope |= defined.get(folder, set())
                    if folder == SAMPLE:
                        break
                if m.group(1) not in scope:
                    undefined.add((rel, i, m.group(1)))
    (planted,) = [p for p in truth["problems"] if p["kind"] == "undefined-variable"]
    assert undefined == {(planted["path"], planted["line"], planted["target"])}


def test_overlay_siblings_share_keys_except_the_planted_drift(truth):
    """Sibling environment files (development/staging/production, .env.*) define the same keys,
    except for the drift the truth plants."""

    def flat(o, prefix=""):
        if isinstance(o, dict):
            for k, v in o.items():
                yield from flat(v, f"{prefix}.{k}" if prefix else str(k))
        elif isinstance(o, list):
            for i, v in enumerate(o):
                yield from flat(v, f"{prefix}[{i}]")
        else:
            yield prefix

    def keys(p: Path) -> set[str]:
        text = p.read_text(encoding="utf-8")
        if p.name.startswith(".env"):
            return {ln.split("=", 1)[0] for ln in text.splitlines() if "=" in ln and not ln.startswith("#")}
        if p.suffix == ".ini":
            cp = configparser.ConfigParser(interpolation=None)
            cp.read_string(text)
            return {f"{s}.{k}" for s in cp.sections() for k in cp[s]}
        (doc,) = _load(p) if p.suffix in (".yaml", ".yml") else [_load(p)]
        return set(flat(doc))

    envs = {"example", "development", "staging", "production"}
    groups: dict[tuple[str, str], list[Path]] = {}
    for p in _files():
        env = p.name[5:] if p.name.startswith(".env.") else p.stem.removeprefix("values-")
        if env in envs:
            groups.setdefault((_rel(p.parent), p.suffix if not p.name.startswith(".env.") else ".env"), []).append(p)
    found = set()
    for files in groups.values():
        if len(files) < 2:
            continue
        sets = {_rel(p): keys(p) for p in files}
        every = set().union(*sets.values())
        for rel, ks in sets.items():
            for k in every - ks:
                found.add((rel, k))
    want = {(m, p["key_path"]) for p in truth["problems"] if p["kind"] == "drift" for m in p.get("missing_in", [])}
    assert found == want


def test_reference_cycle_is_real(truth):
    (problem,) = [p for p in truth["problems"] if p["kind"] == "reference-cycle"]
    first, second, back = problem["cycle"]
    assert back == first
    a = json.loads((SAMPLE / first).read_text(encoding="utf-8"))
    b = json.loads((SAMPLE / second).read_text(encoding="utf-8"))
    assert (SAMPLE / first).parent.joinpath(a["extends"]).resolve() == (SAMPLE / second).resolve()
    assert (SAMPLE / second).parent.joinpath(b["extends"]).resolve() == (SAMPLE / first).resolve()


def test_canonical_duplicate_holds_identical_data(truth):
    (problem,) = [p for p in truth["problems"] if p["kind"] == "canonical-duplicate"]
    left, right = (m["path"] for m in problem["members"])
    a, b = _load(SAMPLE / left), _load(SAMPLE / right)
    a = a[0] if isinstance(a, list) else a
    b = b[0] if isinstance(b, list) else b
    assert a == b
    assert (SAMPLE / left).read_bytes() != (SAMPLE / right).read_bytes()


def test_duplicate_block_members_hold_identical_data(truth):
    (problem,) = [p for p in truth["problems"] if p["kind"] == "duplicate-block"]
    blocks = []
    for m in problem["members"]:
        doc = _load(SAMPLE / m["path"])
        doc = doc[0] if isinstance(doc, list) else doc
        blocks.append(doc[m["key_path"]])
    assert len(blocks) >= 4 and all(b == blocks[0] for b in blocks)
    assert {Path(m["path"]).suffix for m in problem["members"]} >= {".yaml", ".json"}


# -- (e) the generator ------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_gen_corpus_is_deterministic(tmp_path):
    gen = _gen_module()
    a = gen.generate(tmp_path / "a", 300, seed=7)
    b = gen.generate(tmp_path / "b", 300, seed=7)
    assert a == b
    assert a["files"] == 300
    tree_a, tree_b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(tree_a) == 300
    assert tree_a == tree_b
    assert a["bytes"] == sum(len(v) for v in tree_a.values())
    c = gen.generate(tmp_path / "c", 300, seed=8)
    assert _tree(tmp_path / "c") != tree_a and c["files"] == 300


def test_gen_corpus_formats_and_parsing(tmp_path):
    gen = _gen_module()
    counts = gen.generate(tmp_path / "g", 400, seed=1)
    assert sum(counts["by_format"].values()) == 400
    for fmt, weight in gen.FORMAT_WEIGHTS.items():
        assert abs(counts["by_format"][fmt] - 400 * weight) <= 2, (fmt, counts["by_format"])
    tree = tmp_path / "g"
    assert any(p.match("teams/*/services/*/config/production.*") for p in tree.rglob("*"))
    for p in tree.rglob("*"):
        if not p.is_file():
            continue
        if p.suffix in (".yaml", ".json", ".toml"):
            _load(p)
        elif p.suffix == ".ini":
            configparser.ConfigParser(interpolation=None).read_string(p.read_text(encoding="utf-8"))
    assert counts["exact_duplicates"] >= 1 and counts["services"] >= 10


def test_gen_corpus_cli(tmp_path):
    gen = _gen_module()
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert gen.main([str(tmp_path / "cli"), "--files", "50", "--seed", "3"]) == 0
    assert json.loads(out.getvalue())["files"] == 50
    assert len(_tree(tmp_path / "cli")) == 50
