"""``GET /metrics``: Litestar's Prometheus plugin and prometheus-client, one registry per app.

The plugin's middleware counts and times every request that reaches a route:
``kb_http_requests_total`` and the ``kb_http_request_duration_seconds`` histogram, labelled by
``method``, ``path`` (the route template, e.g. ``/files/{file_path}``), ``status_code`` and
``app_name`` (``kb``), with ``kb_http_requests_in_progress`` and ``kb_http_requests_error_total``
(5xx) beside them. Gauges read at scrape time (index size, ingest state) come from a collector.
Each app has its own registry, so two apps in one process never add to each other's counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

__all__ = ["Metrics", "BUCKETS", "CONTENT_TYPE", "PREFIX"]

CONTENT_TYPE = CONTENT_TYPE_LATEST.replace("; charset=utf-8", "")
"""Prometheus's text type without its charset: Litestar appends ``; charset=utf-8`` to a text
type itself, and a parameter given twice fails a strict parser (Go's ``mime.ParseMediaType``)."""
PREFIX = "kb_http"
BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

Gauges = Callable[[], dict[str, tuple[str, float]]]
"""Metric name -> (help, value), read at each scrape."""


@dataclass
class _Config(PrometheusConfig):
    """The plugin's configuration, with the registry its metrics go to."""

    registry: CollectorRegistry = field(default_factory=lambda: CollectorRegistry(auto_describe=True))
    metrics: dict[str, MetricWrapperBase] = field(default_factory=dict)


class _Middleware(PrometheusMiddleware):
    """The plugin's middleware, registering its metrics in the app's registry instead of
    prometheus-client's process-wide one."""

    _config: _Config

    def _metric(
        self, kind: type[MetricWrapperBase], suffix: str, doc: str, labels: dict[str, Any], **kwargs: Any
    ) -> Any:
        name = f"{self._config.prefix}_{suffix}"
        found = self._config.metrics.get(name)
        if found is None:
            found = self._config.metrics[name] = kind(
                name, doc, labelnames=[*labels], registry=self._config.registry, **kwargs
            )
        return found

    def request_count(self, labels: dict[str, Any]) -> Counter:
        return self._metric(Counter, "requests_total", "HTTP requests answered.", labels)

    def request_time(self, labels: dict[str, Any]) -> Histogram:
        return self._metric(
            Histogram, "request_duration_seconds", "Time to answer an HTTP request.", labels, **self._kwargs
        )

    def requests_in_progress(self, labels: dict[str, Any]) -> Gauge:
        return self._metric(Gauge, "requests_in_progress", "HTTP requests being answered.", labels)

    def requests_error_count(self, labels: dict[str, Any]) -> Counter:
        return self._metric(Counter, "requests_error_total", "HTTP requests answered with a 5xx status.", labels)


class _Gauges(Collector):
    def __init__(self, read: Gauges) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, value) in self.read().items():
            yield GaugeMetricFamily(name, help_text, value=value)


class Metrics:
    """One app's metrics: the plugin's request metrics and ``gauges``, in one registry."""

    def __init__(self, gauges: Gauges = dict, buckets: tuple[float, ...] = BUCKETS) -> None:
        self.config = _Config(
            app_name="kb", prefix=PREFIX, group_path=True, buckets=list(buckets), middleware_class=_Middleware
        )
        self.registry = self.config.registry
        self.registry.register(_Gauges(gauges))

    @property
    def middleware(self) -> Any:
        """The plugin's middleware, for ``Litestar(middleware=[...])``."""
        return self.config.middleware

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
