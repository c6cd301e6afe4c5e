"""The queue: one page of items at a time with the true total, search, filters and sort in the URL,
Claim next within the view, bulk decisions on ticked items or on all N matching, and their undo.
"""

from __future__ import annotations

import math
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reconcile.core.errors import ReconcileError
from reconcile.queue import actions as queue_actions
from reconcile.queue import bulk as queue_bulk
from reconcile.queue import views as queue
from reconcile.web import params
from reconcile.web.common import flash, message, page, posted, signed_in, web_of
from reconcile.web.params import ViewState

router = APIRouter()
BULK_ROWS_SHOWN = 50


def item_url(item_id: int, view: ViewState) -> str:
    """An item opened from a view: the view rides along, so resolving opens the view's next item."""
    return f"/items/{item_id}?view={quote(view.encode())}"


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> Response:
    user = signed_in(request)
    web = web_of(request)
    values = dict(request.query_params)
    view = ViewState.read(values)
    number = params.page_number(values.get("page", "1"))
    size = web.config.web.page_size
    frame, total = queue.page_items(
        web.engine,
        filters=view.filters(),
        sort=view.sort,
        offset=(number - 1) * size,
        limit=size,
        as_of=web.today(),
        config=web.config.queue,
    )
    counts = queue.summary(web.engine, as_of=web.today(), config=web.config.queue)
    pages = max(1, math.ceil(total / size))
    encoded = view.encode()
    return page(
        request,
        "queue.html",
        items=frame.to_dicts(),
        total=total,
        counts=counts,
        view=view,
        f=view.fields(),
        encoded=encoded,
        page=number,
        pages=pages,
        size=size,
        first=(number - 1) * size + 1 if total else 0,
        last=min(number * size, total),
        reasons=sorted({c["reason"] for c in counts}),
        sorts=queue.SORTS,
        statuses=params.STATUSES,
        bulk=user.may("resolve"),
        filtered=bool(encoded and encoded != "status=open"),
    )


@router.post("/queue/claim-next")
async def claim_next(request: Request) -> Response:
    user, form = await posted(request, "resolve")
    web = web_of(request)
    view = ViewState.read({k: str(v) for k, v in form.items() if isinstance(v, str)})
    leave = str(form.get("leave") or "").strip()
    if leave.isdigit():  # leaving an item by Claim next gives its claim back
        release_quietly(request, int(leave), user.name)
    found = queue_actions.claim_next(
        web.engine,
        actor=user.name,
        now=web.now(),
        filters=view.filters(status="open"),
        sort=view.sort,
        config=web.config.queue,
    )
    if found is None:
        return message(
            request,
            "Nothing to claim",
            "No open item in this view is free: every one is "
            "resolved, claimed by someone else or awaiting approval.",
            200,
            "/queue" + (f"?{view.encode()}" if view.encode() else ""),
        )
    return RedirectResponse(item_url(found, view), status_code=303)


def release_quietly(request: Request, item: int, actor: str) -> bool:
    web = web_of(request)
    try:
        queue_actions.release(web.engine, item, actor=actor, now=web.now())
    except ReconcileError:
        return False  # not claimed, or not by this person: nothing to give back
    return True


def _bulk_ids(request: Request, form: object) -> list[str]:
    web = web_of(request)
    if str(form.get("scope", "")) == "matching":  # type: ignore[attr-defined]
        view = ViewState.read({k: str(v) for k, v in form.items() if isinstance(v, str)})  # type: ignore[attr-defined]
        ids = queue.matching_ids(
            web.engine, filters=view.filters(status="open"), sort=view.sort, as_of=web.today()
        )
        expected = params.whole(str(form.get("expected", "")), "expected count", most=10**9)  # type: ignore[attr-defined]
        if expected is not None and expected != len(ids):
            raise ReconcileError(
                f"the view now holds {len(ids)} open item(s), not the {expected} shown: "
                "nothing was applied; reload the queue and choose again"
            )
        return [str(i) for i in ids]
    return [str(params.item_id(str(i))) for i in form.getlist("ids")]  # type: ignore[attr-defined]


