"""``create_app(settings) -> Litestar``: the HTTP API around one knowledge base.

The stores and the embedder are opened once, at startup (:class:`kb.api.service.KBService`), and
closed at shutdown. Every error answers with ``{"status_code", "detail"}`` (:mod:`kb.api.errors`);
every request to a route is counted and timed by Litestar's Prometheus plugin (:mod:`kb.api.metrics`)
and abandoned with a 503 after ``settings.request_timeout`` seconds (:mod:`kb.api.timeout`). The OpenAPI document is at
``/schema/openapi.json`` with Swagger UI at ``/schema/swagger`` (and ReDoc at ``/schema/redoc``).

Example::

    from kb.api.app import create_app
    from kb.settings import Settings

    app = create_app(Settings.load({"db": ".kb"}))   # then: uvicorn, or litestar.testing.TestClient
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar, Request
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware.base import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from kb.api.errors import exception_handlers
from kb.api.metrics import Metrics
from kb.api.routes import ROUTES
from kb.api.routes.meta import service_gauges
from kb.api.service import KBService
from kb.api.timeout import TimeoutMiddleware
from kb.errors import BadRequestError
from kb.settings import Settings

__all__ = ["create_app"]


def _version() -> str:
    try:
        return version("kb")
    except PackageNotFoundError:  # pragma: no cover
        return "0"


def _provide_service(state: State) -> KBService:
    return state.service


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def allowed_hosts_for(bind: str, extra: Sequence[str] = ()) -> list[str] | None:
    """The ``Host`` header values ``kb serve --host BIND`` answers (None: any).

    Bound to a loopback interface, only loopback names: a web page that rebinds its own DNS name to
    127.0.0.1 (DNS rebinding) gets a 400, not the catalogue. Bound to one other address, that address
    and the loopback names; bound to every interface (``0.0.0.0``, ``::``), any name, since the
    names it is reached by are unknown. ``extra`` (``--allow-host``) adds names in every case.
    """
    if bind in ("0.0.0.0", "::", ""):
        return None
    hosts = list(LOOPBACK_HOSTS)
    if bind not in LOOPBACK_HOSTS:
        hosts.append(f"[{bind}]" if ":" in bind else bind)
    return hosts + [h for h in extra if h not in hosts]


def _host_guard(hosts: Sequence[str]) -> Callable[[Request], None]:
    """A ``before_request`` hook: a ``Host`` header (port aside) not in ``hosts`` is a 400 that
    says how to allow it, rendered by the one error handler like any kb error."""
    allowed = {h.lower().strip("[]") for h in hosts}

    def check(request: Request) -> None:
        raw = request.headers.get("host", "").strip().lower()
        name = raw[1 : raw.find("]")] if raw.startswith("[") else raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw
        if name not in allowed:
            raise BadRequestError(
                f"This server does not answer for host {raw!r}. Reach it as localhost, or start it with "
                "`kb serve --allow-host NAME` (or --host 0.0.0.0 to answer any name)."
            )

    return check


def create_app(
    settings: Settings,
    *,
    watch: bool = False,
    service: KBService | None = None,
    debug: bool = False,
    allowed_hosts: Sequence[str] | None = None,
) -> Litestar:
    """The API for the KB at ``settings.db``.

    ``watch=True`` re-ingests ``settings.root`` when files under it change. Re-ingests (watch or
    ``POST /ingest``) need a writable catalogue: it is opened read-write when ``settings.api_key``
    is set or ``watch`` is on, read-only otherwise (so ``kb sql`` and other readers can share it).
    ``service`` injects a ready-made :class:`KBService` (tests). ``allowed_hosts`` (see
    :func:`allowed_hosts_for`) limits the ``Host`` header answered; None answers any.
    """
    svc = service or KBService(settings, watch=watch)
    metrics = Metrics(lambda: service_gauges(svc))
    cors = None
    if settings.cors_origins:
        cors = CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    openapi = OpenAPIConfig(
        title="kb",
        version=_version(),
        description="A semantic knowledge base over a configuration tree: search, findings, files, "
        "duplicates, drift and the dependency graph.",
        path="/schema",
        render_plugins=[SwaggerRenderPlugin(path="/swagger"), RedocRenderPlugin(path="/redoc")],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="KB_API_KEY for POST /ingest; KB_API_READ_KEY (when set) for reads.",
                ),
            }
        ),
    )
    app = Litestar(
        route_handlers=ROUTES,
        dependencies={"service": Provide(_provide_service, sync_to_thread=False)},
        state=State({"service": svc, "metrics": metrics}),
        on_startup=[lambda: svc.open()],
        on_shutdown=[lambda: svc.close()],
        exception_handlers=exception_handlers(),
        # the plugin outside the timeout, so an abandoned request is counted as the 503 it answers
        middleware=[
            metrics.middleware,
            DefineMiddleware(TimeoutMiddleware, seconds=settings.request_timeout),
        ],
        before_request=_host_guard(allowed_hosts) if allowed_hosts else None,
        cors_config=cors,
        openapi_config=openapi,
        debug=debug,
    )
    return app
