"""``GET /findings``: stored findings, worst first, filtered and paged."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.params import Parameter

from api import queries
from api.auth import require_read
from api.routes._params import Limit, Offset, PageNo, PathFilter, Service, problems, resolve_offset
from api.schemas import FindingsPage

__all__ = ["findings"]


@get("/findings", guards=[require_read], sync_to_thread=True, responses=problems(401, 403), tags=["findings"])
def findings(
    service: Service,
    rule: Annotated[str | None, Parameter(max_length=200, description="Only this rule, e.g. parse-error.")] = None,
    severity: Annotated[
        Literal["error", "warning", "info"] | None, Parameter(description="Only this severity.")
    ] = None,
    path: PathFilter = None,
    offset: Offset = 0,
    limit: Limit = 100,
    page: PageNo = None,
) -> FindingsPage:
    """Findings from ingest and the last validation (error first), with the total across pages."""
    start = resolve_offset(offset, limit, page)
    with service.reading() as view:
        total, rows = queries.findings_page(view, rule=rule, severity=severity, path=path, offset=start, limit=limit)
    return FindingsPage(total=total, offset=start, limit=limit, findings=rows)
