"""``GET /report`` (the health report page) and ``GET /report.json`` (the numbers behind it).

The page is the one ``kb report`` writes: self-contained, its script and styles inline. The report
is built from the newest generation without writing anything (no validation run, no health
snapshot stored) and kept by the KnowledgeBase for that generation, so a second request costs
nothing until the next re-ingest.
"""

from __future__ import annotations

from typing import Any

from litestar import MediaType, Response

from kb.api.routes._params import Service, read
from kb.api.routes.meta import _PAGE_HEADERS

__all__ = ["report_page", "report_json"]


@read("/report", tags=["report"], media_type=MediaType.HTML)
def report_page(service: Service) -> Response[str]:
    """The health report: score, findings, duplication, drift, schema coverage, graph, changes, trends."""
    kb = service.ready()
    html = kb.report_html(data=kb.report(validate=False, record=False))
    return Response(html, media_type=MediaType.HTML, headers=_PAGE_HEADERS)


@read("/report.json", tags=["report"])
def report_json(service: Service) -> dict[str, Any]:
    """The numbers behind the health report (what ``kb report --json`` prints)."""
    return service.ready().report(validate=False, record=False)
