"""The catalogue: one DuckDB file under the KB directory. The only module that imports duckdb.

Tables (the names users type in ``kb sql``):

``runs``       one row per ingest: id, root, started_at, finished_at, status (running|complete|
               failed), files_seen, added, changed, removed, unchanged, seconds
``run_changes`` run_id, path, change (added|changed|removed)
``files``      path (relative to the root, '/'), format, size, sha256, mtime, status (ok|error|
               skipped), records, canonical_sha (hash of the parsed data, format-independent), run_id,
               folder_about (what its folder says it is, as its chunks carry it: :mod:`kb.ingest.about`;
               NULL when its chunks do not depend on it: it has an about of its own, no chunks, or
               is a README)
``records``    path, doc, key_path, value (text), value_type (str|int|float|bool|null|object|array), line
``sections``   path, key_path, kind, line_start, line_end, text (redacted)
``chunks``     chunk_id, path, ordinal, key_path, line_start, line_end, text (redacted), text_sha,
               embed (false: the text carries no meaning for the model, e.g. base64 or a lock file;
               it is keyword-searchable but not embedded)
``documents``  path, doc, data (the parsed, redacted data as JSON text)
``findings``   rule, severity, path, line, message, target, fingerprint, source (ingest|validate|...)
``meta``       key, value (embedder identity, root, schema version)
``changes``    the key-level change log (:mod:`kb.changelog`): run_id, changed_at, path, doc, key_path,
               change (added|removed|changed|moved|broken), old_value, new_value, old_type, new_type,
               line, old_path, commit, author, committed_at, source (ingest|git)
``health``     one health snapshot per run a report was built for (:mod:`kb.report`)

Writes go in bulk through Arrow tables, a batch of files per transaction. A KB keeps one catalogue
file per published generation (:mod:`kb.generations`): the writer changes a private copy, readers
open published files read-only.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from kb.errors import BadRequestError, KBError, NotIndexedError, ReadOnlyError, no_kb
from kb.types import DOCUMENTED_COPIES, DOCUMENTED_END

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

__all__ = ["Catalogue", "CATALOGUE_FILE", "SCHEMA_VERSION", "TABLE_COLUMNS", "SHOWN_FINDINGS", "DOCUMENTATION_PATH"]

CATALOGUE_FILE = "catalogue.duckdb"
SCHEMA_VERSION = "3"

TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "files": [
        ("path", "VARCHAR"),
        ("format", "VARCHAR"),
        ("size", "BIGINT"),
        ("sha256", "VARCHAR"),
        ("mtime", "DOUBLE"),
        ("status", "VARCHAR"),
        ("records", "INTEGER"),
        ("canonical_sha", "VARCHAR"),
        ("run_id", "INTEGER"),
        ("folder_about", "VARCHAR"),
    ],
    "records": [
        ("path", "VARCHAR"),
        ("doc", "INTEGER"),
        ("key_path", "VARCHAR"),
        ("value", "VARCHAR"),
        ("value_type", "VARCHAR"),
        ("line", "INTEGER"),
    ],
    "sections": [
        ("path", "VARCHAR"),
        ("key_path", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("line_start", "INTEGER"),
        ("line_end", "INTEGER"),
        ("text", "VARCHAR"),
    ],
    "chunks": [
        ("chunk_id", "VARCHAR"),
        ("path", "VARCHAR"),
        ("ordinal", "INTEGER"),
        ("key_path", "VARCHAR"),
        ("line_start", "INTEGER"),
        ("line_end", "INTEGER"),
        ("text", "VARCHAR"),
        ("text_sha", "VARCHAR"),
        ("embed", "BOOLEAN"),
    ],
    "documents": [("path", "VARCHAR"), ("doc", "INTEGER"), ("data", "VARCHAR")],
    "findings": [
        ("rule", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("path", "VARCHAR"),
        ("line", "INTEGER"),
        ("message", "VARCHAR"),
        ("target", "VARCHAR"),
        ("fingerprint", "VARCHAR"),
        ("source", "VARCHAR"),
    ],
    "run_changes": [("run_id", "INTEGER"), ("path", "VARCHAR"), ("change", "VARCHAR")],
    "changes": [  # kb.changelog: written in the same transaction as the file's new rows
        ("run_id", "INTEGER"),
        ("changed_at", "TIMESTAMP"),
        ("path", "VARCHAR"),
        ("doc", "INTEGER"),
        ("key_path", "VARCHAR"),
        ("change", "VARCHAR"),
        ("old_value", "VARCHAR"),
        ("new_value", "VARCHAR"),
        ("old_type", "VARCHAR"),
        ("new_type", "VARCHAR"),
        ("line", "INTEGER"),
        ("old_path", "VARCHAR"),
        ("commit", "VARCHAR"),
        ("author", "VARCHAR"),
        ("committed_at", "TIMESTAMP"),
        ("source", "VARCHAR"),
    ],
    "health": [  # kb.report: one snapshot per run
        ("run_id", "INTEGER"),
        ("built_at", "TIMESTAMP"),
        ("score", "DOUBLE"),
        ("files", "INTEGER"),
        ("errors", "INTEGER"),
        ("warnings", "INTEGER"),
        ("duplication_ratio", "DOUBLE"),
        ("drift_keys", "INTEGER"),
        ("schema_coverage", "DOUBLE"),
        ("data", "VARCHAR"),
    ],
}

# Per-file tables: a file's rows are replaced together with its ``files`` row.
FILE_TABLES = ("records", "sections", "chunks", "documents")

DOCUMENTATION_PATH = r"(?i)((^|/)readme[^/]*|\.(md|markdown|mdx|rst|adoc|txt)(\.gotmpl|\.tpl|\.j2)?)$"
"""A file that documents (a README, Markdown, reStructuredText, AsciiDoc, a Helm ``NOTES.txt``,
their templates): what it shows of a configuration is a copy."""
SHOWN_DOCUMENTED = 3
"""Documentation copies named in a finding's message (the rest counted)."""
SHOWN_FINDINGS = f"""(
    WITH secrets AS (
        SELECT path, line, fingerprint,
               regexp_matches(coalesce(path, ''), '{DOCUMENTATION_PATH}') AS doc,
               regexp_replace(coalesce(path, ''), '/?[^/]*$', '') AS dir
        FROM findings WHERE rule = 'plaintext-secret' AND fingerprint IS NOT NULL
    ),
    pairs AS (  -- a configuration's secret and its copy in documentation of its folder or above
        SELECT c.path AS cpath, c.fingerprint, d.path AS dpath, d.line AS dline
        FROM secrets c JOIN secrets d
          ON c.fingerprint = d.fingerprint AND NOT c.doc AND d.doc
         AND (d.dir = '' OR c.dir = d.dir OR starts_with(c.dir, d.dir || '/'))
    ),
    copies AS (
        SELECT cpath, fingerprint, count(*) AS n,
               list(dpath || ':' || coalesce(dline, 0) ORDER BY dpath, dline) AS places
        FROM (SELECT DISTINCT cpath, fingerprint, dpath, dline FROM pairs)
        GROUP BY cpath, fingerprint
    ),
    folded AS (SELECT DISTINCT dpath, dline, fingerprint FROM pairs)
    SELECT s.rule, s.severity, s.path, s.line,
           CASE WHEN c.n IS NULL THEN s.message
                ELSE s.message || '{DOCUMENTED_COPIES}'
                     || array_to_string(list_slice(c.places, 1, {SHOWN_DOCUMENTED}), ', ')
                     || CASE WHEN c.n > {SHOWN_DOCUMENTED}
                             THEN ' and ' || (c.n - {SHOWN_DOCUMENTED}) || ' more places'
                             ELSE '' END
                     || '{DOCUMENTED_END}'
           END AS message,
           s.target, s.fingerprint, s.source
    FROM findings s
    LEFT JOIN copies c
        ON s.rule = 'plaintext-secret' AND c.cpath = s.path AND c.fingerprint = s.fingerprint
    LEFT JOIN folded f
        ON s.rule = 'plaintext-secret' AND f.dpath = s.path AND f.fingerprint = s.fingerprint
       AND f.dline IS NOT DISTINCT FROM s.line
    WHERE f.dpath IS NULL
) AS findings"""
"""The findings as kb shows them (every listing, count, page and report reads this, never the
``findings`` table itself): a secret that a configuration file holds is one finding there, and the
documentation of its folder or a folder above that repeats it (a chart's README showing the default
password of its ``values.yaml``) is named in that finding's message, not reported again. A secret
found only in documentation, or in documentation elsewhere, stays a finding of its own."""

