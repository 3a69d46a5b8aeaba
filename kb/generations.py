"""Generations: one writer, many readers, in any number of processes, without a lock error.

A KB directory holds a sequence of *published generations*. ``HEAD.json`` names the current one:
the catalogue file, the keyword-index folder and, per vector segment, how many rows it covers::

    .kb/HEAD.json                  {"number": 7, "catalogue": "catalogue-000006.duckdb", "keyword": "000006",
                                    "vectors": {"seg-000001": 91520}, "embeddable": 93643, ...}
    .kb/catalogue-000006.duckdb    the catalogue of generation 6 (DuckDB; read-only once published)
    .kb/catalogue-000006.chunks.npz  its embeddable chunks, compactly (for the vector search)
    .kb/keyword/000006/            its keyword index (tantivy)
    .kb/vectors/seg-000001.f32     append-only vectors (+ .sha), shared by every generation
    .kb/chroma/                    Chroma, the vectors' durable copy
    .kb/writer.lock                locked (lockf) by the one writer

**Readers** (:class:`Reader`) open the files HEAD names, read-only, and never write anything: DuckDB
allows any number of read-only opens of a file nobody writes, tantivy segments are immutable, and
vector rows past a generation's count are ignored. Before each use a reader looks at HEAD (one
``stat``) and moves to a newer generation as soon as one is published.

**The writer** (:class:`WriteSession`, entered through :func:`write_session`) takes
``writer.lock``, copies the current catalogue to a new file (a reflink where the filesystem can,
else a full copy: extra disk during an update is at most one catalogue), links the keyword index
into a new folder (hard links: tantivy never rewrites a file), changes the copies, and publishes
them by replacing HEAD (write to a temporary file, ``fsync``, ``rename``). Vectors are appended
to the segments and published by HEAD updates that only raise the row counts, so a long embedding
is searchable as it goes. Readers therefore never block the writer and the writer never blocks a
reader; a second writer waits for the lock (saying so) up to ``write_timeout`` seconds, then gives
up with a clear error.

A writer killed at any moment leaves HEAD as it was (the last published generation) plus files
no generation names; the next writer removes those, and adopts whole vector rows appended after
the last publish, so embedding resumes where it stopped. Files of superseded generations are
removed once a newer one is published (a reader that still has them open keeps reading them:
POSIX keeps unlinked open files; one that was about to open them re-reads HEAD).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import (
    ConfigError,
    DamagedKBError,
    DiskFullError,
    KBError,
    NotIndexedError,
    WriterBusyError,
    ingest_command,
    no_kb,
)
from kb.formats import plugin_traits

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.keyword import KeywordIndex
    from kb.vectors import VectorView

__all__ = [
    "Generation",
    "Reader",
    "Snapshot",
    "WriteSession",
    "write_session",
    "read_head",
    "HEAD_FILE",
    "FileCheck",
    "check_files",
    "disk_full",
    "full_disk_error",
    "LOCK_FILE",
    "LAYOUT_VERSION",
]

HEAD_FILE = "HEAD.json"
LOCK_FILE = "writer.lock"
HOLDER_FILE = "writer.json"
KEYWORD_DIR = "keyword"
LAYOUT_VERSION = 2
_LEGACY_CATALOGUE = "catalogue.duckdb"


@dataclass(frozen=True)
class Generation:
    """One published state of the KB (the content of ``HEAD.json``)."""

    number: int
    catalogue: str
    keyword: str | None = None
    vectors: dict[str, int] = field(default_factory=dict)
    dim: int | None = None
    embedder: dict[str, Any] | None = None
    embeddable: int = 0
    """Distinct chunk texts the generation wants vectors for (texts the skip rules keep)."""
    embedded: int = 0
    """How many of those have a vector in the rows this generation covers."""
    published_at: float = 0.0
    kb_id: str | None = None
    """This KB's id (names its Chroma collection on a server)."""
    layout: int = LAYOUT_VERSION
    formats: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The traits of the formats its parsers declared beyond kb's built-in ones
    (:func:`kb.formats.plugin_traits`): a search declares them without loading a parser."""

    @property
    def vector_rows(self) -> int:
        return sum(self.vectors.values())

    @property
    def embedded_share(self) -> float:
        return 1.0 if not self.embeddable else round(self.embedded / self.embeddable, 4)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read_head(db: Path | str) -> Generation | None:
    """The current generation of the KB at ``db``, or None when nothing was published yet."""
    path = Path(db) / HEAD_FILE
    try:
        raw = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DamagedKBError(_damaged(path, "it is not UTF-8 text")) from exc
    except FileNotFoundError:
        if (Path(db) / _LEGACY_CATALOGUE).exists():
            # A single-catalogue KB (an older kb, or a stand-alone Catalogue): generation 0. Its
            # keyword index is kept; its vectors are not (the next `kb ingest` embeds again).
            keyword = "." if (Path(db) / KEYWORD_DIR / "meta.json").is_file() else None
            return Generation(number=0, catalogue=_LEGACY_CATALOGUE, keyword=keyword, layout=1)
        return None
    except OSError as exc:
        raise NotIndexedError(f"Cannot read '{path}': {exc.strerror}.") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DamagedKBError(_damaged(path, f"it is not JSON: {exc}")) from exc
    why = _head_problem(data)
    if why:
        raise DamagedKBError(_damaged(path, why))
    known = Generation.__dataclass_fields__
    return Generation(**{k: v for k, v in data.items() if k in known})


def _damaged(path: Path, why: str) -> str:
    return (
        f"'{path}' is damaged ({why}). Run `kb doctor --db {path.parent}` to see what else is, then rebuild: "
        f"`kb ingest PATH --db NEW_DIR`."
    )


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _head_problem(data: Any) -> str | None:
    """Why a parsed HEAD.json cannot be a generation (None: it can)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if not _is_int(data.get("number")) or data["number"] < 0:
        return "'number' is not a whole number"
    cat = data.get("catalogue")
    if not isinstance(cat, str) or not cat or "/" in cat or cat.startswith("."):
        return "'catalogue' is not a file name"
    kw = data.get("keyword")
    if kw is not None and (not isinstance(kw, str) or "/" in kw):
        return "'keyword' is not a folder name"
    vec = data.get("vectors", {})
    if not isinstance(vec, dict) or not all(
        isinstance(k, str) and "/" not in k and _is_int(v) and v >= 0 for k, v in vec.items()
    ):
        return "'vectors' is not a map of segment names to row counts"
    dim = data.get("dim")
    if dim is not None and (not _is_int(dim) or dim < 1):
        return "'dim' is not a positive whole number"
    for key in ("embeddable", "embedded", "layout"):
        if key in data and not _is_int(data[key]):
            return f"'{key}' is not a whole number"
    if "embedder" in data and data["embedder"] is not None and not isinstance(data["embedder"], dict):
        return "'embedder' is not an object"
    saved = data.get("formats", {})
    if not isinstance(saved, dict) or not all(isinstance(v, dict) for v in saved.values()):
        return "'formats' is not a map of format names to traits"
    return None


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_FULL_TEXTS = ("no space left on device", "disk quota exceeded", "file too large", "disk is full")


def disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the disk is full or a file-size limit was hit —
    from the OS, DuckDB, tantivy or Chroma, which each word it their own way."""
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, OSError) and e.errno in _FULL_ERRNOS:
            return True
        if any(t in str(e).lower() for t in _FULL_TEXTS):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def full_disk_error(db: Path, exc: BaseException) -> DiskFullError:
    return DiskFullError(
        f"The disk holding '{db}' is full (or a file-size limit was hit) while writing the KB; nothing of this "
        "run was published, the KB answers as before. Free space (an update needs about the catalogue's size "
        "again) and run the command again: it resumes."
    )


def _write_head(db: Path, gen: Generation) -> None:
    tmp = db / f".{HEAD_FILE}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(gen.to_json(), fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, db / HEAD_FILE)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):
        fd = os.open(db, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _head_signature(db: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(db / HEAD_FILE)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# ---------------------------------------------------------------------------------------------
# Copying
# ---------------------------------------------------------------------------------------------

_FICLONE = 0x40049409


def copy_file(src: Path, dst: Path) -> None:
    """``src`` to ``dst``: a reflink (copy-on-write clone) where the filesystem supports it,
    else an in-kernel copy."""
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            return
        except OSError:
            pass
        shutil.copyfileobj(fin, fout, 16 * 1024 * 1024) if not hasattr(os, "copy_file_range") else _copy_range(
            fin, fout
        )


def _copy_range(fin: Any, fout: Any) -> None:
    size = os.fstat(fin.fileno()).st_size
    done = 0
    try:
        while done < size:
            n = os.copy_file_range(fin.fileno(), fout.fileno(), size - done)
            if n == 0:
                break
            done += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        fin.seek(done)
        fout.seek(done)
        shutil.copyfileobj(fin, fout, 16 * 1024 * 1024)


def link_file(src: Path | str, dst: Path) -> None:
    """``dst`` as a hard link to ``src``, or a :func:`copy_file` where links are refused
    (another filesystem); FileNotFoundError when ``src`` is gone (from the copy's open)."""
    try:
        os.link(src, dst)
    except OSError:
        copy_file(Path(src), dst)


def link_tree(src: Path, dst: Path) -> None:
    """``dst`` as a folder of hard links to ``src``'s files (tantivy never rewrites a file), and its
    file index (``files/``) linked the same way. No other folder: in a KB of the first layout the
    index is ``keyword/`` itself, and ``dst`` (``keyword/000001``) lies inside it."""
    from kb.keyword import FILES_DIR

    dst.mkdir(parents=True)
    for entry in os.scandir(src):
        if entry.name.startswith(".tantivy-") or entry.name.endswith(".lock"):
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name == FILES_DIR:
                link_tree(Path(entry.path), dst / entry.name)
        elif entry.is_file():
            link_file(entry.path, dst / entry.name)


# ---------------------------------------------------------------------------------------------
# The writer
# ---------------------------------------------------------------------------------------------


class _WriterLock:
    """``writer.lock`` held with a POSIX record lock (``lockf``): released by the kernel when the
    process dies, and not inherited by the worker processes an ingest forks (an ``flock`` would be,
    and a killed writer's orphaned workers would keep the KB locked)."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.fd: int | None = None

    def holder(self) -> str:
        try:
            info = json.loads((self.db / HOLDER_FILE).read_text(encoding="utf-8"))
            since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since", 0))))
            return f"pid {info.get('pid')} ({info.get('what', 'a writer')}, since {since})"
        except (OSError, ValueError, TypeError):
            return "another process"

    def acquire(self, what: str, timeout: float, notify: Callable[[str], None] | None) -> None:
        self.db.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.db / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, timeout)
        told = False
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    holder = self.holder()
                    os.close(fd)
                    raise WriterBusyError(
                        f"Another writer holds the KB at '{self.db}': {holder}. Wait for it to finish, "
                        f"or raise write_timeout (KB_WRITE_TIMEOUT, now {timeout:g} s) to wait longer."
                    ) from None
                if not told and notify is not None:
                    notify(
                        f"Waiting for {self.holder()} to finish writing '{self.db}' "
                        f"(up to {timeout:g} s; KB_WRITE_TIMEOUT)..."
                    )
                    told = True
                time.sleep(0.2)
        self.fd = fd
        info = {"pid": os.getpid(), "what": what, "since": time.time()}
        with contextlib.suppress(OSError):
            (self.db / HOLDER_FILE).write_text(json.dumps(info), encoding="utf-8")

    def release(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                (self.db / HOLDER_FILE).unlink()
            with contextlib.suppress(OSError):
                fcntl.lockf(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


_PROCESS_WRITERS: dict[str, threading.Lock] = {}
_PROCESS_WRITERS_LOCK = threading.Lock()


def _thread_gate(db: Path) -> threading.Lock:
    """A process's record lock does not exclude its own threads: this does."""
    key = str(db.resolve())
    with _PROCESS_WRITERS_LOCK:
        return _PROCESS_WRITERS.setdefault(key, threading.Lock())


class WriteSession:
    """The writer's side of one update: a private copy of the catalogue and keyword index.

    Created by :func:`write_session`. ``catalogue`` is the writable copy (opened on first use);
    :meth:`keyword_index` the writable copy of the keyword index; :meth:`publish` makes both the
    current generation; :meth:`publish_vectors` publishes vector rows appended since.
    """

    def __init__(self, db: Path, base: Generation | None) -> None:
        self.db = db
        self.base = base
        self.number = (base.number if base else 0) + 1
        self.catalogue_name = f"catalogue-{self.number:06d}.duckdb"
        self.keyword_name = f"{self.number:06d}"
        self.head = base
        self._catalogue: Catalogue | None = None
        self._keyword: KeywordIndex | None = None
        self.published = False
        self.interrupted_before = False
        """True when a writer before this one died without publishing (its files were removed)."""
        self._tmp = self.db / f"{self.catalogue_name}.tmp"

    # -- the private copies ---------------------------------------------------------------------

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            from kb.catalogue import Catalogue

            if not self._tmp.exists() and self.base is not None:
                copy_file(self.db / self.base.catalogue, self._tmp)
            self._catalogue = Catalogue(self._tmp, read_only=False)
        return self._catalogue

    def keyword_dir(self) -> Path:
        return self.db / KEYWORD_DIR / self.keyword_name

    def keyword_index(self) -> KeywordIndex:
        if self._keyword is None:
            from kb.keyword import KeywordIndex

            target = self.keyword_dir()
            if not target.exists():
                src = self.db / KEYWORD_DIR / self.base.keyword if self.base and self.base.keyword else None
                if src is not None and src.is_dir():
                    link_tree(src, target)
            self._keyword = KeywordIndex(target, create=True)
        return self._keyword

    @property
    def changed(self) -> bool:
        return self._catalogue is not None or self._keyword is not None

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, **fields: Any) -> Generation:
        """Make the private copies the current generation (plus ``fields`` such as vector rows)."""
        if self._keyword is not None:
            self._keyword.close()
            self._keyword = None
        if self._catalogue is not None:
            from kb.index import chunk_map_path, write_chunk_map

            target = chunk_map_path(self.db, self.catalogue_name)
            source = chunk_map_path(self.db, self.base.catalogue) if self.base else None
            # a write that left every file's rows alone (a no-change ingest, validate, report)
            # shares the base generation's chunk map
            if self._catalogue.files_written or source is None or not _link_or_copy(source, target):
                write_chunk_map(self._catalogue, target)
            self._catalogue.checkpoint_and_close()
            self._catalogue = None
        catalogue = self.base.catalogue if self.base else None
        if self._tmp.exists():
            os.replace(self._tmp, self.db / self.catalogue_name)
            catalogue = self.catalogue_name
        if catalogue is None:
            raise NotIndexedError(f"Nothing to publish in '{self.db}': no catalogue was written.")
        keyword = self.keyword_name if self.keyword_dir().exists() else (self.base.keyword if self.base else None)
        prev = self.head
        gen = Generation(
            number=(prev.number + 1) if prev else self.number,
            catalogue=catalogue,
            keyword=keyword,
            vectors=dict(prev.vectors) if prev else {},
            dim=prev.dim if prev else None,
            embedder=prev.embedder if prev else None,
            embeddable=prev.embeddable if prev else 0,
            embedded=prev.embedded if prev else 0,
            published_at=time.time(),
            kb_id=prev.kb_id if prev else None,
            formats={**(prev.formats if prev else {}), **plugin_traits()},
        )
        gen = replace(gen, **fields)
        _write_head(self.db, gen)
        self.head = gen
        self.published = True
        self._collect()
        return gen

    def publish_vectors(self, **fields: Any) -> Generation:
        """Publish a new generation that differs from the current one only by ``fields``
        (vector rows, embedded counts): no catalogue or keyword change."""
        if self.head is None:
            raise NotIndexedError("publish the catalogue before its vectors")
        gen = replace(self.head, number=self.head.number + 1, published_at=time.time(), **fields)
        _write_head(self.db, gen)
        self.head = gen
        return gen

    def _collect(self) -> None:
        """Remove files that neither the current nor the previous generation names."""
        keep_cat = {self.head.catalogue if self.head else None, self.base.catalogue if self.base else None}
        keep_kw = {self.head.keyword if self.head else None, self.base.keyword if self.base else None}
        legacy = self.db / _LEGACY_CATALOGUE
        if _LEGACY_CATALOGUE not in keep_cat and legacy.exists():
            for p in (legacy, legacy.with_name(legacy.name + ".wal")):
                with contextlib.suppress(OSError):
                    p.unlink()
            if "." not in keep_kw and (self.db / KEYWORD_DIR).is_dir():
                for p in (self.db / KEYWORD_DIR).iterdir():
                    if p.is_file():
                        with contextlib.suppress(OSError):
                            p.unlink()
        for p in [*self.db.glob("catalogue-*.duckdb*"), *self.db.glob("catalogue-*.chunks.npz")]:
            name = p.name.replace(".chunks.npz", ".duckdb")
            if name.endswith(".wal"):
                name = name[:-4]
            if name not in keep_cat and not (self._catalogue is not None and p.name.startswith(self._tmp.name)):
                with contextlib.suppress(OSError):
                    p.unlink()
        kw_root = self.db / KEYWORD_DIR
        if kw_root.is_dir():
            for p in kw_root.iterdir():
                if p.is_dir() and p.name.isdigit() and p.name not in keep_kw:
                    shutil.rmtree(p, ignore_errors=True)

    def abandon(self) -> None:
        """Drop the private copies (an error or an interrupt before :meth:`publish`)."""
        if self._keyword is not None:
            with contextlib.suppress(Exception):
                self._keyword.rollback()
                self._keyword.close()
            self._keyword = None
        if self._catalogue is not None:
            with contextlib.suppress(Exception):
                self._catalogue.close()
            self._catalogue = None
        for p in (self._tmp, self._tmp.with_name(self._tmp.name + ".wal")):
            with contextlib.suppress(OSError):
                p.unlink()
        if not self.published:
            shutil.rmtree(self.keyword_dir(), ignore_errors=True)


