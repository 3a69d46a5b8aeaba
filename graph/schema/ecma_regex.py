r"""ECMA-262 regular expressions, guarded against catastrophic backtracking.

regress backtracks, as every ECMA-262 engine (and ajv) does: a pattern with nested quantifiers
(``^(a+)+$``, ``(a|aa)*``, ``^(\w+\s?)*$``) takes time exponential in the length of a value it
does not match (``^(a+)+$`` against 40 ``a``s and a ``!``: days), and regress holds the GIL, so it
cannot be interrupted. Such a pattern is *risky* (:func:`analyse`: a group that holds a variable
quantifier or an alternation, itself repeated). A risky pattern never runs through regress in
this process:

1. when it is a regular expression RE2 can run (strict ``u``-flag syntax, no lookaround, no
   backreference), it is translated to RE2 syntax keeping ECMA's meaning of ``.``, ``\s`` and
   ``\S``, and pyarrow's RE2 runs it in linear time: an exact verdict, hostile input or not;
2. otherwise regress runs it in a helper process with a time limit of ``REGEX_TIME_LIMIT``
   seconds per match. A match that runs out of time leaves the value *not checked*: that is
   reported (a violation saying so, never a silent pass); the pattern is not tried again in that
   validation run on values as long or longer, and after ``REGEX_TIMEOUT_BUDGET`` timeouts every
   further risky check that needs the helper is reported unchecked at once, so a hostile tree
   costs seconds, not hours.

Patterns that are not risky run through regress in-process.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import json
import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.graph.schema.regex_helper import compile_pattern

__all__ = [
    "REGEX_TIME_LIMIT",
    "REGEX_TIMEOUT_BUDGET",
    "SkippedCheck",
    "Guard",
    "guarded",
    "ecma_search",
    "compile_ecma",
    "analyse",
    "shape",
]

REGEX_TIME_LIMIT = 1.0
"""Seconds one risky pattern may take on one value in the helper process."""
REGEX_TIMEOUT_BUDGET = 5
"""Helper timeouts per validation run before risky checks that need it are no longer tried."""

_RE_CACHE: dict[str, Callable[[str], bool] | None] = {}
_U_FLAG: dict[str, bool] = {}  # pattern -> compiled by regress with the u flag


def compile_ecma(pattern: str) -> Callable[[str], bool] | None:
    """A search function with ECMA-262 semantics (``u`` flag, as ajv), or None if invalid.

    Unguarded: :func:`ecma_search` is the entry point for matching."""
    if pattern in _RE_CACHE:
        return _RE_CACHE[pattern]
    fn, u_flag = compile_pattern(pattern)
    _U_FLAG[pattern] = u_flag
    _RE_CACHE[pattern] = fn
    return fn


_QUANT = re.compile(r"(?:([*+?])|\{(\d+)(?:(,)(\d*))?\})\??")
_ECMA_SPACE = (
    r"\t\n\x0B\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
    r"\x{FEFF}"
)
_ECMA_DOT = r"[^\n\r\x{2028}\x{2029}]"
_GENERAL_CATEGORIES = {
    "Letter": "L",
    "Uppercase_Letter": "Lu",
    "Lowercase_Letter": "Ll",
    "Titlecase_Letter": "Lt",
    "Modifier_Letter": "Lm",
    "Other_Letter": "Lo",
    "Mark": "M",
    "Combining_Mark": "M",
    "Nonspacing_Mark": "Mn",
    "Spacing_Mark": "Mc",
    "Enclosing_Mark": "Me",
    "Number": "N",
    "Decimal_Number": "Nd",
    "digit": "Nd",
    "Letter_Number": "Nl",
    "Other_Number": "No",
    "Punctuation": "P",
    "punct": "P",
    "Connector_Punctuation": "Pc",
    "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps",
    "Close_Punctuation": "Pe",
    "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf",
    "Other_Punctuation": "Po",
    "Symbol": "S",
    "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc",
    "Modifier_Symbol": "Sk",
    "Other_Symbol": "So",
    "Separator": "Z",
    "Space_Separator": "Zs",
    "Line_Separator": "Zl",
    "Paragraph_Separator": "Zp",
    "Control": "Cc",
    "cntrl": "Cc",
    "Format": "Cf",
    "Private_Use": "Co",
    "Surrogate": "Cs",
}
# ``C`` and ``Cn`` are left out on purpose: RE2's tables have no unassigned code points.
_RE2_CATEGORIES = set(_GENERAL_CATEGORIES.values())
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _property(body: str) -> str | None:
    r"""An ECMA ``\p{...}`` body as an RE2 one, or None."""
    name, _, value = body.partition("=")
    if value:
        if name in ("General_Category", "gc"):
            body = value
        elif name in ("Script", "sc"):
            return value if re.fullmatch(r"[A-Z][A-Za-z_]+", value) else None
        else:
            return None
    if body in _RE2_CATEGORIES:
        return body
    if body in _GENERAL_CATEGORIES:
        return _GENERAL_CATEGORIES[body]
    return "Any" if body == "Any" else None


def _escape(p: str, i: int, in_class: bool) -> tuple[str | None, int, bool]:
    r"""The escape at ``p[i]`` (a backslash) as RE2 text (None: no exact RE2 equivalent), the
    index after it, and whether it is an assertion (``\b``) rather than an atom."""
    n = len(p)
    if i + 1 >= n:
        return None, n, False
    e = p[i + 1]
    j = i + 2
    if e in "dDwW":
        return "\\" + e, j, False
    if e == "s":
        return (_ECMA_SPACE if in_class else f"[{_ECMA_SPACE}]"), j, False
    if e == "S":
        return (None if in_class else f"[^{_ECMA_SPACE}]"), j, False
    if e in "bB":
        if in_class:
            return (r"\x{8}" if e == "b" else None), j, False
        return "\\" + e, j, True
    if e in "fnrtv":
        return "\\" + e, j, False
    if e == "0" and not (j < n and p[j].isdigit()):
        return r"\x{0}", j, False
    if e.isdigit():  # a backreference (or a legacy octal escape)
        while j < n and p[j].isdigit():
            j += 1
        return None, j, False
    if e == "k":
        k = p.find(">", j) if j < n and p[j] == "<" else -1
        return None, (k + 1 if k > 0 else j), False
    if e == "c":
        if j < n and p[j].isascii() and p[j].isalpha():
            return "\\x{%X}" % (ord(p[j]) % 32), j + 1, False
        return None, j, False
    if e == "x":
        h = p[j : j + 2]
        if len(h) == 2 and _HEX.fullmatch(h):
            return f"\\x{{{h}}}", j + 2, False
        return None, j, False
    if e == "u":
        if j < n and p[j] == "{":
            k = p.find("}", j)
            h = p[j + 1 : k] if k > 0 else ""
            if h and _HEX.fullmatch(h) and int(h, 16) <= 0x10FFFF and not 0xD800 <= int(h, 16) <= 0xDFFF:
                return f"\\x{{{h}}}", k + 1, False
            return None, (k + 1 if k > 0 else n), False
        h = p[j : j + 4]
        if len(h) == 4 and _HEX.fullmatch(h):
            cp = int(h, 16)
            if 0xD800 <= cp <= 0xDBFF and p.startswith("\\u", j + 4):
                low = p[j + 6 : j + 10]
                if len(low) == 4 and _HEX.fullmatch(low) and 0xDC00 <= int(low, 16) <= 0xDFFF:
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                    return f"\\x{{{cp:X}}}", j + 10, False
            if 0xD800 <= cp <= 0xDFFF:
                return None, j + 4, False
            return f"\\x{{{cp:X}}}", j + 4, False
        return None, j, False
    if e in "pP":
        if j < n and p[j] == "{":
            k = p.find("}", j)
            prop = _property(p[j + 1 : k]) if k > 0 else None
            if prop is None:
                return None, (k + 1 if k > 0 else n), False
            if prop == "Any" and e == "P":
                return None, k + 1, False
            return f"\\{e}{{{prop}}}", k + 1, False
        return None, j, False
    if e in "^$\\.*+?()[]{}|/" or (in_class and e == "-"):
        return "\\" + e, j, False
    return None, j, False  # an identity escape of the non-u syntax


def _char_class(p: str, i: int) -> tuple[str | None, int]:
    """The character class at ``p[i]`` (``[``) as RE2 text (or None), and the index after it."""
    n = len(p)
    j = i + 1
    neg = j < n and p[j] == "^"
    if neg:
        j += 1
    if j < n and p[j] == "]":  # ECMA: [] matches nothing, [^] any character
        return (r"[\x{0}-\x{10FFFF}]" if neg else None), j + 1
    out = ["[^" if neg else "["]
    ok = True
    while j < n and p[j] != "]":
        if p[j] == "\\":
            piece, j, _ = _escape(p, j, in_class=True)
            ok = ok and piece is not None
            out.append(piece or "")
        else:
            out.append("\\[" if p[j] == "[" else p[j])
            j += 1
    if j >= n:
        return None, n
    out.append("]")
    return ("".join(out) if ok else None), j + 1


def analyse(pattern: str) -> tuple[bool, str | None]:
    r"""(risky, the pattern in RE2 syntax or None).

    Risky: a group holding a variable quantifier (``+``, ``*``, ``?``, ``{m,n}``) or an
    alternation, directly or in a nested group, repeated by a quantifier that allows more than
    one repetition: ``(a+)+``, ``(a*)*``, ``(a|aa)+``, ``(\w+\s?)*``, ``(a+){10}``. The RE2 text is
    None when the pattern uses what RE2 cannot run exactly as ECMA-262 does (lookaround,
    backreferences, non-``u`` escapes, ``\S`` inside a class, ...).
    """
    out: list[str] = []
    ok = True
    stack: list[list[bool]] = [[False, False]]  # per open group: [variable quantifier, alternation]
    risky = False
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        closed: list[bool] | None = None
        atom = True
        if c == "\\":
            piece, i, assertion = _escape(pattern, i, in_class=False)
            ok = ok and piece is not None
            out.append(piece or "")
            atom = not assertion
        elif c == "[":
            piece, i = _char_class(pattern, i)
            ok = ok and piece is not None
            out.append(piece or "")
        elif c == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith(("(?=", "(?!"), i):
                ok = False
                i += 3
            elif pattern.startswith(("(?<=", "(?<!"), i):
                ok = False
                i += 4
            elif pattern.startswith("(?<", i):
                k = pattern.find(">", i)
                if k < 0:
                    return True, None
                out.append(f"(?P<{pattern[i + 3 : k]}>")
                i = k + 1
            elif pattern.startswith("(?", i):  # modifiers or worse: leave it to regress
                ok = False
                i += 2
            else:
                out.append("(")
                i += 1
            stack.append([False, False])
            continue
        elif c == ")":
            if len(stack) == 1:
                return True, None
            closed = stack.pop()
            stack[-1][0] = stack[-1][0] or closed[0]
            stack[-1][1] = stack[-1][1] or closed[1]
            out.append(")")
            i += 1
        elif c == "|":
            stack[-1][1] = True
            out.append("|")
            i += 1
            continue
        elif c == ".":
            out.append(_ECMA_DOT)
            i += 1
        elif c in "^$":
            out.append(c)
            i += 1
            atom = False
        else:
            out.append(c)
            i += 1
        q = _QUANT.match(pattern, i) if atom else None
        if q:
            if q.group(1):
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[q.group(1)]
            else:
                lo = int(q.group(2))
                hi = None if q.group(3) and not q.group(4) else int(q.group(4)) if q.group(4) else lo
            if hi is None or hi != lo:
                stack[-1][0] = True
            if closed is not None and (hi is None or hi > 1) and (closed[0] or closed[1]):
                risky = True
            out.append(q.group(0))
            i = q.end()
    if len(stack) != 1:
        return True, None
    return risky, ("".join(out) if ok else None)


_SHAPES: dict[str, tuple[bool, str | None]] = {}


def shape(pattern: str) -> tuple[bool, str | None]:
    """:func:`analyse`, cached, with the RE2 text kept only for ``u``-syntax patterns that RE2
    compiles."""
    got = _SHAPES.get(pattern)
    if got is None:
        try:
            risky, re2 = analyse(pattern)
        except (ValueError, IndexError):
            risky, re2 = True, None
        if risky and re2 is not None:
            compile_ecma(pattern)
            if not _U_FLAG.get(pattern) or _re2_search(re2, "") is None:
                re2 = None
        got = _SHAPES[pattern] = (risky, re2 if risky else None)
    return got


_RE2_OPTIONS: dict[str, Any] = {}


def _re2_search(re2: str, s: str) -> bool | None:
    """RE2 (linear time) search of ``s``; None if RE2 rejects the pattern or the string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        opts = _RE2_OPTIONS.get(re2)
        if opts is None:
            opts = _RE2_OPTIONS[re2] = pc.MatchSubstringOptions(re2)
        return bool(pc.match_substring_regex(pa.scalar(s, type=pa.string()), options=opts).as_py())
    except (pa.ArrowException, UnicodeError, ValueError):
        return None


def _helper_env() -> dict[str, str]:
    """The environment of the helper process: this one, with the folder holding ``graph`` first on
    its path, so that ``-m graph.schema.regex_helper`` is found wherever kb runs from."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root + (os.pathsep + path if path else "")}


class _RegexHelper:
    """regress in a child process (:mod:`kb.graph.schema.regex_helper`), so that a runaway match can be killed."""

    START_TIMEOUT = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._pid = os.getpid()
        self._lines: queue.Queue[str] = queue.Queue()

    def _start(self) -> subprocess.Popen[str] | None:
        if self._proc is not None and self._pid != os.getpid():
            self._proc = None  # a forked child does not share its parent's helper
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "kb.graph.schema.regex_helper"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                bufsize=1,
                env=_helper_env(),
            )
        except OSError:
            return None
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=pump, name="kb-regex-helper", daemon=True).start()
        self._proc, self._lines, self._pid = proc, lines, os.getpid()
        try:
            ready = lines.get(timeout=self.START_TIMEOUT)
        except queue.Empty:
            ready = ""
        if ready != "ready\n":
            self._stop()
            return None
        return proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                proc.kill()
                proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            for f in (proc.stdin, proc.stdout):
                try:
                    f.close()  # type: ignore[union-attr]
                except (OSError, ValueError):
                    pass

    def search(self, pattern: str, s: str, timeout: float) -> bool | None:
        """True/False, or None when the match ran out of time or the helper failed."""
        with self._lock:
            proc = self._start()
            if proc is None or proc.stdin is None:
                return None
            try:
                proc.stdin.write(json.dumps([pattern, s]) + "\n")
                proc.stdin.flush()
                answer = self._lines.get(timeout=timeout)
            except (OSError, ValueError, queue.Empty):
                answer = ""
            if answer not in ("0\n", "1\n"):
                self._stop()  # out of time (or dead): a runaway match is killed with its process
                return None
            return answer == "1\n"

    def close(self) -> None:
        with self._lock:
            self._stop()


_HELPER_PROCESS = _RegexHelper()
atexit.register(_HELPER_PROCESS.close)


@dataclass
class SkippedCheck:
    """A value not checked against a risky pattern (the match ran out of time)."""

    pattern: str
    length: int


class Guard:
    """Per validation run: risky patterns that timed out, and the helper's timeout budget."""

    def __init__(self) -> None:
        self.timed_out: dict[str, int] = {}  # pattern -> shortest value it ran out of time on
        self.timeouts = 0
        self.skipped: list[SkippedCheck] = []

    def search(self, pattern: str, s: str) -> bool | None:
        if len(s) >= self.timed_out.get(pattern, len(s) + 1) or self.timeouts >= REGEX_TIMEOUT_BUDGET:
            found = None
        else:
            found = _HELPER_PROCESS.search(pattern, s, REGEX_TIME_LIMIT)
            if found is None:
                self.timeouts += 1
                self.timed_out[pattern] = min(len(s), self.timed_out.get(pattern, len(s)))
        if found is None:
            self.skipped.append(SkippedCheck(pattern, len(s)))
        return found


_GUARD: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("kb_regex_guard", default=None)
_DEFAULT_GUARD = Guard()


def ecma_search(pattern: str, s: str) -> bool | None:
    """Whether ``pattern`` (ECMA-262, ``u`` flag as ajv) matches somewhere in ``s``; None when
    that could not be decided in time (a risky pattern that RE2 cannot run, whose match ran out of
    time). An invalid pattern matches everything: it is the schema's problem, not the value's."""
    fn = compile_ecma(pattern)
    if fn is None:
        return True
    risky, re2 = shape(pattern)
    if not risky:
        return fn(s)
    if re2 is not None:
        found = _re2_search(re2, s)
        if found is not None:
            return found
    return (_GUARD.get() or _DEFAULT_GUARD).search(pattern, s)


@contextlib.contextmanager
def guarded(guard: Guard) -> Iterator[Guard]:
    """Risky matches inside the block count against ``guard`` (one per validation run)."""
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)
