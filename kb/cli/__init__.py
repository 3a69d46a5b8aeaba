"""The ``kb`` command line: the composition root.

Commands live one per module in :mod:`kb.cli.commands`; each module exposes ``command`` (a click
command or group) and is discovered at start-up, so adding a command adds a file. Commands are thin:
they build :class:`~kb.settings.Settings`, call the library and print; errors are mapped once, by
the group (a kb error is a one-line message and its exit code, never a traceback). Heavy imports (torch,
chromadb, networkx) happen inside command bodies so ``kb --help`` stays fast.

Exit codes: 0 success; 1 the command found problems (``kb validate`` errors, ``kb findings
--fail-on``, ``kb duplicates --fail-on``, ``kb doctor``) or nothing (``kb search`` with no hit,
like grep); 2 bad usage or a kb error (the message says how to fix it); 3 the KB is damaged (run
``kb doctor``); 4 the disk is full (nothing was published; free space and run again); 130
interrupted (Ctrl-C), after a line saying what was kept.

Output that pipes: when stdout is not a terminal, rich prints no colour and wraps nothing (a line
of ``kb findings`` stays one line for ``grep``; tables keep their cells whole).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import json
import os
import pkgutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import click

from kb.errors import KBError, was_interrupted
from kb.settings import Settings

__all__ = [
    "main",
    "cli",
    "db_option",
    "json_option",
    "load_settings",
    "open_kb",
    "emit_json",
    "console",
    "terminal_safe",
    "kept_on_interrupt",
    "EXIT_OK",
    "EXIT_FOUND",
    "EXIT_USAGE",
    "EXIT_INTERRUPTED",
]

EXIT_OK, EXIT_FOUND, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141
# a width no line reaches: piped output is never wrapped or cut
_PIPE_WIDTH = 1 << 20
# what a rule (a section line) spans in a pipe, where the console's width is unbounded
_PIPE_RULE_WIDTH = 80


def db_option(f: Callable) -> Callable:
    return click.option(
        "--db",
        "db",
        type=click.Path(path_type=Path),
        default=None,
        help="KB directory (default: $KB_DB or .kb in the current directory).",
    )(f)


def json_option(f: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def load_settings(**overrides: Any) -> Settings:
    return Settings.load(overrides)


def open_kb(db: Path | None = None, *, read_only: bool = True, one_shot: bool = True, **overrides: Any):
    """The :class:`~kb.knowledge.KnowledgeBase` a command works on (read-only unless it writes)."""
    from kb.knowledge import KnowledgeBase

    return KnowledgeBase(load_settings(db=db, **overrides), read_only=read_only, one_shot=one_shot)


def _default(o: Any) -> Any:
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "isoformat"):
        return o.isoformat()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    return str(o)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON (pydantic models, paths and datetimes handled)."""
    click.echo(json.dumps(obj, default=_default, indent=2, ensure_ascii=False))


def console(stderr: bool = False):
    """A rich console: styled and fitted to the width in a terminal; in a pipe or a file, plain
    and never wrapped (so ``kb findings | grep`` sees whole lines and tables keep whole cells)."""
    stream = sys.stderr if stderr else sys.stdout
    terminal, pipe = _consoles()
    if _is_terminal(stream):
        return terminal(stderr=stderr, highlight=False, soft_wrap=False)
    return pipe(stderr=stderr, highlight=False, soft_wrap=True, width=_PIPE_WIDTH, color_system=None)


@functools.cache
def _consoles() -> tuple[type, type]:
    """The console classes for a terminal and for pipes and files. Both end a broken pipe as the
    CLI does (exit 141); in a pipe, a rule is 80 columns, not as wide as the unbounded width that
    keeps lines whole (a million dashes on one line), or its title's width when that is longer."""
    from rich.console import Console
    from rich.rule import Rule

    class KbConsole(Console):
        def on_broken_pipe(self) -> None:
            """rich's own exits 1, which ``kb search`` means "nothing found": the CLI's 141 instead."""
            raise BrokenPipeError

    class PipeConsole(KbConsole):
        def rule(
            self, title: Any = "", *, characters: str = "─", style: Any = "rule.line", align: Any = "center"
        ) -> None:
            from rich.text import Text

            words = Text.from_markup(title) if isinstance(title, str) else title
            width = max(_PIPE_RULE_WIDTH, words.cell_len + 6)  # a long title is never cut
            self.print(Rule(title, characters=characters, style=style, align=align), width=width)

    return KbConsole, PipeConsole


