"""kb as a Model Context Protocol server: the tools an assistant calls, over stdio or streamable HTTP.

Built on the official ``mcp`` SDK (``MCPServer``; the only module that imports it). Two layers:

* :class:`KBTools` answers each tool with plain Python: it opens the KB through the
  :class:`~kb.knowledge.KnowledgeBase` façade for the length of one call (so ``kb ingest`` can run
  between calls: DuckDB lets only one process write), calls the library, and returns the HTTP API's
  envelope (:mod:`kb.api.mcp.schemas`) cut to the answer budget.
* :func:`create_server` registers each of those methods as an MCP tool, as it is declared: the
  method's annotated parameters (the HTTP API's limits, :mod:`kb.api.routes._params`) are the tool's
  input schema, its docstring the description an assistant reads, its return model the output
  schema; each call returns the envelope's compact text (``path:line`` first on every answer) and
  the envelope itself as structured content.

Bounds: every list is paged (``offset``/``limit``) and then cut to ``max_chars`` characters of JSON;
values, snippets and SQL cells longer than :data:`MAX_VALUE` characters are cut with a marker; an
answer that was cut says so (``truncated``, ``note`` with the offset to ask for next). Secrets are
redacted at ingest, and the tools read only the catalogue and the search index, never the files
on disk. ``sql`` runs on its own read-only connection with no access to other files, stopped after
``request_timeout`` seconds. Nothing writes unless the server was started with ``--allow-ingest``,
which adds the ``ingest`` tool.
"""

import contextlib
import functools
import inspect
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from kb.api.mcp.schemas import (
    DriftResult,
    DuplicatesResult,
    FileResult,
    FindingsResult,
    GraphResult,
    KeyMatches,
    SearchResult,
    SqlResult,
    ValidateResult,
)
from kb.api.routes._params import MAX_K, MAX_PAGE, MAX_QUERY
from kb.api.routes.files import catalogue_path
from kb.api.schemas import SearchMode, Stats
from kb.errors import BadRequestError, KBError, NotIndexedError
from kb.knowledge import KnowledgeBase
from kb.settings import Settings
from kb.types import SEVERITIES, DuplicateKind, GraphDirection, Hit, RunSummary, Severity

__all__ = ["KBTools", "create_server", "require_bearer", "MAX_CHARS", "MAX_VALUE", "MAX_MEMBERS", "TOOLS", "clip"]

log = logging.getLogger("kb.mcp")

MAX_CHARS = 20_000
"""Default budget of one answer, in characters of JSON (about 5,000 tokens); ``kb mcp --max-chars``."""
MAX_VALUE = 500
"""Longest value, SQL cell or finding message shown whole; longer ones are cut with a marker."""
MAX_SNIPPET = 1_500
"""Longest search snippet or duplicate suggestion shown whole."""
MAX_MEMBERS = 50
"""Most members shown per duplicate group, and keys per drift list."""

TOOLS = (
    "search",
    "show_file",
    "find_key",
    "validate",
    "findings",
    "duplicates",
    "drift",
    "impact",
    "dependencies",
    "sql",
)
"""The read-only tools; ``ingest`` joins them with ``--allow-ingest``."""


# ---------------------------------------------------------------------------------------------
# Bounding helpers
# ---------------------------------------------------------------------------------------------


