"""``GET /duplicates`` and ``GET /drift``."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar.params import Parameter

from kb.api.routes._params import Service, read
from kb.api.schemas import DriftResponse, DuplicatesResponse

__all__ = ["duplicates", "drift"]

Kind = Literal["exact", "canonical", "block", "near", "semantic"]


@read("/duplicates", tags=["duplicates"])
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
    groups = service.ready().duplicates(
        list(kind) if kind else None,
        as_frame=False,
        min_leaves=min_leaves,
        threshold=threshold,
        semantic_threshold=semantic_threshold,
        suggest=suggest,
    )
    return DuplicatesResponse(groups=list(groups))


@read("/drift", tags=["duplicates"])
def drift(service: Service) -> DriftResponse:
    """Sibling files (base/staging/production, values-*.yaml, .env.*) with missing or differing keys."""
    return DriftResponse(groups=list(service.ready().drift(as_frame=False)))