def _remove_leftovers(db: Path, head: Generation | None) -> bool:
    """Files of a writer that died before publishing; True when some were found."""
    found = False
    for p in [*db.glob("catalogue-*.duckdb.tmp*"), *db.glob("catalogue-*.chunks.npz.*.tmp.npz")]:
        found = True
        with contextlib.suppress(OSError):
            p.unlink()
    for p in db.glob(f".{HEAD_FILE}.*.tmp"):
        with contextlib.suppress(OSError):
            p.unlink()
    kw_root = db / KEYWORD_DIR
    if kw_root.is_dir() and head is not None:
        for p in kw_root.iterdir():
            if p.is_dir() and p.name != head.keyword and p.name.isdigit() and int(p.name) > head.number:
                shutil.rmtree(p, ignore_errors=True)
                found = True
    return found


@contextlib.contextmanager
def write_session(
    db: Path | str, *, what: str = "kb", timeout: float = 600.0, notify: Callable[[str], None] | None = None
) -> Iterator[WriteSession]:
    """Hold the writer role of the KB at ``db`` for the block (see the module docstring).

    An exception in the block abandons what was not published yet. ``notify`` hears a message when
    the session has to wait for another writer.
    """
    db = Path(db)
    if db.exists() and not db.is_dir():
        raise ConfigError(f"'{db}' is a file, not a KB directory: pass a folder with --db (it is created if missing).")
    try:
        db.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the KB directory '{db}': {exc.strerror}. Pass a writable folder with --db."
        ) from exc
    if not os.access(db, os.W_OK):
        raise ConfigError(f"The KB directory '{db}' is not writable. Pass a writable folder with --db.")
    gate = _thread_gate(db)
    deadline = time.monotonic() + max(0.0, timeout)
    if not gate.acquire(timeout=max(0.0, timeout)):
        raise WriterBusyError(f"Another thread of this process is writing '{db}'; it did not finish in {timeout:g} s.")
    lock = _WriterLock(db)
    try:
        lock.acquire(what, max(0.0, deadline - time.monotonic()), notify)
        try:
            head = read_head(db)
            session = WriteSession(db, head)
            session.interrupted_before = _remove_leftovers(db, head)
            try:
                yield session
            except Exception as exc:
                if disk_full(exc) and not isinstance(exc, DiskFullError):
                    raise full_disk_error(db, exc) from exc
                raise
            finally:
                session.abandon()
        finally:
            lock.release()
    finally:
        gate.release()


