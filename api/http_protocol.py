"""uvicorn's HTTP protocol with kb's JSON error body for requests that never reach the app.

A request line or header block that uvicorn cannot parse (too long, malformed) is answered by the
protocol itself with a ``text/plain`` 400; every other kb error is JSON
``{"status_code": N, "detail": "..."}``. :func:`protocol_class` returns uvicorn's protocol (httptools
when installed, else h11) with that one answer in JSON, for ``uvicorn.Config(http=...)``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["protocol_class", "error_body"]


def error_body(msg: str) -> bytes:
    detail = f"Bad request: {msg}. Keep the request line and headers short (URLs under 8 KB)."
    return json.dumps({"status_code": 400, "detail": detail}).encode("utf-8")


def _send_json_400(self: Any, msg: str) -> None:
    body = error_body(msg)
    content = [b"HTTP/1.1 400 Bad Request\r\n"]
    for name, value in self.server_state.default_headers:
        content.extend([name, b": ", value, b"\r\n"])
    content.extend(
        [
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
    )
    self.transport.write(b"".join(content))
    self.transport.close()


def protocol_class() -> type:
    base: type
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # httptools not installed
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    return type("KbHttpProtocol", (base,), {"send_400_response": _send_json_400})
