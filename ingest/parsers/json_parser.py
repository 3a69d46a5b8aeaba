"""JSON, JSONC and (leniently) JSON5, with a line number for every key and array item.

Two paths give the same result:

* Strict JSON without duplicate keys (nearly every file) takes the fast path: ``json.loads``
  builds the data, one regex scan lists the line where each value starts (a member's key line),
  and an iterative walk of the data pairs them up in document order: faster than the tokenizer
  below (``docs/performance.md``).
* Everything else goes to a regex tokenizer driving an explicit-stack state machine that builds
  the data, the records and the section boundaries in one pass: ``//`` and ``/* */`` comments
  and trailing commas (tsconfig, devcontainer, VS Code settings) are accepted silently, a
  duplicate key is a warning (the last value wins), and anything else that is not JSON is a
  ``parse-error`` naming the line and column, never quoting the source. Neither path recurses,
  so a 20,000-level array stops at ``Limits.max_depth`` in microseconds.

An escaped UTF-16 surrogate pair (``"\\ud83d\\ude00"``) is the character it encodes; a lone
surrogate (``"\\ud800"``), which no UTF-8 text can hold, becomes U+FFFD.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

from kb.ingest.parsers.base import (
    MAX_KEY_PATH_CHARS,
    Limits,
    duplicate_key,
    key_join,
    key_sections,
    line_col,
    paragraph_sections,
    parse_error,
    register,
    sections_from_ranges,
    split_lines,
)
from kb.types import ParsedFile, Problem, Record

__all__ = ["JsonParser", "parse_json"]

# Group numbers are shared by both token patterns: the state machine dispatches on ``lastindex``.
(_STRING, _OPEN, _CLOSE, _COMMA, _COLON, _NUMBER, _FRACTION, _LITERAL, _COMMENT, _IDENT, _JUNK) = range(1, 12)

_JSON_TOKEN = re.compile(
    r"""
    [ \t\r\n]*(?:
    ("[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*")          # 1 string
    |([{\[])                                              # 2 open
    |([}\]])                                              # 3 close
    |(,)                                                  # 4 comma
    |(:)                                                  # 5 colon
    |(-?(?:0|[1-9][0-9]*)((?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?))  # 6 number, 7 fraction/exponent
    |(true|false|null)                                    # 8 literal
    |(//[^\n]*|/\*.*?\*/)                                 # 9 comment
    |(\b\B)                                               # 10 identifier (JSON5 only)
    |(\S[^\s{}\[\],:"']*)                                 # 11 anything else: an error
    )""",
    re.VERBOSE | re.DOTALL,
)

_JSON5_TOKEN = re.compile(
    r"""
    [ \t\r\n]*(?:
    ("[^"\\\n]*(?:\\.[^"\\\n]*)*"|'[^'\\\n]*(?:\\.[^'\\\n]*)*')
    |([{\[])
    |([}\]])
    |(,)
    |(:)
    |([+-]?(?:0[xX][0-9a-fA-F]+|Infinity|NaN|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)())
    |((?:true|false|null)(?![\w$]))
    |(//[^\n]*|/\*.*?\*/)
    |([A-Za-z_$][\w$]*)
    |(\S[^\s{}\[\],:"']*)
    )""",
    re.VERBOSE | re.DOTALL,
)

_LITERALS = {"true": True, "false": False, "null": None}

# States of the machine
_VALUE, _VALUE_OR_CLOSE, _KEY_OR_CLOSE, _COLON_NEXT, _AFTER, _DONE = range(6)


class JsonParser:
    name = "json"
    suffixes = (".json", ".jsonc", ".json5", ".babelrc", ".eslintrc")
    filenames = (".babelrc", ".eslintrc")

    def parse(self, text: str, path: PurePosixPath, limits: Limits) -> ParsedFile:
        return parse_json(text, limits, json5=path.suffix.lower() == ".json5")


def parse_json(text: str, limits: Limits, *, json5: bool = False, fmt: str = "json") -> ParsedFile:
    """Parse JSON text into records, sections and one document."""
    if not json5:
        fast = _parse_plain_json(text, limits, fmt)
        if fast is not None:
            return fast
    return _parse_tokens(text, limits, json5=json5, fmt=fmt)


# ---------------------------------------------------------------------------------------------
# Fast path: strict JSON without duplicate keys (most files)
# ---------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# Where each value starts. A key's string is taken with its ':' so the value after it is skipped;
# punctuation and whitespace never match, so the scan steps over them without a Python iteration.
_VALUE_STARTS = re.compile(
    r"""("[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*")([ \t\r\n]*:)?|[{\[]|-?[0-9][0-9.eE+-]*|true|false|null"""
)
_INF = (float("inf"), float("-inf"))
# An escape that may be half of a UTF-16 surrogate pair (``\ud800``-``\udfff``); a false hit
# (``\\ud800``, an escaped backslash) only costs a check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _parse_plain_json(text: str, limits: Limits, fmt: str) -> ParsedFile | None:
    """``json.loads`` for the data, a regex scan for the lines; ``None``: use the tokenizer.

    The scan lists the line of every value in document order (for a mapping member, its key's
    line), which is the order an iterative pre-order walk of the data visits them. A duplicate key,
    a comment, a trailing comma, an error, excessive depth or a non-finite number sends the file to
    the tokenizer, which handles (and reports) them all.
    """
    if _SURROGATE_ESCAPE.search(text):
        return None  # lone surrogates to replace, and keys that may then collide
    try:
        data = _DECODER.decode(text)
    except (ValueError, RecursionError):
        return None
    value_lines: list[int] = []
    add = value_lines.append
    line = 1
    lpos = 0
    after_key = False
    count = text.count
    for m in _VALUE_STARTS.finditer(text):
        if m.lastindex == 2:  # a key: its line stands for the value that follows
            pos = m.start()
            line += count("\n", lpos, pos)
            lpos = pos
            add(line)
            after_key = True
        elif after_key:
            after_key = False
        else:
            pos = m.start()
            line += count("\n", lpos, pos)
            lpos = pos
            add(line)
    remaining = iter(value_lines)
    next_line = remaining.__next__
    max_depth = limits.max_depth
    max_records = limits.max_records
    records: list[Record] = []
    append = records.append
    tops: list[list[Any]] = []
    root_is_dict = type(data) is dict
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    pop, push = stack.pop, stack.append
    chars = 0
    try:
        while stack:
            path, value, depth = pop()
            vline = next_line()
            t = type(value)
            if depth == 1:
                if root_is_dict:
                    tops.append([path, vline, [], 0, t is dict])
                elif t is dict or t is list:
                    tops.append([path, vline, None, 0, True])
            elif depth == 2 and root_is_dict:
                tops[-1][2].append((path, vline))
                if t is dict or t is list:
                    tops[-1][3] += 1
            if t is dict:
                if not value:
                    append(Record(path, {}, vline))
                    continue
                if depth >= max_depth:
                    return None
                for k, v in reversed(value.items()):
                    kp = key_join(path, k)
                    chars += len(kp)
                    push((kp, v, depth + 1))
                if chars > MAX_KEY_PATH_CHARS:
                    return None  # the tokenizer reports it
            elif t is list:
                if not value:
                    append(Record(path, [], vline))
                    continue
                if depth >= max_depth:
                    return None
                for i in range(len(value) - 1, -1, -1):
                    push((f"{path}[{i}]", value[i], depth + 1))
            else:
                if t is float and value in _INF:
                    return None
                append(Record(path, value, vline))
                if len(records) > max_records:
                    return None
    except StopIteration:
        return None  # fewer values in the text than in the data: should not happen
    if next(remaining, None) is not None:
        return None  # values left over: a duplicate key hid one of them
    lines = split_lines(text)
    end = len(text.rstrip())
    last_end = count("\n", 0, end) + 1
    if end and lines[last_end - 1].strip() in ("}", "]"):
        last_end -= 1
    return ParsedFile(format=fmt, records=records, sections=_sections(lines, data, tops, last_end), documents=[data])


# ---------------------------------------------------------------------------------------------
# The tokenizer: JSONC, JSON5, duplicate keys, and every error with its line and column
# ---------------------------------------------------------------------------------------------


def _parse_tokens(text: str, limits: Limits, *, json5: bool, fmt: str) -> ParsedFile:
    label = "JSON5" if json5 else "JSON"
    lines = split_lines(text)
    records: list[Record] = []
    problems: list[Problem] = []
    overridden: list[tuple[int, int]] = []  # record index ranges of values a repeated key replaced
    # per top-level entry: [key_path, line, children, containers among children, value is object]
    tops: list[list[Any]] = []
    last_end = 0
    max_depth = limits.max_depth
    max_records = limits.max_records
    append = records.append

    # frame: [container, path, is_obj, line, key, key_path, key_line, {key: [first, end) records}]
    stack: list[list[Any]] = []
    root: Any = None
    state = _VALUE
    line = 1
    lpos = 0
    error: tuple[str, int] | None = None  # (what, pos)
    path_chars = 0

    for m in (_JSON5_TOKEN if json5 else _JSON_TOKEN).finditer(text):
        g = m.lastindex
        assert g is not None  # each alternative of the token patterns is a group
        if g == _COMMENT:
            continue
        pos = m.start(g)
        if state == _KEY_OR_CLOSE:
            if g in (_STRING, _IDENT):
                tok = m.group(g)
                if g == _IDENT:
                    key = tok
                elif "\\" in tok or tok[0] == "'":
                    try:
                        key = _decode_string(tok)
                    except ValueError:
                        error = ("invalid escape sequence in a key", pos)
                        break
                else:
                    key = tok[1:-1]
                line += text.count("\n", lpos, pos)
                lpos = pos
                frame = stack[-1]
                kp = key_join(frame[1], key)
                path_chars += len(kp)
                if path_chars > MAX_KEY_PATH_CHARS:
                    error = (
                        f"key paths add up to more than {MAX_KEY_PATH_CHARS:,} characters (very long keys nested deep)",
                        pos,
                    )
                    break
                spans = frame[7]
                if frame[4] is not None:
                    spans[frame[4]][1] = len(records)
                if key in frame[0]:
                    overridden.append(tuple(spans[key]))
                    problems.append(duplicate_key(kp, line))
                spans[key] = [len(records), len(records)]
                frame[4] = key
                frame[5] = kp
                frame[6] = line
                depth = len(stack)
                if depth == 1:
                    tops.append([kp, line, [], 0, False])
                elif depth == 2 and tops and stack[0][2]:
                    tops[-1][2].append((kp, line))
                state = _COLON_NEXT
                continue
            if g == _CLOSE and m.group(g) == "}":
                pass  # falls through to the close handling below
            else:
                error = (_expected_key(m, g), pos)
                break
        elif state == _COLON_NEXT:
            if g == _COLON:
                state = _VALUE
                continue
            error = ("expected ':' after the key", pos)
            break
        elif state == _AFTER:
            if g == _COMMA:
                state = _KEY_OR_CLOSE if stack[-1][2] else _VALUE_OR_CLOSE
                continue
            if g != _CLOSE or (m.group(g) == "}") != stack[-1][2]:
                error = ("expected ',' or '}'" if stack[-1][2] else "expected ',' or ']'", pos)
                break
        elif state == _DONE:
            error = ("unexpected content after the top-level value", pos)
            break
        else:  # _VALUE or _VALUE_OR_CLOSE
            if g == _CLOSE:
                if state != _VALUE_OR_CLOSE or m.group(g) != "]":
                    error = ("expected a value", pos)
                    break
            elif g in (_OPEN, _STRING, _NUMBER, _LITERAL):
                # where the value goes, its key path and line
                if stack:
                    frame = stack[-1]
                    parent = frame[0]
                    if frame[2]:
                        vpath = frame[5]
                        vline = frame[6]
                    else:
                        vpath = f"{frame[1]}[{len(parent)}]"
                        line += text.count("\n", lpos, pos)
                        lpos = pos
                        vline = line
                else:
                    parent = None
                    vpath = ""
                    line += text.count("\n", lpos, pos)
                    lpos = pos
                    vline = line
                depth = len(stack)
                if g == _OPEN:
                    is_obj = m.group(g) == "{"
                    value: Any = {} if is_obj else []
                    if depth >= max_depth:
                        error = (f"nesting deeper than {max_depth} levels", pos)
                        break
                    if depth == 1 and tops and stack[0][2]:
                        tops[-1][4] = is_obj
                    elif depth == 2 and tops and stack[0][2] and stack[1][2]:
                        tops[-1][3] += 1
                    elif depth == 1 and not stack[0][2]:
                        tops.append([vpath, vline, None, 0, True])
                    new_frame = [value, vpath, is_obj, vline, None, "", 0, {} if is_obj else None]
                    state = _KEY_OR_CLOSE if is_obj else _VALUE_OR_CLOSE
                else:
                    tok = m.group(g)
                    if g == _STRING:
                        if "\\" in tok or tok[0] == "'":
                            try:
                                value = _decode_string(tok)
                            except ValueError:
                                error = ("invalid escape sequence in a string", pos)
                                break
                        else:
                            value = tok[1:-1]
                    elif g == _LITERAL:
                        value = _LITERALS[tok]
                    elif json5:
                        value = _json5_number(tok)
                    elif m.group(_FRACTION):
                        value = float(tok)
                        if value in (float("inf"), float("-inf")):
                            value = tok
                    else:
                        value = int(tok) if len(tok) <= 4000 else tok  # past str(int)'s limit: text
                    append(Record(vpath, value, vline))
                    if len(records) > max_records:
                        error = (
                            f"more than {max_records} values; raise max_records_per_file if "
                            f"the file is genuinely that large",
                            pos,
                        )
                        break
                    new_frame = None
                    if depth == 1:
                        last_end = vline
                    state = _AFTER if stack else _DONE
                if parent is None:
                    root = value
                elif frame[2]:
                    parent[frame[4]] = value
                else:
                    parent.append(value)
                if new_frame is not None:
                    stack.append(new_frame)
                continue
            else:
                error = (_expected_value(m, g), pos)
                break
        # a closing bracket that matches the open container
        frame = stack.pop()
        if not frame[0]:
            append(Record(frame[1], {} if frame[2] else [], frame[3]))
        if len(stack) == 1:
            line += text.count("\n", lpos, pos)
            lpos = pos
            last_end = line
        state = _AFTER if stack else _DONE

    if error is None and state != _DONE:
        if state == _VALUE and not stack:
            return ParsedFile(format=fmt)  # empty, or only comments: the pipeline reports it
        opener = stack[-1]
        error = (
            f"unexpected end of file; the '{'{' if opener[2] else '['}' opened at line {opener[3]} is not closed",
            len(text.rstrip()),
        )
    if error is not None:
        what, pos = error
        eline, ecol = line_col(text, pos)
        problems.append(parse_error(label, what, eline, ecol))
        if overridden:
            records = _drop_overridden(records, overridden)
        return ParsedFile(format=fmt, records=records, sections=paragraph_sections(lines), problems=problems)

    if overridden:
        records = _drop_overridden(records, overridden)
    return ParsedFile(
        format=fmt,
        records=records,
        sections=_sections(lines, root, tops, last_end),
        problems=problems,
        documents=[root],
    )


def _sections(lines: list[str], root: Any, tops: list[list[Any]], last_end: int) -> list:
    if isinstance(root, dict) and tops:
        entries = []
        for kp, ln, children, n_containers, is_obj in tops:
            split = is_obj and children and n_containers * 2 >= len(children)
            entries.append((kp, ln, children if split else None))
        return key_sections(lines, entries, last_end, comments=("//", "/*", "*"))
    if isinstance(root, list) and tops and len(tops) * 2 >= len(root):
        return key_sections(lines, [(kp, ln, None) for kp, ln, *_ in tops], last_end, comments=("//", "/*", "*"))
    first = next((i for i, ln in enumerate(lines, 1) if ln.strip()), 1)
    last = len(lines)
    while last > first and not lines[last - 1].strip():
        last -= 1
    return sections_from_ranges(lines, [("", first, last)], "document")


def _drop_overridden(records: list[Record], spans: list[tuple[int, int]]) -> list[Record]:
    """Last wins: drop the records of the values that a repeated key replaced."""
    drop = bytearray(len(records))
    for first, end in spans:
        drop[first:end] = b"\x01" * (end - first)
    return [r for r, dropped in zip(records, drop) if not dropped]


def _decode_string(tok: str) -> str:
    if tok[0] == "'":  # JSON5 single quotes: re-quote for json.loads
        body = tok[1:-1].replace("\\'", "'").replace('"', '\\"')
        tok = f'"{body}"'
    try:
        value = json.loads(tok)
    except json.JSONDecodeError as exc:
        raise ValueError("bad escape") from exc
    if _SURROGATE_ESCAPE.search(tok):
        # json.loads joins a valid pair but keeps a lone surrogate, which UTF-8 cannot encode
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _json5_number(tok: str) -> Any:
    sign = -1 if tok.startswith("-") else 1
    body = tok.lstrip("+-")
    if body in ("Infinity", "NaN"):
        return tok
    if len(body) > 4000:
        return tok  # past str(int)'s limit: kept as text
    if body[:2].lower() == "0x":
        return sign * int(body, 16)
    if any(c in body for c in ".eE"):
        return sign * float(body)
    return sign * int(body)


def _expected_key(m: re.Match, g: int) -> str:
    tok = m.group(g)
    if g == _JUNK and tok[0] == "'":
        return "single-quoted key; JSON keys need double quotes"
    if g == _JUNK and tok[0] == '"':
        return "unterminated key string"
    if g in (_JUNK, _LITERAL, _NUMBER) and (tok[0].isalpha() or tok[0] in "_$"):
        return "unquoted key; JSON keys need double quotes"
    return "expected a double-quoted key or '}'"


def _expected_value(m: re.Match, g: int) -> str:
    tok = m.group(g)
    if g == _JUNK:
        if tok[0] == "'":
            return "single-quoted string; JSON strings need double quotes"
        if tok[0] == '"':
            return "unterminated string (or a raw control character inside it)"
        if tok.startswith("/*"):
            return "unterminated /* comment"
        return "expected a value (a string, number, object, array, true, false or null)"
    if g == _COMMA:
        return "expected a value, found ','"
    if g == _COLON:
        return "expected a value, found ':'"
    return "expected a value"


register(JsonParser())
