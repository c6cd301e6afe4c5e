"""Balances, a page at a time (search by customer or amount, sort, hold and overdue filters), one
customer's statement with their unapplied payments (each linked to its queue item), the lines
posted to them (with unapply) and their audit history; the customer picker's search.
"""

from __future__ import annotations

from urllib.parse import urlencode

import polars as pl
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from reconcile.collectors import balance_pages
from reconcile.collectors.balances import bucket_labels
from reconcile.collectors.statement import statement_of_account
from reconcile.core.errors import NotFoundError
from reconcile.ledger.credit import apply_credit, credit_available
from reconcile.queue import views as queue
from reconcile.queue.views import QueueFilter
from reconcile.web import params
from reconcile.web.common import flash, page, posted, signed_in, web_of

router = APIRouter()


@router.get("/customers", response_class=HTMLResponse)
def customers_page(request: Request) -> Response:
    signed_in(request)
    web = web_of(request)
    values = request.query_params
    as_of = params.day(values.get("as_of", ""), web.today())
    q = params.words(values.get("q", ""))
    sort = params.choice(values.get("sort", ""), balance_pages.SORTS, "sort", "customer")
    number = params.page_number(values.get("page", "1"))
    hold, overdue = values.get("hold") == "1", values.get("overdue") == "1"
    size = web.config.web.page_size
    frame, total = balance_pages.balance_page(
        web.engine,
        as_of,
        web.rules,
        search=q,
        sort=sort,
        offset=(number - 1) * size,
        limit=size,
        hold_only=hold,
        overdue_only=overdue,
    )
    state = {
        "as_of": "" if as_of == web.today() else as_of.isoformat(),
        "q": q,
        "sort": "" if sort == "customer" else sort,
        "hold": "1" if hold else "",
        "overdue": "1" if overdue else "",
    }
    return page(
        request,
        "customers.html",
        as_of=as_of,
        rows=frame.to_dicts(),
        total=total,
        page=number,
        pages=max(1, -(-total // size)),
        first=(number - 1) * size + 1 if total else 0,
        last=min(number * size, total),
        labels=bucket_labels(web.rules.edges),
        f=state,
        sorts=balance_pages.SORTS,
        filtered=bool(q or hold or overdue),
        qs=urlencode({k: v for k, v in state.items() if v}),
    )


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(request: Request, customer_id: str) -> Response:
    user = signed_in(request)
    web = web_of(request)
    customer_id = params.words(customer_id, "customer", most=64)
    as_of = params.day(request.query_params.get("as_of", ""), web.today())
    if balance_pages.customer_exists(web.engine, customer_id) is None:
        raise NotFoundError(f"no customer {customer_id}")
    st = statement_of_account(web.engine, customer_id, as_of, web.rules)
    unapplied, waiting = queue.page_items(
        web.engine,
        filters=QueueFilter(status="open", customer=customer_id),
        sort="oldest",
        limit=100,
        as_of=web.today(),
        config=web.config.queue,
    )
    return page(
        request,
        "customer.html",
        st=st,
        entries=st.entries.to_dicts(),
        schedule=st.schedule.to_dicts(),
        totals=st.totals.to_dicts(),
        labels=bucket_labels(web.rules.edges),
        unapplied=unapplied.to_dicts(),
        waiting=waiting,
        posted_lines=balance_pages.posted_payments(web.engine, customer_id),
        credit=credit_available(web.engine, customer_id),
        open_invoices=[e["reference"] for e in st.entries.filter(pl.col("kind") == "invoice").to_dicts()],
        history=balance_pages.customer_history(web.engine, customer_id),
        may_unapply=user.may("resolve"),
    )


@router.get("/api/customers")
def customer_search(request: Request) -> Response:
    """The customer picker: up to 20 customers whose id starts with, or name contains, the text."""
    signed_in(request)
    web = web_of(request)
    found = balance_pages.search_customers(
        web.engine, params.words(request.query_params.get("q", ""))
    )
    return JSONResponse(found)


@router.post("/customers/{customer_id}/credit")
async def apply_customer_credit(request: Request, customer_id: str) -> Response:
    """Money kept on account applied to an open invoice (ledger/credit.py): posted and audited, reversible."""
    user, form = await posted(request, "resolve")
    web = web_of(request)
    customer_id = params.words(customer_id, "customer", most=64)
    invoice = params.words(str(form.get("invoice") or ""), "invoice", most=64)
    amount = params.amount(str(form.get("amount") or "").strip()) or None
    now = web.now()
    done = apply_credit(web.engine, customer_id, [invoice], amount=amount, actor=user.name, now=now,
                        business_date=web.config.queue.business_date(now),
                        note=str(form.get("note") or "").strip()[:500] or None)
    flash(request, f"{done['applied']} {done['currency']} of {customer_id}'s credit applied to {invoice}.")
    return RedirectResponse(f"/customers/{customer_id}#credit", status_code=303)