_ARROW_TYPE_NAMES = {
    "VARCHAR": "string",
    "BIGINT": "int64",
    "INTEGER": "int32",
    "DOUBLE": "float64",
    "BOOLEAN": "bool_",
    "TIMESTAMP": "timestamp",
}
"""pyarrow is imported where rows are written, not by ``import kb``: a search from the shell reads
through DuckDB alone, and pyarrow is ~70 MB of its memory (cold ``kb search`` 331 -> 2xx MB peak)."""


def _arrow_type(typ: str) -> pa.DataType:
    import pyarrow as pa

    name = _ARROW_TYPE_NAMES[typ]
    return pa.timestamp("us") if name == "timestamp" else getattr(pa, name)()


def _ddl() -> list[str]:
    stmts = [
        "CREATE TABLE IF NOT EXISTS meta (key VARCHAR, value VARCHAR)",
        "CREATE SEQUENCE IF NOT EXISTS run_seq START 1",
        """CREATE TABLE IF NOT EXISTS runs (
            id INTEGER, root VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, status VARCHAR,
            files_seen INTEGER, added INTEGER, changed INTEGER, removed INTEGER, unchanged INTEGER,
            seconds DOUBLE)""",
    ]
    for table, cols in TABLE_COLUMNS.items():
        body = ", ".join(f"{name} {typ}" for name, typ in cols)
        stmts.append(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
    return stmts


def clean_text(value: str) -> str:
    """``value`` made encodable as UTF-8: surrogate pairs joined, lone surrogates (from a broken
    escape, or a file name that is not UTF-8) replaced by U+FFFD."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def arrow_table(table: str, rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows (tuples in ``TABLE_COLUMNS`` order) to an Arrow table with the catalogue's types."""
    try:
        return _arrow_table(table, rows)
    except UnicodeEncodeError:  # rare: clean every string, then build again
        rows = [tuple(clean_text(v) if isinstance(v, str) else v for v in r) for r in rows]
        return _arrow_table(table, rows)


def _arrow_table(table: str, rows: Sequence[Sequence[Any]]) -> pa.Table:
    import pyarrow as pa

    cols = TABLE_COLUMNS[table]
    columns: list[Sequence[Any]] = list(zip(*rows)) if rows else [[] for _ in cols]
    arrays = [pa.array(list(col), type=_arrow_type(typ)) for col, (_, typ) in zip(columns, cols)]
    return pa.Table.from_arrays(arrays, names=[name for name, _ in cols])


def _arrow_reader(rel: Any, batch_rows: int) -> Any:
    """A streaming record-batch reader over a relation (the name differs across DuckDB versions)."""
    for name in ("to_arrow_reader", "fetch_arrow_reader", "record_batch"):
        if hasattr(rel, name):
            return getattr(rel, name)(batch_rows)
    raise AttributeError("this DuckDB has no Arrow reader")


_ALLOWED_STATEMENTS = ("SELECT", "EXPLAIN")


def _sql_error(exc: duckdb.Error, read_only: bool) -> KBError:
    """A DuckDB error in user SQL as the KB error a caller can show (its first line)."""
    text = (str(exc).splitlines() or [type(exc).__name__])[0]
    if read_only and ("read-only" in text or "read only" in text):
        return ReadOnlyError(f"The catalogue is read-only: {text}")
    return BadRequestError(f"SQL error: {text}")


def _one_select(sql: str) -> None:
    """Refuse user SQL that is not exactly one SELECT (or EXPLAIN) statement."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise _sql_error(exc, False) from exc
    if len(statements) != 1:
        raise BadRequestError(
            f"Give exactly one SQL statement (got {len(statements)}), e.g. SELECT format, count(*) FROM files GROUP BY 1."
        )
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind not in _ALLOWED_STATEMENTS:
        raise ReadOnlyError(
            f"Only a SELECT runs here ({kind} statements are refused: the catalogue is read-only and its "
            "settings are fixed); e.g. SELECT path FROM files LIMIT 10."
        )


class Catalogue:
    """A DuckDB catalogue: ``path`` is its file, or a folder holding ``catalogue.duckdb`` (a
    stand-alone catalogue, as tests and benchmarks use; a KB's generations are opened through
    :mod:`kb.generations`).

    ``read_only=True`` opens an existing catalogue for queries only; writes fail in DuckDB itself.
    ``external_access=False`` (``kb sql``) also forbids reading or writing other files from SQL
    (``COPY ... TO``, ``read_csv``). One connection per instance; a lock serialises use across threads, and
    :meth:`cursor` hands out per-thread cursors for concurrent readers in the API.
    """

    def __init__(self, path: Path | str, *, read_only: bool = False, external_access: bool = True) -> None:
        path = Path(path)
        is_file = path.is_file() or (not path.is_dir() and (path.suffix in (".duckdb", ".tmp")))
        self.path = path if is_file else path / CATALOGUE_FILE
        self.db_dir = self.path.parent
        self.read_only = read_only
        self.files_written = False
        """Whether this instance replaced or removed any file's rows (files, records, chunks...)."""
        if read_only and not self.path.exists():
            raise no_kb(self.db_dir)
        if not read_only:
            self.db_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        try:
            config: dict[str, str | bool | int | float | list[str]] = (
                {} if external_access else {"enable_external_access": False}
            )
            self.con = duckdb.connect(str(self.path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            raise NotIndexedError(
                f"Cannot open the catalogue at '{self.path}': {exc}. Is another `kb ingest` running?"
            ) from exc
        if not read_only:
            for stmt in _ddl():
                self.con.execute(stmt)
            if self.get_meta("schema_version") is None:
                self.set_meta("schema_version", SCHEMA_VERSION)
            else:
                self._migrate()

    def _migrate(self) -> None:
        cols = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'chunks'"
            ).fetchall()
        }
        if "embed" not in cols:
            self.con.execute("ALTER TABLE chunks ADD COLUMN embed BOOLEAN DEFAULT true")
        file_cols = {
            r[0]
            for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'files'"
            ).fetchall()
        }
        if "folder_about" not in file_cols:
            # chunked before folder abouts: they carry none, as if every folder said nothing
            self.con.execute("ALTER TABLE files ADD COLUMN folder_about VARCHAR DEFAULT ''")
        self.set_meta("schema_version", SCHEMA_VERSION)

    # -- plumbing -------------------------------------------------------------------------------

    def close(self) -> None:
        with self.lock:
            self.con.close()

    def checkpoint_and_close(self) -> None:
        """Write everything into the database file (no WAL left beside it), then close."""
        with self.lock:
            self.con.execute("CHECKPOINT")
            self.con.close()

    @contextlib.contextmanager
    def attached(self, path: Path | str, alias: str = "prev") -> Iterator[str]:
        """Another catalogue file attached read-only as ``alias`` for the block (to diff with it)."""
        with self.lock:
            self.con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {alias} (READ_ONLY)")
        try:
            yield alias
        finally:
            with self.lock:
                self.con.execute(f"DETACH {alias}")

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor sharing the database, for use from another thread."""
        return self.con.cursor()

    def view(self, con: Any, lock: Any = None) -> Catalogue:
        """A read-only ``Catalogue`` over ``con`` (a cursor of this database, e.g. a pinned snapshot).

        Library functions take a ``Catalogue``; the HTTP API hands them a view bound to a
        per-request cursor so readers never queue behind the ingest's connection.
        """
        view = Catalogue.__new__(Catalogue)
        view.db_dir, view.path, view.read_only = self.db_dir, self.path, True
        view.lock = lock if lock is not None else threading.RLock()
        view.con = con
        return view

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            self.con.execute("BEGIN TRANSACTION")
            try:
                yield self.con
            except BaseException:
                self.con.execute("ROLLBACK")
                raise
            else:
                self.con.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple]:
        with self.lock:
            return self.con.execute(sql, params or []).fetchall()

    def query_df(self, sql: str, params: Sequence[Any] | None = None):  # -> pandas.DataFrame
        with self.lock:
            return self.con.execute(sql, params or []).df()

    def numpy(self, sql: str, params: Sequence[Any] | None = None) -> dict[str, Any]:
        """Column name -> numpy array (strings and blobs as object arrays)."""
        with self.lock:
            return self.con.execute(sql, params or []).fetchnumpy()

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.lock:
            cur = self.con.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def sql(self, sql: str) -> tuple[list[str], list[tuple]]:
        """Run user SQL (``kb sql``): columns and rows. One SELECT only: writes and settings are refused."""
        _one_select(sql)
        with self.lock:
            try:
                cur = self.con.execute(sql)
            except duckdb.Error as exc:
                raise _sql_error(exc, self.read_only) from exc
            if cur.description is None:
                return [], []
            return [d[0] for d in cur.description], cur.fetchall()

    def select_df(self, sql: str, params: Sequence[Any] | None = None):  # -> pandas.DataFrame
        """User SQL as a DataFrame (``KnowledgeBase.sql``): one SELECT; its errors as KB errors."""
        _one_select(sql)
        with self.lock:
            try:
                return self.con.execute(sql, params or []).df()
            except duckdb.InterruptException as exc:  # Ctrl-C in a notebook: stop, as Python does
                raise KeyboardInterrupt from exc
            except duckdb.Error as exc:
                raise _sql_error(exc, self.read_only) from exc

    def sql_limited(
        self,
        sql: str,
        *,
        max_rows: int | None = 1000,
        timeout: float | None = 30.0,
        memory_limit: str | None = "1GB",
        max_bytes: int | None = 64 * 1024 * 1024,
    ) -> tuple[list[str], list[tuple], bool]:
        """:meth:`sql` within limits (``kb sql``): at most ``max_rows`` rows (``truncated`` says
        more were left), DuckDB's ``memory_limit``, an interrupt after ``timeout`` seconds, and
        at most ``max_bytes`` of result data (read as Arrow batches, so a huge value is refused
        before it is copied into Python). Returns ``(columns, rows, truncated)``; a limit hit is a
        :class:`BadRequestError` that says which and how to stay inside it.

        One statement, a SELECT (or EXPLAIN): ``SET memory_limit='20GB'; SELECT ...`` is refused
        before anything runs, and DuckDB's configuration is locked after the limit is set, so no
        statement can raise it (``lock_configuration``; a later call on the same connection keeps
        the limit the first one set)."""
        _one_select(sql)
        with self.lock:
            if memory_limit:
                try:
                    self.con.execute(f"SET memory_limit = '{memory_limit}'")
                except duckdb.Error:  # locked by an earlier call on this connection: its limit holds
                    pass
            if self.read_only and not self.con.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]:
                self.con.execute("SET lock_configuration = true")
            timer = threading.Timer(timeout, self.con.interrupt) if timeout else None
            if timer is not None:
                timer.daemon = True
                timer.start()
            try:
                try:
                    cur = self.con.sql(sql)  # a relation streams; None for a statement without rows
                    if cur is None:
                        return [], [], False
                    columns = list(cur.columns)
                    rows: list[tuple] = []
                    size = 0
                    want = None if max_rows is None else max_rows + 1
                    reader = _arrow_reader(cur, min(want or 10_000, 10_000))
                    for batch in reader:
                        size += batch.nbytes
                        if max_bytes is not None and size > max_bytes:
                            raise BadRequestError(
                                f"The result is larger than {max_bytes // 1048576} MB; select fewer or narrower "
                                f"columns (e.g. left(text, 200)), or fewer rows with LIMIT."
                            )
                        cols = [c.to_pylist() for c in batch.columns]
                        rows.extend(zip(*cols)) if cols else None
                        if want is not None and len(rows) >= want:
                            break
                except duckdb.InterruptException as exc:
                    raise BadRequestError(
                        f"The query ran past the {timeout:g} s limit and was stopped; narrow it, or raise "
                        f"the limit with --timeout."
                    ) from exc
                except duckdb.OutOfMemoryException as exc:
                    raise BadRequestError(
                        f"The query needs more than the {memory_limit} memory limit; narrow it (filters, LIMIT, "
                        f"fewer columns), or raise the limit with --memory."
                    ) from exc
                except duckdb.Error as exc:
                    raise _sql_error(exc, self.read_only) from exc
            finally:
                if timer is not None:
                    # Wait for the cancelled timer to end: its thread holds ``self.con.interrupt``, and
                    # were it the last to drop the connection while Python shuts down, DuckDB's
                    # destructor would run on a thread being torn down and abort the process
                    # ("FATAL: exception not rethrown" after `kb sql` had printed its answer).
                    timer.cancel()
                    timer.join()
        truncated = max_rows is not None and len(rows) > max_rows
        return columns, rows[:max_rows] if max_rows is not None else rows, truncated

    def insert_rows(self, table: str, rows: Sequence[Sequence[Any]], con: Any = None) -> None:
        """Bulk insert rows (tuples in ``TABLE_COLUMNS`` order) through Arrow."""
        if not rows:
            return
        data = arrow_table(table, rows)
        c = con or self.con
        with self.lock:
            c.register("_kb_insert", data)
            try:
                c.execute(f"INSERT INTO {table} SELECT * FROM _kb_insert")
            finally:
                c.unregister("_kb_insert")

    def tables(self) -> list[str]:
        return [r[0] for r in self.query("SELECT table_name FROM information_schema.tables ORDER BY 1")]

    # -- meta -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.lock:
            self.con.execute("DELETE FROM meta WHERE key = ?", [key])
            self.con.execute("INSERT INTO meta VALUES (?, ?)", [key, value])

    # -- ingest support -------------------------------------------------------------------------

    def file_states(self) -> dict[str, tuple[int, float, str | None]]:
        """path -> (size, mtime, sha256) for every catalogued file."""
        with self.lock:
            rows = self.con.execute("SELECT path, size, mtime, sha256 FROM files").fetchall()
        return {p: (s, m, h) for p, s, m, h in rows}

    def folder_abouts(self) -> dict[str, str]:
        """path -> the folder about its chunks carry, for the files whose chunks depend on one."""
        with self.lock:
            rows = self.con.execute("SELECT path, folder_about FROM files WHERE folder_about IS NOT NULL").fetchall()
        return dict(rows)

    def start_run(self, root: str) -> int:
        with self.lock:
            row = self.con.execute("SELECT nextval('run_seq')").fetchone()
            assert row is not None  # nextval yields one row
            run_id = row[0]
            self.con.execute(
                "INSERT INTO runs VALUES (?, ?, now(), NULL, 'running', 0, 0, 0, 0, 0, NULL)",
                [run_id, root],
            )
        return int(run_id)

    def close_interrupted_runs(self) -> None:
        """Runs left 'running' by a killed ingest: mark them, with the counts of what they committed."""
        with self.lock:
            self.con.execute(
                """UPDATE runs SET status = 'interrupted',
                       added = (SELECT count(*) FROM run_changes c WHERE c.run_id = runs.id AND c.change = 'added'),
                       changed = (SELECT count(*) FROM run_changes c WHERE c.run_id = runs.id AND c.change = 'changed'),
                       removed = (SELECT count(*) FROM run_changes c WHERE c.run_id = runs.id AND c.change = 'removed')
                   WHERE status = 'running'"""
            )

    def record_interrupted_run(self, root: str) -> None:
        """A run whose writer died before publishing (its work was discarded): one 'interrupted' row."""
        with self.lock:
            row = self.con.execute("SELECT nextval('run_seq')").fetchone()
            assert row is not None  # nextval yields one row
            run_id = row[0]
            self.con.execute(
                "INSERT INTO runs VALUES (?, ?, NULL, now(), 'interrupted', 0, 0, 0, 0, 0, NULL)", [run_id, root]
            )

    def invalidate_validation(self) -> None:
        """After an ingest that changed files, ``kb validate``'s findings and references are stale:
        drop them (a cross-file finding in an unchanged file may be stale too) and say so in meta."""
        with self.transaction() as con:
            con.execute("DELETE FROM findings WHERE source = 'validate'")
            row = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'references'"
            ).fetchone()
            assert row is not None  # count(*) yields one row
            exists = row[0]
            if exists:
                con.execute('DELETE FROM "references"')
        self.set_meta("validation_stale", "true")

    def finish_run(
        self,
        run_id: int,
        *,
        status: str,
        files_seen: int,
        added: int,
        changed: int,
        removed: int,
        unchanged: int,
        seconds: float,
    ) -> None:
        with self.lock:
            self.con.execute(
                """UPDATE runs SET finished_at = now(), status = ?, files_seen = ?, added = ?,
                   changed = ?, removed = ?, unchanged = ?, seconds = ? WHERE id = ?""",
                [status, files_seen, added, changed, removed, unchanged, seconds, run_id],
            )

    def replace_files(
        self,
        run_id: int,
        paths: Iterable[str],
        rows: dict[str, list[tuple]],
        changes: list[tuple[int, str, str]],
        *,
        touch: Sequence[tuple[str, float]] = (),
        existing: bool = True,
    ) -> None:
        """Atomically replace every row of ``paths`` (files, per-file tables, ingest findings).

        ``rows`` maps table name to new rows. ``touch`` updates only the mtime of files whose
        content did not change. ``existing=False`` skips the deletes (first ingest).
        """
        paths = list(paths)
        if paths or any(rows.get(t) for t in ("files", *FILE_TABLES)):
            self.files_written = True
        with self.transaction() as con:
            if existing and paths:
                import pyarrow as pa

                con.register("_kb_paths", pa.table({"path": pa.array(paths, type=pa.string())}))
                try:
                    for table in ("files",) + FILE_TABLES:
                        con.execute(f"DELETE FROM {table} WHERE path IN (SELECT path FROM _kb_paths)")
                    con.execute("DELETE FROM findings WHERE source = 'ingest' AND path IN (SELECT path FROM _kb_paths)")
                finally:
                    con.unregister("_kb_paths")
            for table, table_rows in rows.items():
                self.insert_rows(table, table_rows, con)
            for path, mtime in touch:
                con.execute("UPDATE files SET mtime = ? WHERE path = ?", [mtime, path])
            self.insert_rows("run_changes", changes, con)

    def remove_files(self, run_id: int, paths: Sequence[str], rows: dict[str, list[tuple]] | None = None) -> None:
        """Drop ``paths``; ``rows`` (e.g. their ``changes``) are written in the same transaction."""
        self.replace_files(run_id, paths, rows or {}, [(run_id, p, "removed") for p in paths])

    def replace_findings(self, source: str, rows: Sequence[tuple]) -> None:
        """Replace all findings of one ``source`` (e.g. ``validate``) at once."""
        with self.transaction() as con:
            con.execute("DELETE FROM findings WHERE source = ?", [source])
            self.insert_rows("findings", rows, con)

    # -- reads ----------------------------------------------------------------------------------

    def history(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.query_dicts(
            """SELECT id, root, strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started_at,
                      strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished_at, status, files_seen,
                      added, changed, removed, unchanged, round(seconds, 3) AS seconds
               FROM runs ORDER BY id DESC LIMIT ?""",
            [limit],
        )

    def run_changes(self, run_id: int) -> list[dict[str, Any]]:
        return self.query_dicts("SELECT path, change FROM run_changes WHERE run_id = ? ORDER BY change, path", [run_id])

    def stats(self) -> dict[str, Any]:
        one = lambda sql: self.query(sql)[0][0]  # noqa: E731
        by_format = dict(self.query("SELECT format, count(*) FROM files GROUP BY 1 ORDER BY 2 DESC, 1"))
        by_status = dict(self.query("SELECT status, count(*) FROM files GROUP BY 1 ORDER BY 1"))
        by_rule = dict(self.query(f"SELECT rule, count(*) FROM {SHOWN_FINDINGS} GROUP BY 1 ORDER BY 2 DESC, 1"))
        by_sev = dict(self.query(f"SELECT severity, count(*) FROM {SHOWN_FINDINGS} GROUP BY 1 ORDER BY 1"))
        last = self.history(1)
        return {
            "db": str(self.db_dir),
            "root": self.get_meta("root"),
            "files": one("SELECT count(*) FROM files"),
            "bytes": one("SELECT coalesce(sum(size), 0) FROM files"),
            "records": one("SELECT count(*) FROM records"),
            "sections": one("SELECT count(*) FROM sections"),
            "chunks": one("SELECT count(*) FROM chunks"),
            "chunk_texts": one("SELECT count(DISTINCT text_sha) FROM chunks"),
            "chunk_texts_not_embedded": one("SELECT count(DISTINCT text_sha) FROM chunks WHERE NOT embed"),
            "findings": one(f"SELECT count(*) FROM {SHOWN_FINDINGS}"),
            "files_by_format": by_format,
            "files_by_status": by_status,
            "findings_by_rule": by_rule,
            "findings_by_severity": by_sev,
            "last_run": last[0] if last else None,
        }

    def file_row(self, path: str) -> dict[str, Any] | None:
        rows = self.query_dicts("SELECT * FROM files WHERE path = ?", [path])
        return rows[0] if rows else None

    def documents(self, paths: Sequence[str] | None = None) -> Iterator[tuple[str, int, Any]]:
        """(path, doc, data) for catalogued documents."""
        if paths is None:
            rows = self.query("SELECT path, doc, data FROM documents ORDER BY path, doc")
        else:
            rows = self.query(
                "SELECT path, doc, data FROM documents WHERE path IN (SELECT unnest(?)) ORDER BY path, doc",
                [list(paths)],
            )
        for path, doc, data in rows:
            yield path, doc, json.loads(data)