def clip(text: Any, limit: int = MAX_VALUE) -> Any:
    """``text`` cut to ``limit`` characters with a marker saying how much was left out (non-strings as given)."""
    if not isinstance(text, str) or len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def _cell(value: Any) -> Any:
    """A SQL cell as a JSON scalar: numbers, booleans and NULL as they are, anything else as cut text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return clip(value)
    if isinstance(value, list | tuple | dict):
        return clip(json.dumps(value, ensure_ascii=False, default=str))
    return clip(str(value))


def _fit(items: Sequence[BaseModel], budget: int) -> int:
    """How many leading ``items`` fit in ``budget`` characters of JSON."""
    used = 0
    for i, item in enumerate(items):
        used += len(item.model_dump_json()) + 2
        if used > budget:
            return i
    return len(items)


def _page(items: list[Any], offset: int, limit: int, budget: int, what: str) -> tuple[list[Any], bool, str | None]:
    """``items[offset:offset+limit]`` cut to the budget; (shown, truncated, note)."""
    window = items[offset : offset + limit]
    n = _fit(window, budget)
    shown = window[:n]
    rest = len(items) - offset - n
    if rest <= 0:
        return shown, False, None
    if n < len(window):
        why = f"cut to {n} {what} to fit {budget:,} characters"
    else:
        why = f"limit {limit} reached"
    return shown, True, f"{why}; {rest} more: call again with offset={offset + n}, or narrow the filters"


def _rel(path: str) -> str:
    """A catalogue key from a tool's ``path`` argument; never a path outside the tree."""
    try:
        return catalogue_path(path.strip().removeprefix("./"))
    except NotIndexedError:
        raise NotIndexedError(
            f"{path!r} is not a path inside the tree: give it relative to the corpus root, "
            "without '..' (e.g. services/payments/config/base.yaml)."
        ) from None


# ---------------------------------------------------------------------------------------------
# The tools' parameters, declared once: the methods below use them, and create_server reads them
# ---------------------------------------------------------------------------------------------

PathArg = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1000,
        description=("A catalogued path relative to the corpus root, e.g. services/payments/config/production.yaml."),
    ),
]
PathFilter = Annotated[
    str | None,
    Field(
        default=None,
        max_length=1000,
        description=(
            "Only files at this path: a path relative to the corpus root, a folder, or a glob (services/*/config/*.yaml)."
        ),
    ),
]
Offset = Annotated[int, Field(ge=0, le=1_000_000_000, description="Rows to skip (from a previous answer's note).")]


def _limit(what: str, most: int = MAX_PAGE) -> Any:
    """The ``Field`` of a ``limit`` argument."""
    return Field(ge=1, le=most, description=f"Most {what} to return, 1 to {most}.")


RecordLimit = Annotated[int, _limit("records")]
FindingLimit = Annotated[int, _limit("findings")]
GroupLimit = Annotated[int, _limit("groups", 100)]
FileLimit = Annotated[int, _limit("files")]
RowLimit = Annotated[int, _limit("rows")]
SeverityArg = Annotated[Severity | None, Field(description="Only this severity.")]


# ---------------------------------------------------------------------------------------------
# The tools, as plain Python
# ---------------------------------------------------------------------------------------------


