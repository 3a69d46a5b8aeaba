"""JSON Schema validation of catalogued documents. The only module that imports ``jsonschema``,
``referencing`` and ``regress``.

Which schema a file gets, first match wins:

1. the schema map (``--schema-map`` flags, then ``[tool.kb] schema_map``): ``GLOB=SCHEMA`` pairs,
   GLOB relative to the corpus root with ``*``, ``**``, ``?`` and ``{name}`` captures that SCHEMA
   may use (``schemastore/src/test/{name}/**=schemastore/src/schemas/json/{name}.json``);
2. the file's own ``$schema`` (or ``# yaml-language-server: $schema=`` modeline): a path relative to
   the file, or a URL that a schema in the tree declares as its ``$id`` or that a catalog maps;
3. a SchemaStore-style catalog in the tree (``{"schemas": [{"fileMatch": [...], "url": ...}]}``)
   whose ``url`` is served by a schema in the tree.

Validation follows what SchemaStore's own CI (ajv) accepts, so that the verdicts match upstream's:
drafts 4, 6, 7, 2019-09 and 2020-12 (draft 7 when ``$schema`` is absent); ECMA-262 regular
expressions through ``regress`` (named groups, ``\\p{L}``); ``const``, ``contains``,
``propertyNames`` and ``if``/``then``/``else`` honoured in draft-4/6 schemas as ajv does; the
ajv-formats formats checked (``date-time``, ``uri``, ``email``, ...), unknown formats ignored;
``$ref``s resolved offline through ``referencing`` against the schemas in the tree. A ``$ref`` that
needs the network makes that file unvalidatable: it is skipped, never guessed.

A ``pattern`` that can backtrack catastrophically (``^(a+)+$``) cannot hang validation: such a
pattern runs on RE2 in linear time when it is a true regular expression, else in a helper process
under a time limit; a value not checked in time is reported as such, never passed silently (see
"ECMA-262 regular expressions" below).
"""

from __future__ import annotations

import atexit
import contextvars
import ipaddress
import json
import os
import posixpath
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jsonschema
import referencing
import referencing.jsonschema
import regress
from jsonschema import _keywords, validators
from jsonschema.exceptions import ValidationError, best_match
from referencing.exceptions import NoSuchResource, Unresolvable

from kb.errors import ConfigError

from graph.refs import Corpus, SchemaIndex
from kb.keypaths import join_key_path

__all__ = ["SchemaMap", "SchemaValidator", "SkippedCheck", "Violation", "choose_schemas", "ecma_search",
           "parse_schema_map"]

FILE_BASE = "kbfile:///"
MAX_ERRORS_PER_DOCUMENT = 20
_REDACTED = "[REDACTED:"

# ---------------------------------------------------------------------------------------------
# The schema map
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaMapEntry:
    glob: str
    schema: str
    regex: re.Pattern[str]


def _glob_regex(glob: str, *, captures: bool = True) -> re.Pattern[str]:
    """A glob as a regex over corpus-relative paths: ``**``, ``*``, ``?``, and either ``{name}``
    captures (schema maps) or ``{a,b}`` alternatives (catalog ``fileMatch``)."""
    out, i = [], 0
    g = glob.strip()[2:] if glob.strip().startswith("./") else glob.strip()
    while i < len(g):
        c = g[i]
        if g.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif g.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "{" and not captures:
            j = g.find("}", i)
            if j < 0:
                raise ConfigError(f"Glob '{glob}': unclosed '{{'.")
            alts = [re.escape(a).replace(r"\*", "[^/]*") for a in g[i + 1:j].split(",")]
            out.append("(?:" + "|".join(alts) + ")")
            i = j + 1
        elif c == "{":
            j = g.find("}", i)
            name = g[i + 1:j] if j > 0 else ""
            if j < 0 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ConfigError(f"Schema map glob '{glob}': '{{' must open a capture like {{name}}.")
            out.append(f"(?P<{name}>[^/]+)")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if "/" not in g:
        body = "(?:.*/)?" + body  # a bare name matches in any folder
    return re.compile(body + r"\Z")


