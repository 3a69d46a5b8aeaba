"""``GET /report`` (the health report page) and ``GET /report.json`` (the numbers behind it).

The page is the one ``kb report`` writes: self-contained, its script and styles inline. The report
is built from a read view (it never writes: no validation run, no health snapshot stored) and kept
for the catalogue generation it was built from, so a second request costs nothing until the next
re-ingest.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from litestar import MediaType, Response, get

from api.auth import require_read
from api.routes._params import Service, problems
from api.routes.meta import _PAGE_HEADERS

__all__ = ["report_page", "report_json"]

_cache: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, Any]]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _report(service: Any) -> dict[str, Any]:
    from kb.report import build_report

    with _lock:
        hit = _cache.get(service)
        if hit is not None and hit[0] == service.generation:
            return hit[1]
        generation = service.generation
        with service.reading() as view:
            data = build_report(view, service.settings, graph=service.graph(view))
        _cache[service] = (generation, data)
        return data


@get(
    "/report",
    guards=[require_read],
    sync_to_thread=True,
    responses=problems(401, 403),
    tags=["report"],
    media_type=MediaType.HTML,
)
def report_page(service: Service) -> Response[str]:
    """The health report: score, findings, duplication, drift, schema coverage, graph, changes, trends."""
    from kb.report import render_html

    return Response(render_html(_report(service)), media_type=MediaType.HTML, headers=_PAGE_HEADERS)


@get("/report.json", guards=[require_read], sync_to_thread=True, responses=problems(401, 403), tags=["report"])
def report_json(service: Service) -> dict[str, Any]:
    """The numbers behind the health report (what ``kb report --json`` prints)."""
    return _report(service)
