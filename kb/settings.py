"""Settings: defaults < ``[tool.kb]`` in pyproject.toml < ``KB_*`` environment < explicit overrides.

:class:`Settings` is a pydantic model: constructing one reads nothing (tests and libraries pass
what they mean); :meth:`Settings.load` adds the layers, through pydantic-settings sources
(``[tool.kb]`` of ``./pyproject.toml``, then ``KB_*`` variables). Each field's ``description`` is
its documentation: ``kb config`` prints it and a test checks the README names every setting.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    PyprojectTomlConfigSettingsSource,
    SettingsConfigDict,
)

from kb.errors import ConfigError

__all__ = ["Settings", "DEFAULT_MODEL"]

DEFAULT_MODEL = "all-MiniLM-L6-v2"

_LIST_FIELDS = (
    "known_env",
    "schema_map",
    "ref_roots",
    "schema_catalogs",
    "ignore",
    "cors_origins",
    "drift_ignore",
)


class Settings(BaseModel):
    """Everything kb can be told. Build with :meth:`load` (all layers) or directly (only what is given)."""

    model_config = ConfigDict(extra="forbid", validate_default=False)

    db: Path = Field(
        default=Path(".kb"),
        description="KB directory (catalogue, vectors, keyword index). Env ``KB_DB``; flag ``--db``.",
    )
    root: Path | None = Field(
        default=None,
        description="Corpus root the KB was built from (recorded at ingest; ``KB_ROOT`` for ``kb serve``).",
    )
    max_file_size: int = Field(
        default=10 * 1024 * 1024,
        description="Files larger than this many bytes are skipped with a ``file-too-large`` finding.",
    )
    max_records_per_file: int = Field(
        default=200_000,
        description="Hard cap on flattened records per file; YAML alias expansion past it is a parse error.",
    )
    max_depth: int = Field(
        default=500, description="Deepest nesting a parser accepts; deeper input is a parse error, never a crash."
    )
    workers: int = Field(default=0, description="Parser processes; 0 means one per CPU core.")
    file_timeout: float = Field(
        default=30.0,
        description="Seconds one file may take to read, parse, redact and chunk; past it the file is skipped with a ``file-too-slow`` finding and the run goes on (0: no budget).",
    )
    batch_files: int = Field(
        default=2000,
        description="Files committed per catalogue transaction (progress survives ``kill -9`` batch by batch).",
    )
    embed: bool = Field(
        default=True, description="Build the search index (chunks, embeddings, keyword index) during ``kb ingest``."
    )
    record_changes: bool = Field(
        default=True,
        description="Record key-level changes (added, removed, changed values) at each ingest (``kb changes``).",
    )
    git_attribution: bool = Field(
        default=True,
        description="In a git work tree, attribute each recorded change to the commit that last touched its line.",
    )
    git_history_timeout: float = Field(
        default=300.0,
        description="Seconds ``kb ingest --git-history N`` may spend replaying commits (newest first) before it stops.",
    )
    model: str = Field(
        default=DEFAULT_MODEL,
        description="Sentence-transformers model: a name (the bundled all-MiniLM-L6-v2) or a local directory.",
    )
    device: str = Field(default="auto", description="Embedding device: auto (CUDA when present), cpu, cuda, mps.")
    embed_batch_size: int = Field(
        default=0,
        ge=0,
        description=(
            "Texts per model batch (``KB_EMBED_BATCH_SIZE``): 0 = the backend's own, 16 on OpenVINO and "
            "ONNX Runtime (4% more texts/s than 32 on a Zen 4, docs/performance.md), 32 on torch."
        ),
    )
    embed_window: int = Field(
        default=0,
        ge=0,
        description=(
            "Word pieces per model call (``KB_EMBED_WINDOW``): 0 = the length the model was trained on "
            "(128 for all-MiniLM-L6-v2), else its ``max_seq_length``. Longer texts are read in windows "
            "of this size, each starting with the text's first line, their vectors averaged."
        ),
    )
    backend: str = Field(
        default="auto",
        description="Embedding backend: auto (the fastest this machine has: OpenVINO or ONNX Runtime on CPUs, torch on GPUs), openvino, onnx, torch.",
    )
    precision: str = Field(
        default="auto",
        description=(
            "Embedding precision: auto (a KB's own; a new KB int8 on x86 CPUs with VNNI and without AMX), "
            "fp32, bf16, fp16 (CUDA), int8 and int8-mixed (ONNX Runtime, fp32 feed-forward outputs): other vectors."
        ),
    )
    chroma_url: str | None = Field(
        default=None, description="Chroma server URL (``http://host:port``); unset means an embedded PersistentClient."
    )
    vector_reads: str = Field(
        default="local",
        description=(
            "Where semantic search reads vectors: ``local`` (the KB directory's vector segments: an exact scan) or "
            "``server`` (nearest neighbours from the Chroma server at ``chroma_url``: for replicas that share the "
            "catalogue but not the segments; approximate, by Chroma's HNSW index)."
        ),
    )
    chroma_mirror: bool = Field(
        default=True, description="Mirror every vector into Chroma (the durable copy); with ``chroma_url`` always on."
    )
    ray_address: str | None = Field(
        default=None,
        description=(
            "Build on a Ray cluster (``KB_RAY_ADDRESS``, flag ``--ray``): ``auto`` joins this machine's cluster or "
            "starts one, ``local`` starts one here, else ``host:6379`` or ``ray://host:10001``; needs ``kb[ray]``. "
            "Unset: parse and embed on this machine."
        ),
    )
    publish_every: float = Field(
        default=5.0,
        description="Seconds between publications of embedding progress (readers see new vectors this often).",
    )
    progress_every: float = Field(
        default=5.0,
        description="Seconds between progress lines when stderr is not a terminal (CI logs, pipes); a terminal gets a bar.",
    )
    write_timeout: float = Field(
        default=600.0,
        description="Seconds a write (ingest, validate) waits for another writer of the same KB before giving up.",
    )
    known_env: list[str] = Field(
        default_factory=list,
        description="Variables provided from outside the tree (CI, the platform); never ``undefined-variable``.",
    )
    schema_map: list[str] = Field(
        default_factory=list,
        description="``GLOB=SCHEMA`` pairs choosing a JSON Schema by path; GLOB may capture ``{name}``.",
    )
    ref_roots: list[str] = Field(
        default_factory=list,
        description="Extra folders (relative to the corpus root) a file reference may resolve against.",
    )
    schema_catalogs: list[str] = Field(
        default_factory=list,
        description='SchemaStore-style catalog files (``{"schemas": [{"fileMatch", "url"}]}``) outside the tree.',
    )
    drift_ignore: list[str] = Field(
        default_factory=list,
        description="Intended differences between environments: ``KEY_GLOB`` or ``FILE_GLOB:KEY_GLOB`` entries "
        "(``replicaCount``, ``values-*.yaml:resources.*``) that ``kb drift`` leaves out and the health score does not count.",
    )
    ignore: list[str] = Field(
        default_factory=list, description="Extra gitignore-style patterns to skip, on top of .gitignore and .kbignore."
    )
    api_key: str | None = Field(
        default=None, description="Bearer token required by ``POST /ingest`` (``KB_API_KEY``); unset disables writes."
    )
    api_read_key: str | None = Field(
        default=None,
        description="Bearer token required by read endpoints (``KB_API_READ_KEY``); unset means open reads.",
    )
    cors_origins: list[str] = Field(default_factory=list, description="Origins allowed by CORS on the HTTP API.")
    request_timeout: float = Field(default=30.0, description="Seconds before an HTTP request is abandoned with a 503.")

    @field_validator(*_LIST_FIELDS, mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        """``KB_KNOWN_ENV=A,B`` (a comma-separated string) as well as a TOML or Python list."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    # ------------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        overrides: dict[str, Any] | None = None,
        *,
        pyproject: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Build settings from the four layers. ``None`` overrides are ignored."""
        pp = pyproject if pyproject is not None else Path("pyproject.toml")
        env = os.environ if environ is None else environ
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"Unknown setting '{unknown[0]}'. Known settings: {', '.join(sorted(cls.model_fields))}.")
        try:
            layered = _Layers.read(pp, env)
        except ValueError as exc:  # a TOML syntax error in pyproject.toml
            raise ConfigError(f"{pp}: cannot read [tool.kb]: {exc}. Fix the TOML syntax.") from exc
        values = {**layered, **given}
        return cls.from_mapping(values)

    @classmethod
    def sources(
        cls,
        overrides: dict[str, Any] | None = None,
        *,
        pyproject: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Where each setting's value comes from, with :meth:`load`'s layers: ``flag``,
        ``env KB_NAME``, ``pyproject.toml [tool.kb]`` or ``default``."""
        pp = pyproject if pyproject is not None else Path("pyproject.toml")
        env = os.environ if environ is None else environ
        given = {k for k, v in (overrides or {}).items() if v is not None}
        try:
            from_pp = {k.replace("-", "_") for k in _Pyproject(_Layers, pp)()}
        except ValueError:
            from_pp = set()
        from_env = set(_Environ(_Layers, env)())
        out = {}
        for name in cls.model_fields:
            if name in given:
                out[name] = "flag"
            elif name in from_env:
                out[name] = f"env KB_{name.upper()}"
            elif name in from_pp:
                out[name] = f"{pp} [tool.kb]"
            else:
                out[name] = "default"
        return out

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Validated settings from a mapping; a bad value is a :class:`ConfigError` naming the setting."""
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise ConfigError(f"Unknown setting '{unknown[0]}'. Known settings: {', '.join(sorted(cls.model_fields))}.")
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = str(err["loc"][0]) if err.get("loc") else "?"
            expected: object = cls.model_fields[key].annotation if key in cls.model_fields else "?"
            shown = getattr(expected, "__name__", None) or str(expected)
            raise ConfigError(f"Setting '{key}' expects {shown}, got {err.get('input')!r}.") from exc

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes``, validated like any other value."""
        return type(self).from_mapping({**self.model_dump(), **changes})

    def with_root_of(self, catalogue: Any) -> Settings:
        """These settings with the corpus root filled in, from one place: the root given (flag,
        ``KB_ROOT``, pyproject) wins; else the one ``catalogue`` recorded at its last ingest
        (meta ``root``); else none. Every reader that needs the root asks here."""
        if self.root is not None:
            return self
        recorded = catalogue.get_meta("root")
        return self.replace(root=Path(recorded)) if recorded else self

    @classmethod
    def documentation(cls) -> dict[str, str]:
        """Field name -> its description."""
        return {name: f.description or "" for name, f in cls.model_fields.items()}


