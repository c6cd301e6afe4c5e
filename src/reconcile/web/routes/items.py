"""One queue item: its evidence, ranked suggestions, the customer's open items, the decision forms
(refunds and write-offs confirmed on a second page first), approvals, claims, notes, the rows it
posted, its audit history, and undo (reopen); also unapplying a posted line.

After a decision the rows posted are shown with an Undo button, and when the item was opened from
a queue view the next free item of that view is claimed and opened.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reconcile.core.errors import ReconcileError
from reconcile.core.money import exponent, format_minor, parse_decimal, to_minor
from reconcile.queue import actions as queue_actions
from reconcile.queue import views as queue
from reconcile.queue.actions import CATEGORIES, ON_ACCOUNT, Decision
from reconcile.services import ledger
from reconcile.web import params, reads
from reconcile.web.common import Stale, flash, local, page, posted, signed_in, web_of
from reconcile.web.params import ViewState
from reconcile.web.routes.queue import item_url, release_quietly

router = APIRouter()
ALLOCATION_ROWS = 6
CONFIRMED = ("refund", "write_off")  # decisions that send money away or write it off: a second look


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item_page(request: Request, item_id: str) -> Response:
    user = signed_in(request)
    web = web_of(request)
    key = params.item_id(item_id)
    values = request.query_params
    view = ViewState.decode(values.get("view", ""))
    item = queue.get_item(web.engine, key, config=web.config.queue)
    chosen = params.words(values.get("customer", ""), "customer", most=64) or item["customer_id"]
    open_items = (
        reads.open_items_of(web.engine, chosen)
        if chosen and chosen != item["customer_id"]
        else item["open_items"]
    )
    approval = None
    if item["proposal"] and item["status"] == "open":
        try:
            plan = reads.preview(
                web.engine,
                key,
                Decision("write_off"),
                actor=user.name,
                now=web.now(),
                config=web.config.queue,
                approving=True,
            )
            approval = {
                "write_off": plan.details.get("write_off"),
                "rows": plan.shown_rows(),
                "error": None,
            }
        except ReconcileError as exc:
            approval = {"write_off": None, "rows": [], "error": str(exc)}
    history = ledger.history(web.engine, line_ref=item["source_ref"], account=item["account"])
    return page(
        request,
        "item.html",
        item=item,
        chosen=chosen,
        open_items=open_items,
        rows=_prefill(item, open_items if chosen else []),
        categories=CATEGORIES,
        limit=web.config.queue.write_off_approval_limit,
        seen=_state(item),
        exponent=exponent(item["currency"]),
        mine=item["claimed_by"] == user.name,
        view=view,
        from_view="view" in values,
        encoded=view.encode(),
        approval=approval,
        posted=reads.line_rows(web.engine, item["account"], item["source_ref"]),
        history=list(reversed(history.to_dicts()))[:100],
    )


def _prefill(item: dict[str, Any], open_items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The customer's open items, oldest due first, each given what is left of the payment."""
    currency = item["currency"]
    left = to_minor(parse_decimal(item["amount"]), currency)
    rows = []
    for o in open_items[:ALLOCATION_ROWS]:
        if o["currency"] != currency:
            continue
        open_minor = to_minor(parse_decimal(o["open"]), currency)
        take = min(left, open_minor) if left > 0 else 0
        left -= take
        rows.append(
            {
                "target": o["invoice_number"],
                "open": o["open"],
                "amount": format_minor(take, currency) if take else "",
            }
        )
    rows += [{"target": "", "open": "", "amount": ""}] * (ALLOCATION_ROWS - len(rows))
    return rows


def _state(item: dict[str, Any]) -> str:
    """What the form's page saw: a change in any of these makes the page stale."""
    return f"{item['status']}:{item['resolution'] or ''}:{item['proposed_by'] or ''}"


def fresh(request: Request, item_id: int, form: Any) -> dict[str, Any]:
    """The item now; refused when the page the form came from showed another state."""
    web = web_of(request)
    item = queue.get_item(web.engine, item_id, config=web.config.queue)
    seen = str(form.get("seen", ""))
    if seen and seen != _state(item):
        who = item["resolved_by"] or item["proposed_by"] or item["claimed_by"] or "someone else"
        raise Stale(
            f"Exception {item_id} changed after this page was shown (now {item['status']}"
            f"{', ' + (item['resolution'] or '') if item['resolution'] else ''}, by {who}). "
            "Nothing was changed: reload the page to see it as it is."
        )
    return item


