"""Which backend ``auto`` picks on which CPU, the OpenVINO and fused ONNX backends, and the identity
rule between backends (one identity interoperates; another is refused with the fix)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kb import KnowledgeBase
from kb.embed import DEFAULT_NAME, BackendChoice, choose_backend, cpu_flags, embedder_name
from kb.errors import ConfigError, EmbedderMismatchError
from kb.settings import Settings
from tests.test_kb.test_embed import TEXTS

AMX = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"}
ZEN4 = {"avx2", "avx512f", "avx512_vnni", "avx512_bf16"}  # AVX-512 bf16, no AMX (this CI's kind)
ICE_LAKE = {"avx2", "avx512f", "avx512_vnni"}
ALDER_LAKE = {"avx2", "avx_vnni"}
OLD = {"sse4_2"}
ZEN3 = {"avx", "avx2", "fma"}  # AVX2 without VNNI: AMD Zen 3, the CPU of the 2026-12-07 evening figures


def pick(flags, backend="auto", precision="auto", purpose="documents", device="cpu", **libs) -> BackendChoice:
    return choose_backend(backend, precision, purpose=purpose, device=device, flags=frozenset(flags), **libs)


@pytest.mark.parametrize(
    "flags, libs, expected",
    [
        (AMX, {}, ("openvino", "bf16", False)),
        (AMX, {"openvino": False}, ("torch", "bf16", False)),
        (ZEN4, {}, ("openvino", "bf16", False)),
        (ZEN4, {"openvino": False}, ("torch", "bf16", False)),
        (ZEN4, {"openvino": False, "torch": False}, ("onnx", "fp32", True)),
        (ICE_LAKE, {}, ("openvino", "fp32", False)),
        (ICE_LAKE, {"openvino": False}, ("onnx", "fp32", True)),
        (ALDER_LAKE, {}, ("openvino", "fp32", False)),
        (OLD, {}, ("openvino", "fp32", False)),
        (OLD, {"openvino": False}, ("onnx", "fp32", True)),
        (OLD, {"onnx_ok": False}, ("torch", "fp32", False)),
        (AMX, {"torch": False}, ("openvino", "bf16", False)),
        (AMX, {"torch": False, "openvino": False}, ("onnx", "fp32", True)),
    ],
    ids=[
        "amx",
        "amx-no-openvino",
        "zen4",
        "zen4-no-openvino",
        "zen4-no-openvino-no-torch",
        "ice-lake",
        "ice-lake-no-openvino",
        "alder-lake",
        "old",
        "old-no-openvino",
        "old-no-onnx",
        "amx-no-torch",
        "amx-no-openvino-no-torch",
    ],
)
def test_auto_picks_the_measured_fastest_same_identity_path_for_each_cpu(flags, libs, expected):
    choice = pick(flags, **libs)
    assert (choice.backend, choice.precision, choice.fused) == expected
    assert choice.reason.startswith("auto")


def test_auto_on_a_gpu_and_for_queries():
    assert pick(ZEN4, device="cuda")[:2] == ("torch", "fp16")
    for flags in (AMX, ZEN4, ICE_LAKE, OLD):  # a query: ONNX on one thread, the plain graph
        for precision in ("auto", "fp32", "bf16", "fp16"):
            expected = BackendChoice("onnx", "fp32", False, "queries: quickest start")
            assert pick(flags, precision=precision, purpose="query") == expected
        # int8 asked for: queries are the model's own fp32 vectors, which search int8 documents
        assert pick(flags, precision="int8", purpose="query")[:2] == ("onnx", "fp32")
        assert pick(flags, backend="onnx", precision="int8", purpose="query")[:2] == ("onnx", "fp32")


def test_asked_for_precisions_and_backends_are_kept():
    assert pick(ZEN4, precision="fp32")[:2] == ("openvino", "fp32")  # exact fp32, the fastest way
    assert pick(AMX, precision="fp32")[:2] == ("torch", "fp32")  # unchanged on AMX
    assert pick(ICE_LAKE, precision="bf16")[:2] == ("torch", "bf16")
    assert pick(ICE_LAKE, precision="int8")[:2] == ("openvino", "int8")  # NNCF's static int8
    assert pick(ICE_LAKE, precision="int8", nncf=False)[:2] == ("onnx", "int8")  # dynamic int8
    assert pick(ICE_LAKE, precision="int8", openvino=False)[:2] == ("onnx", "int8")
    assert pick(ICE_LAKE, backend="onnx", precision="int8")[:2] == ("onnx", "int8")
    assert pick(ZEN4, backend="openvino")[:2] == ("openvino", "bf16")
    assert pick(ICE_LAKE, backend="openvino")[:2] == ("openvino", "fp32")
    assert pick(ICE_LAKE, backend="openvino", precision="bf16")[:2] == ("openvino", "bf16")
    assert pick(ZEN4, backend="onnx")[:3] == ("onnx", "fp32", True)
    assert pick(ZEN4, backend="onnx", purpose="query")[:3] == ("onnx", "fp32", False)
    assert pick(ZEN4, backend="torch")[:2] == ("torch", "fp32")
    assert pick(ZEN4, backend="openvino", precision="int8")[:2] == ("openvino", "int8")
    with pytest.raises(ConfigError, match="needs openvino and nncf"):
        pick(ZEN4, backend="openvino", precision="int8", nncf=False)
    with pytest.raises(ConfigError, match="int8 runs on OpenVINO or ONNX Runtime"):
        pick(ZEN4, backend="torch", precision="int8")
    with pytest.raises(ConfigError, match="fp16 is a CUDA precision"):
        pick(ZEN4, backend="openvino", precision="fp16")


def test_every_backend_but_int8_keeps_the_models_identity():
    for backend in ("auto", "onnx", "openvino", "torch"):
        for precision in ("auto", "fp32", "bf16", "fp16"):
            assert embedder_name(Settings(backend=backend, precision=precision)) == DEFAULT_NAME
    # int8 is two identities: OpenVINO's NNCF int8 and ONNX Runtime's dynamic int8 differ from each other
    assert embedder_name(Settings(backend="openvino", precision="int8")) == DEFAULT_NAME + "+int8"
    assert embedder_name(Settings(backend="onnx", precision="int8")) == DEFAULT_NAME + "+int8-onnx"
    # and int8-mixed (fp32 feed-forward outputs) a third, whatever the backend says
    for backend in ("auto", "onnx"):
        assert embedder_name(Settings(backend=backend, precision="int8-mixed")) == DEFAULT_NAME + "+int8-mixed"


def test_int8_mixed_runs_on_onnx_runtime_and_its_queries_are_fp32():
    for flags in (ZEN3, ZEN4, AMX, set()):
        assert pick(flags, precision="int8-mixed") == BackendChoice("onnx", "int8-mixed", reason="asked for int8-mixed")
        assert pick(flags, backend="onnx", precision="int8-mixed").precision == "int8-mixed"
        query = pick(flags, precision="int8-mixed", purpose="query")
        assert (query.backend, query.precision) == ("onnx", "fp32")
    for backend in ("torch", "openvino"):
        with pytest.raises(ConfigError, match="int8-mixed runs on ONNX Runtime"):
            pick(ZEN3, backend=backend, precision="int8-mixed")
    with pytest.raises(ConfigError, match="ONNX Runtime can run"):
        pick(ZEN3, precision="int8-mixed", onnx_ok=False)


def test_int8_mixed_keeps_exactly_the_feed_forward_outputs_in_fp32_or_refuses(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from kb.embed import _feed_forward_outputs, _quantize_mixed

    names = [
        "/m/encoder/layer.0/attention/output/dense/MatMul",  # the attention's projection: quantized
        "/m/encoder/layer.0/intermediate/dense/MatMul",
        "/m/encoder/layer.0/output/dense/MatMul",  # the feed-forward output: kept
    ]
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 4], [0.1] * 16)
    nodes = [
        helper.make_node("MatMul", ["x" if i == 0 else f"y{i - 1}", "w"], [f"y{i}"], name=n)
        for i, n in enumerate(names)
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [1, 4])],
        [weight],
    )
    model = helper.make_model(graph)
    assert _feed_forward_outputs(model) == ["/m/encoder/layer.0/output/dense/MatMul"]
    path = tmp_path / "plain.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ConfigError, match="BERT-style model whose layers ONNX Runtime fuses"):
        _quantize_mixed(path, tmp_path / "out.onnx")  # no fused attention: not silently all int8
    assert not (tmp_path / "out.onnx").exists()


def test_int8_identity_follows_the_engine_that_makes_it():
    from kb.embed import int8_suffix

    assert int8_suffix("auto", openvino=True, nncf=True) == "+int8"  # what choose_backend picks there
    assert int8_suffix("auto", openvino=True, nncf=False) == "+int8-onnx"
    assert int8_suffix("auto", openvino=False, nncf=True) == "+int8-onnx"
    assert int8_suffix("onnx", openvino=True, nncf=True) == "+int8-onnx"
    assert int8_suffix("openvino", openvino=True, nncf=False) == "+int8"  # choose_backend then says what to install
    for flags in (ICE_LAKE, ZEN4):
        for ov, nn in ((True, True), (True, False), (False, True)):
            engine = pick(flags, precision="int8", openvino=ov, nncf=nn).backend
            assert (engine == "openvino") == (int8_suffix("auto", openvino=ov, nncf=nn) == "+int8")


def test_onednn_isa_limits_are_the_flags_auto_reads():
    from kb.embed import limited_flags

    amx = frozenset(AMX)
    assert limited_flags(amx, None) == amx and limited_flags(amx, "DEFAULT") == amx
    assert limited_flags(amx, "ALL") == amx  # oneDNN's "no limit"
    assert limited_flags(amx, "AVX10_1_512") == limited_flags(amx, "AVX512_CORE_FP16")
    assert limited_flags(amx, "AVX512_CORE_AMX") == amx
    assert limited_flags(amx, "avx512_core_bf16") == frozenset(ZEN4)  # a Zen 4's kernels
    assert limited_flags(amx, "AVX512_CORE_VNNI") == frozenset(ICE_LAKE)  # an Ice Lake's
    assert limited_flags(amx, "AVX2") == frozenset({"avx2"})


def test_a_new_kb_gets_int8_documents_only_on_an_x86_cpu_without_amx():
    from kb.embed import int8_by_default

    def new_kb(flags, settings=None, **machine):
        machine = {"gpu": False, "openvino": True, "nncf": True, **machine}
        return int8_by_default(settings or Settings(), flags=frozenset(flags), **machine)

    # bf16 on AMX runs as fast; AVX2 without VNNI: both ONNX Runtime int8s measured outside the quality
    # bar (OpenVINO's slower than fp32); no flags (ARM, macOS): never measured
    for flags in (AMX, ZEN3, OLD, set()):
        assert new_kb(flags) is None
        assert new_kb(flags, Settings(backend="onnx")) is None
    for flags in (ZEN4, ICE_LAKE, ALDER_LAKE):
        assert new_kb(flags) == "int8"
        assert new_kb(flags, Settings(backend="openvino"))
        assert not new_kb(flags, nncf=False) and not new_kb(flags, openvino=False)
        assert not new_kb(flags, gpu=True)  # torch fp16 on the GPU
        assert new_kb(flags, Settings(device="cpu"), gpu=True)
        for settings in (
            Settings(precision="fp32"),
            Settings(backend="onnx"),
            Settings(backend="torch"),
            Settings(model="hash"),
            Settings(model="org/other-model"),
        ):
            assert not new_kb(flags, settings)  # asked for by hand, a test fake, a model int8 was not measured on


def test_a_kbs_vectors_settle_the_precision_its_documents_are_embedded_in():
    from kb.embed import queries_fit, settle_precision

    icl = {"flags": frozenset(ICE_LAKE), "gpu": False, "openvino": True, "nncf": True}
    amx = {**icl, "flags": frozenset(AMX)}
    int8 = DEFAULT_NAME + "+int8"
    assert settle_precision(Settings(), None, **icl).precision == "int8"  # a new KB on such a CPU
    assert settle_precision(Settings(), None, **amx).precision == "auto"
    assert settle_precision(Settings(), int8, **amx).precision == "int8"  # an int8 KB stays int8 anywhere
    assert settle_precision(Settings(), DEFAULT_NAME, **icl).precision == "auto"  # an fp32 KB stays fp32
    assert settle_precision(Settings(precision="fp32"), int8, **icl).precision == "fp32"  # by hand: kept
    assert settle_precision(Settings(model="hash"), None, **icl).precision == "auto"
    onnx_int8 = DEFAULT_NAME + "+int8-onnx"
    assert settle_precision(Settings(), onnx_int8, **amx).precision == "int8"  # ONNX Runtime's int8 KB
    assert settle_precision(Settings(), onnx_int8, **amx).backend == "onnx"  # stays ONNX Runtime's
    assert settle_precision(Settings(), int8, **amx).backend == "auto"
    mixed = DEFAULT_NAME + "+int8-mixed"
    zen3 = {**icl, "flags": frozenset(ZEN3)}
    assert settle_precision(Settings(), None, **zen3).precision == "auto"  # a new KB on an AVX2 CPU: fp32
    for machine in (amx, icl, zen3):  # an int8-mixed KB stays int8-mixed anywhere
        assert settle_precision(Settings(), mixed, **machine).precision == "int8-mixed"
    assert settle_precision(Settings(), DEFAULT_NAME, **zen3).precision == "auto"  # an fp32 KB stays fp32
    assert settle_precision(Settings(), int8, **zen3).precision == "int8"
    assert queries_fit(mixed, DEFAULT_NAME) and queries_fit(mixed, mixed) and queries_fit(int8, mixed)  # fp32 queries
    assert not queries_fit(DEFAULT_NAME, mixed)
    # queries: the model's own vectors search its int8 documents of either kind; nothing else mixes
    assert queries_fit(int8, DEFAULT_NAME) and queries_fit(DEFAULT_NAME, DEFAULT_NAME) and queries_fit(None, "x")
    assert queries_fit(int8, int8) and queries_fit(onnx_int8, DEFAULT_NAME) and queries_fit(onnx_int8, int8)
    assert not queries_fit(DEFAULT_NAME, int8) and not queries_fit("other-model+int8", DEFAULT_NAME)
    assert not queries_fit(DEFAULT_NAME, onnx_int8)


def test_an_int8_kb_is_never_extended_with_the_other_int8(tmp_path):
    """An OpenVINO int8 KB on a machine without NNCF: ONNX Runtime's int8 would be other vectors,
    so the ingest stops and says to install NNCF."""
    from kb.errors import EmbedderMismatchError
    from kb.generations import Generation
    from kb.index import check_embedder

    gen = Generation(number=1, catalogue="c", embedder={"name": DEFAULT_NAME + "+int8", "dim": 384})
    with pytest.raises(EmbedderMismatchError, match=r"pip install nncf.*--precision int8\)"):
        check_embedder(gen, Settings(backend="onnx", precision="int8"))
    gen = Generation(number=1, catalogue="c", embedder={"name": DEFAULT_NAME + "+int8-onnx", "dim": 384})
    with pytest.raises(EmbedderMismatchError, match=r"--precision int8 --backend onnx"):
        check_embedder(gen, Settings(backend="openvino", precision="int8"))
    check_embedder(gen, Settings(backend="onnx", precision="int8"))  # the same engine: no error
    gen = Generation(number=1, catalogue="c", embedder={"name": DEFAULT_NAME + "+int8-mixed", "dim": 384})
    with pytest.raises(
        EmbedderMismatchError,
        match=r"use the original \(--model all-MiniLM-L6-v2; kb ingest also needs --precision int8-mixed\)",
    ):
        check_embedder(gen, Settings(backend="onnx", precision="int8"))
    check_embedder(gen, Settings(precision="int8-mixed"))


def test_cpu_flags_are_read_from_proc_cpuinfo():
    flags = cpu_flags()
    assert isinstance(flags, frozenset)
    assert all(isinstance(f, str) and f == f.strip() and f for f in flags)


@pytest.mark.model
@pytest.mark.parametrize(
    "flags, openvino, choice",
    [
        (ZEN4, True, "openvino bf16 (auto: AVX-512 bf16 CPU without AMX)"),
        (ICE_LAKE, True, "openvino fp32 (auto: CPU without bf16 units)"),
        (ICE_LAKE, False, "onnx fp32 fused (auto: CPU without bf16 units, no OpenVINO)"),
    ],
)
def test_auto_on_a_cpu_without_amx_runs_the_model_with_fp32_vectors(flags, openvino, choice, tmp_path, monkeypatch):
    import kb.embed as embed

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(embed, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(embed, "_openvino_available", lambda: openvino)
    emb = embed.create_embedder(Settings(), purpose="documents")
    assert emb.choice == choice and emb.name == DEFAULT_NAME and emb.dim == 384
    ref = embed.SentenceTransformerEmbedder(device="cpu", precision="fp32").encode(TEXTS)
    many = TEXTS * 30  # several batches, sorted by length, queued
    vecs = emb.encode(many)
    assert vecs.dtype == np.float32 and vecs.shape == (len(many), 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float((vecs * np.tile(ref, (30, 1))).sum(axis=1).min()) > 0.9999  # the fp32 identity
    assert np.allclose(emb.encode(TEXTS[:2]), vecs[:2], atol=1e-3)  # the one-request path agrees


@pytest.mark.model
def test_a_kb_takes_queries_from_any_backend_of_its_identity_and_refuses_another(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    root = make_tree(
        {
            "payments/prod.yaml": "fraud:\n  review_threshold: 0.85\n  hold_hours: 4\n",
            "kafka/topics.yaml": "topics:\n  orders:\n    partitions: 12\n",
        }
    )
    db = tmp_path / "kb"
    # fp32 by hand: on a CPU without AMX `auto` would give this new KB int8 (another identity)
    with KnowledgeBase.build(root, db=db, backend="openvino", precision="fp32", workers=1) as kb:
        assert kb.generation().embedder["backend"] == "openvino"
        assert kb.generation().embedder["name"] == DEFAULT_NAME
    for backend in ("auto", "onnx", "torch"):  # built by OpenVINO, searched by the others
        with KnowledgeBase.open(db, backend=backend, read_only=True) as kb:
            assert kb.search("fraud review threshold", mode="semantic").iloc[0]["path"] == "payments/prod.yaml"
    with KnowledgeBase.open(db, precision="int8") as kb:
        with pytest.raises(EmbedderMismatchError, match=r"all-MiniLM-L6-v2'.*\+int8.*fresh KB directory"):
            kb.search("fraud review threshold", mode="semantic")
        with pytest.raises(EmbedderMismatchError):
            kb.ingest()


def test_every_embedder_says_what_runs():
    from kb.embed import create_embedder

    emb = create_embedder(Settings(model="hash"))
    assert (emb.backend, emb.precision, emb.choice) == ("hash", "fp32", "hash (a test fake)")


@pytest.mark.model
def test_long_texts_are_read_in_windows_alike_on_every_backend(tmp_path, monkeypatch):
    """The model reads at most ``embed_window`` word pieces per call (128 for all-MiniLM-L6-v2, the
    length it was trained on); a longer text is read in windows that each start with its first
    line, so words past the first window still count, and every backend gives the same vector."""
    import kb.embed as embed

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    context = "charts/payments/README.md | Persistence"
    filler = " ".join(f"the chart mounts volume number {i} under the data folder." for i in range(8))
    tail = "Payment retries: three attempts with exponential backoff of 250 milliseconds."
    long = f"{context}\n{filler} {tail}"
    short = "retry policy for the payment service"
    assert embed.create_embedder(Settings(backend="onnx")).max_length == 128  # the trained length
    assert embed.create_embedder(Settings(backend="onnx", embed_window=10_000)).max_length == 256  # the model's most

    vectors = {}
    for backend in ("torch", "onnx", "openvino"):
        emb = embed.create_embedder(Settings(backend=backend, precision="fp32", embed_window=64))
        assert emb.max_length == 64
        parts, owner, _ = emb._windows.split([long, short])
        assert owner.tolist().count(0) > 2 and owner.tolist().count(1) == 1  # the long text: several windows
        assert all(p.startswith(context + "\n") for p in parts[:-1])  # each window keeps the context line
        assert max(len(emb._windows._tok.encode(p).ids) for p in parts) <= 64
        assert "exponential backoff of 250" in " ".join(parts)  # nothing past the window is dropped
        sizes = [len(emb._windows._tok.encode(p).ids) for p in parts[:-1]]
        assert min(sizes[:-1]) >= 62  # full windows, then the rest
        vectors[backend] = emb.encode([long, short] * 3)  # the batched path
        assert np.allclose(emb.encode([long, short]), vectors[backend][:2], atol=1e-3)  # one request: the same
    ref = vectors["torch"]
    for backend in ("onnx", "openvino"):
        assert float((vectors[backend] * ref).sum(axis=1).min()) > 0.9999, backend

    ref_short = embed.SentenceTransformerEmbedder(device="cpu", precision="fp32").encode([short])[0]
    assert float(ref[1] @ ref_short) > 0.9999  # a text within the window embeds as before
    onnx = embed.create_embedder(Settings(backend="onnx", precision="fp32", embed_window=64))
    first = onnx.encode([onnx._windows.split([long])[0][0]])[0]  # what truncation at the window reads
    question = onnx.encode(["how often are payments retried, with what backoff"])[0]
    assert float(vectors["onnx"][0] @ question) > float(first @ question) + 0.05  # past the first window counts


@pytest.mark.model
def test_a_text_is_tokenized_once_into_the_inputs_it_had_before(tmp_path, monkeypatch):
    """A build's text is tokenized once: the windows' split hands the backend the input ids of
    every text that fits (with [CLS]/[SEP]), and the vectors are those of tokenizing again."""
    import kb.embed as embed

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    emb = embed.create_embedder(Settings(backend="onnx", precision="fp32", embed_window=64))
    texts = [
        "charts/payments/values.yaml | retry\nretry:\n  max_attempts: 3",
        "",
        "naïve café ☕ — ünïcödé key: välue",
        "docs/README.md | Setup\n" + " ".join(f"step {i} of the install guide" for i in range(40)),
        *TEXTS,
    ] * 3  # past SMALL_REQUEST: the batched path
    parts, owner, weight, ids = emb._windows.split_ids(texts)
    alone = np.bincount(owner)[owner] == 1  # a part that is a whole text
    assert 0 < alone.sum() < len(parts)  # the README text is read in windows
    assert [x is not None for x in ids] == alone.tolist()  # a window is tokenized by the backend
    assert all(ids[i] == emb._tokenizer.encode(parts[i]).ids for i in np.nonzero(alone)[0])
    assert emb._tokenizer.encode("").ids == ids[1] and len(ids[1]) == 2  # [CLS] [SEP]
    again = embed.Windows.join(emb._encode_within(parts), owner, weight, len(texts))  # tokenized anew
    assert np.array_equal(emb.encode(texts), again)


def test_a_long_text_all_on_its_first_line_is_read_in_windows():
    """A text longer than the window whose only line ends in a newline: its windows go on after
    the line's first half window (once, it got none: a zero vector, or another text's)."""
    from kb.embed import DEFAULT_MODEL, _model_location, _windows_for

    windows = _windows_for(Path(_model_location(DEFAULT_MODEL)[0]), 64)
    text = " ".join(f"setting{i}" for i in range(80)) + "\n"
    parts, owner, weight = windows.split([text, "short"])
    assert owner.tolist().count(0) >= 2 and owner.tolist()[-1] == 1
    assert "setting79" in parts[owner.tolist().count(0) - 1]  # read to the end
    assert len(weight) == len(parts)


def test_onnx_and_openvino_batch_16_texts_and_torch_32_unless_told(monkeypatch):
    import kb.embed as embed

    seen = {}
    for cls in (embed.OnnxEmbedder, embed.OpenVinoEmbedder, embed.SentenceTransformerEmbedder):
        monkeypatch.setattr(cls, "__init__", lambda self, *a, **k: seen.update(k) or None)
    for backend, batch in (("onnx", 16), ("openvino", 16), ("torch", 32)):
        embed.create_embedder(Settings(backend=backend))
        assert seen.pop("batch_size") == batch, backend
        embed.create_embedder(Settings(backend=backend, embed_batch_size=40))
        assert seen.pop("batch_size") == 40, backend


@pytest.mark.model
def test_ingest_says_what_embedded_its_texts(make_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    root = make_tree({"payments/prod.yaml": "fraud:\n  review_threshold: 0.85\n"})
    with KnowledgeBase(Settings(db=tmp_path / "kb", backend="onnx", workers=1)) as kb:
        assert kb.ingest(root, embed=False).embedder is None  # nothing embedded: nothing to say
        summary = kb.ingest(root)
    assert summary.chunks_embedded == 1
    assert summary.embedder == "onnx fp32 fused in 128-piece windows"
    from click.testing import CliRunner

    from kb.cli import cli

    (root / "payments/dev.yaml").write_text("fraud:\n  review_threshold: 0.5\n")
    out = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(tmp_path / "kb"), "--backend", "onnx"]).output
    assert "1 texts embedded by onnx fp32 fused in 128-piece windows" in out


INT8_TREE = {
    "payments/prod.yaml": "fraud:\n  review_threshold: 0.85\n  hold_hours: 4\n",
    "kafka/topics.yaml": "topics:\n  orders:\n    partitions: 12\n    retention: 7d\n",
    "docs/oncall.md": "# On call\n\nPage the payments team when card captures fail for five minutes.\n",
}
INT8_QUESTIONS = [  # fp32 queries that find each file of INT8_TREE in its int8 documents
    ("fraud review threshold", "payments/prod.yaml"),
    ("how many partitions does the orders topic have", "kafka/topics.yaml"),
    ("who gets paged when card captures fail", "docs/oncall.md"),
]


def extended_on_amx_keeps_its_int8(db, root, monkeypatch, engine: str, suffix: str) -> None:
    """The int8 KB at ``db`` (of INT8_TREE at ``root``), extended with the defaults on a CPU with AMX:
    ``engine`` embeds the changed file in the KB's own int8, and fp32 queries find every file."""
    import kb.embed as embed

    monkeypatch.setattr(embed, "cpu_flags", lambda: frozenset(AMX))
    (root / "kafka" / "topics.yaml").write_text(INT8_TREE["kafka/topics.yaml"].replace("12", "24"))
    with KnowledgeBase.open(db) as kb:
        summary = kb.ingest()
        assert summary.embedder.startswith(f"{engine} (auto: the KB's vectors are {suffix[1:]})")
        assert kb.generation().embedder["name"] == DEFAULT_NAME + suffix
        for query, path in INT8_QUESTIONS:
            assert kb.search(query, mode="semantic").iloc[0]["path"] == path, query
        assert kb.embedder("query").name == DEFAULT_NAME  # fp32 queries


