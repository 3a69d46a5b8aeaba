"""Which backend ``auto`` picks on which CPU, the OpenVINO and fused ONNX backends, and the identity
rule between backends (one identity interoperates; another is refused with the fix)."""

from __future__ import annotations

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


def pick(flags, backend="auto", precision="auto", purpose="documents", device="cpu", **libs) -> BackendChoice:
    return choose_backend(backend, precision, purpose=purpose, device=device, flags=frozenset(flags), **libs)


@pytest.mark.parametrize(
    "flags, libs, expected",
    [
        (AMX, {}, ("torch", "bf16", False)),
        (ZEN4, {}, ("openvino", "bf16", False)),
        (ZEN4, {"openvino": False}, ("torch", "bf16", False)),
        (ZEN4, {"openvino": False, "torch": False}, ("onnx", "fp32", True)),
        (ICE_LAKE, {}, ("openvino", "fp32", False)),
        (ICE_LAKE, {"openvino": False}, ("onnx", "fp32", True)),
        (ALDER_LAKE, {}, ("openvino", "fp32", False)),
        (OLD, {}, ("openvino", "fp32", False)),
        (OLD, {"openvino": False}, ("onnx", "fp32", True)),
        (OLD, {"onnx_ok": False}, ("torch", "fp32", False)),
        (AMX, {"torch": False}, ("onnx", "fp32", True)),
    ],
    ids=[
        "amx",
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
        assert pick(flags, precision="int8", purpose="query")[:2] == ("onnx", "int8")


def test_asked_for_precisions_and_backends_are_kept():
    assert pick(ZEN4, precision="fp32")[:2] == ("openvino", "fp32")  # exact fp32, the fastest way
    assert pick(AMX, precision="fp32")[:2] == ("torch", "fp32")  # unchanged on AMX
    assert pick(ICE_LAKE, precision="bf16")[:2] == ("torch", "bf16")
    assert pick(ICE_LAKE, precision="int8")[:2] == ("onnx", "int8")
    assert pick(ZEN4, backend="openvino")[:2] == ("openvino", "bf16")
    assert pick(ICE_LAKE, backend="openvino")[:2] == ("openvino", "fp32")
    assert pick(ICE_LAKE, backend="openvino", precision="bf16")[:2] == ("openvino", "bf16")
    assert pick(ZEN4, backend="onnx")[:3] == ("onnx", "fp32", True)
    assert pick(ZEN4, backend="onnx", purpose="query")[:3] == ("onnx", "fp32", False)
    assert pick(ZEN4, backend="torch")[:2] == ("torch", "fp32")
    with pytest.raises(ConfigError, match="int8 is an ONNX precision"):
        pick(ZEN4, backend="openvino", precision="int8")
    with pytest.raises(ConfigError, match="fp16 is a CUDA precision"):
        pick(ZEN4, backend="openvino", precision="fp16")


def test_every_backend_but_int8_keeps_the_models_identity():
    for backend in ("auto", "onnx", "openvino", "torch"):
        for precision in ("auto", "fp32", "bf16", "fp16"):
            assert embedder_name(Settings(backend=backend, precision=precision)) == DEFAULT_NAME
        if backend in ("auto", "onnx"):
            assert embedder_name(Settings(backend=backend, precision="int8")) == DEFAULT_NAME + "+int8"


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
    with KnowledgeBase.build(root, db=db, backend="openvino", workers=1) as kb:
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