@router.post("/queue/bulk", response_class=HTMLResponse)
async def bulk(request: Request) -> Response:
    """The ticked items (or all N matching the view) decided alike, or assigned: all or nothing."""
    user, form = await posted(request, "resolve")
    web = web_of(request)
    ids = _bulk_ids(request, form)
    if not ids:
        raise ReconcileError("tick at least one item (or choose all matching)")
    action = str(form.get("bulk_action", ""))
    if action == "assign":
        # "assign_to" names the person (the view's own "assignee" is a filter); plain ticked-item
        # forms may still say "assignee"
        named = (
            form.get("assign_to")
            if "assign_to" in form
            else (form.get("assignee") if str(form.get("scope", "")) != "matching" else None)
        )
        person = str(named or "").strip()[:64] or None
        closed = (
            [
                i
                for i in ids
                if queue.get_item(web.engine, int(i), config=web.config.queue)["status"] != "open"
            ]
            if len(ids) <= 200
            else []
        )
        if closed:
            raise ReconcileError(
                f"exception(s) {', '.join(closed)} are not open; nothing was assigned"
            )
        for key in ids:
            queue_actions.assign(web.engine, key, person, actor=user.name, now=web.now())
        return message(
            request,
            "Assigned",
            f"{len(ids)} item(s) assigned to {person or 'nobody'}.",
            200,
            "/queue",
            ok=True,
        )
    if action not in ("accept", "not_receivable"):
        raise ReconcileError(f"unknown bulk action {action!r}")
    code = str(form.get("code") or "").strip()
    csv_text = "exception,action,code\n" + "".join(
        f"{i},{action},{code if action != 'accept' else ''}\n" for i in ids
    )
    done = queue_bulk.bulk_resolve(
        web.engine,
        "the ticked items",
        actor=user.name,
        now=web.now(),
        config=web.config.queue,
        data=csv_text.encode(),
    )
    return _bulk_done(request, done)


@router.post("/queue/upload", response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    """A decisions CSV (as for `reconcile exceptions bulk`), applied as one batch or not at all."""
    user, form = await posted(request, "resolve")
    web = web_of(request)
    file = form.get("decisions")
    if file is None or not hasattr(file, "read"):
        raise ReconcileError("choose a decisions CSV file to upload")
    data = await file.read()
    done = queue_bulk.bulk_resolve(
        web.engine,
        file.filename or "upload.csv",
        actor=user.name,
        now=web.now(),
        config=web.config.queue,
        data=data,
    )
    return _bulk_done(request, done)


def _bulk_done(request: Request, done: queue_bulk.BulkResult) -> Response:
    rows = [
        {"id": d["id"], "resolution": d.get("resolution"), "category": d.get("category"), **a}
        for d in done.rows
        for a in (d.get("allocations") or [{}])
    ][:BULK_ROWS_SHOWN]
    return message(
        request,
        "Done",
        f"{done.applied} item(s) resolved as batch {done.batch}.",
        200,
        "/queue",
        ok=True,
        batch=done.batch,
        posted=rows,
        more=max(0, done.applied - BULK_ROWS_SHOWN),
    )


@router.post("/queue/batches/{batch}/undo", response_class=HTMLResponse)
async def undo_batch(request: Request, batch: str) -> Response:
    user, form = await posted(request, "resolve")
    web = web_of(request)
    reason = (
        params.words(str(form.get("reason") or ""), "reason", most=500)
        or f"undone in the web by {user.name}"
    )
    done = queue_bulk.undo_batch(
        web.engine,
        params.words(batch, "batch", most=64),
        actor=user.name,
        now=web.now(),
        reason=reason,
    )
    reopened = done["reopened"]
    flash(
        request,
        f"Batch {batch} undone: {len(reopened)} item(s) open again (postings reversed).",
        reopened=[
            {"id": r["id"], "reopened_as": r["reopened_as"], "was": r["was"]} for r in reopened
        ][:50],
    )
    return RedirectResponse("/queue", status_code=303)