@pytest.mark.model
def test_a_cpu_without_amx_builds_int8_documents_that_fp32_queries_search(make_tree, tmp_path, monkeypatch):
    """On an x86 CPU without AMX (a Zen 4 here), a new KB's documents are embedded by OpenVINO int8
    (NNCF, quantized once and cached); the KB records the int8 identity, keeps it when it is
    extended (even on a CPU with AMX), and is searched with the defaults (fp32 queries)."""
    import kb.embed as embed

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(embed, "cpu_flags", lambda: frozenset(ZEN4))
    monkeypatch.setattr(embed, "_gpu_present", lambda: False)
    root = make_tree(INT8_TREE)
    db = tmp_path / "kb"
    with KnowledgeBase(Settings(db=db, workers=1)) as kb:
        summary = kb.ingest(root)
        assert summary.embedder.startswith("openvino int8 (auto: new KB, CPU without AMX)")
        assert kb.generation().embedder["name"] == DEFAULT_NAME + "+int8"
        int8 = kb.embedder("documents")
    quantized = list((tmp_path / "cache" / "openvino").glob("*/model.xml"))
    assert len(quantized) == 1  # made once, then loaded
    ref = embed.SentenceTransformerEmbedder(device="cpu", precision="fp32").encode(TEXTS)
    cos = (int8.encode(TEXTS) * ref).sum(axis=1)
    assert 0.99 < float(cos.min()) < 0.99999  # close to the model's vectors, not equal: another identity
    extended_on_amx_keeps_its_int8(db, root, monkeypatch, "openvino int8", "+int8")
    # fp32 documents by hand: refused, with the fix
    with KnowledgeBase.open(db, precision="fp32") as kb, pytest.raises(EmbedderMismatchError):
        kb.ingest()


