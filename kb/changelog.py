"""Reading the key-level change log: ``kb changes``, ``kb blame``, ``GET /changes``, ``/blame``.

The ``changes`` table is written at ingest by :mod:`kb.ingest.changes` (see there for what is
recorded and when). Here it is only read: filtered by key, path and time, newest first, and for one
key, with the file's moves followed back so a file that moved keeps its history.

Filters:

``key``    a key path, or a pattern where ``*`` matches anything and ``?`` one character
           (``'*timeout*'``); without wildcards, the key and every key under it.
``path``   a glob over paths (``services/*/config/*.yaml``); without wildcards, a file (with its
           earlier paths, when it moved) or everything under a folder.
``since``  a run id (``12``: that run and later), a date or time (``2024-05-01``,
           ``2024-05-01T12:00``, UTC unless it says otherwise) or an age (``7d``, ``12h``, ``30m``,
           ``2w``).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb.errors import BadRequestError, NotIndexedError
from kb.globs import PathFilter, is_glob
from kb.types import CHANGE_KINDS, KeyChange, KeyHistory

if TYPE_CHECKING:  # pragma: no cover
    from kb.catalogue import Catalogue
    from kb.settings import Settings

__all__ = ["query_changes", "key_history", "parse_since", "file_aliases", "has_changes", "CHANGE_COLUMNS"]

CHANGE_COLUMNS = (
    "run_id",
    "changed_at",
    "path",
    "doc",
    "key_path",
    "change",
    "old_value",
    "new_value",
    "old_type",
    "new_type",
    "line",
    "old_path",
    "commit",
    "author",
    "committed_at",
    "source",
)
_ORDER = "changed_at DESC, run_id DESC, path, doc, line NULLS FIRST, key_path NULLS FIRST"
_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def has_changes(catalogue: Catalogue) -> bool:
    """Whether the catalogue has a change log (a KB built before it existed has none until its
    next ingest)."""
    return bool(catalogue.query("SELECT count(*) FROM information_schema.tables WHERE table_name = 'changes'")[0][0])


def parse_since(value: str | int | datetime | None, *, now: datetime | None = None) -> tuple[str, Any] | None:
    """``("run", id)`` or ``("time", naive UTC datetime)`` from a ``--since`` value (module docstring)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return ("time", _naive_utc(value))
    if isinstance(value, int):
        return ("run", value)
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) < 8:
        return ("run", int(text))
    m = _AGE.match(text.lower())
    try:
        if m:
            base = now or datetime.now(UTC).replace(tzinfo=None)
            return ("time", base - timedelta(**{_AGE_UNITS[m.group(2)]: int(m.group(1))}))
        return ("time", _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00"))))
    except (ValueError, OverflowError):
        raise BadRequestError(
            f"since={text!r} is not a run id, a date or an age: give e.g. 12 (run 12 and later), 2024-05-01, "
            "2024-05-01T12:00 (UTC) or 7d / 12h / 30m / 2w."
        ) from None


def _naive_utc(when: datetime) -> datetime:
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _key_clause(key: str) -> tuple[str, list[Any]]:
    k = key.strip()
    if not k:
        raise BadRequestError("key is empty: give a key path such as database.timeout, or a pattern like '*timeout*'.")
    if "*" in k or "?" in k:
        like = k.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%").replace("?", "_")
        return "key_path LIKE ? ESCAPE '\\'", [like]
    return "(key_path = ? OR starts_with(key_path, ?) OR starts_with(key_path, ?))", [k, k + ".", k + "["]


def _clean_path(path: str) -> str:
    p = path.strip().replace("\\", "/")
    while p.startswith("./"):
        p = p[2:]
    return p


def file_aliases(catalogue: Catalogue, path: str, *, depth: int = 50) -> list[tuple[str, datetime | None]]:
    """``path`` and the paths its file had before it moved: ``(path, moved_at)``, where rows of an
    earlier path count up to the time the file left it (None for ``path`` itself)."""
    out: list[tuple[str, datetime | None]] = [(path, None)]
    seen = {path}
    frontier: list[tuple[str, datetime | None]] = [(path, None)]
    while frontier and len(out) < depth:
        cur, until = frontier.pop()
        rows = catalogue.query(
            "SELECT old_path, changed_at FROM changes WHERE change = 'moved' AND path = ? AND old_path IS NOT NULL "
            "ORDER BY changed_at DESC",
            [cur],
        )
        for old, at in rows:
            if until is not None and at > until:
                continue  # a move into ``cur`` after the file we follow had left it
            if old in seen:
                continue
            seen.add(old)
            out.append((old, at))
            frontier.append((old, at))
    return out


def _path_clause(catalogue: Catalogue, path: str) -> tuple[str, list[Any]]:
    """The :class:`~kb.globs.PathFilter` test, widened for one file to the paths it had before it
    moved (each up to the time the file left it)."""
    flt = PathFilter.of(path)
    if flt is None:
        return "TRUE", []
    clause, params = flt.sql()
    (p,) = flt.patterns
    if is_glob(p):
        return clause, params
    parts = [clause]
    for old, at in file_aliases(catalogue, p)[1:]:
        parts.append("(path = ? AND changed_at <= ?)")
        params += [old, at]
    return "(" + " OR ".join(parts) + ")", params


def _where(
    catalogue: Catalogue,
    *,
    key: str | None,
    path: str | None,
    since: Any,
    change: str | None,
    doc: int | None = None,
    exact_key: bool = False,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if key:
        if exact_key:
            clauses.append("key_path = ?")
            params.append(key)
        else:
            c, p = _key_clause(key)
            clauses.append(c)
            params += p
    if path:
        c, p = _path_clause(catalogue, path)
        clauses.append(c)
        params += p
    bound = parse_since(since)
    if bound is not None:
        clauses.append("run_id >= ?" if bound[0] == "run" else "changed_at >= ?")
        params.append(bound[1])
    if change:
        if change not in CHANGE_KINDS:
            raise BadRequestError(f"change={change!r} is not one of {', '.join(CHANGE_KINDS)}.")
        clauses.append("change = ?")
        params.append(change)
    if doc is not None:
        clauses.append("doc = ?")
        params.append(doc)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def query_changes(
    catalogue: Catalogue,
    *,
    key: str | None = None,
    path: str | None = None,
    since: Any = None,
    change: str | None = None,
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[int, list[KeyChange]]:
    """(total matching, one page of changes newest first)."""
    if not has_changes(catalogue):
        parse_since(since)  # still reject a bad value
        return 0, []
    where, params = _where(catalogue, key=key, path=path, since=since, change=change)
    total = catalogue.query(f"SELECT count(*) FROM changes {where}", params)[0][0]
    page = f"LIMIT {int(limit)} OFFSET {int(offset)}" if limit else (f"OFFSET {int(offset)}" if offset else "")
    rows = catalogue.query_dicts(
        f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes {where} ORDER BY {_ORDER} {page}", params
    )
    return int(total), [KeyChange(**r) for r in rows]


def key_history(catalogue: Catalogue, settings: Settings, path: str, key: str, *, doc: int | None = None) -> KeyHistory:
    """The history of one key (``kb blame FILE KEY``): its value now, who last touched its line
    (git, when the working file is as catalogued), and every recorded change, newest first, the
    file's earlier paths included."""
    p = _clean_path(path)
    k = key.strip()
    if not k:
        raise BadRequestError("KEY is empty: give a key path as `kb show FILE` lists it, e.g. database.timeout.")
    file_row = catalogue.file_row(p)
    logged = has_changes(catalogue)
    if file_row is None and not (logged and catalogue.query("SELECT count(*) FROM changes WHERE path = ?", [p])[0][0]):
        like = [
            r[0]
            for r in catalogue.query(
                "SELECT path FROM files WHERE path LIKE ? ORDER BY path LIMIT 5", [f"%{p.rsplit('/', 1)[-1]}%"]
            )
        ]
        hint = f" Did you mean: {', '.join(like)}?" if like else ""
        raise NotIndexedError(
            f"'{path}' is not catalogued and has no recorded history; give the path relative "
            f"to the corpus root, as `kb show` takes it.{hint}"
        )
    params: list[Any] = [p, k]
    extra = ""
    if doc is not None:
        extra, params = " AND doc = ?", params + [doc]
    current = catalogue.query_dicts(
        f"SELECT doc, value, value_type, line FROM records WHERE path = ? AND key_path = ?{extra} ORDER BY doc LIMIT 1",
        params,
    )
    history: list[KeyChange] = []
    aliases = [p]
    if logged:
        aliases = [a for a, _ in file_aliases(catalogue, p)]
        where, wparams = _where(catalogue, key=k, path=p, since=None, change=None, doc=doc, exact_key=True)
        rows = catalogue.query_dicts(
            f"SELECT {', '.join(CHANGE_COLUMNS)} FROM changes {where} ORDER BY {_ORDER}", wparams
        )
        history = [KeyChange(**r) for r in rows]
    if not current and not history:
        under = [
            r[0]
            for r in catalogue.query(
                "SELECT DISTINCT key_path FROM records WHERE path = ? AND (key_path LIKE ? OR key_path LIKE ?) "
                "ORDER BY key_path LIMIT 8",
                [p, f"{k}%", f"%{k.rsplit('.', 1)[-1]}%"],
            )
        ]
        hint = f" Keys like it: {', '.join(under)}." if under else " `kb show FILE` lists its keys."
        raise NotIndexedError(f"'{p}' has no key '{k}' now and no recorded change to it.{hint}")
    out = KeyHistory(path=p, key_path=k, exists=bool(current), paths=aliases[1:], history=history)
    if current:
        c = current[0]
        out.doc, out.value, out.value_type, out.line = c["doc"], c["value"], c["value_type"], c["line"]
        if doc is None:
            out.history = [h for h in history if h.doc == c["doc"]] or history
        commit = _live_blame(catalogue, settings, p, c["line"], file_row)
        if commit is not None:
            out.commit, out.author, out.committed_at = commit.sha, commit.author, commit.date
    return out


def _live_blame(
    catalogue: Catalogue, settings: Settings, path: str, line: int | None, file_row: dict[str, Any] | None
) -> Any:
    """git blame of one line of the working file, when it is still as catalogued."""
    if not line or file_row is None or not settings.git_attribution:
        return None
    root = settings.with_root_of(catalogue).root
    if not root:
        return None
    full = Path(root) / path
    try:
        st = os.stat(full)
    except OSError:
        return None
    if st.st_size != file_row.get("size") or st.st_mtime != file_row.get("mtime"):
        return None
    from kb.git import GitRepo

    repo = GitRepo.find(Path(root))
    if repo is None:
        return None
    return repo.blame_lines(path, [line]).get(line)
