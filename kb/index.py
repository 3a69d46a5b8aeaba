"""Keeping the search index (vectors + keyword index) in step with the catalogue's ``chunks``.

:func:`sync_index` runs after each ingest commit. It compares the ``chunks`` table with the
index state recorded at the last sync (``<db>/index/state.parquet``: one row per indexed chunk
with its ``text_sha`` and metadata) and, with DuckDB doing the diff:

* deletes the vectors and keyword documents of chunks that are gone;
* for new chunks and chunks whose text changed, reuses the vector of any indexed chunk with the
  same ``text_sha`` (a section that only moved) and encodes the rest, each distinct text once;
* for chunks whose text is unchanged but whose lines or key path moved, updates metadata only.

A no-change re-ingest therefore embeds nothing and does not even load the model. The embedder's
identity and dimension go into catalogue meta (``embedder``); a sync or a search with another
embedder raises :class:`~kb.errors.EmbedderMismatchError`.

Crash safety: a ``SYNCING`` marker is written before the first change and removed after the new
state file is in place. If it is found at the start (or the state does not match the stores'
counts), the state is rebuilt from the vector store's own metadata and the keyword index is rebuilt
from the catalogue; both are idempotent, so an interrupted sync just resumes.

``meta.index_generation`` changes on every sync; readers in other processes (the HTTP API) reopen
their cached stores when it does.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kb.errors import EmbedderMismatchError

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.settings import Settings
    from kb.vectors import VectorStore

__all__ = [
    "sync_index",
    "read_embedder_meta",
    "mismatch_message",
    "vector_store_for",
    "EMBEDDER_KEY",
    "GENERATION_KEY",
    "INDEX_ID_KEY",
    "INDEX_DIR",
]

EMBEDDER_KEY = "embedder"
GENERATION_KEY = "index_generation"
INDEX_ID_KEY = "index_id"
INDEX_DIR = "index"
STATE_FILE = "state.parquet"
MARKER_FILE = "SYNCING"
BATCH = 4096

Progress = Callable[[str, int, int], None]

_STATE_COLUMNS = "chunk_id, path, format, key_path, line_start, line_end, text_sha"


def read_embedder_meta(catalogue: "Catalogue") -> dict[str, Any] | None:
    raw = catalogue.get_meta(EMBEDDER_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        meta = {"name": raw, "dim": None}
    return meta if isinstance(meta, dict) else {"name": str(meta), "dim": None}


def _model_option(name: str) -> str:
    from kb.embed import DEFAULT_NAME
    from kb.settings import DEFAULT_MODEL

    if name.startswith("hash-"):
        return "hash:" + name[5:]
    if name == DEFAULT_NAME:
        return DEFAULT_MODEL
    return name


def mismatch_message(meta: dict[str, Any], configured: str, settings: "Settings") -> str:
    built = meta.get("name", "?")
    dim = meta.get("dim")
    return (
        f"This KB was built with the embedder '{built}'{f' (dimension {dim})' if dim else ''}, but the "
        f"configured model is '{configured}'. Vectors from different models cannot be compared. Either "
        f"pass the original model (--model {_model_option(built)} or KB_MODEL={_model_option(built)}), "
        f"or re-ingest into a fresh KB directory (--db NEW_DIR) to use '{settings.model}'."
    )


def vector_store_for(catalogue: "Catalogue", settings: "Settings", *, generation: str | None = None,
                     index_id: str | None = None) -> "VectorStore":
    """The (cached) vector store of this KB: embedded under ``<db>/chroma`` or on the server."""
    from kb.vectors import open_vector_store

    collection = "kb_chunks"
    if settings.chroma_url:
        index_id = index_id or catalogue.get_meta(INDEX_ID_KEY)
        if index_id:
            collection = f"kb_{index_id}"
    return open_vector_store(catalogue.db_dir, chroma_url=settings.chroma_url, collection=collection,
                             generation=generation)


def _sql_str(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _meta(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": row["path"], "format": row["format"] or "", "key_path": row["key_path"] or "",
        "line_start": int(row["line_start"] or 0), "line_end": int(row["line_end"] or 0),
        "text_sha": row["text_sha"] or "",
    }


class _Sync:
    def __init__(self, catalogue: "Catalogue", settings: "Settings", progress: Progress | None) -> None:
        from kb.embed import embedder_name
        from kb.keyword import open_keyword_index

        self.catalogue = catalogue
        self.settings = settings
        self.progress = progress or (lambda phase, done, total: None)
        self.name = embedder_name(settings)
        self.meta = read_embedder_meta(catalogue)
        if self.meta is not None and self.meta.get("name") != self.name:
            raise EmbedderMismatchError(mismatch_message(self.meta, self.name, settings))
        self.index_id = catalogue.get_meta(INDEX_ID_KEY)
        if self.index_id is None:
            self.index_id = uuid.uuid4().hex
            catalogue.set_meta(INDEX_ID_KEY, self.index_id)
        self.dir = Path(catalogue.db_dir) / INDEX_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state = self.dir / STATE_FILE
        self.marker = self.dir / MARKER_FILE
        self.keyword = open_keyword_index(catalogue.db_dir)
        self.store = vector_store_for(catalogue, settings, index_id=self.index_id)
        self._embedder: Any = None
        self.con = catalogue.cursor()
        self.encoded = 0

    # -- helpers --------------------------------------------------------------------------------

    def embedder(self) -> Any:
        if self._embedder is None:
            from kb.embed import get_embedder

            emb = get_embedder(self.settings)
            dim = (self.meta or {}).get("dim")
            if dim is not None and int(dim) != emb.dim:
                raise EmbedderMismatchError(mismatch_message(self.meta or {}, f"{emb.name} (dimension {emb.dim})", self.settings))
            self.catalogue.set_meta(EMBEDDER_KEY, json.dumps({"name": emb.name, "dim": emb.dim}))
            self.meta = {"name": emb.name, "dim": emb.dim}
            self._embedder = emb
        return self._embedder

    def q(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        return self.con.execute(sql, params or []).fetchall()

    def dicts(self, sql: str, params: list[Any] | None = None, size: int = BATCH):
        cur = self.con  # temp tables live in this connection
        cur.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        while True:
            rows = cur.fetchmany(size)
            if not rows:
                break
            yield [dict(zip(names, r)) for r in rows]

    def _recover_state(self) -> None:
        """Rebuild the state file from what the vector store actually holds."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols: dict[str, list[Any]] = {c: [] for c in _STATE_COLUMNS.split(", ")}
        for cid, meta in self.store.iter_metadata():
            cols["chunk_id"].append(cid)
            for c in ("path", "format", "key_path", "text_sha"):
                cols[c].append(str(meta.get(c, "")))
            for c in ("line_start", "line_end"):
                cols[c].append(int(meta.get(c, 0) or 0))
        table = pa.table({
            c: pa.array(v, type=pa.int32() if c in ("line_start", "line_end") else pa.string()) for c, v in cols.items()
        })
        tmp = self.state.with_suffix(".tmp")
        pq.write_table(table, tmp)
        os.replace(tmp, self.state)

    # -- the sync -------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        self.q(f"""CREATE OR REPLACE TEMP TABLE _kb_cur AS
            SELECT c.chunk_id, c.path, coalesce(f.format, '') AS format, coalesce(c.key_path, '') AS key_path,
                   c.line_start, c.line_end, c.text_sha
            FROM chunks c LEFT JOIN (SELECT path, any_value(format) AS format FROM files GROUP BY path) f USING (path)""")
        total = self.q("SELECT count(*) FROM _kb_cur")[0][0]

        keyword_full = self.keyword.created
        if self.marker.exists() or (not self.state.exists() and self.store.count() > 0):
            self._recover_state()
            keyword_full = True
        if self.state.exists():
            self.q(f"CREATE OR REPLACE TEMP TABLE _kb_old AS SELECT {_STATE_COLUMNS} FROM read_parquet({_sql_str(self.state)})")
            old_n = self.q("SELECT count(*) FROM _kb_old")[0][0]
            if old_n != self.store.count():
                self._recover_state()
                keyword_full = True
                self.q(f"CREATE OR REPLACE TEMP TABLE _kb_old AS SELECT {_STATE_COLUMNS} FROM read_parquet({_sql_str(self.state)})")
                old_n = self.q("SELECT count(*) FROM _kb_old")[0][0]
            if not keyword_full and old_n != self.keyword.count():
                keyword_full = True
        else:
            self.q(f"CREATE OR REPLACE TEMP TABLE _kb_old AS SELECT {_STATE_COLUMNS} FROM _kb_cur LIMIT 0")

        removed = [r[0] for r in self.q(
            "SELECT o.chunk_id FROM _kb_old o ANTI JOIN _kb_cur c USING (chunk_id)")]
        self.q("""CREATE OR REPLACE TEMP TABLE _kb_chg AS
            SELECT c.*, (o.chunk_id IS NOT NULL AND o.text_sha = c.text_sha) AS same_vec
            FROM _kb_cur c LEFT JOIN _kb_old o USING (chunk_id)
            WHERE o.chunk_id IS NULL OR o.text_sha IS DISTINCT FROM c.text_sha OR o.path IS DISTINCT FROM c.path
               OR o.format IS DISTINCT FROM c.format OR o.key_path IS DISTINCT FROM c.key_path
               OR o.line_start IS DISTINCT FROM c.line_start OR o.line_end IS DISTINCT FROM c.line_end""")
        changed = self.q("SELECT count(*) FROM _kb_chg")[0][0]

        if not removed and not changed and not keyword_full:
            if self.meta is None:
                self.catalogue.set_meta(EMBEDDER_KEY, json.dumps({"name": self.name, "dim": None}))
            self._finish(write_state=False)
            return {"embedded": 0, "chunks": total, "removed": 0, "seconds": round(time.perf_counter() - t0, 3)}

        self.marker.write_text("sync in progress\n")
        # vectors that can be reused: same text already indexed under another (or the old) id
        reuse_src = dict(self.q("""SELECT n.text_sha, min(o.chunk_id) FROM
                (SELECT DISTINCT text_sha FROM _kb_chg WHERE NOT same_vec) n JOIN _kb_old o USING (text_sha)
                GROUP BY 1"""))
        reuse: dict[str, np.ndarray] = {}
        if reuse_src:
            got = self.store.get_embeddings(list(reuse_src.values()))
            reuse = {sha: got[cid] for sha, cid in reuse_src.items() if cid in got}
        dup_shas = {r[0] for r in self.q(
            "SELECT text_sha FROM _kb_chg WHERE NOT same_vec GROUP BY 1 HAVING count(*) > 1")}
        to_encode = self.q("SELECT count(DISTINCT text_sha) FROM _kb_chg WHERE NOT same_vec")[0][0] - len(reuse)

        if removed:
            self.store.delete(removed)
            if not keyword_full:
                self.keyword.delete(removed)
        if keyword_full:
            self.keyword.clear()

        from kb.keyword import ChunkDoc

        done = 0
        self.progress("embed", 0, max(0, to_encode))
        for rows in self.dicts("SELECT g.*, ch.text FROM _kb_chg g JOIN chunks ch USING (chunk_id)"):
            need = [r for r in rows if not r["same_vec"]]
            meta_only = [r for r in rows if r["same_vec"]]
            fresh: dict[str, str] = {}
            for r in need:
                sha = r["text_sha"]
                if sha not in reuse and sha not in fresh:
                    fresh[sha] = r["text"]
            if fresh:
                shas = list(fresh)
                vecs = self.embedder().encode([fresh[s] for s in shas])
                self.encoded += len(shas)
                batch_vecs = dict(zip(shas, vecs))
                for s in shas:
                    if s in dup_shas:
                        reuse[s] = batch_vecs[s]
            else:
                batch_vecs = {}
            if need:
                vectors = np.stack([batch_vecs.get(r["text_sha"], reuse.get(r["text_sha"])) for r in need])
                self.store.upsert([r["chunk_id"] for r in need], vectors, [_meta(r) for r in need])
            if meta_only:
                self.store.update_metadata([r["chunk_id"] for r in meta_only], [_meta(r) for r in meta_only])
            if not keyword_full:
                self.keyword.delete(r["chunk_id"] for r in rows)
                self.keyword.add(ChunkDoc(r["chunk_id"], r["path"], r["format"], r["key_path"], r["line_start"],
                                          r["line_end"], r["text"], r["text_sha"]) for r in rows)
            done += len(fresh)
            self.progress("embed", done, max(done, to_encode))

        if keyword_full:
            n = 0
            self.progress("keyword", 0, total)
            for rows in self.dicts("SELECT c.*, ch.text FROM _kb_cur c JOIN chunks ch USING (chunk_id)"):
                self.keyword.add(ChunkDoc(r["chunk_id"], r["path"], r["format"], r["key_path"], r["line_start"],
                                          r["line_end"], r["text"], r["text_sha"]) for r in rows)
                n += len(rows)
                self.progress("keyword", n, total)
        self.keyword.commit()
        if self.meta is None:
            self.catalogue.set_meta(EMBEDDER_KEY, json.dumps({"name": self.name, "dim": None}))
        self._finish(write_state=True)
        return {"embedded": self.encoded, "chunks": total, "removed": len(removed),
                "seconds": round(time.perf_counter() - t0, 3)}

    def _finish(self, *, write_state: bool) -> None:
        from kb.vectors import note_generation

        if write_state:
            tmp = self.state.with_suffix(".tmp")
            self.q(f"COPY (SELECT {_STATE_COLUMNS} FROM _kb_cur) TO {_sql_str(tmp)} (FORMAT parquet)")
            os.replace(tmp, self.state)
        for t in ("_kb_cur", "_kb_old", "_kb_chg"):
            self.q(f"DROP TABLE IF EXISTS {t}")
        if write_state or self.catalogue.get_meta(GENERATION_KEY) is None:
            generation = uuid.uuid4().hex
            self.catalogue.set_meta(GENERATION_KEY, generation)
            note_generation(self.store, generation)
        if self.marker.exists():
            self.marker.unlink()


def sync_index(catalogue: "Catalogue", settings: "Settings", *,
               progress: Progress | None = None) -> dict[str, Any]:
    """Bring the vector store and the keyword index in step with the ``chunks`` table.

    Returns ``{"embedded": texts encoded, "chunks": chunks indexed, "removed": chunks dropped,
    "seconds": ...}``. ``progress(phase, done, total)`` is called with phases ``embed`` and
    ``keyword`` (a full keyword rebuild).
    """
    sync = _Sync(catalogue, settings, progress)
    try:
        return sync.run()
    except BaseException:
        sync.keyword.rollback()
        raise
    finally:
        try:
            sync.con.close()
        except Exception:  # noqa: BLE001
            pass