class KBTools:
    """The answers of the MCP tools over the KB ``settings.db`` (see the module docstring).

    Each public method of :data:`TOOLS` (and :meth:`ingest`) is a tool as declared: parameters,
    docstring and return model. Calls are serialised, each on the newest published generation.
    ``allow_ingest`` opens the KB writable and allows :meth:`ingest`.
    """

    def __init__(self, settings: Settings, *, allow_ingest: bool = False, max_chars: int = MAX_CHARS) -> None:
        self.settings = settings
        self.allow_ingest = allow_ingest
        self.max_chars = max_chars
        # One KnowledgeBase for the server's life: every call reads the newest published
        # generation, so `kb ingest` from another terminal is seen as soon as it publishes.
        self.kb = KnowledgeBase(settings, read_only=not allow_ingest)
        self.kb.notify = lambda msg: log.warning("%s", msg)
        self._lock = threading.Lock()

    def preflight(self) -> None:
        """Fail early, saying what to do, when there is no KB to serve."""
        s = self.settings
        if self.kb.generation() is None and not (self.allow_ingest and s.root is not None):
            raise NotIndexedError(
                f"No knowledge base at '{s.db}'. Build one with `kb ingest PATH --db {s.db}`, or start "
                f"`kb mcp --db {s.db} --root PATH --allow-ingest` and call the ingest tool."
            )

    def warm(self) -> None:
        """Load the query model, when the KB's vectors were made by it, so the first search does not wait."""
        try:
            self.kb.warm_up()
        except Exception:
            log.debug("warm-up failed", exc_info=True)

    @contextlib.contextmanager
    def session(self) -> Iterator[KnowledgeBase]:
        """The KB, for one call."""
        with self._lock:
            self.preflight()
            yield self.kb

    # -- search and lookups ---------------------------------------------------------------------

    def search(
        self,
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_QUERY,
                description=(
                    f"A question in plain words or an identifier (DATABASE_URL, review_threshold), 1 to {MAX_QUERY} "
                    "characters."
                ),
            ),
        ],
        mode: Annotated[
            SearchMode,
            Field(
                description=(
                    "hybrid fuses keyword and vector results (best in general); keyword for exact identifiers; "
                    "semantic for paraphrases."
                )
            ),
        ] = "hybrid",
        format: Annotated[
            str | None,
            Field(
                max_length=100,
                description=(
                    "Only files of this format: yaml, json, toml, ini, dotenv, properties, markdown, dockerfile, ..."
                ),
            ),
        ] = None,
        path: PathFilter = None,
        k: Annotated[int, Field(ge=1, le=MAX_K, description=f"Hits to return, 1 to {MAX_K}.")] = 10,
        all: Annotated[
            bool, Field(description="Every matching file once (up to 100) instead of the k best hits.")
        ] = False,
    ) -> SearchResult:
        """Search the configuration tree. Each hit is path:line_start-line_end with the key path at the best
        line, the lines that answer (path:line key.path = value) and a snippet (secrets redacted).
        "Which ..." questions get each matching file once."""
        text = query.replace("\x00", " ")
        with self.session() as kb:
            found = kb.search_result(text, k=k, mode=mode, format=format or None, path=path or None, all_files=all)
        hits: list[Hit] = list(found.hits)
        hits = [
            h.model_copy(update={"snippet": clip(h.snippet, MAX_SNIPPET), "key_path": clip(h.key_path)}) for h in hits
        ]
        n = _fit(hits, self.max_chars)
        note = None
        if n < len(hits):
            note = f"cut to {n} of {len(hits)} hits to fit {self.max_chars:,} characters; ask with a smaller k"
        return SearchResult(
            query=query, mode=mode, hits=hits[:n], truncated=n < len(hits), note=note, grouped=found.grouped
        )

    def show_file(self, path: PathArg, offset: Offset = 0, limit: RecordLimit = 200) -> FileResult:
        """One catalogued file: format, size, status, its records in line order (path:line key.path = value)
        and its findings. Read from the catalogue, never from disk; secrets are redacted."""
        rel = _rel(path)
        with self.session() as kb:
            detail = kb.file(rel, offset=offset, limit=limit)
        info, total = detail.file, detail.total
        rows = [r.model_copy(update={"value": clip(r.value)}) for r in detail.records]
        found = [f.model_copy(update={"message": clip(f.message)}) for f in detail.findings]
        notes = []
        kept = _fit(found[:MAX_MEMBERS], self.max_chars // 3)  # findings take at most a third of the answer
        if kept < len(found):
            notes.append(f"first {kept} of {len(found)} findings: use the findings tool with path={info.path!r}")
            found = found[:kept]
        budget = self.max_chars - len(info.model_dump_json()) - sum(len(f.model_dump_json()) + 2 for f in found)
        n = _fit(rows, budget)
        rest = total - offset - n
        if rest > 0:
            why = (
                f"cut to {n} records to fit {self.max_chars:,} characters"
                if n < len(rows)
                else f"limit {limit} reached"
            )
            notes.insert(0, f"{why}; {rest} more records: call again with offset={offset + n}")
        note = "; ".join(notes) or None
        return FileResult(
            file=info,
            total=total,
            offset=offset,
            limit=limit,
            records=rows[:n],
            findings=found,
            truncated=note is not None,
            note=note,
        )

    def find_key(
        self,
        pattern: Annotated[
            str,
            Field(
                min_length=1,
                max_length=500,
                description=(
                    "A key path or a glob over key paths, case-insensitive: * is any run of characters (dots included), "
                    "? one character, brackets are literal (services.*.ports[0]). Without * or ? it also matches the "
                    "last segments: review_threshold finds fraud.review_threshold."
                ),
            ),
        ],
        path: PathFilter = None,
        offset: Offset = 0,
        limit: RecordLimit = 100,
    ) -> KeyMatches:
        """Records whose key path matches a glob, with their values and path:line, in path order."""
        with self.session() as kb:
            found = kb.key_matches(pattern, path=path or None, limit=limit + 1, offset=offset)
        rows = [r.model_copy(update={"value": clip(r.value)}) for r in found]
        more = len(rows) > limit
        rows = rows[:limit]
        n = _fit(rows, self.max_chars)
        note = None
        if n < len(rows):
            note = f"cut to {n} records to fit {self.max_chars:,} characters; call again with offset={offset + n}"
        elif more:
            note = f"limit {limit} reached; more records: call again with offset={offset + n}, or narrow the pattern"
        return KeyMatches(
            pattern=pattern,
            path=path,
            offset=offset,
            limit=limit,
            records=rows[:n],
            truncated=note is not None,
            note=note,
        )

    # -- problems -------------------------------------------------------------------------------

    def validate(
        self,
        paths: Annotated[
            list[str] | None,
            Field(
                max_length=1000,
                description=(
                    "Report only findings in these files (paths relative to the corpus root, folders or globs); the "
                    "check itself always covers the whole tree."
                ),
            ),
        ] = None,
        severity: SeverityArg = None,
        schema_map: Annotated[
            list[str] | None,
            Field(
                max_length=100,
                description=(
                    "Extra GLOB=SCHEMA pairs: validate files matching GLOB against the JSON Schema SCHEMA (paths relative "
                    "to the corpus root)."
                ),
            ),
        ] = None,
        offset: Offset = 0,
        limit: FindingLimit = 100,
    ) -> ValidateResult:
        """Check the tree now: broken references, undefined ${VARS}, reference cycles, JSON Schema violations and
        orphans, with ingest's parse errors and plaintext secrets; worst first, each at path:line. Nothing is
        stored."""
        with self.session() as kb:
            found = kb.problems(paths or None, severity=severity or None, schema_map=schema_map, confined=True)
        every = [f.model_copy(update={"message": clip(f.message)}) for f in found.findings]
        shown, truncated, note = _page(every, offset, limit, self.max_chars, "findings")
        return ValidateResult(
            total=len(every),
            offset=offset,
            limit=limit,
            findings=shown,
            counts=found.counts,
            notes=[clip(n) for n in found.notes],
            truncated=truncated,
            note=note,
        )

    def findings(
        self,
        rule: Annotated[
            str | None,
            Field(
                max_length=200,
                description=(
                    "Only this rule: parse-error, plaintext-secret, broken-reference, undefined-variable, reference-cycle, "
                    "schema-violation, orphan, ..."
                ),
            ),
        ] = None,
        severity: SeverityArg = None,
        path: PathFilter = None,
        offset: Offset = 0,
        limit: FindingLimit = 100,
    ) -> FindingsResult:
        """Stored findings, worst first: ingest's, and validation's from the last `kb validate` (use the validate
        tool for a fresh check)."""
        with self.session() as kb:
            page = kb.findings_page(
                rule=rule or None, severity=severity or None, path=path or None, offset=offset, limit=limit
            )
        total = page.total
        found = [f.model_copy(update={"message": clip(f.message)}) for f in page.findings]
        n = _fit(found, self.max_chars)
        rest = total - offset - n
        note = None
        if rest > 0:
            why = (
                f"cut to {n} findings to fit {self.max_chars:,} characters"
                if n < len(found)
                else f"limit {limit} reached"
            )
            note = f"{why}; {rest} more: call again with offset={offset + n}, or filter by rule, severity or path"
        return FindingsResult(
            total=total, offset=offset, limit=limit, findings=found[:n], truncated=note is not None, note=note
        )

    # -- duplicates and drift -------------------------------------------------------------------

    def duplicates(
        self,
        kinds: Annotated[
            list[DuplicateKind] | None,
            Field(
                description=(
                    "exact (same bytes), canonical (same data in any format), block (a repeated subtree), near (similar "
                    "files or blocks), semantic (similar prose, opt-in: only when named); default all but semantic."
                )
            ),
        ] = None,
        min_leaves: Annotated[int, Field(ge=1, le=10_000, description="Smallest block, in leaf keys.")] = 5,
        threshold: Annotated[float, Field(gt=0, le=1, description="Jaccard similarity for near duplicates.")] = 0.8,
        semantic_threshold: Annotated[float, Field(gt=0, le=1, description="Cosine for semantic duplicates.")] = 0.9,
        suggest: Annotated[bool, Field(description="Add a proposed base + overlays to near-duplicate files.")] = False,
        offset: Offset = 0,
        limit: GroupLimit = 20,
    ) -> DuplicatesResult:
        """Duplicate groups, largest saving first: each member at path:line_start-line_end with its key path,
        and the lines folding the group would save."""
        with self.session() as kb:
            groups = kb.duplicates(
                list(kinds) if kinds else None,
                as_frame=False,
                min_leaves=min_leaves,
                threshold=threshold,
                semantic_threshold=semantic_threshold,
                suggest=suggest,
            )
        cut = False
        small = []
        for g in groups:
            update: dict[str, Any] = {"suggestion": clip(g.suggestion, MAX_SNIPPET)}
            if len(g.members) > MAX_MEMBERS:
                update["members"] = g.members[:MAX_MEMBERS]
                cut = True
            small.append(g.model_copy(update=update))
        shown, truncated, note = _page(small, offset, limit, self.max_chars, "groups")
        if cut and any(len(g.members) == MAX_MEMBERS for g in shown):
            note = (note + "; " if note else "") + f"groups list at most {MAX_MEMBERS} members each"
            truncated = True
        return DuplicatesResult(groups=shown, total=len(groups), offset=offset, truncated=truncated, note=note)

    def drift(
        self,
        effective: Annotated[
            str | None,
            Field(
                max_length=100,
                description=(
                    "An environment (production, staging, dev, ...): instead of drift, each key's final value in it "
                    "(base + override, ${VAR} resolved) with the path:line it came from."
                ),
            ),
        ] = None,
        path: PathFilter = None,
        offset: Offset = 0,
        limit: Annotated[
            int | None,
            Field(
                ge=1,
                le=MAX_PAGE,
                description=(f"Most groups (default 20), or with effective most keys (default 200), 1 to {MAX_PAGE}."),
            ),
        ] = None,
    ) -> DriftResult:
        """Keys missing from, or differing between, sibling environment files (config/{base,staging,production}.*,
        values-*.yaml, .env.*, application-{env}.properties), with each value's path:line."""
        if effective:
            with self.session() as kb:
                values = kb.effective_values(effective, path=path or None)
            keys = [v.model_copy(update={"value": clip(v.value)}) for v in values]
            shown, truncated, note = _page(keys, offset, limit or 200, self.max_chars, "keys")
            return DriftResult(
                env=effective, keys=shown, total=len(keys), offset=offset, truncated=truncated, note=note
            )
        with self.session() as kb:
            groups = kb.located_drift(path or None)
        located = []
        cut = False
        for g in groups:
            missing, differing = g.missing[:MAX_MEMBERS], g.differing[:MAX_MEMBERS]
            cut = cut or len(missing) < len(g.missing) or len(differing) < len(g.differing)
            differing = [d.model_copy(update={"values": {p: clip(v) for p, v in d.values.items()}}) for d in differing]
            keys_shown = {m.key_path for m in missing} | {d.key_path for d in differing}
            locations = [x for x in g.locations if x.key_path in keys_shown]
            located.append(g.model_copy(update={"missing": missing, "differing": differing, "locations": locations}))
        shown, truncated, note = _page(located, offset, limit or 20, self.max_chars, "groups")
        if cut:
            note = (note + "; " if note else "") + f"each group lists at most {MAX_MEMBERS} missing and differing keys"
            truncated = True
        return DriftResult(groups=shown, total=len(located), offset=offset, truncated=truncated, note=note)

    # -- the dependency graph -------------------------------------------------------------------

    def impact(self, path: PathArg, offset: Offset = 0, limit: FileLimit = 100) -> GraphResult:
        """Every file that depends on this one, directly (depth 1, with the referencing path:line) or through
        others: what a change to it could break."""
        return self._links(path, "impact", True, offset, limit)

    def dependencies(
        self,
        path: PathArg,
        transitive: Annotated[bool, Field(description="Also what the dependencies depend on, recursively.")] = False,
        offset: Offset = 0,
        limit: FileLimit = 100,
    ) -> GraphResult:
        """What this file references (files it needs), with the kind and the line of each reference."""
        return self._links(path, "deps", transitive, offset, limit)

    def _links(self, path: str, direction: GraphDirection, transitive: bool, offset: int, limit: int) -> GraphResult:
        rel = _rel(path)
        with self.session() as kb:
            links = kb.links(rel, direction, transitive=transitive)
        shown, truncated, note = _page(links, offset, limit, self.max_chars, "files")
        return GraphResult(
            path=rel,
            direction=direction,
            transitive=transitive or direction == "impact",
            files=shown,
            total=len(links),
            truncated=truncated,
            note=note,
        )

    # -- SQL and ingest -------------------------------------------------------------------------

    def sql(
        self,
        query: Annotated[
            str,
            Field(
                min_length=1,
                max_length=10_000,
                description=(
                    "One read-only DuckDB statement over the catalogue: tables files, records (path, doc, key_path, value, "
                    "value_type, line), sections, chunks, documents, findings, runs, run_changes, meta, and refs after "
                    "`kb validate`."
                ),
            ),
        ],
        limit: RowLimit = 100,
    ) -> SqlResult:
        """Read-only SQL over the catalogue (no writes, no other files), e.g. SELECT format, count(*) FROM files
        GROUP BY 1. Long answers are cut; values are redacted as everywhere."""
        if not query.strip().rstrip(";").strip():
            raise BadRequestError(
                "Empty query: give one SELECT statement, e.g. SELECT format, count(*) FROM files GROUP BY 1."
            )
        with self.session() as kb:
            columns, rows, more = kb.sql_rows(query, limit=limit, timeout=self.settings.request_timeout or None)
        cells = [[_cell(v) for v in r] for r in rows]
        used, n = len(json.dumps(columns)), 0
        for r in cells:
            used += len(json.dumps(r, ensure_ascii=False, default=str)) + 2
            if used > self.max_chars:
                break
            n += 1
        note = None
        if n < len(cells):
            note = (
                f"cut to {n} rows to fit {self.max_chars:,} characters; select fewer columns or add WHERE/LIMIT/OFFSET"
            )
        elif more:
            note = f"limit {limit} rows reached; there are more: add WHERE, aggregate, or page with LIMIT/OFFSET"
        return SqlResult(columns=columns, rows=cells[:n], limit=limit, truncated=note is not None, note=note)

    def ingest(self) -> RunSummary:
        """Re-ingest the corpus root incrementally (changed files only) and update the search index."""
        if not self.allow_ingest:
            raise BadRequestError("This server is read-only: start it with `kb mcp --allow-ingest` to re-ingest.")
        with self.session() as kb:
            return kb.ingest()

    # -- description ----------------------------------------------------------------------------

    def stats(self) -> Stats:
        with self.session() as kb:
            st = kb.stats()
        st["db"] = str(st.get("db"))
        return Stats(**{name: st[name] for name in Stats.model_fields if name in st})

    def about(self) -> str:
        """A README-level description of the KB: what the tree holds, counts, the last run, how to ask."""
        with self.session() as kb:
            view = kb.overview()
        st, embedder, stale, tables = view["stats"], view["embedder"], view["validation_stale"], view["tables"]
        last = st.get("last_run") or {}
        lines = [
            f"# Knowledge base of {st.get('root') or '(no root recorded)'}",
            "",
            f"A kb catalogue at `{st['db']}`: **{st['files']:,} files** ({st['bytes']:,} bytes), "
            f"{st['records']:,} key/value records, {st['chunks']:,} search chunks, {st['findings']:,} stored findings.",
            "",
            "Every answer of the tools cites `path:line`. Secrets were redacted at ingest: a credential appears "
            "only as `[REDACTED:plaintext-secret:<fingerprint>]`.",
            "",
            "## Last ingest",
            "",
        ]
        if last:
            lines.append(
                f"Run {last.get('id')}, {last.get('status')}, started {last.get('started_at')}, finished "
                f"{last.get('finished_at')} ({last.get('seconds')} s): {last.get('files_seen')} files seen, "
                f"{last.get('added')} added, {last.get('changed')} changed, {last.get('removed')} removed, "
                f"{last.get('unchanged')} unchanged."
            )
        else:
            lines.append("No ingest has run yet.")
        lines += ["", "## Formats", "", "| format | files |", "| --- | ---: |"]
        lines += [f"| {fmt} | {n:,} |" for fmt, n in st["files_by_format"].items()]
        lines += ["", "## Stored findings", ""]
        if st["findings_by_rule"]:
            sev = ", ".join(
                f"{n} {s}"
                for s, n in sorted(
                    st["findings_by_severity"].items(),
                    key=lambda x: SEVERITIES.index(x[0]) if x[0] in SEVERITIES else 1,
                )
            )
            lines += [f"By severity: {sev}.", "", "| rule | findings |", "| --- | ---: |"]
            lines += [f"| {rule} | {n:,} |" for rule, n in st["findings_by_rule"].items()]
        else:
            lines.append("None.")
        if stale:
            lines += [
                "",
                "Validation findings are not stored or out of date: call the `validate` tool for a fresh check.",
            ]
        lines += [
            "",
            "## Search index",
            "",
            (
                f"Embedder `{embedder.get('name')}`"
                + (f" ({embedder.get('dim')} dimensions)" if embedder.get("dim") else "")
                + "; hybrid, semantic and keyword search available."
            )
            if embedder
            else "No vectors: use `search` with mode `keyword`, or re-run `kb ingest` with embedding on.",
            "",
            "## Tools",
            "",
            "- `search`: a question in words or an identifier (hybrid keyword + vector); filters `format`, `path`.",
            "- `find_key`: records whose key path matches a glob (`*.timeout*`, `services.*.image`).",
            "- `show_file`: one file's records (key path, value, line) and findings.",
            "- `validate`: broken references, undefined variables, cycles, schema violations, secrets, parse errors; "
            "`findings`: the stored ones.",
            "- `impact` / `dependencies`: what depends on a file / what it references.",
            "- `drift`: keys missing or differing between environments; `effective` gives one environment's values.",
            "- `duplicates`: copied files and blocks.",
            f"- `sql`: read-only SQL over the catalogue; tables: {', '.join(tables)}.",
        ]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# The MCP server
# ---------------------------------------------------------------------------------------------

_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


def _register(server: MCPServer, method: Callable[..., BaseModel], annotations: ToolAnnotations) -> None:
    """Register ``method`` as the MCP tool of its name, as declared: its annotated parameters are the
    input schema, its docstring the description, its return model the output schema; a call
    answers the model's compact text with the model as structured content."""
    sig = inspect.signature(method)
    returns = Annotated[CallToolResult, sig.return_annotation]

    @functools.wraps(method)
    def tool(**kwargs: Any) -> CallToolResult:
        return _answer(method, **kwargs)

    tool.__signature__ = sig.replace(return_annotation=returns)  # type: ignore[attr-defined]
    tool.__annotations__ = {**{p.name: p.annotation for p in sig.parameters.values()}, "return": returns}
    server.tool(name=method.__name__, annotations=annotations)(tool)


def _answer(fn: Callable[..., Any], **kwargs: Any) -> CallToolResult:
    """Run a tool body; kb errors become tool errors that say how to fix the call."""
    try:
        result = fn(**kwargs)
    except KBError as exc:
        raise ToolError(exc.message) from exc
    if isinstance(result, RunSummary):
        text = (
            f"run {result.run_id} {result.status}: {result.files_seen} files seen, {result.added} added, "
            f"{result.changed} changed, {result.removed} removed, {result.unchanged} unchanged, "
            f"{result.chunks_embedded} chunks embedded in {result.seconds:.1f} s"
        )
    else:
        text = result.text()
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=result.model_dump(mode="json")
    )


