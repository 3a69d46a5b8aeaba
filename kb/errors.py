"""kb's exceptions.

Every exception carries an HTTP ``status_code`` and subclasses a standard-library type, so the CLI
turns them into a one-line message (and exit code ``exit_code``: 2 unless the tree says otherwise)
and the HTTP API into a JSON problem body with one handler::

    KBError (Exception)                       status 500
    ├── ConfigError (KBError, ValueError)     status 400   bad setting, bad flag, bad schema map
    ├── BadRequestError (KBError, ValueError) status 400   bad query / parameter
    ├── NotIndexedError (KBError, LookupError) status 404  no KB at that path, file not catalogued, no such run
    │   └── DamagedKBError (NotIndexedError) status 500, exit 3  HEAD.json or a file it names is damaged
    ├── DiskFullError (KBError, OSError) status 507, exit 4  no space left (or a file-size limit) while writing
    ├── EmbedderMismatchError (KBError, ValueError) status 409  KB built with another embedder
    ├── ReadOnlyError (KBError, PermissionError) status 400  write attempted through `kb sql` or KnowledgeBase.sql
    ├── WriterBusyError (KBError, TimeoutError) status 409  another process holds the writer role
    └── DependencyError (KBError, ImportError) status 500  an optional dependency is missing
"""

from __future__ import annotations

__all__ = [
    "KBError",
    "ConfigError",
    "BadRequestError",
    "NotIndexedError",
    "EmbedderMismatchError",
    "ReadOnlyError",
    "WriterBusyError",
    "DependencyError",
    "DamagedKBError",
    "DiskFullError",
    "was_interrupted",
    "no_kb",
    "ingest_command",
]


class KBError(Exception):
    status_code: int = 500
    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(KBError, ValueError):
    status_code = 400


class BadRequestError(KBError, ValueError):
    status_code = 400


class NotIndexedError(KBError, LookupError):
    status_code = 404


def ingest_command(db: object, path: object = "PATH") -> str:
    """``kb ingest PATH --db DB`` as a shell would take it back (a folder with a space quoted)."""
    import shlex

    return f"kb ingest {path if path == 'PATH' else shlex.quote(str(path))} --db {shlex.quote(str(db))}"


def no_kb(db: object, *, then: str = "first") -> NotIndexedError:
    """The error for a ``--db`` holding no KB, with the command that makes one."""
    return NotIndexedError(f"No knowledge base at '{db}'. Run `{ingest_command(db)}` {then}.")


class EmbedderMismatchError(KBError, ValueError):
    status_code = 409


class ReadOnlyError(KBError, PermissionError):
    status_code = 400


class WriterBusyError(KBError, TimeoutError):
    status_code = 409


class DependencyError(KBError, ImportError):
    status_code = 500


class DamagedKBError(NotIndexedError):
    """The KB's files are damaged (HEAD.json unreadable, a file it names missing or cut short)."""

    status_code = 500
    exit_code = 3


class DiskFullError(KBError, OSError):
    """No space was left on the KB's disk (or a file-size limit was hit) while writing; nothing of
    the run was published."""

    status_code = 507
    exit_code = 4


def was_interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is a Ctrl-C or was raised because of one.

    DuckDB catches a ``KeyboardInterrupt`` that arrives while a query runs, cancels the query and
    raises ``RuntimeError('Query interrupted')`` instead; the next statement in that transaction
    then fails with a ``TransactionException`` raised while handling it. Both are the user's
    Ctrl-C, not a fault: callers turn them back into ``KeyboardInterrupt``.
    """
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, KeyboardInterrupt) or (isinstance(e, RuntimeError) and str(e) == "Query interrupted"):
            return True
        e = e.__cause__ or e.__context__
    return False
