"""Places inside a JSON document: RFC 6901 pointers (through ``referencing``), ``$anchor`` names,
and the resource a local ``#/pointer`` is relative to."""

from __future__ import annotations

from typing import Any

import referencing
from referencing.exceptions import PointerToNowhere

from kb.keypaths import split_key_path

__all__ = ["pointer_exists", "anchor_exists", "scope_for_local_ref"]

_RESOLVER = referencing.Registry().resolver()


def pointer_exists(data: Any, pointer: str) -> bool:
    """Whether RFC 6901 ``pointer`` (``/a/b/0``, percent-decoded) exists in ``data``."""
    if pointer and not pointer.startswith("/"):
        return False
    try:
        referencing.Resource.opaque(data).pointer(pointer, resolver=_RESOLVER)
    except (PointerToNowhere, ValueError, TypeError):  # a missing key or index, a non-numeric index
        return False
    return True


def anchor_exists(data: Any, name: str) -> bool:
    """Whether ``data`` declares ``name`` as an ``$anchor``, a ``$dynamicAnchor`` or an ``$id`` fragment."""
    stack = [data]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            if cur.get("$anchor") == name or cur.get("$dynamicAnchor") == name:
                return True
            for k in ("$id", "id"):
                v = cur.get(k)
                if isinstance(v, str) and v.endswith("#" + name):
                    return True
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


def scope_for_local_ref(data: Any, kp: str) -> Any:
    """The resource a ``#/pointer`` at ``kp`` is relative to: the nearest enclosing ``$id``."""
    cur = data
    scope = data
    for part in split_key_path(kp)[:-1]:
        # two arms, not one `or`: mypy pairs a str key with a dict and an int index with a list
        if isinstance(cur, dict) and isinstance(part, str) and part in cur:  # noqa: SIM114
            cur = cur[part]
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            break
        if isinstance(cur, dict) and isinstance(cur.get("$id"), str) and not cur["$id"].startswith("#"):
            scope = cur
    return scope