def test_openvino_and_nncf_are_imported_without_intels_telemetry(tmp_path):
    """Importing OpenVINO writes a client id under ``~/intel`` (and NNCF sends usage events unless
    opted out); kb's imports of both hide ``openvino_telemetry``, so neither happens."""
    import os
    import subprocess
    import sys

    def home_after(code: str, home: str) -> list[str]:
        os.makedirs(home)
        env = {**os.environ, "HOME": home}
        env.pop("CI", None)  # openvino_telemetry stays quiet in CI; the test is about kb, not that
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
        return sorted(p.relative_to(home).as_posix() for p in Path(home).rglob("*"))

    plain = home_after("import openvino", str(tmp_path / "plain"))
    assert "intel" in plain  # what a plain import does (the reason for this test)
    code = (
        "import sys; from kb.embed import _without_telemetry; _without_telemetry('openvino'); "
        "_without_telemetry('nncf'); import nncf.telemetry.wrapper as w; "
        "assert type(w.telemetry).__name__ != 'NNCFTelemetry', w.telemetry; "
        "import openvino_telemetry  # importable again for anyone else"
    )
    assert home_after(code, str(tmp_path / "kb")) == []


def test_the_int8_model_cache_key_names_what_made_it(monkeypatch):
    """Another NNCF or OpenVINO version, or other calibration texts, make another int8 model
    instead of loading one made by something else."""
    from importlib import metadata

    import kb.embed as embed

    texts = embed.calibration_texts()
    assert len(texts) == embed.INT8_CALIBRATION_TEXTS
    base = embed._int8_variant(texts)
    assert f"nncf{metadata.version('nncf')}" in base and f"openvino{metadata.version('openvino')}" in base
    assert embed._int8_variant(texts) == base  # deterministic
    assert embed._int8_variant([*texts[:-1], texts[-1] + " "]) != base
    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda d: "9.9" if d == "nncf" else real(d))
    assert embed._int8_variant(texts) != base


