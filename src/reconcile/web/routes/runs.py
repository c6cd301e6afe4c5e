"""Posting runs and the collectors' report (the report's HTML in a frame, with its own styles)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reconcile.collectors.report import gather, render
from reconcile.web import params, reads
from reconcile.web.common import page, signed_in, web_of

router = APIRouter()
# the report is a standalone document with inline styles and no scripts
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request) -> Response:
    signed_in(request)
    return page(request, "runs.html", runs=reads.recent_runs(web_of(request).engine))


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request) -> Response:
    signed_in(request)
    web = web_of(request)
    return page(
        request, "report.html", as_of=params.day(request.query_params.get("as_of", ""), web.today())
    )


@router.get("/report.html", response_class=HTMLResponse)
def report_html(request: Request) -> Response:
    signed_in(request)
    web = web_of(request)
    day = params.day(request.query_params.get("as_of", ""), web.today())
    return HTMLResponse(
        render(gather(web.engine, day, web.rules)), headers={"Content-Security-Policy": REPORT_CSP}
    )
