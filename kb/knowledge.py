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
import json
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.catalogue import Catalogue
from kb.errors import BadRequestError, ConfigError, NotIndexedError, ReadOnlyError, no_kb, was_interrupted
from kb.generations import Generation, Reader, Snapshot, write_session
from kb.settings import Settings
from kb.types import (
    ChangesPage,
    EffectiveValue,
    FileDetail,
    FileInfo,
    FilesPage,
    FindingsPage,
    GraphDirection,
    GraphLink,
    KeyLocation,
    LocatedDriftGroup,
    Problems,
    RunSummary,
)

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import pandas as pd

    from kb.embed import Embedder
    from kb.globs import PathFilter
    from kb.types import DuplicateGroup, Finding, KeyHistory, KeyRecord, SearchResult

__all__ = ["KnowledgeBase"]


FILE_STATUSES = ("ok", "error", "skipped")
"""A catalogued file's ``status`` (:class:`~kb.types.FileInfo`)."""


def _check_value(cat: Catalogue, column: str, value: str | None, *, also: tuple[str, ...] = ()) -> None:
    """BadRequestError for a ``files`` filter naming a value no file has or can have (a typo would
    list nothing), as ``/search?format=`` does."""
    if not value:
        return
    known = {*also, *(r[0] for r in cat.query(f"SELECT DISTINCT {column} FROM files") if r[0])}
    if value not in known:
        raise BadRequestError(f"Unknown {column} '{value}' (in this KB: {', '.join(sorted(known)) or 'none'}).")


