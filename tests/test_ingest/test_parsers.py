"""The built-in parsers: golden cases (one file per case, globbed) and the hard edges.

A golden case is ``tests/golden/<format>/<case>.<ext>`` next to ``<case>.expected.json``::

    {"format": "yaml",
     "records": [[key_path, value, line], ...],      # a 4th item is the YAML document index
     "problems": [[rule, line], ...],
     "sections": [[key_path, line_start, line_end], ...],   # optional
     "documents": [...]}                                    # optional

Adding a case adds files, not code.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path, PurePosixPath

import pytest

from kb.ingest.parsers.base import (
    Limits,
    Parser,
    format_for,
    parse_text,
    parser_by_name,
    registry,
)
from kb.types import ParsedFile

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = sorted(p for p in GOLDEN.glob("*/*") if p.is_file() and not p.name.endswith(".expected.json"))
LIMITS = Limits()
FORMATS = set(registry())
"""Every registered format: a new parser module joins the golden, registry and garbage tests."""


def parse(fmt: str, text: str, name: str = "file") -> ParsedFile:
    return parse_text(fmt, text, PurePosixPath(name), LIMITS)


def expected_for(case: Path) -> dict:
    return json.loads(case.with_name(case.name.split(".")[0] + ".expected.json").read_text("utf-8"))


def assert_sections_match_source(text: str, result: ParsedFile) -> None:
    lines = (text[1:] if text.startswith("\ufeff") else text).split("\n")
    for s in result.sections:
        assert 1 <= s.line_start <= s.line_end <= max(1, len(lines)), s
        assert s.text == "\n".join(lines[s.line_start - 1 : s.line_end]), s.key_path


# ---------------------------------------------------------------------------------------------
# Golden cases
# ---------------------------------------------------------------------------------------------


def test_golden_cases_exist_for_every_format():
    assert {case.parent.name for case in CASES} == FORMATS


@pytest.mark.parametrize("case", CASES, ids=[c.relative_to(GOLDEN).as_posix() for c in CASES])
def test_parser_matches_golden_case(case: Path):
    expected = expected_for(case)
    fmt = expected["format"]
    assert case.parent.name == fmt
    helm = fmt == "helm-template"
    assert format_for(PurePosixPath("chart/templates" if helm else ".") / case.name, in_helm_templates=helm) == fmt
    text = case.read_text(encoding="utf-8")
    result = parse(fmt, text, case.name)

    assert result.format == fmt
    records = [[r.key_path, r.value, r.line] + ([r.doc] if r.doc else []) for r in result.records]
    assert records == expected["records"]
    assert [[p.rule, p.line] for p in result.problems] == expected["problems"]
    if "sections" in expected:
        got = [[s.key_path, s.line_start, s.line_end] for s in result.sections]
        assert got == expected["sections"]
    if "documents" in expected:
        assert result.documents == expected["documents"]
    assert_sections_match_source(text, result)
    # no problem message quotes the source (a secret could sit on that line)
    source_lines = {ln.strip() for ln in text.splitlines() if len(ln.strip()) > 6}
    for p in result.problems:
        assert not any(ln in p.message for ln in source_lines), p.message


# ---------------------------------------------------------------------------------------------
# Registry and routing
# ---------------------------------------------------------------------------------------------


def test_every_builtin_parser_is_registered_and_follows_the_protocol():
    parsers = registry()
    assert set(parsers) >= FORMATS
    for name in FORMATS:
        parser = parsers[name]
        assert isinstance(parser, Parser)
        assert parser.name == name
        assert all(s.startswith(".") and s == s.lower() for s in parser.suffixes)
        assert all(f == f.lower() for f in parser.filenames)


@pytest.mark.parametrize(
    ("path", "helm", "fmt"),
    [
        ("Dockerfile", False, "dockerfile"),
        ("Dockerfile.prod", False, "dockerfile"),
        ("build/app.dockerfile", False, "dockerfile"),
        ("Containerfile", False, "dockerfile"),
        (".env", False, "dotenv"),
        (".env.production", False, "dotenv"),
        ("config/base.env", False, "dotenv"),
        ("chart/templates/values.yaml", True, "helm-template"),
        ("chart/templates/_helpers.tpl", True, "helm-template"),
        ("chart/values.yaml", False, "yaml"),
        ("compose.yml", False, "yaml"),
        ("Chart.lock", False, "yaml"),
        ("tsconfig.json", False, "json"),
        ("devcontainer.jsonc", False, "json"),
        (".babelrc", False, "json"),
        ("pyproject.toml", False, "toml"),
        ("poetry.lock", False, "toml"),
        ("setup.cfg", False, "ini"),
        ("nginx.conf", False, "ini"),
        (".editorconfig", False, "ini"),
        ("application.properties", False, "properties"),
        ("README.md", False, "markdown"),
        ("LICENSE", False, "text"),
        ("NOTICE", False, "text"),
        ("index.html", False, "text"),
        ("notes.txt", False, "text"),
        ("image.unknownext", False, "text"),
    ],
)
def test_format_for_routes_paths_to_parsers(path: str, helm: bool, fmt: str):
    assert format_for(PurePosixPath(path), in_helm_templates=helm) == fmt


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def test_json_parser_refuses_20000_levels_of_nesting_fast():
    text = "[" * 20_000 + "]" * 20_000
    start = time.perf_counter()
    result = parser_by_name("json").parse(text, PurePosixPath("deep.json"), LIMITS)  # no raise
    assert time.perf_counter() - start < 2
    assert [p.rule for p in result.problems] == ["parse-error"]
    assert f"nesting deeper than {LIMITS.max_depth} levels" in result.problems[0].message
    assert result.documents == []


def test_json_parser_accepts_nesting_up_to_the_limit():
    depth = LIMITS.max_depth
    result = parse("json", "[" * depth + "]" * depth)
    assert not result.problems
    assert result.records[0].value == []


def test_json_parser_reports_error_line_and_column():
    result = parse("json", '{\n  "a": 1,\n  "b" 2\n}\n')
    (problem,) = result.problems
    assert problem.rule == "parse-error" and problem.severity == "error" and problem.line == 3
    assert problem.message == "invalid JSON: expected ':' after the key at line 3 column 7"
    assert result.documents == []
    assert [r.key_path for r in result.records] == ["a"]  # what was read before the error


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("{\n  'name': 'x'\n}", 2, "single-quoted key"),
        ("{\n  name: 1\n}", 2, "unquoted key"),
        ('{"a": [1, 2}', 1, "expected ',' or ']'"),
        ('{"a": 1}\n{"b": 2}', 2, "unexpected content after the top-level value"),
        ('{\n"a": "unterminated\n}', 2, "unterminated string"),
        ('{\n  "a": {\n    "b": 1\n', 3, "the '{' opened at line 2 is not closed"),
        ('{"a": tru}', 1, "expected a value"),
        ('{"a": "\\x"}', 1, "invalid escape"),
    ],
)
def test_json_parser_reports_syntax_errors(text: str, line: int, fragment: str):
    (problem,) = [p for p in parse("json", text).problems if p.rule == "parse-error"]
    assert problem.line == line
    assert fragment in problem.message


def test_json_parser_error_messages_never_quote_the_source():
    result = parse("json", "{\n  \"password\": 'hunter2-secret'\n}")
    assert result.problems and all("hunter2" not in p.message for p in result.problems)


def test_json_parser_accepts_comments_and_trailing_commas_silently():
    text = '// c\n{\n  "a": [1, 2,], /* b */\n  "c": {"d": true,},\n}\n'
    result = parse("json", text, "settings.json")
    assert result.problems == []
    assert result.documents == [{"a": [1, 2], "c": {"d": True}}]


def test_json_parser_reports_duplicate_key_line_and_keeps_the_last_value():
    result = parse("json", '{\n  "a": {"x": 1},\n  "b": 2,\n  "a": 3\n}')
    assert [(p.rule, p.severity, p.line) for p in result.problems] == [("duplicate-key", "warning", 4)]
    assert result.documents == [{"a": 3, "b": 2}]
    assert [(r.key_path, r.value, r.line) for r in result.records] == [("b", 2, 3), ("a", 3, 4)]


def test_json_parser_strips_a_bom_and_handles_non_ascii_keys():
    result = parse("json", '\ufeff{\n  "ключ": "значение",\n  "naïve key": 1\n}')
    assert result.problems == []
    assert [(r.key_path, r.value, r.line) for r in result.records] == [
        ('["ключ"]', "значение", 2),
        ('["naïve key"]', 1, 3),
    ]


def test_json_parser_gives_array_items_their_own_lines():
    result = parse("json", '{\n  "ports": [\n    80,\n    443\n  ],\n  "e": []\n}')
    assert [(r.key_path, r.line) for r in result.records] == [("ports[0]", 3), ("ports[1]", 4), ("e", 6)]


def test_json_parser_empty_file_has_no_records_and_no_problem():
    for text in ("", "  \n\n", "// only a comment\n"):
        result = parse("json", text)
        assert (result.records, result.problems, result.documents) == ([], [], [])


def test_json_parser_reads_json5_leniently():
    result = parse("json", "{name: 'kb', hex: 0x10, half: .5, list: [1,],}", "config.json5")
    assert result.problems == []
    assert result.documents == [{"name": "kb", "hex": 16, "half": 0.5, "list": [1]}]


def test_json_parser_splits_long_mapping_of_mappings_into_sections():
    services = {f"svc{i}": {"image": f"img{i}", "ports": [i, i + 1], "env": {"A": "1"}} for i in range(6)}
    text = json.dumps({"version": "3", "services": services}, indent=2)
    result = parse("json", text)
    assert [s.key_path for s in result.sections] == ["version"] + [f"services.svc{i}" for i in range(6)]
    assert_sections_match_source(text, result)


# ---------------------------------------------------------------------------------------------
# YAML
# ---------------------------------------------------------------------------------------------

BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def test_yaml_parser_refuses_a_billion_laughs_bomb_quickly_and_in_little_memory():
    tracemalloc.start()
    try:
        start = time.perf_counter()
        result = parser_by_name("yaml").parse(BILLION_LAUGHS, PurePosixPath("bomb.yaml"), LIMITS)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1
    assert peak < 100 * 1024 * 1024
    assert result.records == [] and result.documents == []
    (problem,) = result.problems
    assert problem.rule == "parse-error"
    assert problem.message == (f"YAML alias expansion exceeds {LIMITS.max_records} values (an alias bomb?)")


def test_yaml_parser_refuses_a_bomb_hidden_behind_merge_keys():
    text = "l0: &l0 {a: 1, b: 2}\n" + "".join(
        f"l{i}: &l{i}\n  <<: [{', '.join(['*l' + str(i - 1)] * 9)}]\n  k{i}: [*l{i - 1}, *l{i - 1}]\n"
        for i in range(1, 14)
    )
    start = time.perf_counter()
    result = parse("yaml", text)
    assert time.perf_counter() - start < 1
    assert [p.rule for p in result.problems] == ["parse-error"]
    assert result.records == [] and result.documents == []


def test_yaml_parser_refuses_a_recursive_alias():
    result = parse("yaml", "a: &a\n  - 1\n  - *a\n")
    (problem,) = result.problems
    assert problem.rule == "parse-error" and "recursive alias" in problem.message
    assert problem.line == 1  # where the anchored node starts


def test_yaml_parser_caps_depth_without_recursion_error():
    text = "".join("  " * i + f"k{i}:\n" for i in range(LIMITS.max_depth + 20)) + "  " * 600 + "v: 1\n"
    result = parse("yaml", text)
    assert [p.rule for p in result.problems] == ["parse-error"]
    assert "nesting" in result.problems[0].message


def test_yaml_parser_tolerates_custom_tags():
    text = (
        "Bucket: !Ref MyBucket\n"
        "Name: !Sub '${AWS::StackName}-x'\n"
        "Arn: !GetAtt [Role, Arn]\n"
        "Conf: !include other.yaml\n"
        "Tr: !Transform {Name: AWS::Include, Parameters: {Location: s3://x}}\n"
        "Plain: !!str 123\n"
    )
    result = parse("yaml", text)
    assert result.problems == []
    assert result.documents == [
        {
            "Bucket": "MyBucket",
            "Name": "${AWS::StackName}-x",
            "Arn": ["Role", "Arn"],
            "Conf": "other.yaml",
            "Tr": {"Name": "AWS::Include", "Parameters": {"Location": "s3://x"}},
            "Plain": "123",
        }
    ]


def test_yaml_parser_reports_duplicate_key_line():
    result = parse("yaml", "spec:\n  replicas: 1\n  image: a\n  replicas: 2\n")
    (problem,) = result.problems
    assert (problem.rule, problem.severity, problem.line) == ("duplicate-key", "warning", 4)
    assert "first defined at line 2" in problem.message
    assert result.documents == [{"spec": {"replicas": 2, "image": "a"}}]
    assert [(r.key_path, r.value, r.line) for r in result.records] == [("spec.replicas", 2, 4), ("spec.image", "a", 3)]


def test_yaml_parser_error_has_line_and_column_but_no_source_text():
    result = parse("yaml", 'db:\n  user: admin\n  password: "s3cr3t-value\n')
    (problem,) = result.problems
    assert problem.rule == "parse-error" and problem.line is not None
    assert "s3cr3t" not in problem.message and "password" not in problem.message
    assert problem.message.startswith("invalid YAML: ") and " column " in problem.message


def test_yaml_parser_numbers_documents_and_keeps_key_paths():
    result = parse("yaml", "a: 1\n---\na: 2\n---\n- x\n")
    assert [(r.key_path, r.value, r.line, r.doc) for r in result.records] == [
        ("a", 1, 1, 0),
        ("a", 2, 3, 1),
        ("[0]", "x", 5, 2),
    ]
    assert result.documents == [{"a": 1}, {"a": 2}, ["x"]]


def test_yaml_parser_types_scalars_and_keeps_keys_as_written():
    text = "on: push\nint: 0x1F\nfloat: 1.5e+3\ninf: .inf\nbool: off\nnull: ~\ndate: 2024-01-02\nstr: '007'\n1: one\n"
    (doc,) = parse("yaml", text).documents
    assert doc == {
        "on": "push",
        "int": 31,
        "float": 1500.0,
        "inf": ".inf",
        "bool": "off",  # YAML 1.2
        "null": None,
        "date": "2024-01-02",
        "str": "007",
        "1": "one",
    }


def test_yaml_parser_handles_bom_and_non_ascii_keys():
    result = parse("yaml", "\ufeffназвание: тест\ncafé: 1\n")
    assert result.problems == []
    assert [(r.key_path, r.value) for r in result.records] == [('["название"]', "тест"), ('["café"]', 1)]


def test_yaml_parser_merges_sequences_of_mappings_first_one_winning():
    text = "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n"
    assert parse("yaml", text).documents[0]["c"] == {"x": 1, "y": 1, "z": 3}


# ---------------------------------------------------------------------------------------------
# The other formats
# ---------------------------------------------------------------------------------------------


def test_toml_parser_turns_dates_into_strings_and_reports_errors_with_lines():
    ok = parse("toml", "[a]\nwhen = 1979-05-27\nat = 07:32:00\n")
    assert ok.documents == [{"a": {"when": "1979-05-27", "at": "07:32:00"}}]
    bad = parse("toml", "[a]\nx = 1\nx = 2\n")
    assert [(p.rule, p.line) for p in bad.problems] == [("parse-error", 3)]


def test_ini_parser_reads_nginx_style_conf_without_parse_errors():
    text = "server {\n  listen 80;\n  location / {\n    root /srv;\n  }\n}\n"
    result = parse("ini", text, "site.conf")
    assert result.problems == []
    assert [(r.key_path, r.value, r.line) for r in result.records] == [
        ("server.listen", "80", 2),
        ('server.location["/"].root', "/srv", 4),
    ]


def test_dotenv_parser_reports_lines_it_cannot_read():
    result = parse("dotenv", "A=1\nthis is not a variable\nB='x'\n", ".env")
    assert [(p.rule, p.line) for p in result.problems] == [("parse-error", 2)]
    assert [(r.key_path, r.value) for r in result.records] == [("A", "1"), ("B", "x")]


def test_dotenv_parser_reports_unterminated_quotes():
    result = parse("dotenv", 'A="never closed\nB=2\n', ".env")
    assert [(p.rule, p.line) for p in result.problems][0] == ("parse-error", 1)


def test_properties_parser_decodes_escapes_and_reports_bad_unicode_escape():
    result = parse("properties", "a=\\u0041\\tb\nbad=\\u12\n", "x.properties")
    assert result.records[0].value == "A\tb"
    assert [(p.rule, p.line) for p in result.problems] == [("parse-error", 2)]


def test_markdown_parser_reports_broken_front_matter_with_the_file_line():
    result = parse("markdown", "---\ntitle: ok\nbad: [unclosed\n---\n# Title\n", "x.md")
    assert [p.rule for p in result.problems] == ["parse-error"]
    assert result.problems[0].line >= 3
    assert [r.value for r in result.records if r.key_path.startswith("headings")] == ["Title"]


def test_markdown_parser_reads_links_as_commonmark_does():
    text = (
        "Intro [a link that\nwraps](wrapped.md) and `[code](span.md)`.\n\n"
        "    [indented](code.md)\n\n"
        "<div>\n[inside](html-block.md)\n</div>\n\n"
        '> ## Quoted heading\n> see [q](quoted.md "title")\n\n'
        "| a | b |\n|---|---|\n| [cell](cell.md) | <https://auto.example> |\n\n"
        "[by reference][r]\n\n[r]: ref\\_target.md\n"
    )
    result = parse("markdown", text, "x.md")
    links = [(r.value, r.line) for r in result.records if r.key_path.startswith("links")]
    assert links == [("wrapped.md", 1), ("quoted.md", 11), ("cell.md", 15), ("ref_target.md", 19)]
    assert [(r.value, r.line) for r in result.records if r.key_path.startswith("headings")] == [("Quoted heading", 10)]


def test_helm_template_is_never_parsed_as_yaml():
    text = "{{- if .Values.enabled }}\nkind: {{ .Values.kind | quote }}\n  : : bad yaml\n{{- end }}\n"
    result = parse("helm-template", text, "deployment.yaml")
    assert result.problems == [] and result.documents == []
    assert [(r.key_path, r.value, r.line) for r in result.records] == [
        ("values_refs[0]", "enabled", 1),
        ("values_refs[1]", "kind", 2),
    ]
    assert {s.kind for s in result.sections} == {"template"}


def test_text_parser_merges_paragraphs_up_to_30_lines():
    text = "\n\n".join("\n".join(f"p{i} line {j}" for j in range(4)) for i in range(12))
    result = parse("text", text, "LICENSE")
    assert result.records == [] and result.documents == []
    assert all(s.line_end - s.line_start + 1 <= 30 for s in result.sections)
    assert len(result.sections) == 2
    assert_sections_match_source(text, result)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_parsers_survive_binary_garbage(fmt: str):
    text = bytes(range(256)).decode("utf-8", errors="replace") * 3 + "\x00{[\"'\\"
    result = parser_by_name(fmt).parse(text, PurePosixPath("garbage"), LIMITS)
    assert result.format == fmt
    assert_sections_match_source(text, result)


def test_json_fast_path_and_tokenizer_agree():
    from kb.ingest.parsers.json_parser import _parse_plain_json, _parse_tokens

    texts = [case.read_text("utf-8") for case in CASES if case.suffix == ".json"]
    texts += [
        '{"a": {"b": [1, {"c": []}], "d": {}}, "e": "x:y", "f": [[], [[1]]]}',
        "[]",
        "42",
        '{\n  "k":\n    [\n      1\n    ]\n}\n',
        json.dumps({"s": {f"k{i}": {"v": i} for i in range(30)}}, indent=4),
    ]
    on_fast_path = 0
    for text in texts:
        fast = _parse_plain_json(text, LIMITS, "json")
        slow = _parse_tokens(text, LIMITS, json5=False, fmt="json")
        if fast is None:
            continue
        on_fast_path += 1
        assert [(r.key_path, r.value, r.line) for r in fast.records] == [
            (r.key_path, r.value, r.line) for r in slow.records
        ]
        assert [(s.key_path, s.line_start, s.line_end) for s in fast.sections] == [
            (s.key_path, s.line_start, s.line_end) for s in slow.sections
        ]
        assert fast.documents == slow.documents
    assert on_fast_path >= 6
    # duplicates, comments, errors and NaN are the tokenizer's
    for text in ('{"a": 1, "a": 2}', '{"a": 1 // c\n}', '{"a": 1,}', '{"a": NaN}', "[1e999]"):
        assert _parse_plain_json(text, LIMITS, "json") is None
