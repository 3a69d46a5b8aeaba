"""``GET /findings``: stored findings, worst first, filtered and paged."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

from kb.api.routes._params import Limit, Offset, PageNo, PathFilter, Service, read, resolve_offset
from kb.api.schemas import FindingsPage

__all__ = ["findings"]


@read("/findings", tags=["findings"])
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
    return service.ready().findings_page(rule=rule, severity=severity, path=path, offset=start, limit=limit)
