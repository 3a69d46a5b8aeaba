"""Route handlers, one module per area; :data:`ROUTES` lists every handler the app mounts."""

from __future__ import annotations

from api.routes.changes import blame, changes
from api.routes.duplicates import drift, duplicates
from api.routes.files import file_detail, files
from api.routes.findings import findings
from api.routes.graph import graph_deps, graph_impact
from api.routes.ingest import ingest
from api.routes.meta import health, index_page, metrics, stats
from api.routes.report import report_json, report_page
from api.routes.search import search

__all__ = ["ROUTES"]

ROUTES = [
    index_page,
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
    health,
    metrics,
    ingest,
]