class _Layers(BaseSettings):
    """The pyproject and environment layers, read by pydantic-settings (values stay raw here; they
    are validated once, by :class:`Settings`)."""

    model_config = SettingsConfigDict(
        extra="allow", env_prefix="KB_", case_sensitive=False, pyproject_toml_table_header=("tool", "kb")
    )

    @classmethod
    def read(cls, pyproject: Path, environ: Mapping[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        pp = _Pyproject(cls, pyproject)
        for key, value in pp().items():
            out[key.replace("-", "_")] = value
        env = _Environ(cls, environ)
        out.update(env())
        return out

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], *sources: PydanticBaseSettingsSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return ()


class _Pyproject(PyprojectTomlConfigSettingsSource):
    """``[tool.kb]`` of the given pyproject.toml (none when the file is missing)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls, toml_file=path)

    def __call__(self) -> dict[str, Any]:
        return dict(self.toml_data)


class _Environ(EnvSettingsSource):
    """``KB_*`` variables of the given environment, for every setting; empty values are unset."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._kb_environ = environ
        super().__init__(settings_cls, env_prefix="KB_", case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v for k, v in self._kb_environ.items() if k.upper().startswith("KB_") and v != ""}

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in Settings.model_fields:
            value = self.env_vars.get(f"kb_{name}")
            if value is not None:
                out[name] = value
        return out
