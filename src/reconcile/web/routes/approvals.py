"""Write-offs awaiting approval: each with its payment, invoice, reason and the amount written off
(planned again against today's book, as approving would), and approve / reject buttons.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reconcile.core.errors import ReconcileError
from reconcile.queue import views as queue
from reconcile.queue.actions import Decision
from reconcile.queue.views import QueueFilter
from reconcile.web import params, reads
from reconcile.web.common import page, signed_in, web_of

router = APIRouter()


@router.get("/approvals", response_class=HTMLResponse)
def approvals_page(request: Request) -> Response:
    user = signed_in(request)
    web = web_of(request)
    number = params.page_number(request.query_params.get("page", "1"))
    size = web.config.web.page_size
    frame, total = queue.page_items(
        web.engine,
        filters=QueueFilter(status="open", pending=True),
        sort="oldest",
        offset=(number - 1) * size,
        limit=size,
        as_of=web.today(),
        config=web.config.queue,
    )
    rows = []
    for entry in frame.to_dicts():
        item = queue.get_item(web.engine, entry["id"], config=web.config.queue)
        try:
            plan = reads.preview(
                web.engine,
                entry["id"],
                Decision("write_off"),
                actor=user.name,
                now=web.now(),
                config=web.config.queue,
                approving=True,
            )
            write_off, error = plan.details.get("write_off"), None
        except ReconcileError as exc:
            write_off, error = None, str(exc)
        rows.append(
            {
                **entry,
                "proposal": item["proposal"] or {},
                "proposed_at": item["proposed_at"],
                "write_off": write_off,
                "error": error,
                "own": item["proposed_by"] == user.name,
            }
        )
    return page(
        request,
        "approvals.html",
        rows=rows,
        total=total,
        page=number,
        size=size,
        first=(number - 1) * size + 1 if total else 0,
        last=min(number * size, total),
        pages=max(1, -(-total // size)),
        limit=web.config.queue.write_off_approval_limit,
    )