def _is_terminal(stream: Any) -> bool:
    if os.environ.get("FORCE_COLOR") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def kept_on_interrupt(what: str) -> None:
    """Say what an interrupted run of the current command keeps (printed after "interrupted")."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.find_root().meta["kb.kept"] = what


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """The CLI's one error mapping (every command runs inside it, see :class:`_Group`): a kb error
    is one line and its exit code, an OS error one line that says what to give instead; never a
    traceback."""
    try:
        yield
    except KBError as exc:
        click.echo(f"Error: {terminal_safe(exc.message)}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # --db naming a file, /proc/x, a folder you cannot write...
        if isinstance(exc, BrokenPipeError):
            raise
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            click.echo(f"Error: no space left to write ({exc.strerror}). Free space and run it again.", err=True)
            sys.exit(4)
        where = f" '{terminal_safe(str(exc.filename))}'" if exc.filename else ""
        click.echo(
            f"Error: {exc.strerror or type(exc).__name__}:{where}. Check that the path exists and that "
            f"you may write there; for --db (or KB_DB), give a folder you can write, or an existing KB.",
            err=True,
        )
        sys.exit(2)


def _left_by_reader() -> NoReturn:
    """``kb search ... | head``: the reader left. Stop quietly with 141, as a shell reports a
    command killed by SIGPIPE (never 1, which ``kb search`` means "nothing found")."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error at exit
    sys.exit(EXIT_BROKEN_PIPE)


# C0 controls but tab and newline, DEL and C1 controls: shown as \xNN, never sent to a terminal
_CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)]}
# ...except the colour codes rich itself writes (ESC [ digits m)
_SGR = __import__("re").compile(r"\x1b\[[0-9;]{0,32}m")


def terminal_safe(text: str) -> str:
    """``text`` with control characters (ESC, BEL, CR, ...) written as ``\\xNN``: a file name
    or value from the tree cannot move the cursor, retitle the window or hide output."""
    return text.translate(_CONTROLS)


class _TerminalSafeStream:
    """stdout for human output: control characters from data are escaped; rich's colour codes pass."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, s: str) -> int:
        if isinstance(s, str) and any(ord(c) < 0x20 and c not in "\n\t" or 0x7F <= ord(c) < 0xA0 for c in s):
            parts = _SGR.split(s)
            colours = _SGR.findall(s)
            out = [terminal_safe(parts[0])]
            for colour, part in zip(colours, parts[1:]):
                out += [colour, terminal_safe(part)]
            s = "".join(out)
        return self._stream.write(s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Ctrl-C ends it with exit 130 and a line saying what was kept (not
        click's "Aborted!" and 1, which CI would read as "problems found")."""
        try:
            try:
                with _mapped_errors():
                    return super().invoke(ctx)
            except BrokenPipeError:  # here, before click's own handler turns it into exit 1
                _left_by_reader()
            except Exception as exc:  # Ctrl-C during a DuckDB query arrives as DuckDB's own error
                if was_interrupted(exc):
                    raise KeyboardInterrupt from exc
                raise
        except KeyboardInterrupt:
            kept = ctx.meta.get("kb.kept", "nothing was changed")
            click.echo(f"\ninterrupted: {kept}", err=True)
            sys.exit(EXIT_INTERRUPTED)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _discover(self)
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        _discover(self)
        return self.commands.get(name)


_discovered = False


def _discover(group: click.Group) -> None:
    global _discovered
    if _discovered:
        return
    _discovered = True
    from kb.cli import commands

    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"kb.cli.commands.{mod.name}")
        cmd = getattr(module, "command", None)
        if isinstance(cmd, click.Command):
            group.add_command(cmd)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="kb")
@click.option("-v", "--verbose", is_flag=True, help="Show what libraries print while loading (model load reports).")
def cli(verbose: bool) -> None:
    """kb: a semantic knowledge base over configuration trees.

    Ingest a tree of JSON, YAML, TOML, INI, .env, .properties, Markdown and Dockerfiles; search it
    in natural language or by identifier; validate references, variables and schemas; find
    duplicates and drift.

    Example: kb ingest ./platform && kb search "fraud review threshold"
    """
    if verbose:
        import os

        os.environ["KB_VERBOSE"] = "1"
    if not isinstance(sys.stdout, _TerminalSafeStream):
        sys.stdout = _TerminalSafeStream(sys.stdout)


def main() -> None:
    try:
        cli()
    except BrokenPipeError:  # written outside a command (help, version)
        _left_by_reader()
