"""``KnowledgeBase``: the one service object. The CLI, the HTTP API, the MCP server and notebooks
call it; it owns, for its lifetime, the settings (with the corpus root resolved), the reader of the
KB's published generations (catalogue, keyword index, vectors) and the embedders.

Reading never takes a lock and never blocks a writer: every read runs on a snapshot of the newest
published generation (:mod:`kb.generations`), picked up as soon as a writer publishes it. A write
(:meth:`~KnowledgeBase.ingest`, :meth:`~KnowledgeBase.validate`) takes the KB's writer role only
for its duration, works on a private copy, and publishes it.

Like :mod:`kb.cli`, this module is a composition root: it imports :mod:`ingest` and :mod:`graph`
only inside method bodies, so ``import kb`` stays light.

Every tabular answer is a pandas DataFrame; the graph is a networkx ``DiGraph``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.catalogue import Catalogue
from kb.errors import ConfigError, NotIndexedError, ReadOnlyError
from kb.generations import Generation, Reader, Snapshot, write_session
from kb.settings import Settings
from kb.types import RunSummary

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import pandas as pd

    from kb.embed import Embedder
    from kb.types import SearchResult

__all__ = ["KnowledgeBase"]


class KnowledgeBase:
    """A knowledge base directory: catalogue, keyword index and vectors, in generations.

    >>> kb = KnowledgeBase.open(".kb")            # an existing KB (reads; writes on demand)
    >>> kb = KnowledgeBase.build("platform/")     # ingest a tree into ./.kb

    ``read_only=True`` refuses the write methods. ``one_shot=True`` suits a process that makes one
    query and exits (vectors are read block by block instead of memory-mapped).
    """

    def __init__(self, settings: Settings, *, read_only: bool = False, one_shot: bool = False) -> None:
        self._settings = settings
        self.read_only = read_only
        self._reader = Reader(settings.db, keep_mapped=not one_shot)
        self._embedders: dict[str, Embedder] = {}
        self._embedder_lock = threading.Lock()
        self._graph: tuple[int, Any] | None = None
        self._graph_lock = threading.Lock()
        self.notify: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
        """Where messages for a person go (a write waiting for another writer)."""

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def sample_path() -> Path:
        """The bundled sample corpus (a small platform tree with planted problems)."""
        return Path(__file__).resolve().parent / "sample"

    @classmethod
    def open(
        cls, db: str | Path | None = None, *, read_only: bool = False, one_shot: bool = False, **settings: Any
    ) -> KnowledgeBase:
        """Open the KB at ``db`` (default ``$KB_DB`` or ``.kb``); it must have been built."""
        s = Settings.load({"db": Path(db) if db is not None else None, **settings})
        kb = cls(s, read_only=read_only, one_shot=one_shot)
        if kb.generation() is None:
            raise NotIndexedError(f"No knowledge base at '{s.db}'. Run `kb ingest PATH --db {s.db}` first.")
        return kb

    @classmethod
    def build(cls, root: str | Path, db: str | Path | None = None, **settings: Any) -> KnowledgeBase:
        """Ingest ``root`` into ``db`` (incrementally if it exists) and return the KB."""
        s = Settings.load({"db": Path(db) if db is not None else None, **settings})
        kb = cls(s)
        kb.ingest(root)
        return kb

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeBase(db={str(self._settings.db)!r}, root={str(self.settings.root)!r})"

    # -- generations ----------------------------------------------------------------------------

    def generation(self) -> Generation | None:
        """The newest published generation (None before the first ingest)."""
        return self._reader.generation()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """The newest published generation, held for the block (several consistent reads)."""
        with self._reader.snapshot() as snap:
            yield snap

    @property
    def catalogue(self) -> Catalogue:
        """The current generation's catalogue (read-only), bound to that generation: it reads the
        same data for as long as it is kept, whatever other writers publish meanwhile (ask again
        for the newest)."""
        snap = self._reader.hold()
        try:
            con = snap.catalogue.cursor()
        except BaseException:
            self._reader.release(snap)
            raise
        view = snap.catalogue.view(con)
        weakref.finalize(view, self._reader.release_later, snap, con)
        return view

    @property
    def settings(self) -> Settings:
        """The settings, with the corpus root recorded in the KB when none was given."""
        if self._settings.root is not None:
            return self._settings
        try:
            with self.snapshot() as snap:
                return self._resolved(snap)
        except NotIndexedError:
            return self._settings

    def _resolved(self, snap: Snapshot) -> Settings:
        if self._settings.root is not None:
            return self._settings
        root = snap.cache.get("root")
        if root is None:
            root = snap.catalogue.get_meta("root") or ""
            snap.cache["root"] = root
        return self._settings.replace(root=Path(root)) if root else self._settings

    def _require_writable(self, what: str) -> None:
        if self.read_only:
            raise ReadOnlyError(f"{what} writes to the KB: open it without read_only=True.")

    # -- embedders ------------------------------------------------------------------------------

    def embedder(self, purpose: str = "query") -> Embedder:
        """This KB's embedder for ``query`` (latency first) or ``documents`` (throughput first),
        created on first use and kept."""
        with self._embedder_lock:
            emb = self._embedders.get(purpose)
            if emb is None:
                from kb.embed import create_embedder

                emb = create_embedder(self._settings, purpose=purpose)
                self._embedders[purpose] = emb
            return emb

    def use_embedder(self, embedder: Embedder, purpose: str | None = None) -> None:
        """Inject an embedder (an fp16 model on a GPU, a fake in tests) for one or both purposes.
        Its ``name`` must be the identity the configured settings give (``kb.embed.embedder_name``)."""
        with self._embedder_lock:
            for p in [purpose] if purpose else ["query", "documents"]:
                self._embedders[p] = embedder

    # -- writes ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[Any]:
        self._require_writable(what)
        s = self._settings
        with write_session(s.db, what=what, timeout=s.write_timeout, notify=self.notify) as ws:
            yield ws

    def ingest(
        self,
        root: str | Path | None = None,
        *,
        progress: Callable[..., None] | None = None,
        embed: bool | None = None,
        git_history: int = 0,
    ) -> RunSummary:
        """Ingest (incrementally) ``root`` or the root recorded in the KB.

        The catalogue and keyword index are published first (searchable at once), then the texts
        without vectors are embedded and published as they go; ``embed=False`` (or the ``embed``
        setting off) leaves them for a later run. ``git_history=N`` also replays the last N commits
        of the git repository holding the root into the change log (bounded by
        ``git_history_timeout``), so a new KB starts with history.
        """
        from ingest.pipeline import run_ingest
        from kb.index import check_embedder, embed_pending, embedding_counts, new_kb_id, sync_keyword

        t0 = time.perf_counter()
        target = Path(root) if root is not None else self.settings.root
        if target is None:
            raise ConfigError("No root to ingest: pass a path, e.g. kb.ingest('platform/').")
        if git_history < 0:
            from kb.errors import BadRequestError

            raise BadRequestError(f"git_history must be 0 or more commits (got {git_history}).")
        settings = self._settings.replace(root=Path(target))
        do_embed = settings.embed if embed is None else embed
        phases: dict[str, float] = {}
        with self._writing("kb ingest") as ws:
            if do_embed:
                check_embedder(ws.base, settings)
            if ws.interrupted_before:
                ws.catalogue.record_interrupted_run(str(Path(target).resolve()))
            t = time.perf_counter()
            summary = run_ingest(ws.catalogue, settings, progress=progress)
            if git_history:
                from ingest.changes import replay_git_history

                done = replay_git_history(ws.catalogue, settings, summary.run_id, git_history, progress=progress)
                summary = summary.model_copy(
                    update={
                        "history_commits": done.commits,
                        "key_changes": summary.key_changes + done.changes,
                        "notes": [*summary.notes, *done.notes],
                    }
                )
            phases["catalogue"] = time.perf_counter() - t
            t = time.perf_counter()
            full = ws.base is None or not ws.base.keyword or not (ws.db / "keyword" / ws.base.keyword).is_dir()
            paths = (
                None
                if full
                else [
                    r[0] for r in ws.catalogue.query("SELECT path FROM run_changes WHERE run_id = ?", [summary.run_id])
                ]
            )
            sync_keyword(ws.catalogue, ws.keyword_index(), paths=paths, progress=progress)
            phases["keyword"] = time.perf_counter() - t
            t = time.perf_counter()
            embeddable, skipped, have = embedding_counts(ws.catalogue, _published_shas(ws))
            ws.publish(
                kb_id=(ws.base.kb_id if ws.base and ws.base.kb_id else new_kb_id()),
                embeddable=embeddable,
                embedded=have,
            )
            phases["publish"] = time.perf_counter() - t
            embedded = 0
            if do_embed:
                loaded: dict[str, float] = {}

                def documents_embedder() -> Any:
                    t1 = time.perf_counter()
                    emb = self.embedder("documents")
                    loaded["model"] = time.perf_counter() - t1
                    return emb

                head = ws.head
                info = embed_pending(
                    ws,
                    documents_embedder,
                    settings,
                    progress=progress,
                    mirror=lambda: self._mirror(head),
                    publish_every=settings.publish_every,
                )
                phases.update(loaded)
                if info["embedded"]:
                    _export_query_model(settings)
                embedded = info["embedded"]
                phases["embed"] = info["seconds"] - info.get("mirror_seconds", 0.0) - loaded.get("model", 0.0)
                phases["chroma"] = info.get("mirror_seconds", 0.0)
            gen = ws.head
        return summary.model_copy(
            update={
                "chunks_embedded": embedded,
                "chunks_skipped": skipped,
                "embedded_share": gen.embedded_share if gen else 1.0,
                "generation": gen.number if gen else None,
                "seconds": round(time.perf_counter() - t0, 3),
                "phases": {k: round(v, 3) for k, v in phases.items()},
            }
        )

    def _mirror(self, gen: Generation | None) -> Any:
        """The Chroma collection vectors are mirrored into (None when mirroring is off)."""
        if not self._settings.chroma_mirror and not self._settings.chroma_url:
            return None
        from kb.vectors import ChromaMirror

        collection = f"kb_{gen.kb_id}" if self._settings.chroma_url and gen and gen.kb_id else "kb_vectors"
        return ChromaMirror(self._settings.db, chroma_url=self._settings.chroma_url, collection=collection)

    # -- catalogue ------------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Any SQL over the catalogue tables (files, records, sections, chunks, findings, ...)."""
        with self.snapshot() as snap:
            return snap.catalogue.query_df(query, params)

    def files(self, format: str | None = None) -> pd.DataFrame:
        where, params = ("WHERE format = ?", [format]) if format else ("", [])
        return self.sql(
            f"SELECT path, format, size, status, records, sha256, mtime FROM files {where} ORDER BY path", params
        )

    def records(self, path: str | None = None, key: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Flattened records; ``path`` is a catalogued path or a glob; ``key`` a key-path LIKE pattern."""
        clauses, params = [], []
        if path:
            clauses.append("path GLOB ?" if any(c in path for c in "*?[") else "path = ?")
            params.append(path)
        if key:
            clauses.append("key_path LIKE ?")
            params.append(key)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        lim = f"LIMIT {int(limit)}" if limit else ""
        return self.sql(
            f"SELECT path, doc, key_path, value, value_type, line FROM records {where} ORDER BY path, doc, line {lim}",
            params,
        )

    def findings(self, rule: str | None = None, severity: str | None = None, path: str | None = None) -> pd.DataFrame:
        """Stored findings, worst first; ``path`` is a catalogued path or a glob."""
        from kb.findings import FindingFilter, findings_frame

        return findings_frame(self.catalogue, FindingFilter(rule=rule, severity=severity, path=path))

    def stats(self) -> dict[str, Any]:
        """Counts of the current generation, with what share of its texts is embedded."""
        with self.snapshot() as snap:
            out = snap.catalogue.stats()
            gen = snap.gen
        out.update(
            {
                "generation": gen.number,
                "embeddable": gen.embeddable,
                "embedded": gen.embedded,
                "embedded_share": gen.embedded_share,
                "embedder": (gen.embedder or {}).get("name"),
            }
        )
        return out

    def history(self, limit: int = 20) -> pd.DataFrame:
        import pandas as pd

        with self.snapshot() as snap:
            return pd.DataFrame(snap.catalogue.history(limit))

    # -- change log -----------------------------------------------------------------------------

    def changes(
        self,
        key: str | None = None,
        path: str | None = None,
        since: Any = None,
        change: str | None = None,
        limit: int | None = 1000,
        as_frame: bool = True,
    ):
        """Key-level changes, newest first: a DataFrame (one row per change), or ``KeyChange`` models.

        ``key`` a key path or a ``*`` pattern; ``path`` a file, folder or glob (a moved file keeps
        its history); ``since`` a run id, a date/time or an age such as ``"7d"``.
        """
        from kb.changelog import CHANGE_COLUMNS, query_changes

        with self.snapshot() as snap:
            _, rows = query_changes(snap.catalogue, key=key, path=path, since=since, change=change, limit=limit)
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame([r.model_dump() for r in rows], columns=list(CHANGE_COLUMNS))

    def blame(self, path: str, key: str, *, doc: int | None = None):
        """The history of one key: a ``KeyHistory`` (value now, who last touched it, changes newest first)."""
        from kb.changelog import key_history

        with self.snapshot() as snap:
            return key_history(snap.catalogue, self._resolved(snap), path, key, doc=doc)

    # -- health report --------------------------------------------------------------------------

    def report(self, *, validate: bool | None = None, record: bool | None = None) -> dict[str, Any]:
        """The numbers behind the health report (score, findings, duplication, drift, schemas,
        graph, recent changes, trends). ``validate`` runs validation first when it is missing or
        stale, and ``record`` stores a health snapshot for trends; both default to on for a KB
        that may write, and both then publish a new generation."""
        from kb.report import build_report

        validate = not self.read_only if validate is None else validate
        record = not self.read_only if record is None else record
        if (validate or record) and not self.read_only:
            settings = self.settings
            with self._writing("kb report") as ws:
                data = build_report(ws.catalogue, settings, validate=validate, record=record)
                ws.publish()
            return data
        with self.snapshot() as snap:
            return build_report(snap.catalogue, self._resolved(snap), validate=False, record=False, graph=self.graph())

    def report_html(self, path: str | Path | None = None, **options: Any) -> str:
        """The health report as one self-contained HTML page; written to ``path`` when given."""
        from kb.report import render_html

        html = render_html(self.report(**options))
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    # -- search ---------------------------------------------------------------------------------

    def search_result(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        format: str | None = None,
        path: str | None = None,
        all_files: bool = False,
    ) -> SearchResult:
        """Hybrid (keyword + vector) search: the hits, each with its answer lines, and what share of
        the KB is embedded. ``all_files``: every matching file once (see :func:`kb.search.search`)."""
        from kb.search import search

        with self.snapshot() as snap:
            settings = self._resolved(snap)
            return search(
                snap,
                settings,
                query,
                k=k,
                mode=mode,
                format=format,
                path=path,
                embedder=(lambda: self.embedder("query")),
                all_files=all_files,
            )

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: str = "hybrid",
        format: str | None = None,
        path: str | None = None,
        as_frame: bool = True,
        all_files: bool = False,
    ):
        """Hybrid (keyword + vector) search. A DataFrame of hits, or ``Hit`` models."""
        result = self.search_result(query, k=k, mode=mode, format=format, path=path, all_files=all_files)
        if not as_frame:
            return result.hits
        import pandas as pd

        df = pd.DataFrame(
            [h.model_dump() for h in result.hits],
            columns=["path", "score", "line_start", "line_end", "key_path", "snippet", "format", "answer"],
        )
        df.attrs["embedded_share"] = result.embedded_share
        df.attrs["generation"] = result.generation
        return df

    # -- graph and validation -------------------------------------------------------------------

    def graph(self) -> nx.DiGraph:
        """The dependency graph: nodes are files, edges typed references with their line
        (built once per generation)."""
        from graph.build import build_graph

        with self.snapshot() as snap, self._graph_lock:
            if self._graph is None or self._graph[0] != snap.gen.number:
                self._graph = (snap.gen.number, build_graph(snap.catalogue, self._resolved(snap)))
            return self._graph[1]

    def dependencies(self, path: str, *, transitive: bool = False) -> pd.DataFrame:
        """What ``path`` references (kind, line, depth)."""
        import pandas as pd

        from graph.queries import dependencies

        return pd.DataFrame(dependencies(self.graph(), path, transitive=transitive))

    def impact(self, path: str) -> pd.DataFrame:
        """Every file that depends on ``path``, directly or through others, with its depth."""
        import pandas as pd

        from graph.queries import impact

        return pd.DataFrame(impact(self.graph(), path))

    def graph_stats(self) -> dict[str, Any]:
        from graph.queries import stats

        return stats(self.graph())

    def validate(self, *, as_frame: bool = True, **options: Any):
        """Run every rule; findings are stored (source ``validate``) in a new generation and returned."""
        from graph.rules import validate

        if self.read_only:
            raise ReadOnlyError(
                "validate() stores its findings: open the KB writable, KnowledgeBase.open(db) without read_only=True."
            )
        settings = self.settings
        with self._writing("kb validate") as ws:
            if ws.base is None:
                raise NotIndexedError(
                    f"No knowledge base at '{settings.db}'. Run `kb ingest PATH --db {settings.db}` first."
                )
            found = validate(ws.catalogue, settings, **options)
            ws.publish()
        if not as_frame:
            return found
        import pandas as pd

        return pd.DataFrame([f.model_dump() for f in found])

    # -- duplicates and drift -------------------------------------------------------------------

    def duplicates(self, kinds: list[str] | None = None, *, as_frame: bool = True, **options: Any):
        """Duplicate groups; as a DataFrame one row per member (group id, kind, similarity, ...)."""
        from kb.duplicates import find_duplicates

        with self.snapshot() as snap:
            groups = find_duplicates(snap.catalogue, self._resolved(snap), kinds=kinds, snapshot=snap, **options)
        if not as_frame:
            return groups
        import pandas as pd

        rows = [
            {"group": i, "kind": g.kind, "similarity": g.similarity, "lines_saved": g.lines_saved, **m.model_dump()}
            for i, g in enumerate(groups)
            for m in g.members
        ]
        return pd.DataFrame(
            rows, columns=["group", "kind", "similarity", "lines_saved", "path", "key_path", "line_start", "line_end"]
        )

    def duplication_summary(self, groups=None) -> dict[str, Any]:
        """The tree's duplication ratio (duplicated leaf values / all) and counts per kind."""
        from kb.duplicates import duplication_summary, find_duplicates

        with self.snapshot() as snap:
            if groups is None:
                groups = find_duplicates(snap.catalogue, self._resolved(snap), snapshot=snap)
            return duplication_summary(snap.catalogue, groups)

    def drift(self, *, as_frame: bool = True):
        """Keys missing from, or differing between, sibling environment files."""
        from kb.drift import find_drift

        with self.snapshot() as snap:
            groups = find_drift(snap.catalogue, self._resolved(snap))
        if not as_frame:
            return groups
        import pandas as pd

        rows = []
        for i, g in enumerate(groups):
            for m in g.missing:
                rows.append(
                    {
                        "group": i,
                        "issue": "missing",
                        "key_path": m.key_path,
                        "detail": ", ".join(m.missing_in),
                        "files": ", ".join(g.files),
                    }
                )
            for d in g.differing:
                rows.append(
                    {
                        "group": i,
                        "issue": "differing",
                        "key_path": d.key_path,
                        "detail": "; ".join(f"{p}={v}" for p, v in d.values.items()),
                        "files": ", ".join(g.files),
                    }
                )
        return pd.DataFrame(rows, columns=["group", "issue", "key_path", "detail", "files"])

    # -- checks, keys, environments --------------------------------------------------------------

    def check(self, *, schema_map: list[str] | None = None) -> tuple[list[Any], list[str]]:
        """Run every validation rule and store nothing: ``(findings, notes)``.

        The read-only twin of :meth:`validate` (it works on ``KnowledgeBase.open(db, read_only=True)``):
        ``findings`` are the rules' :class:`~kb.types.Finding` models, worst first (ingest's stay in
        :meth:`findings`); ``notes`` say which schemas could not be used.
        """
        from graph.rules import check

        with self.snapshot() as snap:
            found, _refs, notes = check(snap.catalogue, self._resolved(snap), schema_map=schema_map)
        return found, notes

    def find_key(
        self, pattern: str, *, path: str | None = None, limit: int | None = None, offset: int = 0
    ) -> pd.DataFrame:
        """Records whose key path matches the glob ``pattern``, case-insensitively.

        ``*`` matches any run of characters (dots included), ``?`` one character; everything else,
        brackets too, is literal (``services.*.ports[0]``). A pattern without ``*`` or ``?`` also
        matches as the last segments of a key path: ``review_threshold`` finds
        ``fraud.review_threshold``. ``path`` is a catalogued path or a glob over paths.
        """
        like = "".join({"*": "%", "?": "_", "%": "\\%", "_": "\\_", "\\": "\\\\"}.get(c, c) for c in pattern)
        clauses = [
            "(key_path ILIKE ? ESCAPE '\\'"
            + ("" if any(c in pattern for c in "*?") else " OR key_path ILIKE ? ESCAPE '\\'")
            + ")"
        ]
        params: list[Any] = [like] if any(c in pattern for c in "*?") else [like, "%." + like]
        if path:
            clauses.append("path GLOB ?" if any(c in path for c in "*?[") else "path = ?")
            params.append(path)
        page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit else (f"OFFSET {int(offset)}" if offset else "")
        return self.sql(
            f"SELECT path, doc, key_path, value, value_type, line FROM records "
            f"WHERE {' AND '.join(clauses)} ORDER BY path, doc, line, key_path {page}",
            params,
        )

    def effective(self, env: str, *, path: str | None = None, as_frame: bool = True):
        """Each key's final value in environment ``env`` (base + override, ``${VAR}`` resolved),
        with the ``path:line`` it came from; ``path`` keeps sibling groups with a file matching it."""
        from kb.drift import effective_config

        with self.snapshot() as snap:
            rows = effective_config(snap.catalogue, self._resolved(snap), env, path)
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame(
            rows,
            columns=["group", "env", "key_path", "value", "path", "line", "source", "layer", "variables", "unresolved"],
        )


def _export_query_model(settings: Settings) -> None:
    """Export the model for queries now (torch is loaded), so the first search from the shell does
    not pay for it; a model ONNX cannot run is left to torch."""
    from kb.embed import BACKENDS, _model_location, _pooling, export_onnx

    if settings.backend not in BACKENDS or settings.backend == "torch" or settings.model.lower().startswith("hash"):
        return
    try:
        location = Path(_model_location(settings.model)[0])
        if location.is_dir() and _pooling(location) is not None:
            export_onnx(location, quantized=settings.precision == "int8")
    except Exception:
        pass


def _published_shas(ws: Any) -> Any:
    """The text hashes that the published vector rows cover (for the counts published with a
    new catalogue, before its embedding phase)."""
    import numpy as np

    from kb.vectors import SHA_BYTES, VECTORS_DIR

    head = ws.base
    if head is None or not head.vectors:
        return np.zeros(0, dtype=f"S{SHA_BYTES}")
    parts = []
    for name, rows in head.vectors.items():
        path = ws.db / VECTORS_DIR / f"{name}.sha"
        if path.exists():
            parts.append(np.fromfile(path, dtype=f"S{SHA_BYTES}", count=rows))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=f"S{SHA_BYTES}")
