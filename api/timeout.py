"""The request timeout: an ASGI wrapper that answers 503 when a request runs too long.

Handlers run in worker threads, which cannot be interrupted: the wrapper stops *waiting* for a
request after ``seconds``, answers ``503`` with a JSON problem body (if nothing was sent yet) and
drops whatever the abandoned handler sends later. The thread finishes in the background.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["TimeoutMiddleware"]


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log "never retrieved"


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.seconds or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        state = {"started": False, "abandoned": False}

        async def guarded_send(message: Message) -> None:
            if state["abandoned"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if done:
            task.result()
            return
        state["abandoned"] = True
        task.add_done_callback(_consume)
        task.cancel()
        if state["started"]:
            return  # headers already went out: nothing sensible left to send
        body = json.dumps(
            {
                "status_code": 503,
                "detail": f"The request took longer than the server's {self.seconds:g} s limit (request_timeout, "
                "KB_REQUEST_TIMEOUT) and was abandoned. Retry, narrow the request, or raise the limit.",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
