"""Key paths: how kb names a value inside a parsed file.

``services.api.ports[0]`` — dots between mapping keys, ``[i]`` for sequence items; a key that is not
plain (a dot, a bracket, a space, a quote...) is quoted: ``labels["app.kubernetes.io/name"]``.
Parsers build key paths with :func:`key_join` / :func:`index_join`; readers take them apart with
:func:`split_key_path`. One definition, shared by ``ingest``, ``graph`` and ``kb``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["key_join", "index_join", "join_key_path", "split_key_path", "key_segments", "SEGMENT_RE", "SEGMENT"]

_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_\-$@/:+*]+$")

SEGMENT_RE = r'\["(?:[^"\\]|\\.)*"\]|\[[0-9]+\]|\.?[^.\[]+'
"""One segment: a quoted key (``["a.b"]``), an index (``[0]``) or a plain key (``.name``)."""
SEGMENT = re.compile(SEGMENT_RE)


def key_join(prefix: str, key: Any) -> str:
    """``key_join("services", "api") == "services.api"``; odd keys are quoted: ``a["b.c"]``."""
    k = str(key)
    if _PLAIN_KEY.match(k):
        return f"{prefix}.{k}" if prefix else k
    quoted = '["' + k.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return f"{prefix}{quoted}"


def index_join(prefix: str, i: int) -> str:
    return f"{prefix}[{i}]"


def join_key_path(parts: Iterable[Any]) -> str:
    """``["a", 0, "b.c"]`` -> ``a[0]["b.c"]`` (e.g. a JSON-Schema error path to a kb key path)."""
    out = ""
    for p in parts:
        out = index_join(out, p) if isinstance(p, int) else key_join(out, p)
    return out


@functools.lru_cache(maxsize=1 << 18)
def key_segments(key_path: str) -> tuple[str | int, ...]:
    """:func:`split_key_path` as a tuple, cached (key paths repeat across sibling files)."""
    out: list[str | int] = []
    for seg in SEGMENT.findall(key_path):
        if seg.startswith('["'):
            out.append(re.sub(r"\\(.)", r"\1", seg[2:-2]))
        elif seg.startswith("["):
            out.append(int(seg[1:-1]))
        else:
            out.append(seg[1:] if seg.startswith(".") else seg)
    return tuple(out)


def split_key_path(key_path: str) -> list[str | int]:
    """``'a.b[0]["c.d"]'`` -> ``['a', 'b', 0, 'c.d']``, the inverse of :func:`join_key_path`."""
    return list(key_segments(key_path))
