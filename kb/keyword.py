"""The keyword index: BM25 over chunk texts with identifier-aware terms, stored with tantivy.

Why tantivy rather than bm25s: tantivy is an on-disk inverted index with real deletes and
segment merges, so an incremental ingest touches only the chunks that changed (bm25s keeps one
sparse matrix and must be rebuilt whole on every change); it memory-maps its segments instead of
loading the whole index into each process; it also stores the chunk rows, so a search needs no
catalogue round trip for snippets; and its query path is Rust (``bench/search_latency.py``
measures it; ``docs/performance.md``). Readers in other processes pick up a commit on ``reload()``.

Terms (see :func:`analyze`): every identifier is indexed whole *and* split into its parts, so
``DATABASE_URL`` yields ``database_url``, ``database``, ``url``; ``fraud.review_threshold`` yields
``fraud.review_threshold``, ``review_threshold``, ``fraud``, ``review``, ``threshold``;
``maxConnections`` yields ``maxconnections``, ``max``, ``connection``. Parts are lightly stemmed
(plural ``s``) and English stop words are dropped; whole identifiers are kept verbatim (lower
case), so an exact identifier is a rare, high-IDF term that outranks its parts.

The index lives in ``<db>/keyword/`` and is the only module importing tantivy (lazily, so the
analyzer is light enough for ingest workers). Beside the chunks, :class:`FileIndex` (in the
index's ``files/`` folder) holds one document per file, its path's words and the bodies of all its
chunks, for a file-level BM25 (:mod:`kb.search.fusion`).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "chunk_ordinal",
    "analyze",
    "query_terms",
    "identifier_parts",
    "STOPWORDS",
    "ChunkDoc",
    "KeywordIndex",
    "FileIndex",
    "FILES_DIR",
    "file_terms",
    "chunk_body_text",
    "open_keyword_index",
    "KEYWORD_DIR",
]

KEYWORD_DIR = "keyword"
FILES_DIR = "files"
"""The :class:`FileIndex` of a keyword index, a folder inside it."""
_SCHEMA_FIELDS = ("chunk_id", "path", "format", "key_path", "line_start", "line_end", "text_sha", "text", "body")

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "without",
        "and",
        "or",
        "not",
        "no",
        "nor",
        "where",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "when",
        "why",
        "does",
        "do",
        "did",
        "done",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "i",
        "you",
        "he",
        "she",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "here",
        "my",
        "our",
        "your",
        "me",
        "we",
        "us",
        "they",
        "them",
        "their",
        "as",
        "if",
        "then",
        "than",
        "so",
        "into",
        "onto",
        "about",
        "over",
        "under",
        "up",
        "down",
        "out",
        "off",
        "all",
        "any",
        "each",
        "every",
        "some",
        "such",
        "only",
        "own",
        "same",
        "too",
        "very",
        "just",
        "also",
        "s",
        "t",
        "d",
        "ll",
        "m",
        "re",
        "ve",
        "set",
        "defined",
        "define",
        "find",
        "get",
        "got",
        "please",
        "show",
        "tell",
    ]
)

# An identifier: word characters joined by . - / : (``services/api/prod.yaml``, ``a.b-c``).
_IDENT = re.compile(r"[\w$@]+(?:[.\-/:][\w$@]+)*")
_SEP = re.compile(r"[.\-/:]+")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+|[^\W\d_]+")
_CACHE: dict[str, tuple[str, ...]] = {}
_CACHE_MAX = 300_000


def _stem(word: str) -> str:
    """A very light plural stemmer, applied to parts on both the index and the query side."""
    n = len(word)
    if n > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if n > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def identifier_parts(token: str) -> list[str]:
    """Atomic lower-case parts of an identifier: ``fraudReview_threshold`` -> fraud, review, threshold."""
    parts: list[str] = []
    for segment in _SEP.split(token):
        for word in segment.split("_"):
            if word:
                parts.extend(p.lower() for p in _CAMEL.findall(word))
    return parts


def _expand(token: str) -> tuple[str, ...]:
    hit = _CACHE.get(token)
    if hit is not None:
        return hit
    low = token.lower()
    out: list[str] = []
    parts = identifier_parts(token)
    compound = len(parts) > 1 or (parts and parts[0] != low)
    if compound:
        out.append(low)
        # intermediate pieces: the segments of a dotted/slashed path (``review_threshold``)
        segments = [s for s in _SEP.split(low) if s]
        if len(segments) > 1:
            for seg in segments:
                if seg != low and ("_" in seg or not seg.isalnum()):
                    out.append(seg)
        for p in parts:
            if p not in STOPWORDS:
                out.append(_stem(p))
    elif low not in STOPWORDS:
        out.append(_stem(low))
    result = tuple(out)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[token] = result
    return result


def analyze(text: str) -> list[str]:
    """Index terms for a text, in order (an identifier's whole form first, then its parts)."""
    out: list[str] = []
    for token in _IDENT.findall(text):
        token = token.strip("_")
        if token:
            out.extend(_expand(token))
    return out


def query_terms(query: str) -> list[str]:
    """Distinct terms of a query, in order of first appearance."""
    seen: dict[str, None] = {}
    for t in analyze(query):
        seen.setdefault(t, None)
    return list(seen)


@dataclass(slots=True)
class ChunkDoc:
    """A chunk as stored in the keyword index (and returned by it)."""

    chunk_id: str
    path: str
    format: str
    key_path: str
    line_start: int
    line_end: int
    text: str
    text_sha: str = ""


class _TantivyIndex:
    """A tantivy index under ``directory`` (created when missing): the writer's side shared by
    :class:`KeywordIndex` and :class:`FileIndex`. Writes are queued (:meth:`clear`,
    :meth:`delete_paths`, the subclass's ``add``) and made durable and visible by :meth:`commit`."""

    WRITER_BYTES = 64_000_000

    def __init__(self, directory: Path | str, *, create: bool = True) -> None:
        import tantivy

        self._t = tantivy
        self.directory = Path(directory)
        self.schema = self._schema()
        self.created = False
        if not (self.directory / "meta.json").is_file():
            if not create:
                raise FileNotFoundError(str(self.directory))
            self.directory.mkdir(parents=True, exist_ok=True)
            self.created = True
        self.index = tantivy.Index(self.schema, path=str(self.directory), reuse=True)
        self._writer: Any = None
        self._lock = threading.RLock()

    def _schema(self) -> Any:
        raise NotImplementedError

    def _w(self) -> Any:
        if self._writer is None:
            self._writer = self.index.writer(self.WRITER_BYTES, 1)
        return self._writer

    def clear(self) -> None:
        with self._lock:
            self._w().delete_all_documents()

    def _delete_by(self, field: str, values: Iterable[str]) -> int:
        n = 0
        with self._lock:
            w = self._w()
            for v in values:
                w.delete_documents_by_term(field, v)
                n += 1
        return n

    def delete_paths(self, paths: Iterable[str]) -> int:
        """Queue the deletion of every document of these files."""
        return self._delete_by("path", paths)

    def commit(self) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()
                self._writer.wait_merging_threads()
                self._writer = None
            self.index.reload()

    def rollback(self) -> None:
        with self._lock:
            if self._writer is not None:
                try:
                    self._writer.rollback()
                finally:
                    self._writer = None

    def close(self) -> None:
        """Drop the writer (releasing tantivy's lock) without committing."""
        self.rollback()

    def reload(self) -> None:
        self.index.reload()

    def count(self) -> int:
        return int(self.index.searcher().num_docs)

    def _ranked(self, query: Any, limit: int) -> tuple[Any, list[tuple[float, Any]]]:
        """(searcher, hits) for ``query``: past the ``limit``-th hit, every hit tied with it too
        (tantivy breaks ties by document address, which depends on the order documents were added
        and on segment merges; the caller breaks them by a stored field, so the same tree always
        gives the same answers)."""
        searcher = self.index.searcher()
        ranked = searcher.search(query, limit * 2 + 32, count=False).hits
        if len(ranked) > limit:
            cut = ranked[limit - 1][0]
            ranked = [h for h in ranked if h[0] >= cut]
        return searcher, ranked


class KeywordIndex(_TantivyIndex):
    """A tantivy index of chunks under ``directory`` (created when missing).

    Writes: :meth:`delete` and :meth:`add` queue changes, :meth:`commit` makes them durable and
    visible. Reads: :meth:`search` (BM25 over terms) and :meth:`fetch` (rows by chunk id).
    """

    def __init__(self, directory: Path | str, *, create: bool = True) -> None:
        super().__init__(directory, create=create)
        self._files: FileIndex | None = None

    def files(self, *, create: bool = False) -> FileIndex | None:
        """The :class:`FileIndex` beside these chunks (None when it was never built and ``create``
        is false: a KB from before it existed, until its next ingest)."""
        with self._lock:
            if self._files is None:
                try:
                    self._files = FileIndex(self.directory / FILES_DIR, create=create)
                except ValueError:  # another schema (an older kb's): rebuilt by the writer
                    if not create:
                        return None
                    shutil.rmtree(self.directory / FILES_DIR, ignore_errors=True)
                    self._files = FileIndex(self.directory / FILES_DIR, create=True)
                except (FileNotFoundError, OSError):
                    return None
            return self._files

    def _schema(self) -> Any:
        t = self._t
        sb = t.SchemaBuilder()
        sb.add_text_field("chunk_id", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("path", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("format", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_bytes_field("key_path", stored=True)
        sb.add_integer_field("line_start", stored=True)
        sb.add_integer_field("line_end", stored=True)
        sb.add_bytes_field("text_sha", stored=True)
        sb.add_bytes_field("text", stored=True)
        sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        return sb.build()

    # -- writes ---------------------------------------------------------------------------------

    def delete(self, chunk_ids: Iterable[str]) -> int:
        """Queue the deletion of these chunks."""
        return self._delete_by("chunk_id", chunk_ids)

    def add(self, docs: Iterable[ChunkDoc]) -> int:
        t = self._t
        n = 0
        with self._lock:
            w = self._w()
            for d in docs:
                w.add_document(
                    t.Document(
                        chunk_id=d.chunk_id,
                        path=d.path,
                        format=d.format or "",
                        key_path=(d.key_path or "").encode("utf-8"),
                        line_start=int(d.line_start),
                        line_end=int(d.line_end),
                        text_sha=(d.text_sha or "").encode("ascii"),
                        text=d.text.encode("utf-8"),
                        body=" ".join(analyze(d.text)),
                    )
                )
                n += 1
        return n

    def rollback(self) -> None:
        with self._lock:
            if self._files is not None:
                self._files.rollback()
            super().rollback()

    # -- reads ----------------------------------------------------------------------------------

    def search(
        self,
        terms: Sequence[str],
        limit: int,
        *,
        format: str | None = None,
        paths: Sequence[str] | None = None,
        boosts: Mapping[str, float] | None = None,
    ) -> list[tuple[float, ChunkDoc]]:
        """BM25 top ``limit`` for any of ``terms`` (already analysed), with optional filters;
        ``boosts``: a weight for some terms (1 for the others)."""
        if not terms or limit <= 0:
            return []
        t = self._t
        q = t.Query
        should = []
        for term in terms:
            tq = q.term_query(self.schema, "body", term)
            if boosts and boosts.get(term, 1.0) != 1.0:
                tq = q.boost_query(tq, float(boosts[term]))
            should.append((t.Occur.Should, tq))
        query = q.boolean_query(should)
        musts = []
        if format:
            musts.append((t.Occur.Must, q.term_query(self.schema, "format", format)))
        if paths is not None:
            if not paths:
                return []
            musts.append((t.Occur.Must, q.term_set_query(self.schema, "path", list(paths))))
        if musts:
            query = q.boolean_query([(t.Occur.Must, query), *musts])
        searcher, ranked = self._ranked(query, limit)  # ties broken by chunk id below
        hits = [(float(score), self._doc(searcher.doc(addr))) for score, addr in ranked]
        hits.sort(key=lambda h: (-h[0], h[1].chunk_id))
        return hits[:limit]

    def chunk_counts(self, paths: Sequence[str]) -> dict[str, int]:
        """Chunks of each file of ``paths`` (0 for a file with none), counted in the index."""
        t = self._t
        searcher = self.index.searcher()
        out: dict[str, int] = {}
        for p in paths:  # a search's count skips deleted documents (``doc_freq`` does not)
            found = searcher.search(t.Query.term_query(self.schema, "path", p), 1, count=True)
            out[p] = int(found.count)  # type: ignore[attr-defined]  # in tantivy 0.27, missing from its stub
        return out

    def fetch(self, chunk_ids: Sequence[str]) -> dict[str, ChunkDoc]:
        """Stored rows of the given chunks (missing ids are absent from the answer)."""
        if not chunk_ids:
            return {}
        t = self._t
        searcher = self.index.searcher()
        query = t.Query.term_set_query(self.schema, "chunk_id", list(chunk_ids))
        result = searcher.search(query, len(chunk_ids), count=False)
        out: dict[str, ChunkDoc] = {}
        for _, addr in result.hits:
            doc = self._doc(searcher.doc(addr))
            out[doc.chunk_id] = doc
        return out

    @staticmethod
    def _doc(doc: Any) -> ChunkDoc:
        d = doc.to_dict()

        def one(name: str, default: Any = "") -> Any:
            v = d.get(name)
            return v[0] if v else default

        def text(name: str) -> str:
            v = one(name, b"")
            return bytes(v).decode("utf-8") if not isinstance(v, str) else v

        return ChunkDoc(
            chunk_id=one("chunk_id"),
            path=one("path"),
            format=one("format"),
            key_path=text("key_path"),
            line_start=int(one("line_start", 0)),
            line_end=int(one("line_end", 0)),
            text=text("text"),
            text_sha=text("text_sha"),
        )


def chunk_ordinal(doc: ChunkDoc) -> int | None:
    """The chunk's place in its file: chunk ids are ``path#ordinal``."""
    ordinal = doc.chunk_id.rpartition("#")[2]
    return int(ordinal) if ordinal.isdigit() else None


def chunk_body_text(text: str) -> str:
    """A chunk's text without its context line (the first line, which every chunk of a file repeats:
    its path, format, key path and what it or its folder says it is)."""
    return text.split("\n", 1)[1] if "\n" in text else text


def file_terms(path: str, bodies: Iterable[str]) -> str:
    """A file's document in the :class:`FileIndex`: the words of its path and its chunks' bodies
    (each chunk's text less its first line, the context line every chunk of the file repeats)."""
    parts = [" ".join(analyze(path.replace("/", " ")))]
    for text in bodies:
        if "\n" in text:  # a text of its context line alone adds nothing
            parts.append(" ".join(analyze(chunk_body_text(text))))
    return " ".join(p for p in parts if p)


class FileIndex(_TantivyIndex):
    """One document per file (:func:`file_terms`) in a tantivy index under ``directory``: BM25 over
    whole files, where a question's words may each match a different chunk of the right file.

    Writes as :class:`KeywordIndex` (:meth:`delete_paths`, :meth:`add`, :meth:`commit`); reads:
    :meth:`search`, the best files for a query's terms with their scores."""

    WRITER_BYTES = 32_000_000

    def _schema(self) -> Any:
        sb = self._t.SchemaBuilder()
        sb.add_text_field("path", stored=True, tokenizer_name="raw", index_option="basic")
        sb.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="freq")
        return sb.build()

    def add(self, path: str, terms: str) -> None:
        """Queue the document of one file (``terms`` from :func:`file_terms`)."""
        with self._lock:
            self._w().add_document(self._t.Document(path=path, body=terms))

    def search(self, terms: Sequence[str], limit: int, paths: Sequence[str] | None = None) -> dict[str, float]:
        """The ``limit`` best files for any of ``terms`` (analysed), path -> BM25 score; among
        ``paths`` only when given (a search's path filter)."""
        if not terms or limit <= 0 or (paths is not None and not paths):
            return {}
        t = self._t
        q = t.Query
        query = q.boolean_query([(t.Occur.Should, q.term_query(self.schema, "body", term)) for term in terms])
        if paths is not None:
            query = q.boolean_query(
                [(t.Occur.Must, query), (t.Occur.Must, q.term_set_query(self.schema, "path", list(paths)))]
            )
        searcher, ranked = self._ranked(query, limit)  # ties broken by path below
        found = [(float(score), searcher.doc(addr).to_dict().get("path") or [""]) for score, addr in ranked]
        found.sort(key=lambda h: (-h[0], h[1][0]))
        return {path[0]: score for score, path in found[:limit] if path[0]}


def open_keyword_index(db: Path | str, *, create: bool = True) -> KeywordIndex:
    """The index under ``<db>/keyword``; an index with another schema is wiped and recreated."""
    directory = Path(db) / KEYWORD_DIR
    try:
        return KeywordIndex(directory, create=create)
    except ValueError:
        if not create:
            raise
        shutil.rmtree(directory, ignore_errors=True)
        return KeywordIndex(directory, create=True)
