"""create_app(settings): every router, the console, error envelopes, the embedded worker."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from sheaf import __version__, openapi
from sheaf.auth.accesslog import redact_access_log
from sheaf.auth.endpoints import router as auth_router
from sheaf.config import Settings
from sheaf.console import router as console_router
from sheaf.errors import BadRequest, RateLimited, SheafError, Unauthorized
from sheaf.fastpath import FastPaths
from sheaf.finance import jobs as _finance_jobs  # noqa: F401  (registers handlers)
from sheaf.finance.api import is_mx_path, is_nexus_path
from sheaf.finance.api import router as finance_router
from sheaf.finance.api.fastpath import ROUTE as aggregate_route
from sheaf.identity import jobs as _identity_jobs  # noqa: F401  (registers handlers)
from sheaf.identity.api import router as identity_router
from sheaf.identity.api.fastpath import ROUTE as task_status_route
from sheaf.jobs.endpoints import router as jobs_router
from sheaf.jobs.presence import Presence
from sheaf.kit.base import new_id
from sheaf.migrate import upgrade
from sheaf.runtime import Runtime
from sheaf.utility import errors as utility_errors
from sheaf.utility import jobs as _utility_jobs  # noqa: F401  (registers handlers)
from sheaf.utility.api import router as utility_router

log = logging.getLogger(__name__)


def sailpoint_error(status: int, detail_code: str, text: str, causes: list[str] | None = None
                    ) -> JSONResponse:
    """SailPoint's ErrorResponseDto."""
    def message(t: str) -> dict[str, Any]:
        return {"locale": "en-US", "localeOrigin": "DEFAULT", "text": t}

    return JSONResponse(
        status_code=status,
        content={"detailCode": detail_code, "trackingId": new_id(),
                 "messages": [message(text)], "causes": [message(c) for c in causes or []]},
    )


def _native(request: Request) -> bool:
    return request.url.path.startswith("/api/jobs")


def mx_error(request: Request, exc: SheafError) -> JSONResponse:
    """MX's ``{"error": {...}}``: a four-digit code (HTTP status and a digit, 4011 for an
    expired Nexus session), the status and a message saying what to do."""
    code = int(exc.detail_code) if exc.detail_code.isdigit() else exc.status_code * 10
    nexus = is_nexus_path(request.url.path)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
    if isinstance(exc, Unauthorized) and not nexus:
        headers = {"WWW-Authenticate": 'Basic realm="MX Platform API"'}
    return JSONResponse(
        status_code=exc.status_code, headers=headers,
        media_type="application/vnd.mx.nexus.v1+json" if nexus
        else "application/vnd.mx.api.v1+json",
        content={"error": {"code": code, "status": exc.status_code, "message": exc.message}})


def render_error(request: Request, exc: SheafError) -> JSONResponse:
    if is_mx_path(request.url.path):
        return mx_error(request, exc)
    if utility_errors.PATH.match(request.url.path):
        return utility_errors.render(exc)
    if _native(request):
        return JSONResponse(status_code=exc.status_code,
                            content={"error": {"code": exc.detail_code, "message": exc.message}})
    if isinstance(exc, Unauthorized):
        return JSONResponse(status_code=401, content={"error": exc.message})
    if isinstance(exc, RateLimited):
        return JSONResponse(status_code=429, content={"message": " Rate Limit Exceeded "},
                            headers={"Retry-After": str(exc.retry_after)})
    return sailpoint_error(exc.status_code, exc.detail_code, exc.message, exc.causes)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SheafError)
    async def on_sheaf_error(request: Request, exc: SheafError) -> JSONResponse:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        if utility_errors.PATH.match(request.url.path):
            return utility_errors.render(utility_errors.from_validation(exc.errors()))
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where or 'body'}: {err.get('msg')}")
        return render_error(request, BadRequest("The request is not valid: " + "; ".join(problems),
                                                causes=problems))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith("/console"):  # a browser: keep its Basic challenge
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                                headers=exc.headers)
        error = SheafError(str(exc.detail))
        error.status_code = exc.status_code
        error.detail_code = {400: BadRequest.detail_code, 404: "404 Not found",
                             405: "405 Method Not Allowed"}.get(
            exc.status_code, f"{exc.status_code}")
        return render_error(request, error)

    @app.exception_handler(DataError)
    async def on_data_error(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the client sent (PostgreSQL: a NUL character in
        # text, a string longer than its column, a number out of range): the request is
        # wrong, not the server.
        log.info("value refused by the database on %s %s: %s", request.method,
                 request.url.path, exc.orig)
        if "NUL" in str(exc.orig):
            message = "Text in the request cannot contain the NUL (0x00) character"
        else:
            message = "A value in the request does not fit (too long, or out of range)"
        return render_error(request, BadRequest(message))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(request, SheafError("An internal fault occurred."))


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               *, migrate: bool = True,
               make_runtime: Callable[[Settings], Runtime] = Runtime.build) -> FastAPI:
    """The app; without ``runtime`` it builds one with ``make_runtime`` on startup and
    closes it on shutdown."""
    settings = settings or (runtime.settings if runtime else Settings())
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redact_access_log()  # (again: the server may have configured logging meanwhile)
        rt = runtime
        if rt is None:
            if migrate:
                upgrade(settings)
            rt = make_runtime(settings)
        app.state.runtime = rt
        rt.executor.start()
        # A server that runs jobs itself says so in the data directory, and picks up the
        # jobs the CLI submits (see sheaf.jobs.presence).
        presence = (Presence(rt.settings, rt.db, rt.executor.submit)
                    if rt.settings.jobs.executor == "local" else None)
        if presence is not None:
            presence.start()
        if runtime is None:  # (a server's app, not a test's)
            # What exists now (modules, the app, its routes, the runtime) lives as long as
            # the process: out of the collector's reach, a full collection walks only what
            # requests left behind. Before, one took 80-110 ms under load, and every
            # request of the process waited for it (issue 11's aggregate endpoint).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if presence is not None:
                presence.stop()
            if runtime is None:
                rt.close()

    # Swagger UI's script and styles come from the fastapi-offline package, not a CDN: the
    # docs of an offline install must not be a blank page.
    app = FastAPIOffline(title="sheaf", version=__version__, lifespan=lifespan,
                         description=openapi.DESCRIPTION, redoc_url=None,
                         static_url="/docs-assets", openapi_tags=openapi.TAGS,
                         swagger_ui_parameters={"persistAuthorization": True},
                         # (sheaf exports no OpenTelemetry: FastAPI would still look for a
                         # provider in os.environ on every request, 6% of a poll's CPU)
                         telemetry={"tracing": False, "metrics": False, "logs": False})
    if runtime is not None:
        app.state.runtime = runtime
    _install_error_handlers(app)
    app.add_middleware(FastPaths, routes=[task_status_route, aggregate_route])

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        """A browser opening the server's address lands on the console."""
        return RedirectResponse("/console/", status_code=307)

    @app.get("/healthz", tags=["meta"], summary="Liveness")
    def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok", "version": __version__}

    app.include_router(auth_router)
    app.include_router(jobs_router)
    app.include_router(identity_router)
    app.include_router(finance_router)
    app.include_router(utility_router)
    app.include_router(console_router)
    openapi.install(app)
    return app
