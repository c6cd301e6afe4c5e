"""The web workspace: server-rendered pages over the same service functions the CLI calls.

create_app wires the pieces: the signed cookie (CSRF token, the server-side session's token, one
flash message), security headers on every answer, the error pages (service refusals 409/404,
malformed parameters 400, roles and CSRF 403) and the routers of web/routes, which do the work.
Service errors become a message page: the service refused before changing anything.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from reconcile.config import Config
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.services.daily import utcnow
from reconcile.web import routes
from reconcile.web.common import HERE, BadRequest, NeedLogin, Refused, Stale, make_web, message

# scripts and styles come only from /static; the report (its own inline styles) sets a narrower one
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def create_app(
    engine: Engine,
    config: Config,
    *,
    secret_key: str | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    """The ASGI app. `secret_key` signs cookies ($RECONCILE_WEB_SECRET, else random per process);
    `clock` (tests) replaces the wall clock for sessions and actions."""
    app = FastAPI(title="reconcile", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.web = make_web(engine, config, clock or utcnow)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key
        or os.environ.get("RECONCILE_WEB_SECRET")
        or secrets.token_urlsafe(32),
        session_cookie="reconcile_session",
        same_site="strict",
        https_only=config.web.secure_cookie,
        max_age=config.web.session_absolute_hours * 3600,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, _exc: NeedLogin) -> Response:
        if request.method != "GET":
            return RedirectResponse("/login", status_code=303)
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return message(request, "Not allowed", str(exc), 403)

    @app.exception_handler(Stale)
    async def stale(request: Request, exc: Stale) -> Response:
        return message(request, "This page is out of date", str(exc), 409)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> Response:
        return message(request, "Not understood", f"{exc} Nothing was changed.", 400)

    @app.exception_handler(RequestValidationError)
    async def malformed(request: Request, exc: RequestValidationError) -> Response:
        where = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:3])
        return message(
            request,
            "Not understood",
            f"The request's {where or 'parameters'} could not be read. Nothing was changed.",
            400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return message(
            request,
            "Not found" if exc.status_code == 404 else "Error",
            str(exc.detail),
            exc.status_code,
        )

    @app.exception_handler(ReconcileError)
    async def service_refused(request: Request, exc: ReconcileError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 409
        return message(request, "Nothing was changed", str(exc), status)

    for router in routes.ROUTERS:
        app.include_router(router)
    return app