def _check_rule(cat: Catalogue, rule: str) -> None:
    """BadRequestError for a rule kb does not have (a typo would list no findings, and a CI gate
    ``--fail-on error`` on it would pass), naming the close ones; a rule this KB has rows of passes."""
    import difflib

    from kb.findings import INGEST_RULES
    from kb.graph.rules import RULES

    known = {*INGEST_RULES, *RULES, *(r[0] for r in cat.query("SELECT DISTINCT rule FROM findings"))}
    if rule in known:
        return
    close = difflib.get_close_matches(rule, sorted(known), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise BadRequestError(f"Unknown rule '{rule}'.{hint} Rules: {', '.join(sorted(known))}.")


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
        self._report: tuple[int, dict[str, Any]] | None = None
        self._report_lock = threading.Lock()
        self.notify: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)
        """Where messages for a person go (a write waiting for another writer)."""

    def _documents_settings(self, settings: Settings) -> tuple[Settings, str | None]:
        """The settings documents are embedded with: ``precision=auto`` made concrete by the KB's
        vectors, or for a new KB by this machine (:func:`kb.embed.settle_precision`), and why,
        when that makes it int8. Queries keep the settings as given (fp32 queries fit int8 KBs)."""
        from kb.embed import settle_precision

        gen = self._reader.generation()
        recorded = (gen.embedder or {}).get("name") if gen is not None and gen.embedder else None
        settled = settle_precision(settings, recorded)
        if settled.precision == settings.precision:
            return settled, None
        why = f"auto: the KB's vectors are {settled.precision}" if recorded else "auto: new KB, CPU without AMX"
        return settled, why

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
            raise no_kb(s.db)
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
        """The settings with the corpus root of ``snap`` (:meth:`Settings.with_root_of`), once per generation."""
        if self._settings.root is not None:
            return self._settings
        resolved = snap.cache.get("settings")
        if resolved is None:
            resolved = snap.cache["settings"] = self._settings.with_root_of(snap.catalogue)
        return resolved

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

                settings, why = (
                    self._documents_settings(self._settings) if purpose == "documents" else (self._settings, None)
                )
                emb = create_embedder(settings, purpose=purpose)
                if why and hasattr(emb, "reason"):
                    emb.reason = why
                self._embedders[purpose] = emb
            return emb

    def warm_up(self) -> bool:
        """Load the query model now, when this KB's vectors were made by it (a server's first search
        then does not wait for it); True when it was loaded."""
        from kb.embed import embedder_name, queries_fit

        gen = self.generation()
        if gen is None or not gen.embedder or not queries_fit(gen.embedder.get("name"), embedder_name(self._settings)):
            return False
        self.embedder("query").encode(["warm up"])
        return True

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
        ray: str | None = None,
    ) -> RunSummary:
        """Ingest (incrementally) ``root`` or the root recorded in the KB.

        The catalogue and keyword index are published first (searchable at once), then the texts
        without vectors are embedded and published as they go; ``embed=False`` (or the ``embed``
        setting off) leaves them for a later run. ``git_history=N`` also replays the last N commits
        of the git repository holding the root into the change log (bounded by
        ``git_history_timeout``), so a new KB starts with history. ``ray="auto"`` (or an address;
        default: the ``ray_address`` setting) parses and embeds on a Ray cluster
        (:mod:`kb.cluster`, the ``kb[ray]`` extra) while this process stays the one writer: the
        same KB as a local build.
        """
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
        address = ray if ray is not None else settings.ray_address
        cluster = None
        if address:
            from kb.cluster import Cluster

            cluster = Cluster(address)
            cluster.connect()  # a wrong address or a missing extra fails before the writer lock is taken
        with contextlib.ExitStack() as stack:
            if cluster is not None:
                stack.callback(cluster.close)
            try:
                summary, phases, embedded, skipped, gen = self._ingest_locked(
                    target, settings, do_embed, progress, git_history, cluster
                )
            except Exception as exc:  # Ctrl-C inside a DuckDB query comes back as DuckDB's error
                if was_interrupted(exc):
                    raise KeyboardInterrupt from exc
                raise
            notes = list(summary.notes)
            if cluster is not None:
                notes.append(f"built on {cluster.describe_used}")
        return summary.model_copy(
            update={
                "notes": notes,
                "chunks_embedded": embedded,
                "chunks_skipped": skipped,
                "embedded_share": gen.embedded_share if gen else 1.0,
                "generation": gen.number if gen else None,
                "seconds": round(time.perf_counter() - t0, 3),
                "phases": {k: round(v, 3) for k, v in phases.items()},
            }
        )

    def _ingest_locked(
        self,
        target: Path,
        settings: Settings,
        do_embed: bool,
        progress: Callable[..., None] | None,
        git_history: int,
        cluster: Any,
    ) -> tuple[RunSummary, dict[str, float], int, int, Any]:
        from kb.index import check_embedder, embed_pending, embedding_counts, new_kb_id, sync_keyword
        from kb.ingest.pipeline import run_ingest

        phases: dict[str, float] = {}
        with self._writing("kb ingest") as ws:
            settings, _ = self._documents_settings(settings)
            if do_embed:
                check_embedder(ws.base, settings)
            if ws.interrupted_before:
                ws.catalogue.record_interrupted_run(str(Path(target).resolve()))
            t = time.perf_counter()
            summary = run_ingest(ws.catalogue, settings, progress=progress, cluster=cluster)
            if git_history:
                from kb.ingest.changes import replay_git_history

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
            paths = None if full else [r["path"] for r in ws.catalogue.run_changes(summary.run_id)]
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

                used: list[Any] = []

                def documents_embedder() -> Any:
                    t1 = time.perf_counter()
                    emb = cluster.encoder_pool(settings) if cluster is not None else self.embedder("documents")
                    loaded["model"] = time.perf_counter() - t1
                    used.append(emb)
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
                if used and embedded:
                    summary = summary.model_copy(update={"embedder": _describe_embedder(used[0])})
                phases["embed"] = info["seconds"] - info.get("mirror_seconds", 0.0) - loaded.get("model", 0.0)
                phases["chroma"] = info.get("mirror_seconds", 0.0)
            gen = ws.head
        return summary, phases, embedded, skipped, gen

    def _mirror(self, gen: Generation | None) -> Any:
        """The Chroma collection vectors are mirrored into (None when mirroring is off)."""
        if not self._settings.chroma_mirror and not self._settings.chroma_url:
            return None
        from kb.vectors import ChromaMirror

        collection = f"kb_{gen.kb_id}" if self._settings.chroma_url and gen and gen.kb_id else "kb_vectors"
        return ChromaMirror(self._settings.db, chroma_url=self._settings.chroma_url, collection=collection)

    # -- reading ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _view(self) -> Iterator[tuple[Snapshot, Catalogue, Settings]]:
        """The newest generation held for the block, a catalogue view with its own cursor (so reads
        from several threads run side by side) and the settings with that generation's root."""
        with self.snapshot() as snap:
            con = snap.catalogue.cursor()
            try:
                yield snap, snap.catalogue.view(con), self._resolved(snap)
            finally:
                con.close()

    def _on_disk(self, settings: Settings, path: str) -> str | None:
        """``path`` relative to the corpus root when it names something on disk inside the root."""
        if settings.root is None:
            return None
        try:
            p, root = Path(path).resolve(), Path(settings.root).resolve()
        except (OSError, ValueError):
            return None
        return p.relative_to(root).as_posix() if p.exists() and p.is_relative_to(root) and p != root else None

    def _catalogued(self, cat: Catalogue, settings: Settings, path: str) -> FileInfo:
        """The catalogued file ``path`` names: as catalogued, as a person types it (``./a``,
        ``a\\b``), or a path on disk inside the corpus root; else NotIndexedError with the
        catalogued paths it may mean."""
        from kb import reads

        forms = [path, path.strip().replace("\\", "/")]
        while forms[-1].startswith("./"):
            forms.append(forms[-1][2:])
        if (disk := self._on_disk(settings, path)) is not None:
            forms.append(disk)
        for form in dict.fromkeys(forms):
            if (info := reads.file_info(cat, form)) is not None:
                return info
        raise reads.not_catalogued(cat, path, forms[-1])

    def _path_filter(self, settings: Settings, paths: str | list[str] | None) -> PathFilter | None:
        """A :class:`~kb.globs.PathFilter` of what a person gave: paths relative to the corpus root,
        folders or globs; a path on disk inside the root counts as its relative path."""
        from kb.globs import PathFilter

        given = [paths] if isinstance(paths, str) else list(paths or [])
        return PathFilter.of([self._on_disk(settings, p) or p for p in given if p])

    # -- catalogue ------------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> pd.DataFrame:
        """One SELECT (or EXPLAIN) over the catalogue tables (files, records, sections, chunks,
        findings, ...), as ``kb sql`` takes: a write or a setting (``DELETE``, ``SET``, ``COPY``)
        is a :class:`~kb.errors.ReadOnlyError`, SQL DuckDB refuses a
        :class:`~kb.errors.BadRequestError` with its first line."""
        with self.snapshot() as snap:
            return snap.catalogue.select_df(query, params)

    def sql_rows(
        self, query: str, *, limit: int | None = 1000, timeout: float | None = 30.0, memory: str | None = None
    ) -> tuple[list[str], list[tuple], bool]:
        """One read-only statement (``kb sql``, the MCP ``sql`` tool): ``(columns, rows, truncated)``,
        at most ``limit`` rows (None: all), stopped after ``timeout`` seconds, in ``memory``."""
        with self.snapshot() as snap:
            return snap.catalogue.sql_limited(query, max_rows=limit, timeout=timeout, memory_limit=memory)

    def file(self, path: str, *, offset: int = 0, limit: int | None = None) -> FileDetail:
        """One catalogued file: its metadata, a page of its records (document, line, key order; all
        of them when ``limit`` is None) and every finding on it. ``path`` is relative to the corpus
        root as catalogued, or a path on disk inside the root; a path that is not catalogued is a
        NotIndexedError naming the paths it may mean."""
        from kb import reads

        with self._view() as (_, cat, settings):
            info = self._catalogued(cat, settings, path)
            return reads.file_detail(cat, info, offset=offset, limit=limit)

    def files_page(
        self,
        *,
        format: str | None = None,
        status: str | None = None,
        path: str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> FilesPage:
        """Catalogued files in path order; ``path`` a file, folder or glob; ``limit=None`` for all."""
        from kb import reads

        with self._view() as (_, cat, settings):
            _check_value(cat, "format", format)
            _check_value(cat, "status", status, also=FILE_STATUSES)
            flt = self._path_filter(settings, path)
            return reads.files_page(cat, format=format, status=status, path=flt, offset=offset, limit=limit)

    def files(self, format: str | None = None) -> pd.DataFrame:
        """Catalogued files (a DataFrame of :meth:`files_page`)."""
        return self.files_page(format=format, limit=None).to_frame()

    def records(self, path: str | None = None, key: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Flattened records; ``path`` a file, folder or glob; ``key`` a key-path LIKE pattern."""
        from kb import reads

        with self._view() as (_, cat, settings):
            return cat.query_df(*reads.records_query(key_like=key, path=self._path_filter(settings, path), limit=limit))

    def findings_page(
        self,
        *,
        rule: str | None = None,
        severity: str | None = None,
        path: str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> FindingsPage:
        """Stored findings (ingest's and the last validation's), worst first, with the total across
        pages; ``path`` a file, folder or glob; ``limit=None`` for all."""
        from kb.findings import FindingFilter, count_findings, read_findings

        with self._view() as (_, cat, settings):
            if rule:
                _check_rule(cat, rule)
            flt = FindingFilter(rule=rule, severity=severity, path=self._path_filter(settings, path))
            total = count_findings(cat, flt)
            rows = read_findings(cat, flt, limit=limit, offset=offset)
        return FindingsPage(total=total, offset=offset, limit=total if limit is None else limit, findings=rows)

    def findings(self, rule: str | None = None, severity: str | None = None, path: str | None = None) -> pd.DataFrame:
        """Stored findings, worst first (a DataFrame of :meth:`findings_page`)."""
        return self.findings_page(rule=rule, severity=severity, path=path, limit=None).to_frame()

    def validation_stale(self) -> bool:
        """Whether files changed since the last validation (its stored findings are out of date)."""
        with self.snapshot() as snap:
            return snap.catalogue.get_meta("validation_stale") == "true"

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

    def counts(self) -> dict[str, int]:
        """Index size, cheaply: files, chunks, records, findings."""
        from kb import reads

        with self._view() as (_, cat, _s):
            return reads.counts(cat)

    def overview(self) -> dict[str, Any]:
        """What a newcomer to the KB needs (the MCP ``kb://about`` resource): :meth:`stats`, the
        embedder's identity, whether the stored validation is stale, and the catalogue's tables."""
        with self.snapshot() as snap:
            tables = [t for t in snap.catalogue.tables() if not t.startswith("_")]
            return {
                "stats": self.stats(),
                "embedder": snap.gen.embedder or {},
                "validation_stale": snap.catalogue.get_meta("validation_stale") != "false",
                "tables": tables,
            }

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """Ingest runs, newest first: files seen, added, changed, removed, unchanged, seconds."""
        with self.snapshot() as snap:
            return snap.catalogue.history(limit)

    def run_files(self, run_id: int) -> list[dict[str, Any]]:
        """The files one run added, changed and removed.

        Raises :class:`~kb.errors.NotIndexedError` (HTTP 404) when the KB has no run ``run_id``."""
        with self.snapshot() as snap:
            cat = snap.catalogue
            changes = cat.run_changes(run_id)
            if not changes and not cat.query("SELECT 1 FROM runs WHERE id = ?", [run_id]):  # a no-change run has none
                last = cat.history(1)
                known = f"the last is run {last[0]['id']}" if last else "it has no runs"
                raise NotIndexedError(f"No ingest run {run_id} in this KB ({known}; `kb history` lists them).")
            return changes

    def history(self, limit: int = 20) -> pd.DataFrame:
        """:meth:`runs` as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.runs(limit))

    def stored_lines(self, ranges: dict[str, list[tuple[int, int]]]) -> dict[str, dict[int, str]]:
        """The stored (redacted) text of lines, by path and line number, for ``ranges`` (path ->
        ``(first, last)`` spans): read from the catalogue, never from the disk."""
        from kb import reads

        with self._view() as (_, cat, _s):
            return reads.stored_lines(cat, ranges)

    # -- change log -----------------------------------------------------------------------------

    def change_page(
        self,
        *,
        key: str | None = None,
        path: str | None = None,
        since: Any = None,
        change: str | None = None,
        offset: int = 0,
        limit: int | None = 100,
    ) -> ChangesPage:
        """Key-level changes, newest first, with the total across pages.

        ``key`` a key path or a ``*`` pattern; ``path`` a file, folder or glob (a moved file keeps
        its history); ``since`` a run id, a date/time or an age such as ``"7d"``.
        """
        from kb.changelog import query_changes

        with self._view() as (_, cat, _s):
            total, rows = query_changes(cat, key=key, path=path, since=since, change=change, limit=limit, offset=offset)
        return ChangesPage(total=total, offset=offset, limit=total if limit is None else limit, changes=rows)

    def changes(
        self,
        key: str | None = None,
        path: str | None = None,
        since: Any = None,
        change: str | None = None,
        limit: int | None = 1000,
        as_frame: bool = True,
    ):
        """Key-level changes, newest first: a DataFrame (one row per change), or ``KeyChange`` models
        (see :meth:`change_page`)."""
        page = self.change_page(key=key, path=path, since=since, change=change, limit=limit)
        return page.to_frame() if as_frame else page.changes

    def blame(self, path: str, key: str, *, doc: int | None = None) -> KeyHistory:
        """The history of one key: a ``KeyHistory`` (value now, who last touched it, changes newest first)."""
        from kb.changelog import key_history

        with self._view() as (_, cat, settings):
            return key_history(cat, settings, path, key, doc=doc)

    # -- health report --------------------------------------------------------------------------

    def report(self, *, validate: bool | None = None, record: bool | None = None) -> dict[str, Any]:
        """The numbers behind the health report (score, findings, duplication, drift, schemas,
        graph, recent changes, trends). ``validate`` runs validation first when it is missing or
        stale, and ``record`` stores a health snapshot for trends; both default to on for a KB
        that may write, and both then publish a new generation. A report that writes nothing is
        built once per generation and kept on this object."""
        from kb.report import build_report

        validate = not self.read_only if validate is None else validate
        record = not self.read_only if record is None else record
        if (validate or record) and not self.read_only:
            settings = self.settings
            with self._writing("kb report") as ws:
                data = build_report(ws.catalogue, settings, validate=validate, record=record)
                ws.publish()
            return data
        with self.snapshot() as snap, self._report_lock:
            if self._report is None or self._report[0] != snap.gen.number:
                data = build_report(
                    snap.catalogue, self._resolved(snap), validate=False, record=False, graph=self.graph()
                )
                self._report = (snap.gen.number, data)
            return self._report[1]

    def report_html(self, path: str | Path | None = None, *, data: dict[str, Any] | None = None, **options: Any) -> str:
        """The health report as one self-contained HTML page (of ``data`` when given, else of
        :meth:`report` with ``options``); written to ``path`` when given."""
        from kb.report import render_html

        html = render_html(data if data is not None else self.report(**options))
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
            if path:  # a path on disk inside the corpus root, as every other path filter takes it
                path = self._on_disk(settings, path) or path
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

    @staticmethod
    def query_words(query: str) -> set[str]:
        """The words of ``query`` a hit's lines are highlighted by: its terms (no stopwords) and identifiers."""
        from kb.keyword import STOPWORDS, identifier_parts
        from kb.search import query_identifiers

        words = {w for w in identifier_parts(query) if len(w) > 2 and w not in STOPWORDS}
        return words | set(query_identifiers(query))

    # -- graph and validation -------------------------------------------------------------------

    def graph(self) -> nx.DiGraph:
        """The dependency graph: nodes are files, edges typed references with their line
        (built once per generation)."""
        from kb.graph.build import build_graph

        with self.snapshot() as snap, self._graph_lock:
            if self._graph is None or self._graph[0] != snap.gen.number:
                self._graph = (snap.gen.number, build_graph(snap.catalogue, self._resolved(snap)))
            return self._graph[1]

    def links(self, path: str, direction: GraphDirection = "deps", *, transitive: bool = False) -> list[GraphLink]:
        """The files ``path`` references (``deps``; ``transitive`` for what those reference too) or
        every file that depends on it (``impact``), each with depth, kind and line."""
        from kb.graph import queries

        with self._view() as (_, cat, settings):
            rel = self._catalogued(cat, settings, path).path
        g = self.graph()
        rows = queries.dependencies(g, rel, transitive=transitive) if direction == "deps" else queries.impact(g, rel)
        fields = GraphLink.model_fields
        links = []
        for row in rows:
            values = {k: v for k, v in row.items() if k in fields}
            if values.get("kinds") is not None and not isinstance(values["kinds"], str):
                values["kinds"] = ",".join(map(str, values["kinds"]))
            links.append(GraphLink(**values))
        return links

    def dependencies(self, path: str, *, transitive: bool = False) -> pd.DataFrame:
        """What ``path`` references (kind, line, depth)."""
        import pandas as pd

        from kb.graph.queries import dependencies

        return pd.DataFrame(dependencies(self.graph(), path, transitive=transitive))

    def impact(self, path: str) -> pd.DataFrame:
        """Every file that depends on ``path``, directly or through others, with its depth."""
        import pandas as pd

        from kb.graph.queries import impact

        return pd.DataFrame(impact(self.graph(), path))

    def graph_stats(self) -> dict[str, Any]:
        from kb.graph.queries import stats

        return stats(self.graph())

    def export_graph(self, fmt: str = "graphml") -> str:
        """The whole dependency graph as ``graphml``, node-link ``json`` or Graphviz ``dot`` text."""
        from kb.graph.build import export_graph

        return export_graph(self.graph(), fmt)

    def validate(self, *, as_frame: bool = True, **options: Any):
        """Run every rule; findings are stored (source ``validate``) in a new generation and returned.
        These are the rules' findings only: ingest's (secrets, parse errors) are in :meth:`findings`,
        and ``kb validate`` prints both, as :meth:`problems` with ``store=True`` returns them."""
        from kb.graph.rules import validate

        if self.read_only:
            raise ReadOnlyError(
                "validate() stores its findings: open the KB writable, KnowledgeBase.open(db) without read_only=True."
            )
        settings = self.settings
        with self._writing("kb validate") as ws:
            if ws.base is None:
                raise no_kb(settings.db)
            found = validate(ws.catalogue, settings, **options)
            ws.publish()
        if not as_frame:
            return found
        import pandas as pd

        return pd.DataFrame([f.model_dump() for f in found])

    def check(self, *, schema_map: list[str] | None = None) -> tuple[list[Finding], list[str]]:
        """Run every validation rule and store nothing: ``(findings, notes)``.

        The read-only twin of :meth:`validate` (it works on ``KnowledgeBase.open(db, read_only=True)``):
        ``findings`` are the rules' :class:`~kb.types.Finding` models, worst first (ingest's stay in
        :meth:`findings`); ``notes`` say which schemas could not be used.
        """
        from kb.graph.rules import check

        with self.snapshot() as snap:
            found, _refs, notes = check(snap.catalogue, self._resolved(snap), schema_map=schema_map)
        return found, notes

    def problems(
        self,
        paths: str | list[str] | None = None,
        *,
        severity: str | None = None,
        schema_map: list[str] | None = None,
        store: bool = False,
        confined: bool = False,
    ) -> Problems:
        """Check the whole tree now: the rules' findings with ingest's (parse errors, secrets),
        worst first, keeping those in ``paths`` (files, folders or globs relative to the corpus
        root, or paths on disk inside it) and of ``severity``; ``counts`` are by severity among
        those kept. ``store=True`` stores the rules' findings in a new generation (as
        :meth:`validate`); otherwise nothing is written (:meth:`check`). ``confined`` refuses a
        ``schema_map`` whose SCHEMA is outside the corpus root (a caller that must not read other
        files, such as a remote assistant)."""
        from kb.findings import SEVERITY_ORDER, FindingFilter, finding_sort_key, read_findings

        schema_map = list(schema_map or [])
        if confined and schema_map:
            from kb.graph.schema.mapping import schema_outside_tree

            outside = [e for e in schema_map if schema_outside_tree(e, self.settings.root)]
            if outside:  # refused before anything is opened: no existence oracle, no content quoted
                raise BadRequestError(
                    f"schema_map {outside[0]!r}: SCHEMA must be a path relative to the corpus root that stays "
                    "inside it (no absolute path, '..' past the root, or link out of the tree); e.g. "
                    "'config/*.json=schemas/config.json'."
                )
        if store:
            found = self.validate(as_frame=False, schema_map=schema_map)
        else:
            found, notes = self.check(schema_map=schema_map)
        with self._view() as (_, cat, settings):
            if store:
                notes = json.loads(cat.get_meta("validate_notes") or "[]")
            others = read_findings(cat, FindingFilter(not_source="validate"))
            flt = FindingFilter(severity=severity, path=self._path_filter(settings, paths))
            notes = [*notes, *self._not_catalogued(cat, settings, paths)]
        every = sorted((f for f in [*others, *found] if flt.matches(f)), key=finding_sort_key)
        counts = {s: sum(1 for f in every if f.severity == s) for s in SEVERITY_ORDER}
        return Problems(findings=every, counts=counts, notes=notes)

    def _not_catalogued(self, cat: Catalogue, settings: Settings, paths: str | list[str] | None) -> list[str]:
        """A note for each of ``paths`` that selects no catalogued file: no finding can be in it,
        and a clean result for a mistyped path (or one outside the tree) must not pass unsaid."""
        given = [paths] if isinstance(paths, str) else list(paths or [])
        out = []
        for p in given:
            flt = self._path_filter(settings, p)
            if flt is None:
                continue
            clause, params = flt.sql()
            if not cat.query(f"SELECT 1 FROM files WHERE {clause} LIMIT 1", params):
                out.append(
                    f"'{p}' is no catalogued file or folder (not in the tree at {settings.root}, ignored, "
                    "or not ingested yet): nothing in it was checked."
                )
        return out

    @staticmethod
    def sarif(findings: list[Finding], root: str | Path | None = None) -> dict[str, Any]:
        """``findings`` as a SARIF 2.1.0 log (code-scanning UIs); ``root`` anchors their paths."""
        from kb.graph.sarif import to_sarif

        return to_sarif(findings, root_uri=Path(root).resolve().as_uri() if root else None)

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

    def duplicate_report(
        self, kinds: list[str] | None = None, **options: Any
    ) -> tuple[list[DuplicateGroup], dict[str, Any]]:
        """Duplicate groups and the tree's duplication summary (ratio, counts per kind; with
        ``semantic_skipped`` saying why, when the semantic kind was asked for but cannot run)."""
        from kb.duplicates import duplication_summary, find_duplicates, semantic_unavailable

        with self.snapshot() as snap:
            settings = self._resolved(snap)
            groups = find_duplicates(snap.catalogue, settings, kinds=kinds, snapshot=snap, **options)
            summary = duplication_summary(snap.catalogue, groups)
            why_not = semantic_unavailable(snap.catalogue, settings, snap) if kinds and "semantic" in kinds else None
        if why_not:
            summary["semantic_skipped"] = why_not
        return groups, summary

    def located_drift(self, path: str | None = None) -> list[LocatedDriftGroup]:
        """:meth:`drift` groups, each with the line of each key in each file that sets it; ``path``
        (a file, folder or glob) keeps the groups with a file it matches."""
        from kb.drift import find_drift, key_lines

        with self._view() as (_, cat, settings):
            groups = find_drift(cat, settings)
            flt = self._path_filter(settings, path)
            if flt is not None:
                groups = [g for g in groups if any(flt.matches(f) for f in g.files)]
            lines = key_lines(cat, groups)
        located = []
        for g in groups:
            keys = {m.key_path for m in g.missing} | {d.key_path for d in g.differing}
            at = [
                KeyLocation(path=p, key_path=k, line=line)
                for (p, k), line in sorted(lines.items())
                if p in g.files and k in keys and line
            ]
            located.append(LocatedDriftGroup(**g.model_dump(), locations=at))
        return located

    # -- keys and environments ------------------------------------------------------------------

    def key_matches(
        self, pattern: str, *, path: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[KeyRecord]:
        """Records whose key path matches the glob ``pattern`` (see :meth:`find_key`), as models."""
        from kb import reads

        if not pattern.strip():
            raise BadRequestError("Empty pattern: give a key path or a glob, e.g. *.timeout or database.*.")
        with self._view() as (_, cat, settings):
            return reads.key_records(
                cat, pattern.strip(), path=self._path_filter(settings, path), offset=offset, limit=limit
            )

    def find_key(
        self, pattern: str, *, path: str | None = None, limit: int | None = None, offset: int = 0
    ) -> pd.DataFrame:
        """Records whose key path matches the glob ``pattern``, case-insensitively.

        ``*`` matches any run of characters (dots included), ``?`` one character; everything else,
        brackets too, is literal (``services.*.ports[0]``). A pattern without ``*`` or ``?`` also
        matches as the last segments of a key path: ``review_threshold`` finds
        ``fraud.review_threshold``. ``path`` is a file, folder or glob over paths.
        """
        from kb import reads

        with self._view() as (_, cat, settings):
            query = reads.key_records_query(pattern, path=self._path_filter(settings, path), offset=offset, limit=limit)
            return cat.query_df(*query)

    def effective_values(self, env: str, *, path: str | None = None) -> list[EffectiveValue]:
        """Each key's final value in environment ``env`` (base + override, ``${VAR}`` resolved),
        with the ``path:line`` it came from; ``path`` (a file, folder or glob) keeps the sibling
        groups with a file it matches."""
        from kb.drift import effective_config

        with self._view() as (_, cat, settings):
            rows = effective_config(cat, settings, env, self._path_filter(settings, path))
        return [EffectiveValue(**r) for r in rows]

    def effective(self, env: str, *, path: str | None = None, as_frame: bool = True):
        """:meth:`effective_values` as a DataFrame, or as the rows' dicts."""
        rows = [v.model_dump() for v in self.effective_values(env, path=path)]
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame(rows, columns=list(EffectiveValue.model_fields))

    # -- the KB's files and the built-in schemas, without opening the KB -----------------------------

    @staticmethod
    def doctor(db: str | Path) -> list[Any]:
        """Check the files of the KB at ``db`` against its HEAD.json, reading only: one
        ``FileCheck`` (name, ok, detail, fix) per file or concern."""
        from kb.generations import check_files

        return check_files(db)

    @staticmethod
    def schema_sources() -> tuple[list[dict[str, Any]], str]:
        """The packages the built-in schema catalogue reads (package, version, date, gives,
        schemas) and the catalogue's snapshot date."""
        from kb import schemastore

        rows = [
            {k: getattr(s, k) for k in ("package", "version", "date", "gives", "schemas")}
            for s in schemastore.sources()
        ]
        return rows, schemastore.date()

    @staticmethod
    def schema_packages() -> tuple[str, ...]:
        """The packages that ship the built-in schemas (``kb schemas update`` upgrades them)."""
        from kb.schemastore import PACKAGES

        return PACKAGES


def _describe_embedder(emb: Any) -> str:
    """What embedded a run's texts, as ``kb ingest`` says it: ``openvino bf16 (auto: AMX CPU) in
    128-piece windows``."""
    what = str(getattr(emb, "choice", "") or getattr(emb, "name", "") or type(emb).__name__)
    window = getattr(emb, "max_length", None)
    return f"{what} in {window}-piece windows" if isinstance(window, int) else what


def _export_query_model(settings: Settings) -> None:
    """Export the model for queries now (torch is loaded), so the first search from the shell does
    not pay for it; a model ONNX cannot run is left to torch."""
    from kb.embed import BACKENDS, _model_location, _pooling, export_onnx

    if settings.backend not in BACKENDS or settings.backend == "torch" or settings.model.lower().startswith("hash"):
        return
    try:
        location = Path(_model_location(settings.model)[0])
        if location.is_dir() and _pooling(location) is not None:
            export_onnx(location)  # queries are fp32 for every precision, int8 KBs' too
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