def _instructions(tools: KBTools) -> str:
    root = None
    with contextlib.suppress(KBError, OSError), tools.session() as kb:
        root = kb.settings.root
    where = f" of the configuration tree at {root}" if root else ""
    return (
        f"kb: a semantic knowledge base{where} (JSON, YAML, TOML, INI, .env, .properties, Markdown, Dockerfiles). "
        "Answers cite path:line; secrets appear only as [REDACTED:...]. Use `search` for a question in words or "
        "an identifier, `find_key` when you know (part of) a key path, `show_file` for one file's values, "
        "`validate` (fresh check) or `findings` (stored) for problems, `impact`/`dependencies` before changing a "
        "file, `drift` to compare environments (effective=ENV for one environment's final values), `duplicates` "
        "for copies, and `sql` for anything else. Long answers are cut and say how to get the rest. "
        "The resource kb://about describes the tree."
    )


def create_server(tools: KBTools) -> MCPServer:
    """An ``MCPServer`` exposing ``tools`` (:data:`TOOLS`, plus ``ingest`` when allowed) and two resources."""
    try:
        kb_version = version("kb")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        kb_version = "0"
    server: MCPServer = MCPServer(
        "kb", title="kb knowledge base", version=kb_version, instructions=_instructions(tools), log_level="WARNING"
    )

    for name in TOOLS:
        _register(server, getattr(tools, name), _READ)
    if tools.allow_ingest:
        _register(server, tools.ingest, _WRITE)

    @server.resource(
        "kb://about",
        name="about",
        title="About this knowledge base",
        mime_type="text/markdown",
        description="What the tree holds: formats, counts, findings, the last ingest, how to ask.",
    )
    def about() -> str:
        try:
            return tools.about()
        except KBError as exc:
            raise ResourceError(exc.message) from exc

    @server.resource(
        "kb://stats",
        name="stats",
        title="KB statistics",
        mime_type="application/json",
        description="Counts of files, records, chunks and findings, by format and rule; the last run.",
    )
    def stats() -> str:
        try:
            return tools.stats().model_dump_json(indent=2)
        except KBError as exc:
            raise ResourceError(exc.message) from exc

    return server


def require_bearer(app: Any, key: str | None) -> Any:
    """The ASGI ``app`` behind ``Authorization: Bearer <key>`` (``KB_API_READ_KEY``); ``app`` itself without a key."""
    if not key:
        return app
    import hmac

    expected = f"Bearer {key}".encode()
    body = json.dumps({"status_code": 401, "detail": "Send Authorization: Bearer <KB_API_READ_KEY>."}).encode()

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            got = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(got, expected):
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return guarded
