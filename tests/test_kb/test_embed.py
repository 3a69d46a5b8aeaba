"""Embedders: the hash fake, the factory and its cache, the bundled sentence-transformers model."""

from __future__ import annotations

import numpy as np
import pytest

from kb.embed import (
    DEFAULT_NAME,
    Embedder,
    HashEmbedder,
    embedder_name,
    get_embedder,
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
    q, near, far = hash_embedder.encode(["payments fraud threshold", "fraud threshold for payments", "kafka topic partitions"])
    assert float(q @ near) > float(q @ far)


def test_encode_of_no_texts_is_an_empty_matrix(hash_embedder):
    assert hash_embedder.encode([]).shape == (0, 64)


@pytest.mark.parametrize("model, name, dim", [("hash", "hash-64", 64), ("hash:16", "hash-16", 16), ("HASH:8", "hash-8", 8)])
def test_factory_selects_the_hash_embedder_and_caches_it(model, name, dim):
    s = Settings(model=model)
    emb = get_embedder(s)
    assert (emb.name, emb.dim) == (name, dim)
    assert get_embedder(s) is emb
    assert embedder_name(s) == name


def test_factory_rejects_a_bad_hash_spec():
    with pytest.raises(ConfigError, match="hash:DIM"):
        get_embedder(Settings(model="hash:lots"))


def test_default_model_identity_needs_no_model_load():
    assert embedder_name(Settings()) == DEFAULT_NAME == "sentence-transformers/all-MiniLM-L6-v2"


def test_missing_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        embedder_name(Settings(model=str(tmp_path / "nope" / "model")))


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(ConfigError, match="Unknown device"):
        resolve_device("tpu")


@pytest.mark.model
def test_bundled_model_loads_offline_once_and_embeds_meaningfully():
    s = Settings(device="cpu")
    emb = get_embedder(s)
    assert get_embedder(s) is emb  # loaded once per process
    assert emb.name == DEFAULT_NAME and emb.dim == 384
    q, near, far = emb.encode([
        "Where is the fraud-review threshold for payments?",
        "fraud:\n  review_threshold: 0.85",
        "kafka topic partitions: 12",
    ])
    assert np.allclose([np.linalg.norm(q), np.linalg.norm(near)], 1.0, atol=1e-5)
    assert float(q @ near) > float(q @ far)


@pytest.mark.model
def test_a_model_directory_loads_from_there(tmp_path):
    from kb.embed import SentenceTransformerEmbedder, bundled_model_dir

    emb = SentenceTransformerEmbedder(str(bundled_model_dir()), device="cpu")
    assert emb.name == DEFAULT_NAME  # the bundled directory is the bundled model
    assert emb.encode(["x"]).shape == (1, 384)
