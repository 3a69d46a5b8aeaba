"""Parsers on hostile input: many repeated keys, huge continued lines, escaped UTF-16 surrogates.

The timing cases were quadratic (a repeated key rebuilt the record list; a continued line was
built by repeated concatenation): 10 to 40 s each before the fix, well under a second after. The
5 s bound leaves room for a loaded two-core machine while still catching the quadratic version.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import pytest

from kb.ingest.parsers.base import Limits, parse_text, registry
from kb.types import ParsedFile

LIMITS = Limits()
BOUND_S = 5.0


def _parse_timed(fmt: str, text: str, name: str) -> tuple[ParsedFile, float]:
    start = time.perf_counter()
    result = parse_text(fmt, text, PurePosixPath(name), LIMITS)
    return result, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Repeated keys and long continued values stay linear
# ---------------------------------------------------------------------------------------------

REPEATED = [
    # 20,000 keys, then all of them again: 40,000 entries, 20,000 duplicate-key warnings
    ("properties", "dup.properties", "key.{i}=value{i}\n", ""),
    ("dotenv", "dup.env", "KEY_{i}=value{i}\n", ""),
    ("ini", "dup.ini", "key{i} = value{i}\n", "[section]\n"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "name", "line", "head"), REPEATED, ids=[r[0] for r in REPEATED])
def test_parser_with_20k_keys_repeated_is_linear_and_keeps_the_last_values(fmt, name, line, head):
    n = 20_000
    first = "".join(line.format(i=i) for i in range(n))
    again = "".join(line.format(i=i).replace("value", "last") for i in range(n))
    result, elapsed = _parse_timed(fmt, head + first + again, name)
    assert elapsed < BOUND_S, f"{fmt}: {elapsed:.2f} s for {2 * n} entries"
    offset = 1 if head else 0
    assert len(result.records) == n
    # one record per key, at the line of its last occurrence, in the order of those lines
    assert [r.line for r in result.records] == list(range(n + 1 + offset, 2 * n + 1 + offset))
    assert all(isinstance(r.value, str) and r.value.startswith("last") for r in result.records)
    dups = [p for p in result.problems if p.rule == "duplicate-key"]
    assert len(dups) == n
    assert dups[0].line == n + 1 + offset
    assert f"first defined at line {1 + offset}" in dups[0].message


@pytest.mark.parametrize(
    ("fmt", "name", "text"),
    [
        ("properties", "a.properties", "a=1\nb=2\na=3\nc=4\nb=5\n"),
        ("dotenv", "a.env", "a=1\nb=2\na=3\nc=4\nb=5\n"),
        ("ini", "a.ini", "a=1\nb=2\na=3\nc=4\nb=5\n"),
    ],
)
def test_repeated_key_keeps_the_last_value_at_its_last_line(fmt, name, text):
    result = parse_text(fmt, text, PurePosixPath(name), LIMITS)
    got = [(r.key_path, r.value, r.line) for r in result.records]
    assert got == [("a", "3", 3), ("c", "4", 4), ("b", "5", 5)]
    assert [(p.rule, p.line) for p in result.problems] == [("duplicate-key", 3), ("duplicate-key", 5)]
    assert result.documents == [{"a": "3", "b": "5", "c": "4"}]


@pytest.mark.parametrize("fmt", ["properties", "dotenv", "ini"])
def test_repeated_keys_do_not_count_towards_max_records(fmt):
    text = "a=1\nb=2\n" * 50
    result = parse_text(fmt, text, PurePosixPath("x"), Limits(max_records=2))
    assert [r.key_path for r in result.records] == ["a", "b"]
    assert not [p for p in result.problems if p.rule == "parse-error"]


@pytest.mark.slow
def test_properties_million_continued_lines_is_linear():
    text = "key = \\\n" + "a\\\n" * 1_000_000 + "end\n"
    result, elapsed = _parse_timed("properties", text, "long.properties")
    assert elapsed < BOUND_S, f"{elapsed:.2f} s for 1,000,000 continued lines"
    assert [(r.key_path, r.line) for r in result.records] == [("key", 1)]
    assert result.records[0].value == "a" * 1_000_000 + "end"


def test_properties_continuation_follows_the_backslash_count_of_each_line():
    # odd count continues, even count is literal backslashes; a continued line loses its leading
    # whitespace; a backslash at the end of the file just ends the value
    text = "a = one\\\n   two\\\\\nb = x\\\\\\\n  y\nc = \\\n\nd = tail\\"
    result = parse_text("properties", text, PurePosixPath("x.properties"), LIMITS)
    assert [(r.key_path, r.value, r.line) for r in result.records] == [
        ("a", "onetwo\\", 1),
        ("b", "x\\y", 3),
        ("c", "", 5),
        ("d", "tail", 7),
    ]


@pytest.mark.slow
def test_ini_long_continued_value_is_linear():
    n = 300_000
    text = "[s]\nkey =\n" + "    item\n" * n + "other = 1\n"
    result, elapsed = _parse_timed("ini", text, "long.cfg")
    assert elapsed < BOUND_S, f"{elapsed:.2f} s for {n} continuation lines"
    assert [(r.key_path, r.line) for r in result.records] == [("s.key", 2), ("s.other", n + 3)]
    assert result.records[0].value == "\n".join(["item"] * n)
    assert result.documents[0]["s"]["key"] == result.records[0].value


def test_ini_continuation_lines_extend_the_value_in_records_and_document():
    text = "[opts]\nlist = first\n  second\n  third\nbare\n    child\nempty =\n  only\n"
    result = parse_text("ini", text, PurePosixPath("setup.cfg"), LIMITS)
    assert [(r.key_path, r.value) for r in result.records] == [
        ("opts.list", "first\nsecond\nthird"),
        ("opts.bare", "child"),
        ("opts.empty", "only"),
    ]
    assert result.documents == [{"opts": {"list": "first\nsecond\nthird", "bare": "child", "empty": "only"}}]


# ---------------------------------------------------------------------------------------------
# Escaped UTF-16 surrogates: a pair is its character, a lone one U+FFFD; output is valid UTF-8
# ---------------------------------------------------------------------------------------------

EMOJI = "\U0001f600"
PAIR = "\\uD83D\\uDE00"  # native2ascii / JSON spelling of EMOJI
LONE = "\\uD800"


def test_properties_joins_an_escaped_surrogate_pair_and_replaces_a_lone_one():
    text = f"greeting{PAIR}={PAIR} hi {LONE} x \\uDE00\\uD83D\n"
    result = parse_text("properties", text, PurePosixPath("m.properties"), LIMITS)
    assert [(r.key_path, r.value) for r in result.records] == [
        (f"greeting{EMOJI}", f"{EMOJI} hi \ufffd x \ufffd\ufffd")
    ]
    assert result.documents == [{f"greeting{EMOJI}": f"{EMOJI} hi \ufffd x \ufffd\ufffd"}]
    assert not result.problems


@pytest.mark.parametrize(
    "text",
    [
        # strict JSON (the fast path would take it) and JSONC (the tokenizer)
        f'{{"a": "{PAIR}", "k{LONE}": ["{LONE.lower()}"]}}\n',
        f'{{"a": "{PAIR}", // comment\n "k{LONE}": ["{LONE.lower()}"]}}\n',
    ],
    ids=["strict", "jsonc"],
)
def test_json_joins_an_escaped_surrogate_pair_and_replaces_a_lone_one(text):
    result = parse_text("json", text, PurePosixPath("x.json"), LIMITS)
    assert [(r.key_path, r.value, r.line) for r in result.records] == [
        ("a", EMOJI, 1),
        ('["k\ufffd"][0]', "\ufffd", 1 if "//" not in text else 2),
    ]
    assert result.documents == [{"a": EMOJI, "k\ufffd": ["\ufffd"]}]
    assert not result.problems


def test_json_keys_that_differ_only_in_lone_surrogates_are_a_duplicate():
    result = parse_text("json", '{"\\ud800": 1, "\\udc00": 2}', PurePosixPath("x.json"), LIMITS)
    assert [(r.key_path, r.value) for r in result.records] == [('["\ufffd"]', 2)]
    assert [p.rule for p in result.problems] == ["duplicate-key"]


def test_json5_replaces_a_lone_surrogate_in_single_quotes():
    result = parse_text("json", f"{{a: '{PAIR}', b: '{LONE}'}}", PurePosixPath("x.json5"), LIMITS)
    assert [(r.key_path, r.value) for r in result.records] == [("a", EMOJI), ("b", "\ufffd")]


def test_json_escaped_backslash_before_u_is_not_a_surrogate():
    result = parse_text("json", '{"a": "\\\\ud800"}', PurePosixPath("x.json"), LIMITS)
    assert [(r.key_path, r.value) for r in result.records] == [("a", "\\ud800")]


SURROGATE_INPUTS = [
    f'{{"a{LONE}": "{PAIR} {LONE}", "b": ["{LONE.lower()}"], "{PAIR}": 1}}\n',
    f'{{"a": "{LONE}", /* c */ "b": "{PAIR}",}}\n',
    f"{{a: '{PAIR} {LONE}', 'k{LONE}': 1}}\n",
    f'a: "{PAIR} {LONE}"\n"k{LONE}": 1\nc: [\'{LONE}\', "{PAIR}"]\n',
    f'a = "{PAIR} {LONE}"\n"k{LONE}" = 1\nb = \'{LONE}\'\n',
    f"k{LONE}={PAIR} {LONE}\n# {LONE}\nx = a\\\n  {LONE}\n",
    f"A=\"{PAIR} {LONE}\"\nB={LONE}\nC='{LONE}'\n",
    f"[s{LONE}]\nk{LONE} = {PAIR}\n  {LONE}\n",
    f"server {{ name {LONE}; location /{PAIR} {{ root x; }} }}\n",
    f'---\ntitle: "{LONE}"\n---\n# {PAIR} {LONE}\n',
    f'FROM alpine\nRUN echo "{PAIR} {LONE}"\nENV A="{LONE}" B={PAIR}\n',
    f'a: "{{{{ .Values.x }}}} {LONE}"\n',
]


def _strings(result: ParsedFile) -> Iterator[str]:
    stack: list[Any] = []
    for r in result.records:
        yield r.key_path
        stack.append(r.value)
    for s in result.sections:
        yield s.key_path
        yield s.text
    stack.extend(result.documents)
    yield from (p.message for p in result.problems)
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            yield v
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


@pytest.mark.parametrize("fmt", sorted(registry()))
@pytest.mark.parametrize("text", SURROGATE_INPUTS, ids=range(len(SURROGATE_INPUTS)))
def test_every_parser_output_string_encodes_as_utf8(fmt, text):
    parser = registry()[fmt]
    for suffix in dict.fromkeys(parser.suffixes or ("",)):
        result = parse_text(fmt, text, PurePosixPath(f"x{suffix}"), LIMITS)
        for s in _strings(result):
            s.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate
