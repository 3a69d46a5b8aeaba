"""Fusion on hand-made candidate lists: score fusion, file evidence, the hub penalty, exact matches."""

from __future__ import annotations

import pytest

from kb.keyword import ChunkDoc
from kb.search import fusion
from kb.search.query import ParsedQuery


def doc(path: str, n: int, text: str = "words") -> ChunkDoc:
    return ChunkDoc(f"{path}#{n}", path, "yaml", "", n * 10 + 1, n * 10 + 5, f"{path} | yaml\n{text}")


def fused_paths(
    q: str, kw: list[tuple[float, ChunkDoc]], vec: list[tuple[float, ChunkDoc]], counts: dict[str, int] | None = None
) -> list[str]:
    docs = {d.chunk_id: d for _, d in kw} | {d.chunk_id: d for _, d in vec}
    hits = [(d.chunk_id, s) for s, d in vec]
    return [d.chunk_id for _, d in fusion.fuse(ParsedQuery.parse(q), kw, hits, docs, counts)]


QUESTION = "which service keeps its cache in redis"


def test_a_chunk_both_lists_rank_first_leads():
    a, b, c = doc("a.yaml", 0), doc("b.yaml", 0), doc("c.yaml", 0)
    order = fused_paths(QUESTION, [(9.0, b), (8.5, a), (1.0, c)], [(0.70, c), (0.69, a), (0.2, b)])
    assert order[0] == a.chunk_id


def test_score_fusion_keeps_a_clear_winner_of_one_list():
    """Ranks alone (RRF) nearly tie a runaway BM25 winner with chunks just behind it in both lists;
    scaled scores keep the gap."""
    top, mid, low, far = doc("top.yaml", 0), doc("mid.yaml", 0), doc("low.yaml", 0), doc("far.yaml", 0)
    kw = [(20.0, top), (5.0, mid), (4.9, low), (1.0, far)]
    vec = [(0.50, low), (0.49, mid), (0.45, top), (0.10, far)]
    scores = dict(zip(fused_paths(QUESTION, kw, vec), range(4)))
    assert scores[top.chunk_id] == 0


def test_file_evidence_lifts_a_file_with_several_matching_chunks_without_flooding(monkeypatch):
    monkeypatch.setattr(fusion, "FILE_DECAY", 0.5)
    monkeypatch.setattr(fusion, "HUB_PENALTY_VECTOR", 0.0)
    single = doc("single.yaml", 0)
    many = [doc("many.yaml", i) for i in range(4)]
    other = doc("other.yaml", 0)
    vec = [(0.62, single), (0.60, many[0]), (0.58, many[1]), (0.57, many[2]), (0.56, many[3]), (0.1, other)]
    kw = [(3.0, other)]
    order = fused_paths(QUESTION, kw, vec)
    assert order[0] == many[0].chunk_id  # the file's best chunk carries the file's evidence
    assert order.index(single.chunk_id) < order.index(many[1].chunk_id)  # its other chunks do not


def test_file_evidence_off_ranks_by_best_chunk(monkeypatch):
    monkeypatch.setattr(fusion, "FILE_DECAY", 0.0)
    single, many = doc("single.yaml", 0), [doc("many.yaml", i) for i in range(4)]
    vec = [(0.62, single)] + [(0.60 - i / 100, d) for i, d in enumerate(many)]
    assert fused_paths(QUESTION, [], vec)[0] == single.chunk_id


def test_hub_penalty_prefers_the_small_file_at_equal_similarity(monkeypatch):
    monkeypatch.setattr(fusion, "HUB_PENALTY_VECTOR", 0.01)
    hub, small = doc("schemas/huge.json", 0), doc("app/compose.yaml", 0)
    counts = {"schemas/huge.json": 800, "app/compose.yaml": 3}
    order = fused_paths(QUESTION, [], [(0.600, hub), (0.595, small)], counts)
    assert order[0] == small.chunk_id
    monkeypatch.setattr(fusion, "HUB_PENALTY_VECTOR", 0.0)
    assert fused_paths(QUESTION, [], [(0.600, hub), (0.595, small)], counts)[0] == hub.chunk_id


@pytest.mark.parametrize("mode", ["rrf", "score"])
def test_an_exact_identifier_outranks_any_fused_score(monkeypatch, mode):
    monkeypatch.setattr(fusion, "FUSION", mode)
    defines = doc("svc/.env", 0, "REDIS_HOST=cache")
    near = doc("docs/redis.md", 0, "the redis host of the cache")
    kw = [(12.0, near), (3.0, defines)]
    vec = [(0.9, near), (0.2, defines)]
    assert fused_paths("REDIS_HOST", kw, vec)[0] == defines.chunk_id


def test_configuration_that_sets_an_identifier_outranks_code_that_reads_it():
    """opentelemetry-demo: ``.env`` sets ``PUBLIC_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://...``
    and ``next.config.js`` destructures it from ``process.env`` with a default of ``''``. Both hold
    it and both lines read like a definition; the configuration is what sets it."""
    q = ParsedQuery.parse("What URL is PUBLIC_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set to?")
    env = ChunkDoc(
        "env#0",
        ".env",
        "dotenv",
        "",
        39,
        40,
        ".env | dotenv\nPUBLIC_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://localhost:8080/otlp-http/v1/traces",
    )
    js = ChunkDoc(
        "js#0",
        "src/frontend/next.config.js",
        "text",
        "",
        25,
        26,
        "src/frontend/next.config.js | text\n  PUBLIC_OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = '',\n} = process.env;",
    )
    assert fusion.exact_bonus(q, env) == fusion.BONUS_EXACT + fusion.BONUS_DEFINED
    assert fusion.exact_bonus(q, js) == fusion.BONUS_EXACT  # holds it, does not set it
    # the code's chunk leads both lists by a little; the definition still comes first
    far = doc("far.yaml", 0)
    order = fused_paths(q.text, [(9.0, js), (8.8, env), (1.0, far)], [(0.61, js), (0.60, env), (0.1, far)])
    assert order[0] == env.chunk_id


