"""Embedders: the hash fake, the factory, identities, and the bundled model on ONNX Runtime and torch."""

from __future__ import annotations

import numpy as np
import pytest

from kb.embed import (
    DEFAULT_NAME,
    Embedder,
    HashEmbedder,
    create_embedder,
    embedder_name,
    resolve_device,
)
from kb.errors import ConfigError
from kb.settings import Settings


def test_hash_embedder_is_deterministic_normalised_float32(hash_embedder):
    texts = ["fraud review threshold", "DATABASE_URL=postgres://x", ""]
    a = hash_embedder.encode(texts)
    b = HashEmbedder(dim=64).encode(texts)
    assert a.dtype == np.float32 and a.shape == (3, 64)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-6)
    assert isinstance(hash_embedder, Embedder)
    assert hash_embedder.name == "hash-64" and hash_embedder.dim == 64


def test_hash_embedder_puts_texts_sharing_words_closer(hash_embedder):
    q, near, far = hash_embedder.encode(
        ["payments fraud threshold", "fraud threshold for payments", "kafka topic partitions"]
    )
    assert float(q @ near) > float(q @ far)


def test_encode_of_no_texts_is_an_empty_matrix(hash_embedder):
    assert hash_embedder.encode([]).shape == (0, 64)


@pytest.mark.parametrize(
    "model, name, dim", [("hash", "hash-64", 64), ("hash:16", "hash-16", 16), ("HASH:8", "hash-8", 8)]
)
def test_factory_selects_the_hash_embedder(model, name, dim):
    s = Settings(model=model)
    emb = create_embedder(s)
    assert (emb.name, emb.dim) == (name, dim)
    assert embedder_name(s) == name


def test_factory_rejects_a_bad_hash_spec_and_unknown_choices():
    with pytest.raises(ConfigError, match="hash:DIM"):
        create_embedder(Settings(model="hash:lots"))
    with pytest.raises(ConfigError, match="Unknown backend 'tpu'"):
        embedder_name(Settings(backend="tpu"))
    with pytest.raises(ConfigError, match="Unknown precision"):
        embedder_name(Settings(precision="int4"))
    with pytest.raises(ConfigError, match="int8 runs on OpenVINO or ONNX Runtime"):
        create_embedder(Settings(backend="torch", precision="int8"))


def test_identities_need_no_model_load_and_only_int8_is_another_one():
    assert embedder_name(Settings()) == DEFAULT_NAME == "sentence-transformers/all-MiniLM-L6-v2"
    for backend in ("auto", "onnx", "torch"):
        for precision in ("auto", "fp32", "bf16", "fp16"):
            assert embedder_name(Settings(backend=backend, precision=precision)) == DEFAULT_NAME
    assert embedder_name(Settings(precision="int8")) == DEFAULT_NAME + "+int8"


def test_missing_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        embedder_name(Settings(model=str(tmp_path / "nope" / "model")))


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="Unknown device"):
        resolve_device("tpu")


TEXTS = [
    "Where is the fraud-review threshold for payments?",
    "fraud:\n  review_threshold: 0.85",
    "kafka topic partitions: 12",
    "services/api/.env | dotenv | DATABASE_URL\nDATABASE_URL=postgres://db:5432/app\nLOG_LEVEL=info",
    "# Runbook\n\nHeld payments land in the review queue and are decided within four hours. " * 8,
    "x",
]


@pytest.mark.model
def test_onnx_runs_the_bundled_model_offline_with_torchs_vectors(tmp_path, monkeypatch):
    from kb.embed import OnnxEmbedder, SentenceTransformerEmbedder, bundled_model_dir, export_onnx

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    onnx = create_embedder(Settings(), purpose="query")
    assert isinstance(onnx, OnnxEmbedder) and onnx.name == DEFAULT_NAME and onnx.dim == 384
    path = export_onnx(bundled_model_dir())
    assert path.is_relative_to(tmp_path / "cache") and path.is_file()
    mtime = path.stat().st_mtime_ns
    again = OnnxEmbedder()  # the cached export is reused, not made again
    assert again.path == path and path.stat().st_mtime_ns == mtime
    torch = SentenceTransformerEmbedder(device="cpu")
    a, b = onnx.encode(TEXTS), torch.encode(TEXTS)
    assert a.dtype == np.float32 and a.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert float((a * b).sum(axis=1).min()) > 0.9999  # the same vectors: the same identity
    many = TEXTS * 40  # several batches, sorted by length and tokenized ahead
    assert np.allclose(again.encode(many), np.tile(a, (40, 1)), atol=1e-5)
    q, near, far = a[:3]
    assert float(q @ near) > float(q @ far)


