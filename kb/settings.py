"""Settings: defaults < ``[tool.kb]`` in pyproject.toml < ``KB_*`` environment < explicit overrides.

Only :meth:`Settings.load` reads files or the environment; everything else takes a ``Settings``.
Each field's docstring is its documentation (``kb config`` prints them; a test checks the README
names every one).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from kb.errors import ConfigError

__all__ = ["Settings", "DEFAULT_MODEL"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@dataclass
class Settings:
    db: Path = Path(".kb")
    """KB directory (catalogue, vectors, keyword index). Env ``KB_DB``; flag ``--db``."""

    root: Path | None = None
    """Corpus root the KB was built from (recorded at ingest; ``KB_ROOT`` for ``kb serve``)."""

    max_file_size: int = 10 * 1024 * 1024
    """Files larger than this many bytes are skipped with a ``file-too-large`` finding."""

    max_records_per_file: int = 200_000
    """Hard cap on flattened records per file; YAML alias expansion past it is a parse error."""

    max_depth: int = 500
    """Deepest nesting a parser accepts; deeper input is a parse error, never a crash."""

    workers: int = 0
    """Parser processes; 0 means one per CPU core."""

    file_timeout: float = 30.0
    """Seconds one file may take to read, parse, redact and chunk; past it the file is skipped with a
    ``file-too-slow`` finding and the run goes on (0: no budget)."""

    batch_files: int = 2000
    """Files committed per catalogue transaction (progress survives ``kill -9`` batch by batch)."""

    embed: bool = True
    """Build the search index (chunks, embeddings, keyword index) during ``kb ingest``."""

    record_changes: bool = True
    """Record key-level changes (added, removed, changed values) at each ingest (``kb changes``)."""

    git_attribution: bool = True
    """In a git work tree, attribute each recorded change to the commit that last touched its line."""

    git_history_timeout: float = 300.0
    """Seconds ``kb ingest --git-history N`` may spend replaying commits (newest first) before it stops."""

    model: str = DEFAULT_MODEL
    """Sentence-transformers model: a name (the bundled all-MiniLM-L6-v2) or a local directory."""

    device: str = "auto"
    """Embedding device: auto (CUDA when present), cpu, cuda, mps."""

    embed_batch_size: int = 32
    """Texts per model batch."""

    backend: str = "auto"
    """Embedding backend: auto (ONNX Runtime on CPUs, torch on GPUs), onnx, torch."""

    precision: str = "auto"
    """Embedding precision: auto, fp32, bf16 (torch on AMX CPUs), fp16 (CUDA), int8 (ONNX; other vectors)."""

    chroma_url: str | None = None
    """Chroma server URL (``http://host:port``); unset means an embedded PersistentClient."""

    chroma_mirror: bool = True
    """Mirror every vector into Chroma (the durable copy); with ``chroma_url`` always on."""

    publish_every: float = 5.0
    """Seconds between publications of embedding progress (readers see new vectors this often)."""

    write_timeout: float = 600.0
    """Seconds a write (ingest, validate) waits for another writer of the same KB before giving up."""

    known_env: list[str] = field(default_factory=list)
    """Variables provided from outside the tree (CI, the platform); never ``undefined-variable``."""

    schema_map: list[str] = field(default_factory=list)
    """``GLOB=SCHEMA`` pairs choosing a JSON Schema by path; GLOB may capture ``{name}``."""

    ref_roots: list[str] = field(default_factory=list)
    """Extra folders (relative to the corpus root) a file reference may resolve against."""

    schema_catalogs: list[str] = field(default_factory=list)
    """SchemaStore-style catalog files (``{"schemas": [{"fileMatch", "url"}]}``) outside the tree."""

    ignore: list[str] = field(default_factory=list)
    """Extra gitignore-style patterns to skip, on top of .gitignore and .kbignore."""

    api_key: str | None = None
    """Bearer token required by ``POST /ingest`` (``KB_API_KEY``); unset disables writes."""

    api_read_key: str | None = None
    """Bearer token required by read endpoints (``KB_API_READ_KEY``); unset means open reads."""

    cors_origins: list[str] = field(default_factory=list)
    """Origins allowed by CORS on the HTTP API."""

    request_timeout: float = 30.0
    """Seconds before an HTTP request is abandoned with a 503."""

    # ------------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        overrides: dict[str, Any] | None = None,
        *,
        pyproject: Path | None = None,
        environ: dict[str, str] | None = None,
    ) -> "Settings":
        """Build settings from the four layers. ``None`` overrides are ignored."""
        values: dict[str, Any] = {}
        pp = pyproject if pyproject is not None else Path("pyproject.toml")
        if pp.is_file():
            try:
                data = tomllib.loads(pp.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{pp}: cannot read [tool.kb]: {exc}. Fix the TOML syntax.") from exc
            section = data.get("tool", {}).get("kb", {})
            for key, value in section.items():
                values[key.replace("-", "_")] = value
        env = os.environ if environ is None else environ
        for f in fields(cls):
            name = f"KB_{f.name.upper()}"
            if name in env and env[name] != "":
                values[f.name] = env[name]
        for key, value in (overrides or {}).items():
            if value is not None:
                values[key] = value
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> "Settings":
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(
                    f"Unknown setting '{key}'. Known settings: {', '.join(sorted(known))}."
                )
            kwargs[key] = _coerce(key, known[key].type, value)
        return cls(**kwargs)

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    @classmethod
    def documentation(cls) -> dict[str, str]:
        """Field name -> docstring, read from this module's source."""
        import ast
        import inspect

        tree = ast.parse(inspect.getsource(cls))
        docs: dict[str, str] = {}
        body = tree.body[0].body  # type: ignore[attr-defined]
        for node, nxt in zip(body, body[1:]):
            if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr):
                if isinstance(nxt.value, ast.Constant) and isinstance(node.target, ast.Name):
                    docs[node.target.id] = str(nxt.value.value)
        return docs


def _coerce(key: str, type_: Any, value: Any) -> Any:
    t = str(type_)
    try:
        if t.startswith("Path"):
            return None if value is None else Path(value)
        if t == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if t == "int":
            return int(value)
        if t == "float":
            return float(value)
        if t.startswith("list"):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if t.startswith("str"):
            return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Setting '{key}' expects {t}, got {value!r}.") from exc
    return value
