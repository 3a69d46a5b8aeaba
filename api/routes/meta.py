"""``GET /`` (the search page), ``/stats``, ``/health`` (and ``HEAD /health``) and ``/metrics``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from litestar import MediaType, Request, Response, get, head

from kb.api.metrics import CONTENT_TYPE, Metrics
from kb.api.routes._params import Service, problems, read
from kb.api.schemas import Health, Stats
from kb.api.service import KBService

__all__ = ["index_page", "stats", "health", "health_head", "metrics", "service_gauges", "INDEX_HTML"]

INDEX_HTML = Path(__file__).resolve().parents[1] / "static" / "index.html"

# The page's script is inline (one file, no build step) and reaches only this origin.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@lru_cache(maxsize=1)
def _page() -> bytes:
    return INDEX_HTML.read_bytes()


@get("/", include_in_schema=False, sync_to_thread=False)
def index_page() -> Response[bytes]:
    """The search page (api/static/index.html)."""
    return Response(_page(), media_type=MediaType.HTML, headers=_PAGE_HEADERS)


@read("/stats", tags=["meta"])
def stats(service: Service) -> Stats:
    """Counts: files by format and status, records, chunks, findings by rule and severity, the last run."""
    st = service.ready().stats()
    st["db"] = str(st.get("db"))
    return Stats(**{name: st[name] for name in Stats.model_fields if name in st})


@get("/health", sync_to_thread=True, responses=problems(), tags=["meta"])
def health(service: Service) -> Health:
    """Liveness and readiness: 200 once the stores are open; index size and ingest state."""
    return _health(service)


@head("/health", sync_to_thread=True, responses=problems(), tags=["meta"])
def health_head(service: Service) -> None:
    """GET /health's status without its body, for probes that ask with HEAD."""
    _health(service)


def _health(service: KBService) -> Health:
    if service.kb.generation() is None:  # a KB the server is building: nothing published yet
        c = {"files": 0, "chunks": 0}
    else:
        c = service.ready().counts()
    return Health(
        status="ok",
        files=c["files"],
        chunks=c["chunks"],
        ingesting=service.ingesting,
        writable=service.writable,
        watching=service.watcher is not None,
        embedder=service.embedder_name,
        generation=service.generation,
        last_ingest_error=service.last_ingest_error,
    )


@read("/metrics", tags=["meta"], media_type=CONTENT_TYPE)
def metrics(request: Request) -> Response[bytes]:
    """Prometheus text exposition: requests by route and status, latency histogram, index size."""
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE)


def service_gauges(service: KBService) -> dict[str, tuple[str, float]]:
    """The gauges ``/metrics`` reads at each scrape: index size and ingest state."""
    gauges: dict[str, tuple[str, float]] = {}
    try:
        c = service.ready().counts()
    except Exception:
        c = None
    if c is not None:
        gauges["kb_index_files"] = ("Catalogued files.", c["files"])
        gauges["kb_index_chunks"] = ("Chunks in the search index.", c["chunks"])
        gauges["kb_index_records"] = ("Flattened records in the catalogue.", c["records"])
        gauges["kb_findings"] = ("Stored findings.", c["findings"])
    gauges["kb_ingest_running"] = ("1 while a re-ingest runs.", 1.0 if service.ingesting else 0.0)
    gauges["kb_ingest_runs"] = ("Re-ingests completed by this server.", service.ingests)
    gauges["kb_ingest_failures"] = ("Re-ingests that failed on this server.", service.ingest_failures)
    return gauges