# ---------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------


class _Files:
    """The catalogue and keyword index of one catalogue file, shared by the snapshots that name it
    (a generation that only adds vectors reuses its predecessor's open handles)."""

    def __init__(self, db: Path, gen: Generation) -> None:
        self.db = db
        self.catalogue_name = gen.catalogue
        self.keyword_name = gen.keyword
        self._catalogue: Catalogue | None = None
        self._keyword: KeywordIndex | None = None
        self._lock = threading.Lock()
        self.refs = 0

    def same(self, gen: Generation) -> bool:
        return gen.catalogue == self.catalogue_name and gen.keyword == self.keyword_name

    def catalogue(self) -> Catalogue:
        with self._lock:
            if self._catalogue is None:
                from kb.catalogue import Catalogue

                # no reading or writing other files from SQL: `kb sql` and the API run user queries here
                self._catalogue = Catalogue(self.db / self.catalogue_name, read_only=True, external_access=False)
            return self._catalogue

    def keyword(self) -> KeywordIndex | None:
        with self._lock:
            if self._keyword is None and self.keyword_name:
                from kb.keyword import KeywordIndex

                try:
                    self._keyword = KeywordIndex(self.db / KEYWORD_DIR / self.keyword_name, create=False)
                except (FileNotFoundError, ValueError, OSError):
                    self._keyword = None
            return self._keyword

    def close(self) -> None:
        with self._lock:
            if self._catalogue is not None:
                with contextlib.suppress(Exception):
                    self._catalogue.close()
                self._catalogue = None
            self._keyword = None


