"""One JSON problem body for every error the API answers.

Every response that is not a success has the body ``{"status_code": N, "detail": "..."}``, where
``detail`` says what was wrong and how to fix it:

* :class:`kb.errors.KBError` and its subclasses map through a single handler that uses
  ``exc.status_code`` (a ``NotIndexedError`` is a 404, a ``BadRequestError`` a 400, ...);
* Litestar's own HTTP exceptions (routing 404/405, 401/403 from the guards, 400 from parameter
  validation) keep their status code; parameter-validation messages are rewritten to name the
  parameter and its allowed range;
* anything else is a 500 with a generic message: the traceback goes to the server log, never to
  the client.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException

from kb.errors import KBError

if TYPE_CHECKING:  # pragma: no cover
    from litestar import Request
    from litestar.types import ExceptionHandlersMap

__all__ = ["ServiceUnavailableError", "problem", "exception_handlers", "PARAMETER_HINTS"]

log = logging.getLogger("kb.api")


class ServiceUnavailableError(KBError, TimeoutError):
    """The server could not answer in time (request timeout, index busy); retry later."""

    status_code = 503


PARAMETER_HINTS: dict[str, str] = {
    "q": "Send a query of 1 to 1,000 characters, e.g. ?q=fraud+review+threshold.",
    "k": "Ask for 1 to 100 hits, e.g. k=10.",
    "mode": "Use mode=hybrid, mode=semantic or mode=keyword.",
    "limit": "Use a page size (limit) from 1 to 500 and page with offset or page.",
    "offset": "Use an offset of 0 or more.",
    "page": "Use a page number of 1 or more (with limit as the page size).",
    "severity": "Use severity=error, severity=warning or severity=info.",
    "kind": "Use kind=exact, canonical, block, near or semantic (repeatable).",
    "threshold": "Use a Jaccard threshold in (0, 1], e.g. 0.8.",
    "semantic_threshold": "Use a cosine threshold in (0, 1], e.g. 0.9.",
    "min_leaves": "Use min_leaves of 1 or more (default 5).",
    "path": "Give a path relative to the corpus root, e.g. path=services/payments/config/base.yaml.",
    "since": "Use a run id (12), a date (2024-05-01), a UTC time (2024-05-01T12:00) or an age (7d, 12h).",
    "key": "Give a key path such as database.timeout, or a pattern like *timeout*.",
    "change": "Use change=added, removed, changed, moved or broken.",
}


def problem(status_code: int, detail: str, headers: dict[str, str] | None = None) -> Response[dict[str, Any]]:
    """The JSON problem response."""
    return Response(
        content={"status_code": status_code, "detail": detail},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _kb_error(request: Request[Any, Any, Any], exc: KBError) -> Response[dict[str, Any]]:
    status = int(getattr(exc, "status_code", 500) or 500)
    if status >= 500 and not isinstance(exc, ServiceUnavailableError):
        log.error("kb error on %s %s: %s", request.method, request.url.path, exc.message)
    return problem(status, exc.message)


def _validation_detail(exc: ValidationException) -> str:
    extra = exc.extra if isinstance(exc.extra, list) else []
    parts: list[str] = []
    hints: list[str] = []
    for item in extra:
        if not isinstance(item, dict):
            continue
        key = str(item.get("key") or "")
        source = item.get("source") or "request"
        source = getattr(source, "value", source)
        message = str(item.get("message") or "invalid value")
        parts.append(f"{source} parameter '{key}': {message}" if key else f"{source}: {message}")
        hint = PARAMETER_HINTS.get(key)
        if hint and hint not in hints:
            hints.append(hint)
    if not parts:
        return exc.detail or "Bad request: check the parameters against /schema."
    return "Invalid " + "; ".join(parts) + ". " + " ".join(hints or ["See /schema for the allowed values."])


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    if isinstance(exc, ValidationException):
        detail = _validation_detail(exc)
    elif status == 404 and exc.detail in ("", "Not Found"):
        detail = f"No route for {request.method} {request.url.path}. See /schema for the endpoints."
    elif status == 405:
        detail = f"Method {request.method} is not allowed on {request.url.path}. See /schema for the endpoints."
    else:
        detail = exc.detail or "Error"
    return problem(status, detail, headers=getattr(exc, "headers", None))


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal server error: the server log has the details. Please report it.")


def exception_handlers() -> ExceptionHandlersMap:
    return {KBError: _kb_error, HTTPException: _http_error, Exception: _unexpected}
