"""Chunking: section-aware, bounded by the model window, context line first, lines and key paths kept."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from kb.ingest.chunk import BUDGET, MAX_PIECES_PER_LINE, MODEL_WINDOW, chunk_sections, estimate_tokens
from kb.types import Section

REPO = Path(__file__).resolve().parents[2]


def body_lines(chunk) -> list[str]:
    return chunk.text.split("\n")[1:]


def test_chunk_text_starts_with_path_and_key_path_words():
    secs = [Section("fraud", 22, 24, "fraud:\n  reviewThreshold: 0.85\n  enabled: true")]
    (c,) = chunk_sections("services/payments/config/production.yaml", "yaml", secs)
    header = c.text.split("\n")[0]
    assert header.startswith("services/payments/config/production.yaml | fraud")
    assert (c.ordinal, c.key_path, c.line_start, c.line_end) == (0, "fraud", 22, 24)
    assert body_lines(c) == ["fraud:", "  reviewThreshold: 0.85", "  enabled: true"]


def test_camel_case_key_path_words_are_added_to_the_context_line():
    (c,) = chunk_sections("a.json", "json", [Section("dataSource.maxPoolSize", 3, 3, '"maxPoolSize": 5')])
    assert c.text.split("\n")[0] == "a.json | dataSource.maxPoolSize | data source max pool size"


def test_tiny_adjacent_sections_merge_and_keep_line_mapping():
    secs = [
        Section("version", 1, 1, 'version: "3"'),
        Section("name", 2, 2, "name: shop"),
        Section("region", 4, 4, "region: eu-west-1"),  # a blank line between: still merged
    ]
    (c,) = chunk_sections("x.yaml", "yaml", secs)
    assert (c.key_path, c.line_start, c.line_end) == ("version", 1, 4)
    assert c.text.split("\n")[0] == "x.yaml | version, name, region"
    assert body_lines(c) == ['version: "3"', "name: shop", "", "region: eu-west-1"]


def test_sections_far_apart_or_of_other_kinds_are_not_merged():
    secs = [Section("a", 1, 1, "a: 1"), Section("b", 10, 10, "b: 2"), Section("c", 11, 11, "c: 3", kind="template")]
    chunks = chunk_sections("x.yaml", "yaml", secs)
    assert [(c.key_path, c.line_start, c.line_end) for c in chunks] == [("a", 1, 1), ("b", 10, 10), ("c", 11, 11)]
    assert [c.ordinal for c in chunks] == [0, 1, 2]


def test_empty_sections_are_skipped():
    assert chunk_sections("x.md", "markdown", [Section("A", 1, 2, "  \n\n")]) == []
    assert chunk_sections("x.md", "markdown", []) == []


def _big_services_yaml(names=("api", "web", "worker", "scheduler"), settings=12) -> tuple[str, list[str]]:
    lines = ["services:"]
    for name in names:
        lines.append(f"  {name}:")
        lines.append(f"    image: registry.example.com/acme/{name}:1.2.3")
        lines.append("    environment:")
        for i in range(settings):
            lines.append(f"      {name.upper()}_SETTING_{i}: value-number-{i}-for-the-{name}-service")
    return "\n".join(lines), lines


def test_big_section_is_split_on_lines_within_budget_with_deepest_key_paths():
    text, lines = _big_services_yaml()
    sec = Section("services", 10, 10 + len(lines) - 1, text)
    chunks = chunk_sections("deploy/compose.yaml", "yaml", [sec])
    assert len(chunks) > 2
    assert all(estimate_tokens(c.text) <= BUDGET for c in chunks)
    # contiguous, complete coverage of the section's lines
    assert chunks[0].line_start == 10 and chunks[-1].line_end == sec.line_end
    for a, b in zip(chunks, chunks[1:]):
        assert b.line_start == a.line_end + 1
    # every chunk's body is exactly the file's lines line_start..line_end
    for c in chunks:
        assert body_lines(c) == lines[c.line_start - 10 : c.line_end - 10 + 1]
    # a part inside one service is named after it; a part spanning services after the parent
    keys = {c.key_path for c in chunks}
    assert keys <= {
        "services",
        "services.api",
        "services.web",
        "services.worker",
        "services.scheduler",
        "services.api.environment",
        "services.web.environment",
        "services.worker.environment",
        "services.scheduler.environment",
    }
    assert any(k.startswith("services.") for k in keys)
    for c in chunks:
        assert c.text.split("\n")[0] == f"deploy/compose.yaml | {c.key_path}" or c.text.split("\n")[0].startswith(
            f"deploy/compose.yaml | {c.key_path} |"
        )


def test_split_prefers_sibling_boundaries():
    text, lines = _big_services_yaml(names=[f"svc{i}" for i in range(12)], settings=4)
    chunks = chunk_sections("c.yaml", "yaml", [Section("services", 1, len(lines), text)])
    starts = [body_lines(c)[0] for c in chunks[1:]]
    # most parts start at a service (indent 2) rather than in the middle of an environment block
    assert sum(s.startswith("  ") and not s.startswith("   ") for s in starts) >= len(starts) // 2


def test_a_single_overlong_line_is_cut_into_pieces_on_the_same_line():
    line = '{"data": [' + ", ".join(f'"item-{i}-abcdefgh"' for i in range(3000)) + "]}"
    chunks = chunk_sections("min.json", "json", [Section("", 1, 1, line)])
    assert 1 < len(chunks) <= MAX_PIECES_PER_LINE
    assert all((c.line_start, c.line_end) == (1, 1) for c in chunks)
    assert all(estimate_tokens(c.text) <= BUDGET + 8 for c in chunks)
    assert "".join(body_lines(c)[0] for c in chunks) == line[: sum(len(body_lines(c)[0]) for c in chunks)]


def test_dotenv_parts_are_named_after_their_first_variable():
    lines = [
        f"VARIABLE_NUMBER_{i}=https://service-{i}.internal.example.com:8443/path/to/resource?x={i}" for i in range(40)
    ]
    chunks = chunk_sections(".env", "dotenv", [Section("VARIABLE_NUMBER_0", 1, 40, "\n".join(lines))])
    assert len(chunks) > 1
    for c in chunks:
        assert c.key_path == body_lines(c)[0].split("=", 1)[0]


def test_chunking_is_deterministic_and_pure():
    text, lines = _big_services_yaml()
    secs = [Section("services", 1, len(lines), text)]
    assert chunk_sections("c.yaml", "yaml", secs) == chunk_sections("c.yaml", "yaml", secs)
    assert secs[0].text == text


def test_estimate_is_an_upper_bound_of_real_word_pieces_on_the_sample():
    """Every chunk of the bundled sample fits the model window by the real tokenizer."""
    tokenizers = pytest.importorskip("tokenizers")
    from kb.embed import bundled_model_dir
    from kb.ingest.parsers.base import Limits, format_for, parse_text

    tok = tokenizers.Tokenizer.from_file(str(bundled_model_dir() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    sample = REPO / "kb" / "sample"
    n = 0
    for f in sorted(p for p in sample.rglob("*") if p.is_file()):
        rel = PurePosixPath(f.relative_to(sample).as_posix())
        fmt = format_for(rel)
        parsed = parse_text(fmt, f.read_text(encoding="utf-8", errors="replace"), rel, Limits())
        for c in chunk_sections(str(rel), fmt, parsed.sections):
            pieces = len(tok.encode(c.text).ids)  # with [CLS] and [SEP]
            assert pieces <= MODEL_WINDOW, (str(rel), c.ordinal, pieces)
            n += 1
    assert n > 100


@pytest.mark.parametrize(
    "fmt, text",
    [
        (
            "yaml",
            "metadata:\n  name: web\n  labels:\n    app.kubernetes.io/name:\n"
            + "".join(f"      setting_number_{i}: a configured value of some length number {i}\n" for i in range(40)),
        ),
        (
            "json",
            '{\n  "definitions": {\n    "io.k8s.api.core.v1.Pod": {\n'
            + ",\n".join(
                f'      "setting_number_{i}": "a configured value of some length number {i}"' for i in range(40)
            )
            + "\n    }\n  }\n}\n",
        ),
    ],
)
def test_a_part_inside_a_quoted_key_is_named_as_the_parser_names_its_records(fmt, text):
    """A key with dots is quoted in key paths (``labels["app.kubernetes.io/name"]``): the chunk's
    key path must be spelled that way, or it matches no record of the file."""
    from kb.ingest.parsers.base import Limits, parse_text
    from kb.keypaths import split_key_path

    parsed = parse_text(fmt, text, PurePosixPath(f"k8s/web.{fmt}"), Limits())
    records = [split_key_path(r.key_path) for r in parsed.records]
    chunks = chunk_sections(f"k8s/web.{fmt}", fmt, parsed.sections)
    inner = [c for c in chunks if '"]' in c.key_path]
    assert len(inner) >= 2, [c.key_path for c in chunks]
    for c in chunks:
        segs = split_key_path(c.key_path)
        assert any(r[: len(segs)] == segs for r in records), c.key_path
    quoted = ('metadata.labels["app.kubernetes.io/name"]', 'definitions["io.k8s.api.core.v1.Pod"]')
    assert all(c.key_path.startswith(quoted) for c in inner), [c.key_path for c in inner]


def test_every_chunk_of_a_schema_says_what_the_file_is(monkeypatch):
    """A JSON Schema's title and description (URL words included) end every chunk's context line, so a
    question in other words ("dotfile manager") finds the chunks of ``chezmoi.json``."""
    import kb.ingest.chunk
    from kb.ingest.parsers.base import Limits, parse_text

    monkeypatch.setattr(kb.ingest.chunk, "FILE_ABOUT", True)
    props = ",\n".join(
        f'    "setting{i}": {{"type": "string", "description": "the {i}th setting of the hook"}}' for i in range(40)
    )
    text = (
        '{\n  "title": "chezmoi configuration",\n'
        '  "description": "Configuration for chezmoi, a dotfile manager. https://www.chezmoi.io/reference/",\n'
        '  "properties": {\n' + props + "\n  }\n}\n"
    )
    parsed = parse_text("json", text, PurePosixPath("schemas/chezmoi.json"), Limits())
    chunks = chunk_sections("schemas/chezmoi.json", "json", parsed.sections)
    assert len(chunks) > 2
    for c in chunks:
        header = c.text.split("\n")[0]
        assert header.endswith("| chezmoi configuration for chezmoi, a dotfile manager. reference"), header
        assert estimate_tokens(c.text) <= BUDGET or (c.line_start == c.line_end)
    # no title, no description: the context line is unchanged
    (plain,) = chunk_sections("a.yaml", "yaml", [Section("name", 1, 1, "name: shop")])
    assert plain.text.split("\n")[0] == "a.yaml | name"


@pytest.mark.parametrize(
    "path, fmt, header",
    [
        ("charts/app/values.yaml", "yaml", "charts/app/values.yaml | image"),
        (
            "charts/app/templates/deploy.yaml",
            "helm-template",
            "charts/app/templates/deploy.yaml | helm-template | image",
        ),
        ("docker/Dockerfile", "dockerfile", "docker/Dockerfile | dockerfile | image"),
        ("etc/mysql/my.conf", "ini", "etc/mysql/my.conf | ini | image"),
        ("app/.env", "dotenv", "app/.env | image"),
        ("settings.JSON", "json", "settings.JSON | image"),
    ],
)
def test_the_format_is_named_only_where_the_path_does_not_say_it(path, fmt, header):
    (c,) = chunk_sections(path, fmt, [Section("image", 1, 1, "image: nginx")])
    assert c.text.split("\n")[0] == header
