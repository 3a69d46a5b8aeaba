"""``KnowledgeBase``: the Python API for notebooks and scripts.

Like :mod:`kb.cli`, this module is a composition root: it may import :mod:`ingest` and
:mod:`graph`, but only inside method bodies, so ``import kb`` stays light and the package
dependency rules (``ingest -> kb``, ``graph -> kb``) hold at import time.

Every tabular answer is a pandas DataFrame; the graph is a networkx ``DiGraph``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.catalogue import Catalogue
from kb.settings import Settings
from kb.types import RunSummary

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx
    import pandas as pd

__all__ = ["KnowledgeBase"]


class KnowledgeBase:
    """A knowledge base directory: catalogue, vectors and keyword index.

    >>> kb = KnowledgeBase.open(".kb")            # an existing KB
    >>> kb = KnowledgeBase.build("platform/")     # ingest a tree into ./.kb
    """

    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        self.read_only = read_only
        self._catalogue: Catalogue | None = None

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def sample_path() -> Path:
        """The bundled sample corpus (a small platform tree with planted problems)."""
        return Path(__file__).resolve().parent / "sample"

    @classmethod
    def open(cls, db: str | Path | None = None, *, read_only: bool = False, **settings: Any) -> "KnowledgeBase":
        """Open the KB at ``db`` (default ``$KB_DB`` or ``.kb``)."""
        s = Settings.load({"db": Path(db) if db is not None else None, **settings})
        kb = cls(s, read_only=read_only)
        _ = kb.catalogue  # fail early with a clear message
        return kb

    @classmethod
    def build(cls, root: str | Path, db: str | Path | None = None, **settings: Any) -> "KnowledgeBase":
        """Ingest ``root`` into ``db`` (incrementally if it exists) and return the KB."""
        kb = cls.open(db, **settings)
        kb.ingest(root)
        return kb

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = Catalogue(self.settings.db, read_only=self.read_only)
            root = self._catalogue.get_meta("root")
            if root and self.settings.root is None:
                self.settings = self.settings.replace(root=Path(root))
        return self._catalogue

    def close(self) -> None:
        if self._catalogue is not None:
            self._catalogue.close()
            self._catalogue = None

    def __enter__(self) -> "KnowledgeBase":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeBase(db={str(self.settings.db)!r}, root={str(self.settings.root)!r})"

    # -- ingest ---------------------------------------------------------------------------------

    def ingest(self, root: str | Path | None = None, *, progress: Callable[..., None] | None = None,
               git_history: int = 0) -> RunSummary:
        """Ingest (incrementally) ``root`` or the root recorded in the KB.

        ``git_history=N`` then replays the last N commits of the git repository holding the root
        into the change log (bounded by ``git_history_timeout``), so a new KB starts with history.
        """
        from ingest.pipeline import run_ingest

        target = Path(root) if root is not None else self.settings.root
        if target is None:
            from kb.errors import ConfigError

            raise ConfigError("No root to ingest: pass a path, e.g. kb.ingest('platform/').")
        if git_history < 0:
            from kb.errors import BadRequestError

            raise BadRequestError(f"git_history must be 0 or more commits (got {git_history}).")
        settings = self.settings.replace(root=Path(target))
        summary = run_ingest(self.catalogue, settings, progress=progress)
        self.settings = settings
        if git_history:
            from ingest.changes import replay_git_history

            done = replay_git_history(self.catalogue, settings, summary.run_id, git_history, progress=progress)
            summary = summary.model_copy(update={
                "history_commits": done.commits, "key_changes": summary.key_changes + done.changes,
                "notes": [*summary.notes, *done.notes],
                "seconds": round(summary.seconds + done.seconds, 3)})
        return summary

    # -- catalogue ------------------------------------------------------------------------------

    def sql(self, query: str, params: list[Any] | None = None) -> "pd.DataFrame":
        """Any SQL over the catalogue tables (files, records, sections, chunks, findings, ...)."""
        return self.catalogue.query_df(query, params)

    def files(self, format: str | None = None) -> "pd.DataFrame":
        where, params = ("WHERE format = ?", [format]) if format else ("", [])
        return self.sql(f"SELECT path, format, size, status, records, sha256, mtime FROM files {where} ORDER BY path", params)

    def records(self, path: str | None = None, key: str | None = None, limit: int | None = None) -> "pd.DataFrame":
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
        return self.sql(f"SELECT path, doc, key_path, value, value_type, line FROM records {where} ORDER BY path, doc, line {lim}", params)

    def findings(self, rule: str | None = None, severity: str | None = None, path: str | None = None) -> "pd.DataFrame":
        clauses, params = [], []
        for col, val in (("rule", rule), ("severity", severity)):
            if val:
                clauses.append(f"{col} = ?")
                params.append(val)
        if path:
            clauses.append("path GLOB ?")
            params.append(path)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self.sql(
            f"SELECT rule, severity, path, line, message, target, fingerprint FROM findings {where} "
            "ORDER BY CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, path, line",
            params,
        )

    def stats(self) -> dict[str, Any]:
        return self.catalogue.stats()

    def history(self, limit: int = 20) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame(self.catalogue.history(limit))

    # -- change log -----------------------------------------------------------------------------

    def changes(self, key: str | None = None, path: str | None = None, since: Any = None,
                change: str | None = None, limit: int | None = 1000, as_frame: bool = True):
        """Key-level changes, newest first: a DataFrame (one row per change), or ``KeyChange`` models.

        ``key`` a key path or a ``*`` pattern; ``path`` a file, folder or glob (a moved file keeps
        its history); ``since`` a run id, a date/time or an age such as ``"7d"``.
        """
        from kb.changelog import CHANGE_COLUMNS, query_changes

        _, rows = query_changes(self.catalogue, key=key, path=path, since=since, change=change, limit=limit)
        if not as_frame:
            return rows
        import pandas as pd

        return pd.DataFrame([r.model_dump() for r in rows], columns=list(CHANGE_COLUMNS))

    def blame(self, path: str, key: str, *, doc: int | None = None):
        """The history of one key: a ``KeyHistory`` (value now, who last touched it, changes newest first)."""
        from kb.changelog import key_history

        return key_history(self.catalogue, self.settings, path, key, doc=doc)

    # -- health report --------------------------------------------------------------------------

    def report(self, *, validate: bool | None = None, record: bool | None = None) -> dict[str, Any]:
        """The numbers behind the health report (score, findings, duplication, drift, schemas,
        graph, recent changes, trends). ``validate`` runs validation first (default: when stale);
        ``record`` stores a health snapshot for trends (default: when writable)."""
        from kb.report import build_report

        if validate is None:
            validate = not self.read_only
        return build_report(self.catalogue, self.settings, validate=validate,
                            record=not self.read_only if record is None else record)

    def report_html(self, path: str | Path | None = None, **options: Any) -> str:
        """The health report as one self-contained HTML page; written to ``path`` when given."""
        from kb.report import render_html

        html = render_html(self.report(**options))
        if path is not None:
            Path(path).write_text(html, encoding="utf-8")
        return html

    # -- search ---------------------------------------------------------------------------------

    def search(self, query: str, *, k: int = 10, mode: str = "hybrid", format: str | None = None,
               path: str | None = None, as_frame: bool = True):
        """Hybrid (keyword + vector) search. A DataFrame of hits, or ``Hit`` models."""
        from kb.search import search

        hits = search(self.catalogue, self.settings, query, k=k, mode=mode, format=format, path=path)
        if not as_frame:
            return hits
        import pandas as pd

        return pd.DataFrame([h.model_dump() for h in hits],
                            columns=["path", "score", "line_start", "line_end", "key_path", "snippet", "format"])

    # -- graph and validation -------------------------------------------------------------------

    def graph(self) -> "nx.DiGraph":
        """The dependency graph: nodes are files, edges typed references with their line."""
        from graph.build import build_graph

        return build_graph(self.catalogue, self.settings)

    def dependencies(self, path: str, *, transitive: bool = False) -> "pd.DataFrame":
        """What ``path`` references (kind, line, depth)."""
        import pandas as pd

        from graph.queries import dependencies

        return pd.DataFrame(dependencies(self.graph(), path, transitive=transitive))

    def impact(self, path: str) -> "pd.DataFrame":
        """Every file that depends on ``path``, directly or through others, with its depth."""
        import pandas as pd

        from graph.queries import impact

        return pd.DataFrame(impact(self.graph(), path))

    def graph_stats(self) -> dict[str, Any]:
        from graph.queries import stats

        return stats(self.graph())

    def validate(self, *, as_frame: bool = True):
        """Run every rule; findings are stored (source ``validate``) and returned."""
        from graph.rules import validate

        if self.read_only:
            from kb.errors import ReadOnlyError

            raise ReadOnlyError("validate() stores its findings: open the KB writable, "
                                "KnowledgeBase.open(db) without read_only=True.")

        found = validate(self.catalogue, self.settings)
        if not as_frame:
            return found
        import pandas as pd

        return pd.DataFrame([f.model_dump() for f in found])

    # -- duplicates and drift -------------------------------------------------------------------

    def duplicates(self, kinds: list[str] | None = None, *, as_frame: bool = True, **options: Any):
        """Duplicate groups; as a DataFrame one row per member (group id, kind, similarity, ...)."""
        from kb.duplicates import find_duplicates

        groups = find_duplicates(self.catalogue, self.settings, kinds=kinds, **options)
        if not as_frame:
            return groups
        import pandas as pd

        rows = [
            {"group": i, "kind": g.kind, "similarity": g.similarity, "lines_saved": g.lines_saved, **m.model_dump()}
            for i, g in enumerate(groups)
            for m in g.members
        ]
        return pd.DataFrame(rows, columns=["group", "kind", "similarity", "lines_saved", "path", "key_path",
                                           "line_start", "line_end"])

    def duplication_summary(self, groups=None) -> dict[str, Any]:
        """The tree's duplication ratio (duplicated leaf values / all) and counts per kind."""
        from kb.duplicates import duplication_summary, find_duplicates

        if groups is None:
            groups = find_duplicates(self.catalogue, self.settings)
        return duplication_summary(self.catalogue, groups)

    def drift(self, *, as_frame: bool = True):
        """Keys missing from, or differing between, sibling environment files."""
        from kb.drift import find_drift

        groups = find_drift(self.catalogue, self.settings)
        if not as_frame:
            return groups
        import pandas as pd

        rows = []
        for i, g in enumerate(groups):
            for m in g.missing:
                rows.append({"group": i, "issue": "missing", "key_path": m.key_path,
                             "detail": ", ".join(m.missing_in), "files": ", ".join(g.files)})
            for d in g.differing:
                rows.append({"group": i, "issue": "differing", "key_path": d.key_path,
                             "detail": "; ".join(f"{p}={v}" for p, v in d.values.items()), "files": ", ".join(g.files)})
        return pd.DataFrame(rows, columns=["group", "issue", "key_path", "detail", "files"])