class Snapshot:
    """One published generation opened for reading. Cheap to create; handles open on first use."""

    def __init__(self, db: Path, gen: Generation, files: _Files, *, keep_mapped: bool = True) -> None:
        self.db = db
        self.gen = gen
        self.files = files
        files.refs += 1
        self.keep_mapped = keep_mapped
        self._vectors: VectorView | None = None
        self._lock = threading.RLock()
        self.users = 0
        self.retired = False
        self.closed = False
        self.cache: dict[str, Any] = {}
        """Structures derived from this generation (the chunk → vector map), built once."""

    @property
    def catalogue(self) -> Catalogue:
        return self.files.catalogue()

    @property
    def keyword(self) -> KeywordIndex | None:
        return self.files.keyword()

    @property
    def vectors(self) -> VectorView | None:
        with self._lock:
            if self._vectors is None and self.gen.dim and self.gen.vectors:
                from kb.vectors import VECTORS_DIR, VectorView

                self._vectors = VectorView(
                    self.db / VECTORS_DIR, self.gen.dim, self.gen.vectors, keep_mapped=self.keep_mapped
                )
            return self._vectors

    def close(self) -> None:
        """Release this snapshot's hold (called with the reader's lock held)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._vectors is not None:
                self._vectors.close()
                self._vectors = None
        self.files.refs -= 1
        if self.files.refs <= 0:
            self.files.close()


class Reader:
    """A process's view of the KB at ``db``: the snapshot of the newest published generation.

    :meth:`snapshot` (a context manager) hands out the current snapshot and keeps it open while it
    is in use; a newer HEAD is noticed on the next call (one ``stat``), within ``max_lag`` seconds
    at worst when the filesystem's timestamps are coarse. ``keep_mapped=False`` suits one-shot
    processes (a search from the shell): vectors are read block by block instead of mapped.
    """

    def __init__(self, db: Path | str, *, keep_mapped: bool = True) -> None:
        self.db = Path(db)
        self.keep_mapped = keep_mapped
        self._lock = threading.Lock()
        self._current: Snapshot | None = None
        self._signature: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._released: collections.deque[tuple[Snapshot, tuple[Any, ...]]] = collections.deque()

    def generation(self) -> Generation | None:
        snap = self._refresh()
        return snap.gen if snap else None

    def _refresh(self) -> Snapshot | None:
        sig = _head_signature(self.db)
        with self._lock:
            cur = self._current
            if cur is not None and sig == self._signature:
                return cur
            gen = read_head(self.db)
            self._signature = sig
            if gen is None:
                return None
            if cur is not None and cur.gen.number == gen.number:
                return cur
            files = cur.files if cur is not None and cur.files.same(gen) else _Files(self.db, gen)
            snap = Snapshot(self.db, gen, files, keep_mapped=self.keep_mapped)
            self._current = snap
            if cur is not None:
                cur.retired = True
                if cur.users == 0:
                    cur.close()
            return snap

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """The newest published generation, held open for the block."""
        snap = self.hold()
        try:
            yield snap
        finally:
            self.release(snap)

    def hold(self) -> Snapshot:
        """The newest published generation, held open until :meth:`release` (or :meth:`release_later`)."""
        self._drain()
        for attempt in range(5):
            snap = self._refresh()
            if snap is None:
                if not self.db.exists():
                    raise no_kb(self.db)
                raise NotIndexedError(
                    f"The KB at '{self.db}' has nothing published yet. Run `{ingest_command(self.db)}` "
                    "(if one is running, wait for its catalogue phase to finish)."
                )
            with self._lock:
                snap.users += 1
            try:
                _ = snap.catalogue  # open now: a superseded file may just have been removed
            except NotIndexedError:
                with self._lock:
                    snap.users -= 1
                self._signature = None
                time.sleep(0.05 * (attempt + 1))
                continue
            return snap
        raise NotIndexedError(f"The KB at '{self.db}' kept changing while it was being opened; try again.")

    def release(self, snap: Snapshot) -> None:
        """Give back a snapshot from :meth:`hold`; a retired one closes with its last user."""
        with self._lock:
            snap.users -= 1
            if snap.retired and snap.users == 0:
                snap.close()

    def release_later(self, snap: Snapshot, *handles: Any) -> None:
        """:meth:`release` from a finalizer: queued (with ``handles`` to close, e.g. cursors) and
        done by the next call on this reader, never under a lock the collecting thread may hold."""
        self._released.append((snap, handles))

    def _drain(self) -> None:
        while self._released:
            try:
                snap, handles = self._released.popleft()
            except IndexError:
                return
            for h in handles:
                with contextlib.suppress(Exception):
                    h.close()
            self.release(snap)

    def close(self) -> None:
        self._drain()
        with self._lock:
            if self._current is not None:
                self._current.retired = True
                if self._current.users == 0:
                    self._current.close()
                self._current = None
            self._signature = None


def _link_or_copy(source: Path, target: Path) -> bool:
    """``target`` replaced by :func:`link_file` of ``source``; False when that fails (``source`` gone)."""
    try:
        target.unlink(missing_ok=True)
        link_file(source, target)
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Checking a KB's files (`kb doctor`)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileCheck:
    """One check of :func:`check_files`: what was looked at, whether it is sound, and what to do."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def check_files(db: Path | str) -> list[FileCheck]:
    """Check the files of the KB at ``db`` against its ``HEAD.json``, reading only (never raises).

    HEAD readable and well-formed; the catalogue it names present and opening; the keyword index
    folder present; each vector segment holding the rows HEAD counts; the Chroma copy present when
    there are vectors; files left by an interrupted writer (removed by the next writer).
    """
    db = Path(db)
    rebuild = f"rebuild it: `kb ingest PATH --db {db}.new`, then replace {db}"
    out: list[FileCheck] = []
    if not db.is_dir():
        return [FileCheck("KB directory", False, f"'{db}' is not a folder", f"run `kb ingest PATH --db {db}`")]
    try:
        head = read_head(db)
    except KBError as exc:
        return [FileCheck("HEAD.json", False, exc.message.split(" Run `kb doctor")[0], rebuild)]
    except OSError as exc:
        return [FileCheck("HEAD.json", False, f"cannot read it: {exc.strerror}", "check the folder's permissions")]
    if head is None:
        return [FileCheck("HEAD.json", False, "nothing published yet", f"run `kb ingest PATH --db {db}`")]
    out.append(FileCheck("HEAD.json", True, f"generation {head.number}, published"))
    cat_path = db / head.catalogue
    if not cat_path.is_file():
        out.append(FileCheck("catalogue", False, f"'{head.catalogue}' named by HEAD.json is missing", rebuild))
    else:
        try:
            from kb.catalogue import Catalogue

            with Catalogue(cat_path, read_only=True, external_access=False) as cat:
                files = cat.query("SELECT count(*) FROM files")[0][0]
            out.append(FileCheck("catalogue", True, f"{head.catalogue}: {files:,} files"))
        except Exception as exc:  # a damaged DuckDB file raises its own kinds
            why = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            out.append(FileCheck("catalogue", False, f"'{head.catalogue}' does not open: {why}", rebuild))
    if head.keyword is not None:
        kw = db / KEYWORD_DIR / (head.keyword if head.keyword != "." else "")
        ok = (kw / "meta.json").is_file()
        out.append(
            FileCheck(
                "keyword index",
                ok,
                f"{KEYWORD_DIR}/{head.keyword}" + ("" if ok else " named by HEAD.json is missing"),
                "" if ok else f"run `kb ingest PATH --db {db}` (the keyword index is rebuilt when missing)",
            )
        )
    if head.vectors:
        from kb.vectors import CHROMA_DIR, VECTORS_DIR, segment_rows

        for name, rows in sorted(head.vectors.items()):
            have = segment_rows(db / VECTORS_DIR, name, head.dim or 1) if head.dim else 0
            ok = have >= rows
            out.append(
                FileCheck(
                    f"vectors {name}",
                    ok,
                    f"{have:,} of the {rows:,} rows HEAD.json counts" + ("" if ok else " (cut short or missing)"),
                    "" if ok else rebuild,
                )
            )
        chroma = db / CHROMA_DIR
        ok = chroma.is_dir() and any(chroma.iterdir())
        out.append(
            FileCheck(
                "chroma",
                ok,
                "the Chroma copy is present" if ok else "the Chroma copy is missing (searches use the segments)",
                "" if ok else f"run `kb ingest PATH --db {db}`: it copies the vectors back from the segments",
            )
        )
    named = {head.catalogue, head.catalogue.replace(".duckdb", ".chunks.npz")}
    left = sorted(
        p.name
        for p in db.iterdir()
        if p.name.endswith(".tmp") or (p.name.startswith("catalogue-") and p.name not in named)
    )
    out.append(
        FileCheck(
            "leftovers",
            True,
            f"{len(left)} file(s) of an interrupted or older run ({', '.join(left[:3])}{'...' if len(left) > 3 else ''});"
            " the next `kb ingest` removes them"
            if left
            else "none",
        )
    )
    return out
