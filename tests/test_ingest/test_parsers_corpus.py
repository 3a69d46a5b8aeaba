"""The parsers over the real dev corpus (skipped where the corpus is not checked out).

Every file is routed with ``format_for`` (``templates/`` of a chart go to ``helm-template``) and
parsed; only files that really are invalid may report a parse error, and every section must be the
exact source text of its lines.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

import pytest

from kb.ingest.parsers.base import Limits, format_for, parse_text

DEV_CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "dev"
KNOWN_INVALID = {"compose-go/dotenv/fixtures/invalid1.env"}  # a fixture that is broken on purpose


def in_helm_templates(path: Path, root: Path) -> bool:
    for parent in path.parents:
        if parent == root:
            return False
        if parent.name == "templates" and (parent.parent / "Chart.yaml").is_file():
            return True
    return False


@pytest.mark.slow
@pytest.mark.skipif(not DEV_CORPUS.is_dir(), reason="dev corpus not available")
def test_parsers_read_the_dev_corpus_without_spurious_errors():
    errors: dict[str, str] = {}
    formats: Counter[str] = Counter()
    for path in sorted(p for p in DEV_CORPUS.rglob("*") if p.is_file()):
        rel = path.relative_to(DEV_CORPUS).as_posix()
        fmt = format_for(PurePosixPath(rel), in_helm_templates=in_helm_templates(path, DEV_CORPUS))
        formats[fmt] += 1
        text = path.read_bytes().decode("utf-8", errors="replace")
        result = parse_text(fmt, text, PurePosixPath(rel), Limits())
        for problem in result.problems:
            if problem.rule == "parse-error":
                errors[rel] = problem.message
        lines = (text[1:] if text.startswith("\ufeff") else text).split("\n")
        for s in result.sections:
            assert s.text == "\n".join(lines[s.line_start - 1 : s.line_end]), (rel, s.key_path)
    assert formats["helm-template"] > 0 and formats["json"] > 0 and formats["yaml"] > 0
    assert set(errors) <= KNOWN_INVALID, errors