@router.post("/items/{item_id}/resolve", response_class=HTMLResponse)
async def resolve(request: Request, item_id: str) -> Response:
    user, form = await posted(request, "resolve")
    web = web_of(request)
    key = params.item_id(item_id)
    item = fresh(request, key, form)
    if item["status"] != "open":
        raise ReconcileError(
            f"Exception {key} was already {item['status']} by {item['resolved_by']} "
            f"({item['resolution']}). Nothing was changed."
        )
    decision = _decision(form)
    if decision.action in CONFIRMED and not form.get("confirm"):
        plan = reads.preview(
            web.engine, key, decision, actor=user.name, now=web.now(), config=web.config.queue
        )
        replay = [(k, str(v)) for k, v in form.multi_items() if isinstance(v, str) and k != "csrf"]
        return page(
            request,
            "confirm.html",
            item=item,
            plan=plan,
            rows=plan.shown_rows(),
            details=plan.details,
            replay=replay,
            action=decision.action,
            limit=web.config.queue.write_off_approval_limit,
        )
    done = queue_actions.resolve(
        web.engine, key, decision, actor=user.name, now=web.now(), config=web.config.queue
    )
    view = ViewState.decode(str(form.get("view") or ""))
    if done["status"] == "pending_approval":
        flash(
            request,
            f"The write-off of {done['write_off']} {item['currency']} on exception {key} is above "
            "the approval limit: it waits for an approver.",
            currency=item["currency"],
        )
        return RedirectResponse(f"/items/{key}", status_code=303)
    flash(
        request,
        f"Exception {key} resolved ({done['resolution']}"
        f"{', ' + done['category'] if done.get('category') else ''}).",
        rows=done["allocations"],
        currency=item["currency"],
        undo=key,
    )
    if form.get("from_view") and user.may("resolve"):
        found = queue_actions.claim_next(
            web.engine,
            actor=user.name,
            now=web.now(),
            filters=view.filters(status="open"),
            sort=view.sort,
            config=web.config.queue,
        )
        if found is not None:
            return RedirectResponse(item_url(found, view), status_code=303)
        return RedirectResponse(
            "/queue" + (f"?{view.encode()}" if view.encode() else ""), status_code=303
        )
    return RedirectResponse(f"/items/{key}?done=1", status_code=303)


@router.post("/items/{item_id}/approve")
async def approve(request: Request, item_id: str) -> Response:
    user, form = await posted(request, "approve")
    web = web_of(request)
    key = params.item_id(item_id)
    item = fresh(request, key, form)
    if form.get("reject"):
        queue_actions.withdraw(
            web.engine,
            key,
            actor=user.name,
            now=web.now(),
            reason=str(form.get("note") or "")[:500],
        )
        flash(
            request,
            f"The write-off proposed on exception {key} was rejected; the item is open again.",
        )
    else:
        done = queue_actions.approve(
            web.engine, key, actor=user.name, now=web.now(), config=web.config.queue
        )
        flash(
            request,
            f"Write-off of {done.get('write_off')} {item['currency']} approved and posted.",
            rows=done["allocations"],
            currency=item["currency"],
            undo=key,
        )
    back = str(form.get("back") or "")
    return RedirectResponse(local(back) if back else f"/items/{key}", status_code=303)


@router.post("/items/{item_id}/claim")
async def claim(request: Request, item_id: str) -> Response:
    user, form = await posted(request, "resolve")
    web = web_of(request)
    key = params.item_id(item_id)
    if form.get("release"):
        queue_actions.release(web.engine, key, actor=user.name, now=web.now())
    else:
        queue_actions.claim(
            web.engine, key, actor=user.name, now=web.now(), config=web.config.queue
        )
    return RedirectResponse(f"/items/{key}", status_code=303)


@router.post("/items/{item_id}/release")
async def release(request: Request, item_id: str) -> Response:
    """Sent as the page is left (navigator.sendBeacon): the claim is given back, quietly."""
    user, _form = await posted(request, "resolve")
    released = release_quietly(request, params.item_id(item_id), user.name)
    return Response(status_code=204 if released else 200)


@router.post("/items/{item_id}/assign")
async def assign(request: Request, item_id: str) -> Response:
    user, form = await posted(request, "resolve")
    web = web_of(request)
    key = params.item_id(item_id)
    queue_actions.assign(
        web.engine,
        key,
        str(form.get("assignee") or "").strip()[:64] or None,
        actor=user.name,
        now=web.now(),
    )
    return RedirectResponse(f"/items/{key}", status_code=303)


