"""Route handlers, one module per area; :data:`ROUTES` is what the app mounts.

The guards sit on routers, once: every read route is behind :func:`kb.api.auth.require_read`, the one
write route (``POST /ingest``) behind :func:`kb.api.auth.require_write`; ``/`` and ``/health`` stay open
(a browser and a load balancer reach them without a token).
"""

from __future__ import annotations

from litestar import Router
from litestar.types import ControllerRouterHandler

from kb.api.auth import require_read, require_write
from kb.api.routes.changes import blame, changes
from kb.api.routes.duplicates import drift, duplicates
from kb.api.routes.files import file_detail, files
from kb.api.routes.findings import findings
from kb.api.routes.graph import graph_deps, graph_impact
from kb.api.routes.ingest import ingest
from kb.api.routes.meta import health, health_head, index_page, metrics, stats
from kb.api.routes.report import report_json, report_page
from kb.api.routes.search import search

__all__ = ["ROUTES", "READS", "WRITES", "OPEN"]

READS: list[ControllerRouterHandler] = [
    search,
    findings,
    files,
    file_detail,
    duplicates,
    drift,
    graph_deps,
    graph_impact,
    changes,
    blame,
    report_page,
    report_json,
    stats,
    metrics,
]
"""The data routes: open unless ``KB_API_READ_KEY`` is set."""
WRITES: list[ControllerRouterHandler] = [ingest]
"""The routes that change the KB: only with ``KB_API_KEY``."""
OPEN: list[ControllerRouterHandler] = [index_page, health, health_head]
"""Reachable without a token."""

ROUTES: list[ControllerRouterHandler] = [
    *OPEN,
    Router("/", guards=[require_read], route_handlers=READS),
    Router("/", guards=[require_write], route_handlers=WRITES),
]