@pytest.mark.model
def test_bf16_and_int8_stay_close_to_fp32_and_int8_is_its_own_identity(tmp_path, monkeypatch):
    from kb.embed import OnnxEmbedder, SentenceTransformerEmbedder

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    ref = SentenceTransformerEmbedder(device="cpu", precision="fp32").encode(TEXTS)
    bf16 = SentenceTransformerEmbedder(device="cpu", precision="bf16")
    assert bf16.name == DEFAULT_NAME and bf16.precision == "bf16"
    vecs = bf16.encode(TEXTS)
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert float((vecs * ref).sum(axis=1).min()) > 0.9995  # measured 0.9999: one identity with fp32
    int8 = OnnxEmbedder(precision="int8")
    assert int8.name == DEFAULT_NAME + "+int8-onnx"  # ONNX Runtime's int8: not OpenVINO's, another identity
    cos = (int8.encode(TEXTS) * ref).sum(axis=1)
    assert 0.95 < float(cos.mean()) < 0.9999


@pytest.mark.model
def test_a_model_directory_loads_from_there(tmp_path):
    from kb.embed import SentenceTransformerEmbedder, bundled_model_dir

    emb = SentenceTransformerEmbedder(str(bundled_model_dir()), device="cpu")
    assert emb.name == DEFAULT_NAME  # the bundled directory is the bundled model
    assert emb.encode(["x"]).shape == (1, 384)


@pytest.mark.model
def test_batches_are_padded_to_a_few_widths_and_padding_changes_no_vector(monkeypatch):
    """Token batches are padded (masked) to a multiple of PAD_TO pieces, so a build runs a few
    input shapes (each one the runtime keeps memory for), with the vectors unpadded batches give."""
    import kb.embed as embed
    from kb.embed import OnnxEmbedder

    emb = OnnxEmbedder()
    texts = ["replicas: 3", "payments retry policy: max_attempts 3, initial_backoff 250ms, max_backoff 10s", *TEXTS]
    feeds = emb._tokenize(texts)
    assert feeds["input_ids"].shape[1] % embed.PAD_TO == 0
    assert feeds["attention_mask"][0].sum() < feeds["input_ids"].shape[1]  # the short one is masked, not cut
    assert emb._tokenize(["replicas " * 400])["input_ids"].shape[1] == emb.max_length  # never past the window
    padded = emb.encode(texts)
    monkeypatch.setattr(embed, "PAD_TO", 1)
    widths = {len(e.ids) for e in emb._tokenizer.encode_batch(texts)}
    assert emb._tokenize(texts)["input_ids"].shape[1] == max(widths)  # unpadded: the longest text's width
    plain = emb.encode(texts)
    assert float((padded * plain).sum(axis=1).min()) > 0.99999


def test_model_text_reads_json_without_its_quotes_commas_and_brackets(monkeypatch):
    """model_text (a measured lever, off by default): the word pieces of JSON syntax (13% of the dev
    corpus's pieces) left out; the context line, YAML, Helm templates and prose read as they are."""
    import kb.embed as embed
    from kb.embed import model_text

    chunk = 'a/values.schema.json | properties.memory\n  "memory": {\n    "type": "string",\n    "title": "Memory \\"Request\\"",\n    "enum": [1, 2],\n    "items": [\n      "a",\n    ]\n  },\n  {}'
    assert model_text(chunk) == chunk  # off by default: the model reads the text as it is
    monkeypatch.setattr(embed, "MODEL_TEXT", True)
    assert model_text(chunk) == (
        "a/values.schema.json | properties.memory\n  memory:\n    type: string\n    title: Memory 'Request'\n"
        "    enum: [1, 2]\n    items:\n      a"
    )
    for same in ("replicas: 3\nimage: nginx", "name: {{ .Values.name }}\nlist: [[a]]", "Retries, then backs off."):
        assert model_text(same) == same
    assert model_text("where is the timeout set,") == "where is the timeout set"


@pytest.mark.model
def test_every_backend_reads_the_model_text_when_on(monkeypatch):
    import kb.embed as embed
    from kb.embed import OnnxEmbedder, SentenceTransformerEmbedder

    raw = '{\n  "retry": {\n    "max_attempts": 3,\n    "initial_backoff": "250ms"\n  }\n}'
    plain = "retry:\n    max_attempts: 3\n    initial_backoff: 250ms"
    for emb in (OnnxEmbedder(), SentenceTransformerEmbedder(device="cpu")):
        monkeypatch.setattr(embed, "MODEL_TEXT", True)
        a, b = emb.encode([raw, plain])
        assert float(a @ b) > 0.9999  # the same text to the model
        monkeypatch.setattr(embed, "MODEL_TEXT", False)
        c, d = emb.encode([raw, plain])
        assert float(c @ d) < 0.999 and float(d @ b) > 0.9999  # off (the default): the syntax is read
