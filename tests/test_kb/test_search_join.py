"""Near hits of one file are one hit (:func:`kb.search.snippets.join_hits`, issue 21): the question's
words on one paragraph and the answer a few lines down, a mapping's key in one chunk and its values
in the next, are shown together, and the list makes room for another file."""

from __future__ import annotations

import pytest

from kb.keyword import ChunkDoc
from kb.search import snippets
from kb.search.query import ParsedQuery
from kb.types import AnswerLine, Hit


def hit(start: int, end: int, lines: list[int], path: str = "SECURITY.md") -> Hit:
    return Hit(
        path=path,
        score=1.0,
        line_start=start,
        line_end=end,
        snippet="",
        answer=[AnswerLine(line=n, key_path=None, value=f"line {n}") for n in lines],
    )


def test_only_near_hits_of_one_file_join_and_the_joined_span_stays_short(monkeypatch: pytest.MonkeyPatch):
    a = hit(13, 13, [13])
    assert snippets.near_hits(a, hit(20, 20, [20]))  # 6 lines between, 8 lines in all
    assert snippets.near_hits(a, hit(5, 6, [5]))  # above it too
    assert not snippets.near_hits(a, hit(20, 20, [20], path="other.md"))
    assert not snippets.near_hits(a, hit(30, 30, [30]))  # too far
    assert not snippets.near_hits(hit(10, 15, [12]), hit(18, 24, [20]))  # 15 lines in all: over MAX_SPAN
    assert snippets.near_hits(hit(10, 10, [10]), hit(18, 21, [18]))  # 8 lines on, 12 in all
    assert not snippets.near_hits(hit(10, 10, [10]), hit(19, 19, [19]))  # 9 lines on
    assert not snippets.near_hits(hit(10, 12, [10]), hit(18, 22, [18]))  # 13 lines in all
    monkeypatch.setattr(snippets, "JOIN_WITHIN", 0)
    assert not snippets.near_hits(a, hit(20, 20, [20]))


def test_a_join_that_would_cover_a_third_hit_between_them_is_not_made():
    """A = 1-3 and C = 9-10 are near (10 lines in all); a hit D = 5-6 of the same file lies between
    them: joined, A would swallow D, so C stays a hit of its own. A hit that one of the two already
    overlaps does not stop the join (it overlaps either way)."""
    from kb.search import _overlaps_another

    a, d, c = hit(1, 3, [1]), hit(5, 6, [5]), hit(9, 10, [9])
    assert snippets.near_hits(a, c)
    assert _overlaps_another([a, d], 0, c)
    assert not _overlaps_another([a, hit(2, 4, [2])], 0, c)  # overlaps A already
    assert not _overlaps_another([a, hit(5, 6, [5], path="other.md")], 0, c)


def test_a_joined_hit_shows_every_line_between_and_both_answers():
    """A long Markdown line is split over several chunks (``line_start == line_end``); the joined
    snippet shows it whole again, and the lines of a chunk between the two (fetched by ordinal)."""
    p = "SECURITY.md"
    docs = [
        ChunkDoc(f"{p}#3", p, "markdown", "", 13, 13, f"{p} | markdown\nReport it privately"),
        ChunkDoc(f"{p}#4", p, "markdown", "", 15, 17, f"{p} | markdown\nDo not file public issues.\n\nChannels:"),
        ChunkDoc(f"{p}#6", p, "markdown", "", 20, 20, f"{p} | markdown\n via GitHub."),
        ChunkDoc(f"{p}#5", p, "markdown", "", 20, 20, f"{p} | markdown\nUse the advisory form"),
    ]
    q = ParsedQuery.parse("how do I report a flaw privately")
    joined = snippets.join_hits(hit(13, 13, [13]), hit(20, 20, [20]), docs, q)
    assert (joined.line_start, joined.line_end) == (13, 20)
    assert joined.snippet.split("\n") == [
        "Report it privately",
        "",  # no chunk holds line 14: blank, as between chunks
        "Do not file public issues.",
        "",
        "Channels:",
        "",
        "",
        "Use the advisory form via GitHub.",  # pieces joined in chunk order
    ]
    assert [a.line for a in joined.answer] == [13, 20]
    assert joined.score == 1.0  # the first hit's
    again = snippets.join_hits(joined, hit(19, 20, [20, 19]), docs, q)
    assert [a.line for a in again.answer] == [13, 20, 19]  # no line twice


FILLER = " ".join(f"The project keeps its history in release {i} of the changelog." for i in range(9))
DOC = "\n".join(
    [
        "# Security",
        "",
        "## Reporting a vulnerability",
        "",
        "If you find a vulnerability, do not open a public issue about the vulnerability. " + FILLER,
        "",
        FILLER,
        "",
        "Send the vulnerability report privately to security@example.org instead. " + FILLER,
        "",
        "## Release cadence",
        "",
        *[f"Release note {i} mentions nothing relevant at all." for i in range(40)],
    ]
)


@pytest.mark.parametrize("model", ["hash", pytest.param("real", marks=pytest.mark.model)])
def test_a_search_shows_near_paragraphs_of_a_file_as_one_hit(make_tree, tmp_path, monkeypatch, model):
    """End to end, with the hash embedder and with the real model: the two paragraphs about reporting
    a vulnerability are one hit covering lines 5-9 and answering from both; turned off, they are two."""
    from kb import KnowledgeBase

    files = {"SECURITY.md": DOC, **{f"docs/page{i}.md": f"# Page {i}\n\nAbout topic {i}.\n" for i in range(6)}}
    tree = make_tree(files, name="join")
    kw = {"model": "hash"} if model == "hash" else {}
    q = "how do I report a vulnerability privately instead of a public issue"
    with KnowledgeBase.build(tree, db=tmp_path / "kb", workers=1, **kw) as kb:
        monkeypatch.setattr(snippets, "JOIN_WITHIN", 0)
        apart = [h for h in kb.search(q, mode="keyword", as_frame=False) if h.path == "SECURITY.md"]
        assert len(apart) >= 2 and {5, 9} <= {a.line for h in apart for a in h.answer}
        monkeypatch.setattr(snippets, "JOIN_WITHIN", 8)
        for mode in ("keyword", "hybrid"):
            hits = [h for h in kb.search(q, mode=mode, as_frame=False) if h.path == "SECURITY.md"]
            first = hits[0]
            assert first.line_start <= 5 and first.line_end >= 9, mode
            assert {5, 9} <= {a.line for a in first.answer}, mode
            shown = first.snippet.split("\n")
            assert shown[5 - first.line_start].startswith("If you find a vulnerability")
            assert shown[9 - first.line_start].startswith("Send the vulnerability report privately")
            for other in hits[1:]:  # another hit of the file is apart from it, or would make too long a hit
                assert not snippets.near_hits(first, other), mode
                assert other.line_start > first.line_end or other.line_end < first.line_start, mode
