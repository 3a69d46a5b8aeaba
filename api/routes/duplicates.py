"""``GET /duplicates`` and ``GET /drift``."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import get
from litestar.params import Parameter

from api.auth import require_read
from api.routes._params import Service, problems
from api.schemas import DriftResponse, DuplicatesResponse

__all__ = ["duplicates", "drift"]

Kind = Literal["exact", "canonical", "block", "near", "semantic"]


@get("/duplicates", guards=[require_read], sync_to_thread=True, responses=problems(401, 403), tags=["duplicates"])
def duplicates(
    service: Service,
    kind: Annotated[
        list[Kind] | None, Parameter(description="Kinds to report (repeatable); default all but semantic (opt-in).")
    ] = None,
    min_leaves: Annotated[int, Parameter(ge=1, le=10_000, description="Smallest block, in leaf keys.")] = 5,
    threshold: Annotated[float, Parameter(gt=0, le=1, description="Jaccard similarity for near duplicates.")] = 0.8,
    semantic_threshold: Annotated[float, Parameter(gt=0, le=1, description="Cosine for semantic duplicates.")] = 0.9,
    suggest: Annotated[
        bool, Parameter(description="Add a proposed base + overlays to near-duplicate file groups.")
    ] = False,
) -> DuplicatesResponse:
    """Duplicate groups: exact files, the same data in any format, repeated blocks, near and semantic duplicates."""
    from kb import duplicates as duplicates_module

    with service.reading() as view:
        groups = duplicates_module.find_duplicates(
            view,
            service.settings,
            kinds=list(kind) if kind else None,
            min_leaves=min_leaves,
            threshold=threshold,
            semantic_threshold=semantic_threshold,
            suggest=suggest,
        )
    return DuplicatesResponse(groups=list(groups))


@get("/drift", guards=[require_read], sync_to_thread=True, responses=problems(401, 403), tags=["duplicates"])
def drift(service: Service) -> DriftResponse:
    """Sibling files (base/staging/production, values-*.yaml, .env.*) with missing or differing keys."""
    from kb import drift as drift_module

    with service.reading() as view:
        groups = drift_module.find_drift(view, service.settings)
    return DriftResponse(groups=list(groups))
