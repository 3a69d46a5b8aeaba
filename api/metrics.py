"""Prometheus text exposition without a client library.

:class:`Metrics` keeps a request counter by method, route template and status, a latency histogram
by route template, and renders them together with gauges read at scrape time (index size, ingest
state). :class:`MetricsMiddleware` is an ASGI wrapper around the whole application, so requests that
match no route (404) or no method (405) are counted too, under the route label ``unmatched``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware", "BUCKETS", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Thread-safe counters and histograms; :meth:`render` gives the exposition text."""

    def __init__(self, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, str], int] = {}
        self._hist: dict[str, list[float]] = {}  # route -> [bucket counts..., +Inf count, sum]

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        with self._lock:
            self._requests[key] = self._requests.get(key, 0) + 1
            h = self._hist.get(route)
            if h is None:
                h = self._hist[route] = [0.0] * (len(self.buckets) + 2)
            for i, bound in enumerate(self.buckets):
                if seconds <= bound:
                    h[i] += 1
            h[-2] += 1
            h[-1] += seconds

    def render(self, gauges: dict[str, tuple[str, float]] | None = None) -> str:
        """Exposition text; ``gauges`` maps a metric name to (help, value)."""
        out: list[str] = [
            "# HELP kb_http_requests_total HTTP requests answered, by method, route template and status.",
            "# TYPE kb_http_requests_total counter",
        ]
        with self._lock:
            requests = sorted(self._requests.items())
            hist = {k: list(v) for k, v in sorted(self._hist.items())}
        for (method, route, status), n in requests:
            out.append(f'kb_http_requests_total{{method="{_label(method)}",route="{_label(route)}",'
                       f'status="{status}"}} {n}')
        out += [
            "# HELP kb_http_request_duration_seconds Time to answer an HTTP request, by route template.",
            "# TYPE kb_http_request_duration_seconds histogram",
        ]
        for route, h in hist.items():
            r = _label(route)
            for bound, n in zip(self.buckets, h):
                out.append(f'kb_http_request_duration_seconds_bucket{{route="{r}",le="{bound:g}"}} {int(n)}')
            out.append(f'kb_http_request_duration_seconds_bucket{{route="{r}",le="+Inf"}} {int(h[-2])}')
            out.append(f'kb_http_request_duration_seconds_sum{{route="{r}"}} {h[-1]:.6f}')
            out.append(f'kb_http_request_duration_seconds_count{{route="{r}"}} {int(h[-2])}')
        for name, (help_text, value) in (gauges or {}).items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            out.append(f"{name} {value:g}")
        return "\n".join(out) + "\n"


class MetricsMiddleware:
    """Times every HTTP request and counts it by route template and final status."""

    def __init__(self, app: "ASGIApp", metrics: Metrics, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.metrics = metrics
        self.clock = clock

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = self.clock()
        status = [500]

        async def observing_send(message: "Message") -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observing_send)
        finally:
            route: Any = scope.get("path_template") or "unmatched"
            self.metrics.observe(scope.get("method", "GET"), str(route), status[0], self.clock() - t0)