def parse_schema_map(items: Iterable[str]) -> list[SchemaMapEntry]:
    """``["GLOB=SCHEMA", ...]`` -> entries; a malformed item is a :class:`ConfigError`."""
    entries = []
    for item in items:
        glob, sep, schema = item.partition("=")
        if not sep or not glob.strip() or not schema.strip():
            raise ConfigError(
                f"Bad schema map entry '{item}': expected GLOB=SCHEMA, e.g. 'config/*.json=schemas/config.json'.")
        regex = _glob_regex(glob.strip())
        names = set(regex.groupindex)
        for used in re.findall(r"\{([^}]*)\}", schema):
            if used not in names:
                raise ConfigError(f"Schema map entry '{item}': SCHEMA uses {{{used}}} but GLOB does not capture it.")
        entries.append(SchemaMapEntry(glob.strip(), schema.strip(), regex))
    return entries


class SchemaMap:
    def __init__(self, entries: list[SchemaMapEntry]) -> None:
        self.entries = entries

    def match(self, path: str) -> tuple[str, str] | None:
        """(schema path, the entry's GLOB) for ``path``, or None."""
        for e in self.entries:
            m = e.regex.match(path)
            if m:
                schema = e.schema
                for k, v in m.groupdict().items():
                    schema = schema.replace("{" + k + "}", v)
                return posixpath.normpath(schema) if not schema.startswith("/") else schema, e.glob
        return None


# ---------------------------------------------------------------------------------------------
# ECMA-262 regular expressions, guarded against catastrophic backtracking
# ---------------------------------------------------------------------------------------------
#
# regress backtracks, as every ECMA-262 engine (and ajv) does: a pattern with nested quantifiers
# (``^(a+)+$``, ``(a|aa)*``, ``^(\w+\s?)*$``) takes time exponential in the length of a value it
# does not match (``^(a+)+$`` against 40 ``a``s and a ``!``: days), and regress holds the GIL, so it
# cannot be interrupted. Such a pattern is *risky* (:func:`_analyse`: a group that holds a variable
# quantifier or an alternation, itself repeated). A risky pattern never runs through regress in
# this process:
#
# 1. when it is a regular expression RE2 can run (strict ``u``-flag syntax, no lookaround, no
#    backreference), it is translated to RE2 syntax keeping ECMA's meaning of ``.``, ``\s`` and
#    ``\S``, and pyarrow's RE2 runs it in linear time: an exact verdict, hostile input or not;
# 2. otherwise regress runs it in a helper process with a time limit of ``REGEX_TIME_LIMIT``
#    seconds per match. A match that runs out of time leaves the value *not checked*: that is
#    reported (a violation saying so, never a silent pass); the pattern is not tried again in that
#    validation run on values as long or longer, and after ``REGEX_TIMEOUT_BUDGET`` timeouts every
#    further risky check that needs the helper is reported unchecked at once, so a hostile tree
#    costs seconds, not hours.
#
# Patterns that are not risky run through regress in-process, as before.

REGEX_TIME_LIMIT = 1.0
"""Seconds one risky pattern may take on one value in the helper process."""
REGEX_TIMEOUT_BUDGET = 5
"""Helper timeouts per validation run before risky checks that need it are no longer tried."""

_RE_CACHE: dict[str, Callable[[str], bool] | None] = {}


def _compile(pattern: str) -> Callable[[str], bool] | None:
    """A search function with ECMA-262 semantics (``u`` flag, as ajv), or None if invalid.

    Unguarded: :func:`ecma_search` is the entry point for matching."""
    if pattern in _RE_CACHE:
        return _RE_CACHE[pattern]
    fn: Callable[[str], bool] | None = None
    for flags in ("u", None):
        try:
            r = regress.Regex(pattern, flags=flags) if flags else regress.Regex(pattern)
        except Exception:  # noqa: BLE001 - regress raises its own error type
            continue
        fn = (lambda rx: (lambda s: rx.find(s) is not None))(r)
        _U_FLAG[pattern] = flags == "u"
        break
    if fn is None:
        try:
            cre = re.compile(pattern)
            fn = lambda s: cre.search(s) is not None  # noqa: E731
        except re.error:
            fn = None
    _RE_CACHE[pattern] = fn
    return fn


