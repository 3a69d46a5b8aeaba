"""Every parser, fed arbitrary text, returns a result: never an exception, never a parser bug.

``parse_text`` turns an unexpected exception into a "<fmt> parser failed" problem; these tests
call the parsers directly so a bug shows up as the exception itself.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kb.ingest.parsers.base import DepthError, Limits, TooManyRecordsError, parser_by_name, registry, strip_bom

NAMES = {
    "json": "x.json",
    "yaml": "x.yaml",
    "toml": "x.toml",
    "ini": "x.ini",
    "dotenv": ".env",
    "properties": "x.properties",
    "markdown": "x.md",
    "dockerfile": "Dockerfile",
    "helm-template": "x.tpl",
    "text": "x.txt",
    "hcl": "x.tfvars",
}
FORMATS = sorted(registry())
# characters that mean something to at least one of the formats, plus plain ones
ALPHABET = list("{}[]():,\"'=#;!\\ \n\n\t-ab1.*&<>`$+~|%@") + ["\ufeff", "é", "\r\n", "---\n"]
LIMITS = Limits(max_records=2_000, max_depth=50)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(st.sampled_from(ALPHABET), max_size=120).map("".join))
def test_parser_never_raises_on_arbitrary_text(fmt: str, text: str):
    parser = parser_by_name(fmt)
    text = strip_bom(text)  # as parse_text does before any parser (a BOM later on stays)
    try:
        result = parser.parse(text, PurePosixPath(NAMES[fmt]), LIMITS)
    except (DepthError, TooManyRecordsError):
        return  # parse_text reports these as parse errors
    assert result.format == fmt
    lines = text.split("\n")
    for s in result.sections:
        assert 1 <= s.line_start <= s.line_end <= len(lines)
        assert s.text == "\n".join(lines[s.line_start - 1 : s.line_end])
    for r in result.records:
        assert isinstance(r.line, int) and r.line >= 1
        assert r.value is None or isinstance(r.value, (str, int, float, bool, dict, list))
    for p in result.problems:
        assert p.rule in ("parse-error", "duplicate-key") and p.message
