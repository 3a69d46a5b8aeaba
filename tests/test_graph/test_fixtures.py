"""Planted problems are all found; negative controls give nothing (cases: fixtures/*.expected.json)."""

from __future__ import annotations

import pytest

from tests.test_graph.conftest import FIXTURES, expected, fixture_cases


def _key(f) -> tuple:
    return (f["rule"], f["severity"], f["path"], f["line"], f["target"])


@pytest.mark.parametrize("case", fixture_cases())
def test_fixture_tree_reports_exactly_the_planted_findings(case, build_kb):
    from kb.graph.rules import validate

    spec = expected(case)
    cat, settings = build_kb(FIXTURES / case, **spec.get("settings", {}))
    found = validate(cat, settings)
    got = sorted(_key(f.model_dump()) for f in found)
    want = sorted(_key(f) for f in spec["findings"])
    missing = [w for w in want if w not in got]
    extra = [g for g in got if g not in want]
    messages = {(f.rule, f.path, f.line): f.message for f in found}
    assert not missing, f"planted but not found: {missing}"
    assert not extra, "reported but not planted: " + "; ".join(f"{e} {messages.get((e[0], e[2], e[3]))}" for e in extra)


@pytest.mark.parametrize("case", fixture_cases())
def test_every_finding_says_how_to_fix_it(case, build_kb):
    from kb.graph.rules import validate

    spec = expected(case)
    cat, settings = build_kb(FIXTURES / case, **spec.get("settings", {}))
    for f in validate(cat, settings):
        assert f.line is not None and f.line >= 1, f
        assert any(w in f.message for w in ("fix", "define", "add", "remove", "delete", "reference it")), f.message