_U_FLAG: dict[str, bool] = {}  # pattern -> compiled by regress with the u flag

# -- static analysis and RE2 translation -------------------------------------------------------

_QUANT = re.compile(r"(?:([*+?])|\{(\d+)(?:(,)(\d*))?\})\??")
_ECMA_SPACE = (r"\t\n\x0B\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
               r"\x{FEFF}")
_ECMA_DOT = r"[^\n\r\x{2028}\x{2029}]"
_GENERAL_CATEGORIES = {
    "Letter": "L", "Uppercase_Letter": "Lu", "Lowercase_Letter": "Ll", "Titlecase_Letter": "Lt",
    "Modifier_Letter": "Lm", "Other_Letter": "Lo", "Mark": "M", "Combining_Mark": "M",
    "Nonspacing_Mark": "Mn", "Spacing_Mark": "Mc", "Enclosing_Mark": "Me", "Number": "N",
    "Decimal_Number": "Nd", "digit": "Nd", "Letter_Number": "Nl", "Other_Number": "No",
    "Punctuation": "P", "punct": "P", "Connector_Punctuation": "Pc", "Dash_Punctuation": "Pd",
    "Open_Punctuation": "Ps", "Close_Punctuation": "Pe", "Initial_Punctuation": "Pi",
    "Final_Punctuation": "Pf", "Other_Punctuation": "Po", "Symbol": "S", "Math_Symbol": "Sm",
    "Currency_Symbol": "Sc", "Modifier_Symbol": "Sk", "Other_Symbol": "So", "Separator": "Z",
    "Space_Separator": "Zs", "Line_Separator": "Zl", "Paragraph_Separator": "Zp", "Control": "Cc",
    "cntrl": "Cc", "Format": "Cf", "Private_Use": "Co", "Surrogate": "Cs",
}
# ``C`` and ``Cn`` are left out on purpose: RE2's tables have no unassigned code points.
_RE2_CATEGORIES = {v for v in _GENERAL_CATEGORIES.values()}
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
        h = p[j:j + 2]
        if len(h) == 2 and _HEX.fullmatch(h):
            return "\\x{%s}" % h, j + 2, False
        return None, j, False
    if e == "u":
        if j < n and p[j] == "{":
            k = p.find("}", j)
            h = p[j + 1:k] if k > 0 else ""
            if h and _HEX.fullmatch(h) and int(h, 16) <= 0x10FFFF and not 0xD800 <= int(h, 16) <= 0xDFFF:
                return "\\x{%s}" % h, k + 1, False
            return None, (k + 1 if k > 0 else n), False
        h = p[j:j + 4]
        if len(h) == 4 and _HEX.fullmatch(h):
            cp = int(h, 16)
            if 0xD800 <= cp <= 0xDBFF and p.startswith("\\u", j + 4):
                low = p[j + 6:j + 10]
                if len(low) == 4 and _HEX.fullmatch(low) and 0xDC00 <= int(low, 16) <= 0xDFFF:
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                    return "\\x{%X}" % cp, j + 10, False
            if 0xD800 <= cp <= 0xDFFF:
                return None, j + 4, False
            return "\\x{%X}" % cp, j + 4, False
        return None, j, False
    if e in "pP":
        if j < n and p[j] == "{":
            k = p.find("}", j)
            prop = _property(p[j + 1:k]) if k > 0 else None
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


def _analyse(pattern: str) -> tuple[bool, str | None]:
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
                out.append(f"(?P<{pattern[i + 3:k]}>")
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


def _shape(pattern: str) -> tuple[bool, str | None]:
    """:func:`_analyse`, cached, with the RE2 text kept only for ``u``-syntax patterns that RE2
    compiles."""
    got = _SHAPES.get(pattern)
    if got is None:
        try:
            risky, re2 = _analyse(pattern)
        except (ValueError, IndexError):
            risky, re2 = True, None
        if risky and re2 is not None:
            _compile(pattern)
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