def test_a_question_prefers_the_configuration_to_code_at_a_close_score(monkeypatch):
    """opentelemetry-demo: "what failure probability is configured at the 90% level" found the
    payment service's JavaScript (``charge.js`` reads the flag) a little above ``demo.flagd.json``,
    which sets it. In a question, code keeps :data:`fusion.SOURCE_SHARE` of its score; a clear lead
    survives, and a literal query (a name to look up) is left as it is. Off by default (measured,
    not kept); at 1 nothing moves."""
    code = ChunkDoc("js#0", "src/payment/charge.js", "text", "", 65, 70, "charge.js | text\nconst level = flag")
    conf = doc("src/flagd/demo.flagd.json", 0)
    question = ParsedQuery.parse("what failure probability is configured for the card charging scenario")
    assert not question.literal
    monkeypatch.setattr(fusion, "SOURCE_SHARE", 1.0)
    assert fusion.prefer_configuration(question, [(1.0, code), (0.9, conf)]) == [(1.0, code), (0.9, conf)]
    monkeypatch.setattr(fusion, "SOURCE_SHARE", 0.8)
    out = fusion.prefer_configuration(question, [(1.0, code), (0.9, conf)])
    assert [d.chunk_id for _, d in out] == [conf.chunk_id, code.chunk_id]
    assert out[1][0] == pytest.approx(fusion.SOURCE_SHARE)
    assert fusion.prefer_configuration(question, [(1.0, code), (0.5, conf)])[0][1] is code  # a clear lead stays
    literal = ParsedQuery.parse("paymentFailure")
    assert literal.literal
    assert fusion.prefer_configuration(literal, [(1.0, code), (0.9, conf)])[0][1] is code


def test_configuration_over_code_in_a_built_kb(make_tree, tmp_path, monkeypatch):
    """End to end (hash embedder): a hybrid search scales the Go file's hit and no other, and ranks
    by the scaled scores; keyword search (one list as it is) and a literal query are left alone."""
    from kb import KnowledgeBase

    tree = make_tree(
        {
            "flags/flags_gen.go": "// QueueProblems returns the queue problems flag: overload the queue\n"
            'func QueueProblems() bool { return client.Bool("queueProblems") }\n',
            "flagd/demo.flagd.json": '{"flags": {"queueProblems": {"description": "overload the queue problems",'
            ' "defaultVariant": "off"}}}\n',
            **{f"other/app{i}.yaml": f"app{i}:\n  port: {8000 + i}\n" for i in range(8)},
        },
        name="code",
    )
    q = "what happens when the queue problems flag overloads the queue"
    monkeypatch.setattr(fusion, "SOURCE_SHARE", 0.8)
    with KnowledgeBase.build(tree, db=tmp_path / "kb", model="hash", workers=1) as kb:

        def scores(query: str, mode: str = "hybrid") -> dict[str, float]:
            return {h.path: h.score for h in kb.search(query, mode=mode, as_frame=False, all_files=True)}

        share = fusion.SOURCE_SHARE
        assert share < 1.0
        on = scores(q)
        hits = kb.search(q, mode="hybrid", as_frame=False)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        kw_on, lit_on = scores(q, "keyword"), scores("queueProblems")
        monkeypatch.setattr(fusion, "SOURCE_SHARE", 1.0)
        off = scores(q)
        assert on["flags/flags_gen.go"] == pytest.approx(share * off["flags/flags_gen.go"], abs=1e-5)
        assert on["flagd/demo.flagd.json"] == off["flagd/demo.flagd.json"]
        assert scores(q, "keyword") == kw_on
        assert scores("queueProblems") == lit_on


def test_a_file_naming_an_identifier_in_many_chunks_does_not_pass_the_one_that_defines_it():
    """opentelemetry-demo: generated Go code names ``kafkaQueueProblems`` in two chunks; flagd's
    JSON defines it in one. The identifier's bonus counts once per chunk, not once more per chunk
    of the file through its file evidence."""
    q = ParsedQuery.parse("What does the kafkaQueueProblems flag do when it is turned on?")
    go = [
        ChunkDoc(
            f"go#{i}",
            "src/checkout/flags/flags_gen.go",
            "text",
            "",
            29 + 5 * i,
            35 + 5 * i,
            f'flags_gen.go | text\n// returns the value of the "kafkaQueueProblems" feature flag {i}',
        )
        for i in range(2)
    ]
    flagd = ChunkDoc(
        "flagd#0",
        "src/flagd/demo.flagd.json",
        "json",
        "flags.kafkaQueueProblems",
        87,
        93,
        'demo.flagd.json | json\n    "kafkaQueueProblems": {\n      "description": "Overloads Kafka queue"',
    )
    far = doc("far.yaml", 0)
    kw = [(9.0, flagd), (8.8, go[0]), (5.0, go[1]), (1.0, far)]
    vec = [(0.55, go[0]), (0.50, flagd), (0.30, go[1]), (0.1, far)]
    assert fused_paths(q.text, kw, vec)[0] == flagd.chunk_id