@router.post("/items/{item_id}/note")
async def note(request: Request, item_id: str) -> Response:
    user, form = await posted(request, "note")
    web = web_of(request)
    key = params.item_id(item_id)
    queue_actions.add_note(
        web.engine, key, str(form.get("text") or "")[:2000], actor=user.name, now=web.now()
    )
    return RedirectResponse(f"/items/{key}", status_code=303)


@router.post("/items/{item_id}/reopen")
async def reopen(request: Request, item_id: str) -> Response:
    """Undo a decision: its posting is reversed (reversal rows, audited), the line queued again."""
    user, form = await posted(request, "resolve")
    web = web_of(request)
    key = params.item_id(item_id)
    reason = params.words(str(form.get("reason") or ""), "reason", most=500)
    done = queue_actions.reopen(web.engine, key, actor=user.name, now=web.now(), reason=reason)
    item = queue.get_item(web.engine, done["reopened_as"], config=web.config.queue)
    rows = [
        r
        for r in reads.line_rows(web.engine, item["account"], item["source_ref"])
        if r["kind"] == "reversal"
    ]
    flash(
        request,
        f"Exception {key} reopened (was {done['was']}): its posting was reversed"
        f"{' and what it taught the matcher forgotten' if done['forgotten'] else ''}.",
        rows=[
            {
                "kind": r["kind"],
                "invoice_number": r["invoice_number"],
                "customer_id": r["customer_id"],
                "amount": format_minor(r["amount_minor"], r["currency"]),
            }
            for r in rows[-10:]
        ],
        currency=item["currency"],
    )
    return RedirectResponse(f"/items/{done['reopened_as']}", status_code=303)


@router.post("/lines/unapply")
async def unapply(request: Request) -> Response:
    """Take back a posted line's allocations (services.ledger.unapply): it goes to the queue."""
    user, form = await posted(request, "resolve")
    web = web_of(request)
    account = params.words(str(form.get("account") or ""), "account", most=64)
    source_ref = params.words(str(form.get("source_ref") or ""), "line", most=128)
    reason = params.words(str(form.get("reason") or ""), "reason", most=500)
    done = ledger.unapply(
        web.engine,
        source_ref,
        reason=reason,
        actor=user.name,
        now=web.now(),
        account=account or None,
    )
    flash(
        request,
        f"Line {account}/{source_ref} unapplied: its allocations were reversed and it waits in "
        "the queue.",
        rows=done["reversed"],
        currency=None,
    )
    return RedirectResponse(local(str(form.get("back") or "/queue")), status_code=303)


def _decision(form: Any) -> Decision:
    action = str(form.get("action", ""))
    note = str(form.get("note") or "").strip()[:2000] or None
    if action == "accept":
        choice = str(form.get("choice", "1"))
        if not choice.isdigit() or len(choice) > 3:
            raise ReconcileError("choose a suggestion by its rank")
        return Decision("accept", choice=int(choice), note=note)
    if action == "allocate":
        targets, amounts = form.getlist("target"), form.getlist("amount")
        # the form lists the customer's open items: a row counts when it has an amount
        parts = tuple(
            (str(t).strip(), str(a).strip())
            for t, a in zip(targets, amounts, strict=False)
            if str(a).strip()
        )
        if any(not t for t, _ in parts):
            raise ReconcileError(
                "an amount was given without saying which invoice (or on_account) it is for"
            )
        for _, text in parts:
            params.amount(text)
        on_account = str(form.get("on_account_amount") or "").strip()
        if on_account:
            parts += ((ON_ACCOUNT, params.amount(on_account) or ""),)
        if not parts:
            raise ReconcileError(
                "enter the amount to allocate to at least one invoice (or on account)"
            )
        return Decision(
            "allocate",
            parts=parts,
            customer=str(form.get("customer") or "").strip() or None,
            rest_on_account=bool(form.get("rest_on_account")),
            note=note,
            rate=params.amount(str(form.get("rate") or ""), "rate"),
        )
    if action in ("unapply", "confirm"):
        # the answers to a posting the receivables system overtook (closed_elsewhere)
        return Decision(action, note=note, learn=False)
    if action == "on_account":
        return Decision(
            "on_account", customer=str(form.get("customer") or "").strip() or None, note=note
        )
    if action == "write_off":
        return Decision(
            "write_off",
            invoice=str(form.get("invoice") or "").strip() or None,
            code=str(form.get("code") or "").strip() or None,
            note=note,
        )
    if action in ("not_receivable", "refund"):
        return Decision(action, code=str(form.get("code") or "").strip() or None, note=note)
    raise ReconcileError(f"unknown action {action!r}")
