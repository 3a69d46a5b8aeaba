"""Bearer-token guards.

* Reads are open unless ``api_read_key`` (``KB_API_READ_KEY``) is set; then every data endpoint
  needs ``Authorization: Bearer <read key>`` (the write key is accepted too).
* ``POST /ingest`` needs ``api_key`` (``KB_API_KEY``): unset, writes are disabled (403 saying how
  to enable them); set, a missing or malformed header is a 401 and a wrong token a 403.

``/``, ``/health`` and ``/schema`` stay open so a load balancer and a browser can reach them.
Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

if TYPE_CHECKING:  # pragma: no cover
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

    from kb.settings import Settings

__all__ = ["require_read", "require_write", "bearer_token"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kb"'}


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, or None."""
    header = connection.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _matches(token: str, *keys: str | None) -> bool:
    ok = False
    for key in keys:
        if key:
            ok |= hmac.compare_digest(token.encode("utf-8", "surrogatepass"), key.encode("utf-8", "surrogatepass"))
    return ok


def _settings(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    return connection.app.state.service.settings


def require_read(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    s = _settings(connection)
    if not s.api_read_key:
        return
    token = bearer_token(connection)
    if token is None:
        raise NotAuthorizedException(
            "This server requires a read token: send 'Authorization: Bearer <token>' (the value of KB_API_READ_KEY).",
            headers=_CHALLENGE,
        )
    if not _matches(token, s.api_read_key, s.api_key):
        raise PermissionDeniedException("The bearer token is not valid for reading; check KB_API_READ_KEY.")


def require_write(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    s = _settings(connection)
    if not s.api_key:
        raise PermissionDeniedException(
            "Writes are disabled on this server. Start it with KB_API_KEY set (e.g. KB_API_KEY=$(openssl rand -hex 16) "
            "kb serve ...) and send 'Authorization: Bearer <that key>'."
        )
    token = bearer_token(connection)
    if token is None:
        raise NotAuthorizedException(
            "POST /ingest requires 'Authorization: Bearer <token>' with the value of KB_API_KEY.",
            headers=_CHALLENGE,
        )
    if not _matches(token, s.api_key):
        raise PermissionDeniedException("The bearer token is not valid for writing; send the value of KB_API_KEY.")