# -- the helper process for risky patterns RE2 cannot run --------------------------------------

_HELPER = r"""
import json, re, sys
import regress
cache = {}
def comp(p):
    for flags in ("u", None):
        try:
            r = regress.Regex(p, flags=flags) if flags else regress.Regex(p)
            return lambda s: r.find(s) is not None
        except Exception:
            pass
    try:
        c = re.compile(p)
        return lambda s: c.search(s) is not None
    except re.error:
        return lambda s: True
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in sys.stdin:
    try:
        p, s = json.loads(line)
        if p not in cache:
            cache[p] = comp(p)
        answer = "1" if cache[p](s) else "0"
    except Exception:
        answer = "E"
    sys.stdout.write(answer + "\n"); sys.stdout.flush()
"""


class _RegexHelper:
    """regress in a child process, so that a runaway match can be killed."""

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
            proc = subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, encoding="utf-8", bufsize=1)
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


class _Guard:
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


_GUARD: contextvars.ContextVar[_Guard | None] = contextvars.ContextVar("kb_regex_guard", default=None)
_DEFAULT_GUARD = _Guard()


def ecma_search(pattern: str, s: str) -> bool | None:
    """Whether ``pattern`` (ECMA-262, ``u`` flag as ajv) matches somewhere in ``s``; None when
    that could not be decided in time (a risky pattern that RE2 cannot run, whose match ran out of
    time). An invalid pattern matches everything: it is the schema's problem, not the value's."""
    fn = _compile(pattern)
    if fn is None:
        return True
    risky, re2 = _shape(pattern)
    if not risky:
        return fn(s)
    if re2 is not None:
        found = _re2_search(re2, s)
        if found is not None:
            return found
    return (_GUARD.get() or _DEFAULT_GUARD).search(pattern, s)


def _unchecked(what: str, pattern: str) -> ValidationError:
    return ValidationError(
        f"{what} was not checked against the pattern {pattern!r}: it can backtrack catastrophically "
        f"(nested quantifiers like (a+)+), matching was stopped at {REGEX_TIME_LIMIT:g} s; simplify the pattern")


def _pattern(validator, patrn, instance, schema):
    if validator.is_type(instance, "string"):
        found = ecma_search(patrn, instance)
        if found is None:
            yield _unchecked(_short(instance), patrn)
        elif not found:
            yield ValidationError(f"{_short(instance)} does not match {patrn!r}")


def _pattern_properties(validator, patterns, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for k, v in instance.items():
            found = ecma_search(pattern, k)
            if found is None:
                yield _unchecked(f"The property name {_short(k)}", pattern)
            elif found:
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _extras(instance, schema) -> list[str]:
    """Properties that no ``properties`` or ``patternProperties`` entry covers. A name whose
    match against a pattern could not be decided in time counts as covered: the
    ``patternProperties`` keyword reports it as not checked."""
    props = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}) or {})
    return [k for k in instance if k not in props and not any(ecma_search(p, k) is not False for p in patterns)]


