"""``POST /ingest``: an incremental re-ingest of the configured root (needs ``KB_API_KEY``)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from kb.api.routes._params import Service, problems
from kb.api.schemas import IngestStarted
from kb.types import RunSummary

__all__ = ["ingest"]


@post(
    "/ingest",
    status_code=200,
    tags=["ingest"],
    security=[{"bearer": []}],
    responses={
        202: ResponseSpec(IngestStarted, description="Still running after the wait; poll GET /health."),
        **problems(401, 403, 409),
    },
)
async def ingest(
    service: Service,
    wait: Annotated[bool, Parameter(description="Wait for the run (up to most of the request timeout).")] = True,
) -> Response[RunSummary | IngestStarted]:
    """Re-ingest the root incrementally: only changed files are parsed and embedded.

    Searches keep answering from the previous state until the new one is complete. Requests that
    arrive while a run is in progress are folded into one follow-up run.
    """
    future = service.request_ingest()
    if wait:
        budget = max(0.1, service.settings.request_timeout * 0.8)
        try:
            summary = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), budget)
        except TimeoutError:
            pass
        else:
            return Response(summary, status_code=200)
    return Response(
        IngestStarted(
            status="running", detail="The re-ingest is running; GET /health shows ingesting=false when it is done."
        ),
        status_code=202,
    )