@pytest.mark.model
def test_int8_mixed_documents_are_their_own_identity_that_fp32_queries_search(make_tree, tmp_path, monkeypatch):
    """``--precision int8-mixed`` (by hand: for an AVX2 CPU without VNNI, a Zen 3) embeds documents
    with ONNX Runtime's int8 with fp32 feed-forward outputs (quantized once from the fused graph and
    cached): closer to the model's vectors than every MatMul in int8, another identity all the same,
    kept when the KB is extended with the defaults on another CPU, and searched with fp32 queries."""
    import onnx

    import kb.embed as embed

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(embed, "cpu_flags", lambda: frozenset(ZEN3))
    monkeypatch.setattr(embed, "_gpu_present", lambda: False)
    root = make_tree(INT8_TREE)
    db = tmp_path / "kb"
    with KnowledgeBase(Settings(db=db, workers=1, precision="int8-mixed")) as kb:
        summary = kb.ingest(root)
        assert summary.embedder.startswith("onnx int8-mixed (asked for int8-mixed)")
        assert kb.generation().embedder["name"] == DEFAULT_NAME + "+int8-mixed"
        mixed = kb.embedder("documents")
    graph = onnx.load(str(mixed.path), load_external_data=False)
    ops = [n.op_type for n in graph.graph.node]
    assert ops.count("QAttention") == 6 and ops.count("DynamicQuantizeLinear") > 0  # attention in int8
    kept = [n for n in graph.graph.node if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul")]
    assert len(kept) == 6  # each layer's feed-forward output projection in fp32
    ref = embed.SentenceTransformerEmbedder(device="cpu", precision="fp32").encode(TEXTS)
    cos_mixed = (mixed.encode(TEXTS) * ref).sum(axis=1)
    cos_int8 = (embed.OnnxEmbedder(precision="int8").encode(TEXTS) * ref).sum(axis=1)
    assert 0.97 < float(cos_mixed.min()) < 0.99999  # close to the model's vectors, not equal ("x": 0.982)
    assert float(cos_mixed.mean()) > float(cos_int8.mean()) + 0.001  # closer than every MatMul in int8 (0.992, 0.989)
    extended_on_amx_keeps_its_int8(db, root, monkeypatch, "onnx int8-mixed", "+int8-mixed")
    with (
        KnowledgeBase.open(db, precision="int8") as kb,
        pytest.raises(EmbedderMismatchError, match="--precision int8-mixed"),
    ):
        kb.ingest()  # another int8 by hand: refused, with the fix