def _additional_properties(validator, ap, instance, schema):
    if not validator.is_type(instance, "object"):
        return
    extras = _extras(instance, schema)
    if validator.is_type(ap, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], ap, path=extra)
    elif not ap and extras:
        names = ", ".join(repr(e) for e in sorted(extras, key=str))
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            yield ValidationError(f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: {patterns}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({names} {'was' if len(extras) == 1 else 'were'} unexpected)")


_DATE = re.compile(r"^(\d\d\d\d)-(\d\d)-(\d\d)$")
_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?)(z|([+-])(\d\d)(?::?(\d\d))?)?$", re.I)
_DURATION = re.compile(r"^P(?!$)((\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?|(\d+W)?)$")
_URI_CHARS = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*:" + _URI_CHARS + r"*(?:#" + _URI_CHARS + r"*)?$")
_URI_REF = re.compile(r"^" + _URI_CHARS + r"*(?:#(?:" + _URI_CHARS + r"|#)*)?$")
_URI_TEMPLATE = re.compile(r"^(?:(?:[^\x00-\x20\"'<>%\\^`{|}]|%[0-9a-f]{2})|\{[+#./;?&=,!@|]?(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?(?:,(?:[a-z0-9_]|%[0-9a-f]{2})+(?::[1-9][0-9]{0,3}|\*)?)*\})*$", re.I)
_URL = re.compile(r"^(?:https?|ftp)://[^\s/$.?#].[^\s]*$", re.I)
_EMAIL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$", re.I)
_HOSTNAME = re.compile(r"^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$", re.I)
_IPV4 = re.compile(r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$")
_UUID = re.compile(r"^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$", re.I)
_JSON_POINTER = re.compile(r"^(?:/(?:[^~/]|~0|~1)*)*$")
_REL_JSON_POINTER = re.compile(r"^(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~0|~1)*)*)$")
_BYTE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _is_date(s: str) -> bool:
    m = _DATE.match(s)
    if not m:
        return False
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return 1 <= mo <= 12 and 1 <= d <= (29 if mo == 2 and leap else _DAYS[mo])


def _is_time(s: str, *, strict_tz: bool = True) -> bool:
    m = _TIME.match(s)
    if not m:
        return False
    hr, mn, sec = int(m.group(1)), int(m.group(2)), float(m.group(3))
    tz = m.group(4)
    if strict_tz and not tz:
        return False
    tzs = -1 if m.group(5) == "-" else 1
    tzh, tzm = int(m.group(6) or 0), int(m.group(7) or 0)
    if tzh > 23 or tzm > 59:
        return False
    if hr <= 23 and mn <= 59 and sec < 60:
        return True
    utc_m = mn - tzm * tzs
    utc_h = hr - tzh * tzs - (1 if utc_m < 0 else 0)
    return (utc_h == 23 or utc_h == -1) and (utc_m == 59 or utc_m == -1) and sec < 61


def _is_date_time(s: str) -> bool:
    parts = re.split(r"t|\s", s, maxsplit=1, flags=re.I)
    return len(parts) == 2 and _is_date(parts[0]) and _is_time(parts[1])


def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
        return True
    except ValueError:
        return False


def _is_regex(s: str) -> bool:
    return _compile(s) is not None


_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _is_date,
    "time": _is_time,
    "date-time": _is_date_time,
    "iso-time": lambda s: _is_time(s, strict_tz=False),
    "iso-date-time": lambda s: (lambda p: len(p) == 2 and _is_date(p[0]) and _is_time(p[1], strict_tz=False))(
        re.split(r"t|\s", s, maxsplit=1, flags=re.I)),
    "duration": lambda s: bool(_DURATION.match(s)),
    "uri": lambda s: bool(_URI.match(s)),
    "uri-reference": lambda s: bool(_URI_REF.match(s)),
    "uri-template": lambda s: bool(_URI_TEMPLATE.match(s)),
    "url": lambda s: bool(_URL.match(s)),
    "email": lambda s: bool(_EMAIL.match(s)),
    "hostname": lambda s: bool(_HOSTNAME.match(s)),
    "ipv4": lambda s: bool(_IPV4.match(s)),
    "ipv6": _is_ipv6,
    "regex": _is_regex,
    "uuid": lambda s: bool(_UUID.match(s)),
    "json-pointer": lambda s: bool(_JSON_POINTER.match(s)),
    "json-pointer-uri-fragment": lambda s: s.startswith("#") and bool(_JSON_POINTER.match(unquote_fragment(s[1:]))),
    "relative-json-pointer": lambda s: bool(_REL_JSON_POINTER.match(s)),
    "byte": lambda s: bool(_BYTE.match(s)),
}
_NUMBER_FORMATS: dict[str, Callable[[Any], bool]] = {
    "int32": lambda n: isinstance(n, int) and -(2**31) <= n <= 2**31 - 1,
    "int64": lambda n: isinstance(n, int),
    "float": lambda n: True,
    "double": lambda n: True,
}


def unquote_fragment(s: str) -> str:
    return unquote(s)


def _format_checker() -> jsonschema.FormatChecker:
    fc = jsonschema.FormatChecker(formats=())
    for name, fn in _STRING_FORMATS.items():
        fc.checks(name)((lambda f: (lambda inst: not isinstance(inst, str) or f(inst)))(fn))
    for name, fn in _NUMBER_FORMATS.items():
        fc.checks(name)((lambda f: (lambda inst: isinstance(inst, bool) or not isinstance(inst, (int, float)) or f(inst)))(fn))
    return fc


FORMAT_CHECKER = _format_checker()

# ---------------------------------------------------------------------------------------------
# ajv-like validator classes
# ---------------------------------------------------------------------------------------------

_COMMON = {"pattern": _pattern, "patternProperties": _pattern_properties,
           "additionalProperties": _additional_properties}
_LATER = {"const": _keywords.const, "contains": _keywords.contains,
          "propertyNames": _keywords.propertyNames, "if": _keywords.if_}


def _ajv(cls: type, extra: dict[str, Any]) -> type:
    return validators.extend(cls, {**extra, **_COMMON})


_DRAFTS: dict[str, type] = {
    "draft4": _ajv(jsonschema.Draft4Validator, {k: v for k, v in _LATER.items()}),
    "draft6": _ajv(jsonschema.Draft6Validator, {"if": _keywords.if_}),
    "draft7": _ajv(jsonschema.Draft7Validator, {}),
    "2019-09": _ajv(jsonschema.Draft201909Validator, {}),
    "2020-12": _ajv(jsonschema.Draft202012Validator, {}),
}
_SPECS = {
    "draft4": referencing.jsonschema.DRAFT4, "draft6": referencing.jsonschema.DRAFT6,
    "draft7": referencing.jsonschema.DRAFT7, "2019-09": referencing.jsonschema.DRAFT201909,
    "2020-12": referencing.jsonschema.DRAFT202012,
}


def _dialect(schema: Any) -> str:
    s = schema.get("$schema", "") if isinstance(schema, dict) else ""
    s = s if isinstance(s, str) else ""
    for key, name in (("draft-04", "draft4"), ("draft-03", "draft4"), ("draft-06", "draft6"),
                      ("draft-07", "draft7"), ("2019-09", "2019-09"), ("2020-12", "2020-12")):
        if key in s:
            return name
    return "draft7"


def _short(v: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(v, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# Loading schemas offline
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Violation:
    """One schema violation at ``key_path`` of document ``doc``."""

    doc: int
    key_path: str
    message: str
    schema_path: str


class SchemaValidator:
    """Validates documents against schemas in (or named from) the tree, offline."""

    def __init__(self, corpus: Corpus, index: SchemaIndex) -> None:
        self.corpus = corpus
        self.index = index
        self._contents: dict[str, Any] = {}
        self._validators: dict[str, Any] = {}
        self.errors: dict[str, str] = {}  # schema path -> why it cannot be used
        self.guard = _Guard()  # risky patterns whose matches ran out of time, in this run
        self.registry = referencing.Registry(retrieve=self._retrieve)  # type: ignore[call-arg]

    @property
    def skipped_checks(self) -> list[SkippedCheck]:
        """Values not checked against a risky pattern in this run (each is also a violation)."""
        return self.guard.skipped

    # -- contents -------------------------------------------------------------------------------

    def load(self, path: str) -> Any:
        """A schema's contents by corpus path (or absolute path on disk), with a base id."""
        if path in self._contents:
            return self._contents[path]
        data = None
        if not path.startswith("/") and path in self.corpus.formats:
            data = self.corpus.document(path)
            if data is None:
                self.corpus.load_documents([path])
                data = self.corpus.document(path)
        if data is None:
            disk = Path(path) if path.startswith("/") else (self.corpus.root / path if self.corpus.root else None)
            if disk is not None and disk.is_file():
                try:
                    text = disk.read_text(encoding="utf-8-sig")
                    if disk.suffix in (".yaml", ".yml"):
                        import yaml

                        data = yaml.safe_load(text)
                    else:
                        data = json.loads(text)
                except (OSError, ValueError, UnicodeDecodeError) as exc:
                    self.errors[path] = f"cannot read it: {exc}"
                except Exception as exc:  # noqa: BLE001 - yaml errors
                    self.errors[path] = f"cannot parse it: {type(exc).__name__}"
        if isinstance(data, dict):
            data = dict(data)
            idkey = "id" if _dialect(data) == "draft4" else "$id"
            own = data.get(idkey)
            if not (isinstance(own, str) and "://" in own):
                data[idkey] = FILE_BASE + path.lstrip("/")
        elif data is not None and not isinstance(data, bool):
            self.errors[path] = "it is not a JSON Schema (not an object)"
            data = None
        self._contents[path] = data
        return data

    def _retrieve(self, uri: str) -> referencing.Resource:
        path: str | None
        if uri.startswith(FILE_BASE):
            path = posixpath.normpath(uri[len(FILE_BASE):].split("#", 1)[0])
            if path not in self.corpus.formats and not self.corpus.exists(path):
                path = None
        elif "://" in uri or uri.startswith("urn:"):
            path = self.index.lookup(uri)
        else:
            # a relative $ref with no base (draft 7 ignores $id next to $ref; ajv does not):
            # a schema in the tree with that name, if there is exactly one
            cands = self.index.by_base.get(posixpath.basename(uri.split("#", 1)[0]), [])
            path = cands[0] if len(cands) == 1 else None
        contents = self.load(path) if path else None
        if contents is None:
            raise NoSuchResource(ref=uri)
        return referencing.Resource.from_contents(contents, default_specification=_SPECS[_dialect(contents)])

    def validator_for(self, schema_path: str) -> Any:
        if schema_path in self._validators:
            return self._validators[schema_path]
        schema = self.load(schema_path)
        v = None
        if schema is not None:
            cls = _DRAFTS[_dialect(schema)]
            try:
                v = cls(schema, registry=self.registry, format_checker=FORMAT_CHECKER)
            except Exception as exc:  # noqa: BLE001
                self.errors[schema_path] = f"invalid schema: {exc}"
        self._validators[schema_path] = v
        return v

    # -- validation -----------------------------------------------------------------------------

    def validate(self, schema_path: str, documents: list[tuple[int, Any]]) -> list[Violation] | None:
        """Violations of each ``(doc, data)``; None when the schema cannot be used offline."""
        v = self.validator_for(schema_path)
        if v is None:
            return None
        out: list[Violation] = []
        for doc, data in documents:
            data = _normalise(data)
            token = _GUARD.set(self.guard)
            try:
                errors = list(v.iter_errors(data))
            except (Unresolvable, jsonschema.exceptions._WrappedReferencingError) as exc:  # type: ignore[attr-defined]
                self.errors[schema_path] = f"a $ref needs a schema that is not in the tree ({_unresolved(exc)})"
                return None
            except (RecursionError, re.error) as exc:
                self.errors[schema_path] = f"the validator failed: {type(exc).__name__}"
                return None
            finally:
                _GUARD.reset(token)
            kept = 0
            for e in sorted(errors, key=lambda e: list(map(str, e.absolute_path))):
                if _is_redacted(e):
                    continue
                kept += 1
                if kept > MAX_ERRORS_PER_DOCUMENT:
                    out.append(Violation(doc, "", f"... and {len(errors) - MAX_ERRORS_PER_DOCUMENT} more violations "
                                         "in this document", ""))
                    break
                desc = _describe(e)
                if data is None and not e.absolute_path:
                    desc = f"the document is empty: {desc}"
                out.append(Violation(doc, join_key_path(e.absolute_path), desc,
                                     "/".join(str(p) for p in e.absolute_schema_path)))
        return out


def _unresolved(exc: Exception) -> str:
    ref = getattr(exc, "ref", None) or getattr(getattr(exc, "_wrapped", None), "ref", None)
    return str(ref) if ref else type(exc).__name__


def _is_redacted(e: ValidationError) -> bool:
    """Errors about a value kb redacted (a secret) are about the marker, not the value."""
    def red(x: Any) -> bool:
        return isinstance(x, str) and x.startswith(_REDACTED)

    if red(e.instance):
        return True
    if e.context and all(red(c.instance) for c in e.context):
        return True
    return False


def _describe(e: ValidationError) -> str:
    msg = e.message
    if e.validator in ("oneOf", "anyOf") and e.context:
        best = best_match(e.context)
        where = join_key_path(best.absolute_path)
        detail = best.message if len(best.message) < 200 else best.message[:197] + "..."
        subject = "is valid under more than one" if "more than one" in msg or "valid under each" in msg else \
            "matches none"
        msg = f"{_short(e.instance, 60)} {subject} of the '{e.validator}' alternatives" + (
            f"; closest: {('at ' + where + ': ') if where and where != join_key_path(e.absolute_path) else ''}{detail}"
            if subject == "matches none" else "")
    elif len(msg) > 300:
        msg = msg[:297] + "..."
    return msg


def _normalise(data: Any) -> Any:
    """Undo what is not part of the data: a byte-order mark glued to the first key (YAML that
    puts a BOM after a comment line)."""
    if isinstance(data, dict) and any(isinstance(k, str) and k.startswith("\ufeff") for k in data):
        return {(k.lstrip("\ufeff") if isinstance(k, str) else k): v for k, v in data.items()}
    return data


# ---------------------------------------------------------------------------------------------
# Choosing a schema per file
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Choice:
    path: str
    schema: str
    why: str  # "schema map 'GLOB'", "$schema", "catalog <file>"
    line: int | None = None


_VALIDATED_FORMATS = ("json", "yaml", "toml")


def choose_schemas(corpus: Corpus, index: SchemaIndex, schema_map: SchemaMap,
                   schema_refs: dict[str, tuple[str, int | None]],
                   declared: set[str] | frozenset[str] = frozenset()) -> list[Choice]:
    """The schema each structured file is validated against (files without one are left out).

    ``schema_refs`` maps a file to its resolved ``$schema``/modeline target (from the references);
    ``declared`` holds files whose ``$schema`` could not be resolved offline: a catalog does not
    second-guess them.
    Order: the schema map, the file's ``$schema``, Helm's ``values.schema.json`` for a chart's
    ``values.yaml``, then the catalogs. A file that several catalog entries (with different
    schemas) claim is left alone: guessing between them makes false alarms (``manifest.json``
    is a web app manifest and a browser extension manifest).
    """
    catalog = []
    for cpath, globs, url in index.catalog_entries:
        for g in globs:
            if g.startswith("!"):
                continue
            g = g.lstrip("/")
            try:
                rx = _glob_regex(g if g.startswith("**/") or "/" not in g else "**/" + g, captures=False)
            except (ConfigError, re.error):
                continue
            catalog.append((rx, url, cpath))
    out: list[Choice] = []
    for path, fmt in sorted(corpus.formats.items()):
        if fmt not in _VALIDATED_FORMATS:
            continue
        m = schema_map.match(path) if schema_map.entries else None
        if m:
            out.append(Choice(path, m[0], f"schema map '{m[1]}'"))
            continue
        if path in schema_refs:
            target, line = schema_refs[path]
            out.append(Choice(path, target, "$schema", line))
            continue
        folder, name = posixpath.split(path)
        if name == "values.yaml" and posixpath.join(folder, "Chart.yaml") in corpus.formats:
            helm_schema = posixpath.join(folder, "values.schema.json")
            if helm_schema in corpus.formats:
                out.append(Choice(path, helm_schema, "Helm's values.schema.json"))
            continue
        if path in index.schema_files or path in declared or not catalog:
            continue  # a schema is not validated against a catalog entry for its own name
        urls = {url: cpath for rx, url, cpath in catalog if rx.match(path)}
        if len(urls) == 1:
            url, cpath = next(iter(urls.items()))
            local = index.lookup(url)
            if local and local != path:
                out.append(Choice(path, local, f"catalog {cpath}"))
    return out
