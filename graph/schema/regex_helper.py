"""ECMA-262 pattern compilation, and the child process that runs risky patterns.

``python -m kb.graph.schema.regex_helper`` reads ``[pattern, string]`` JSON lines on stdin and
answers ``1`` (a match somewhere), ``0`` (none) or ``E`` (an error) per line, after a first line
``ready``. :mod:`kb.graph.schema.ecma_regex` starts it and kills it when a match runs out of time:
regress holds the GIL, so a runaway match cannot be stopped in-process. It imports nothing but
regress and the standard library, so it starts fast.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable

import regress

__all__ = ["compile_pattern", "main"]


def compile_pattern(pattern: str) -> tuple[Callable[[str], bool] | None, bool]:
    """A search function with ECMA-262 semantics (``u`` flag, as ajv) and whether the ``u`` flag
    was used; falls back to regress without flags, then Python's ``re``. ``(None, False)`` when no
    engine accepts the pattern."""
    for flags in ("u", None):
        try:
            rx = regress.Regex(pattern, flags=flags) if flags else regress.Regex(pattern)
        except Exception:
            continue
        return (lambda s, rx=rx: rx.find(s) is not None), flags == "u"
    try:
        cre = re.compile(pattern)
    except re.error:
        return None, False
    return (lambda s: cre.search(s) is not None), False


def main() -> None:
    cache: dict[str, Callable[[str], bool]] = {}
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        try:
            pattern, s = json.loads(line)
            if pattern not in cache:
                cache[pattern] = compile_pattern(pattern)[0] or (lambda _s: True)
            answer = "1" if cache[pattern](s) else "0"
        except Exception:
            answer = "E"
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
