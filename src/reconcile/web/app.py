"""The web workspace: server-rendered pages over the same service functions the CLI calls.

Every page needs a signed-in user (Starlette's signed session cookie); every
form carries the session's CSRF token; every action checks the user's role
and passes the user's name as `actor`, so the audit log names the person.
Service errors (amounts that do not add up, a closed invoice, an item someone
else resolved meanwhile) become a message page: the service refused before
changing anything, so nothing changed.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine, select
from starlette.middleware.sessions import SessionMiddleware

from reconcile.collectors.balances import Collections, balances, bucket_labels
from reconcile.collectors.report import gather, render
from reconcile.collectors.statement import statement_of_account
from reconcile.config import Config
from reconcile.core.errors import NotFoundError, ReconcileError
from reconcile.core.money import exponent
from reconcile.queue import actions as queue_actions
from reconcile.queue import bulk as queue_bulk
from reconcile.queue import views as queue
from reconcile.queue.actions import CATEGORIES, ON_ACCOUNT, Decision
from reconcile.queue.views import QueueFilter
from reconcile.services.daily import utcnow
from reconcile.services.exports import decimal_text
from reconcile.store import db, tables
from reconcile.web.users import WebUser, authenticate, find_user

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
ALLOCATION_ROWS = 6


class NeedLogin(Exception):
    pass


class Refused(Exception):
    """A request the user may not make (role, CSRF): a message page, status 403."""


class Stale(Exception):
    """The page the form came from no longer shows the item as it is."""


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    user = getattr(request.state, "user", None)
    return TEMPLATES.TemplateResponse(request, template, {
        "user": user, "csrf": request.session.get("csrf", ""), **context}, status_code=status)


def message(request: Request, title: str, text: str, status: int, back: str | None = None,
            ok: bool = False) -> HTMLResponse:
    return _page(request, "message.html", status, title=title, text=text, ok=ok,
                 back=back or request.headers.get("referer"))


def create_app(engine: Engine, config: Config, *, secret_key: str | None = None) -> FastAPI:
    """The ASGI app. `secret_key` signs the session cookies ($RECONCILE_WEB_SECRET, else random per process)."""
    rules = Collections.from_config(config)
    app = FastAPI(title="reconcile", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret_key or os.environ.get("RECONCILE_WEB_SECRET")
                       or secrets.token_urlsafe(32), session_cookie="reconcile_session", same_site="strict",
                       max_age=12 * 3600)
    app.state.engine = engine

    # --- plumbing -------------------------------------------------------------

    def signed_in(request: Request, permission: str = "view") -> WebUser:
        name = request.session.get("user")
        user = find_user(engine, name) if name else None  # a removed user loses access at once
        if user is None:
            request.session.pop("user", None)
            raise NeedLogin()
        request.state.user = user
        if not user.may(permission):
            raise Refused(f"{user.name} is {_article(user.role)} {user.role}: "
                          f"only {' or '.join(_roles_for(permission))} may {permission} here.")
        return user

    async def posted(request: Request, permission: str) -> tuple[WebUser, dict[str, Any]]:
        """The signed-in user (with `permission`) and the form, whose CSRF token must be the session's."""
        user = signed_in(request, permission)
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        return user, form

    def check_csrf(request: Request, token: Any) -> None:
        expected = request.session.get("csrf")
        if not expected or not isinstance(token, str) or not hmac.compare_digest(expected, token):
            raise Refused("The form's security token is missing or out of date (an old page, or a form from "
                          "another site). Reload the page and try again. Nothing was changed.")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, _exc: NeedLogin) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return message(request, "Not allowed", str(exc), 403)

    @app.exception_handler(Stale)
    async def stale(request: Request, exc: Stale) -> Response:
        return message(request, "This page is out of date", str(exc), 409)

    @app.exception_handler(ReconcileError)
    async def service_refused(request: Request, exc: ReconcileError) -> Response:
        status = 404 if isinstance(exc, NotFoundError) else 409
        return message(request, "Nothing was changed", str(exc), status)

    def ensure_csrf(request: Request) -> None:
        if "csrf" not in request.session:
            request.session["csrf"] = secrets.token_urlsafe(32)

    # --- sign in ------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/queue") -> Response:
        ensure_csrf(request)
        return _page(request, "login.html", next=_local(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        check_csrf(request, form.get("csrf"))
        user = authenticate(engine, str(form.get("name", "")), str(form.get("password", "")))
        if user is None:
            return _page(request, "login.html", 401, next=_local(str(form.get("next", "/queue"))),
                         error="Unknown user name or wrong password.")
        request.session.clear()
        request.session.update({"user": user.name, "csrf": secrets.token_urlsafe(32)})
        with db.transaction(engine) as session:
            session.add(tables.AuditEntry(at=utcnow(), actor=user.name, action="web_login",
                                          details=json.dumps({"role": user.role})))
        return RedirectResponse(_local(str(form.get("next", "/queue"))), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await posted(request, "view")
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        user = signed_in(request)
        return RedirectResponse("/customers" if user.role == "collector" else "/queue", status_code=303)

    # --- the queue ----------------------------------------------------------------

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(request: Request, reason: str = "", assignee: str = "", min_amount: str = "",
                   max_amount: str = "", min_age: str = "", sort: str = "oldest", status: str = "open") -> Response:
        signed_in(request)
        filters = _filters(reason, assignee, min_amount, max_amount, min_age, status)
        frame = queue.list_items(engine, filters=filters, sort=sort if sort in queue.SORTS else "oldest",
                                 config=config.queue, limit=500)
        counts = queue.summary(engine, config=config.queue)
        return _page(request, "queue.html", items=frame.to_dicts(), counts=counts,
                     f={"reason": reason, "assignee": assignee, "min_amount": min_amount, "max_amount": max_amount,
                        "min_age": min_age, "sort": sort, "status": status},
                     reasons=sorted({c["reason"] for c in counts}), sorts=queue.SORTS)

    @app.post("/queue/claim-next")
    async def claim_next(request: Request) -> Response:
        user, form = await posted(request, "resolve")
        filters = _filters(*(str(form.get(k, "")) for k in ("reason", "assignee", "min_amount", "max_amount",
                                                              "min_age")), "open")
        found = queue_actions.claim_next(engine, actor=user.name, now=utcnow(), filters=filters, config=config.queue)
        if found is None:
            return message(request, "Nothing to claim", "No open item matching these filters is free: "
                           "every one is resolved, claimed by someone else or awaiting approval.", 200, "/queue")
        return RedirectResponse(f"/items/{found}", status_code=303)

    @app.post("/queue/bulk")
    async def bulk(request: Request) -> Response:
        """The ticked items decided alike (or assigned), all or nothing: queue_bulk plans every one first."""
        user, form = await posted(request, "resolve")
        ids = [str(i) for i in form.getlist("ids") if str(i).isdigit()]
        if not ids:
            raise ReconcileError("tick at least one item")
        action = str(form.get("bulk_action", ""))
        if action == "assign":
            person = str(form.get("assignee") or "").strip() or None
            with db.transaction(engine) as session:  # refuse before assigning any: every item must be open
                closed = [i for i in ids if queue.find_item(session, i)[0].status != "open"]
            if closed:
                raise ReconcileError(f"exception(s) {', '.join(closed)} are not open; nothing was assigned")
            for key in ids:
                queue_actions.assign(engine, key, person, actor=user.name, now=utcnow())
            return message(request, "Assigned", f"{len(ids)} item(s) assigned to {person or 'nobody'}.", 200,
                           "/queue", ok=True)
        if action not in ("accept", "not_receivable"):
            raise ReconcileError(f"unknown bulk action {action!r}")
        code = str(form.get("code") or "").strip()
        csv_text = "exception,action,code\n" + "".join(f"{i},{action},{code if action != 'accept' else ''}\n"
                                                         for i in ids)
        done = queue_bulk.bulk_resolve(engine, "the ticked items", actor=user.name, now=utcnow(), config=config.queue,
                                       data=csv_text.encode())
        return message(request, "Done", f"{done.applied} item(s) resolved as batch {done.batch}.", 200, "/queue",
                       ok=True)

    @app.post("/queue/upload")
    async def upload(request: Request) -> Response:
        """A decisions CSV (the columns of `reconcile exceptions bulk`), applied as one batch or not at all."""
        user, form = await posted(request, "resolve")
        upload = form.get("decisions")
        if upload is None or not hasattr(upload, "read"):
            raise ReconcileError("choose a decisions CSV file to upload")
        data = await upload.read()
        done = queue_bulk.bulk_resolve(engine, upload.filename or "upload.csv", actor=user.name, now=utcnow(),
                                       config=config.queue, data=data)
        return message(request, "Done", f"{done.applied} item(s) resolved as batch {done.batch}.", 200, "/queue",
                       ok=True)

    # --- one item -----------------------------------------------------------------

    @app.get("/items/{item_id}", response_class=HTMLResponse)
    def item_page(request: Request, item_id: int, customer: str = "") -> Response:
        user = signed_in(request)
        item = queue.get_item(engine, item_id, config=config.queue)
        chosen = customer.strip() or item["customer_id"]
        with db.transaction(engine) as session:
            open_items = queue.customer_open_items(session, chosen) if chosen != item["customer_id"] \
                else item["open_items"]
            customers = session.execute(select(tables.Customer.customer_id, tables.Customer.name)
                                        .order_by(tables.Customer.customer_id)).all()
        rows = [{"target": o["invoice_number"], "open": o["open"]} for o in open_items][:ALLOCATION_ROWS]
        rows += [{"target": "", "open": ""}] * (ALLOCATION_ROWS - len(rows))
        limit = config.queue.write_off_approval_limit
        return _page(request, "item.html", item=item, chosen=chosen, open_items=open_items, rows=rows,
                     customers=customers, categories=CATEGORIES, limit=limit, seen=_state(item),
                     exponent=exponent(item["currency"]), mine=item["claimed_by"] == user.name)

    def fresh(item_id: int, form: Any) -> dict[str, Any]:
        """The item now; refused when the page the form came from showed another state."""
        item = queue.get_item(engine, item_id, config=config.queue)
        seen = str(form.get("seen", ""))
        if seen and seen != _state(item):
            who = item["resolved_by"] or item["proposed_by"] or item["claimed_by"] or "someone else"
            raise Stale(f"Exception {item_id} changed after this page was shown (now {item['status']}"
                        f"{', ' + (item['resolution'] or '') if item['resolution'] else ''}, by {who}). "
                        "Nothing was changed: reload the page to see it as it is.")
        return item

    @app.post("/items/{item_id}/resolve")
    async def resolve(request: Request, item_id: int) -> Response:
        user, form = await posted(request, "resolve")
        item = fresh(item_id, form)
        if item["status"] != "open":
            raise ReconcileError(f"Exception {item_id} was already {item['status']} by {item['resolved_by']} "
                                 f"({item['resolution']}). Nothing was changed.")
        decision = _decision(form, item)
        done = queue_actions.resolve(engine, item_id, decision, actor=user.name, now=utcnow(), config=config.queue)
        if done["status"] == "pending_approval":
            return message(request, "Write-off proposed", f"The write-off of {done['write_off']} on exception "
                           f"{item_id} is above the approval limit: it waits for an approver.", 200, f"/items/{item_id}")
        return RedirectResponse(f"/items/{item_id}?done=1", status_code=303)

    @app.post("/items/{item_id}/approve")
    async def approve(request: Request, item_id: int) -> Response:
        user, form = await posted(request, "approve")
        fresh(item_id, form)
        if form.get("reject"):
            queue_actions.withdraw(engine, item_id, actor=user.name, now=utcnow(), reason=str(form.get("note") or ""))
        else:
            queue_actions.approve(engine, item_id, actor=user.name, now=utcnow(), config=config.queue)
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.post("/items/{item_id}/claim")
    async def claim(request: Request, item_id: int) -> Response:
        user, form = await posted(request, "resolve")
        if form.get("release"):
            queue_actions.release(engine, item_id, actor=user.name, now=utcnow())
        else:
            queue_actions.claim(engine, item_id, actor=user.name, now=utcnow(), config=config.queue)
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.post("/items/{item_id}/assign")
    async def assign(request: Request, item_id: int) -> Response:
        user, form = await posted(request, "resolve")
        queue_actions.assign(engine, item_id, str(form.get("assignee") or "").strip() or None,
                             actor=user.name, now=utcnow())
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    @app.post("/items/{item_id}/note")
    async def note(request: Request, item_id: int) -> Response:
        user, form = await posted(request, "note")
        queue_actions.add_note(engine, item_id, str(form.get("text") or ""), actor=user.name, now=utcnow())
        return RedirectResponse(f"/items/{item_id}", status_code=303)

    # --- balances, runs, report -------------------------------------------------

    @app.get("/customers", response_class=HTMLResponse)
    def customers_page(request: Request, as_of: str = "") -> Response:
        signed_in(request)
        day = _day(as_of)
        frame = balances(engine, day, rules.edges, broken_after_days=rules.broken_after_days)
        return _page(request, "customers.html", as_of=day, rows=_money_text(frame, rules).to_dicts(),
                     labels=bucket_labels(rules.edges))

    @app.get("/customers/{customer_id}", response_class=HTMLResponse)
    def customer_page(request: Request, customer_id: str, as_of: str = "") -> Response:
        signed_in(request)
        st = statement_of_account(engine, customer_id, _day(as_of), rules)
        entries = st.entries.with_columns(
            decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
            decimal_text(pl.col("balance_minor"), pl.col("currency")).alias("balance"),
        )
        schedule = st.schedule.with_columns(
            decimal_text(pl.col("amount_minor"), pl.col("currency")).alias("amount"),
            decimal_text(pl.col("open_minor"), pl.col("currency")).alias("open"),
        )
        return _page(request, "customer.html", st=st, entries=entries.to_dicts(), schedule=schedule.to_dicts(),
                     totals=_money_text(st.totals, rules).to_dicts(), labels=bucket_labels(rules.edges))

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(request: Request) -> Response:
        signed_in(request)
        r = tables.PostingRun
        with db.transaction(engine) as session:
            runs = session.execute(select(r.run_id, r.started_at, r.finished_at, r.as_of, r.status, r.dry_run,
                                          r.actor, r.summary).order_by(r.started_at.desc()).limit(200)).all()
        shown = [{**row._asdict(), "summary": json.loads(row.summary) if row.summary else {}} for row in runs]
        return _page(request, "runs.html", runs=shown)

    @app.get("/report", response_class=HTMLResponse)
    def report_page(request: Request, as_of: str = "") -> Response:
        signed_in(request)
        return _page(request, "report.html", as_of=_day(as_of))

    @app.get("/report.html", response_class=HTMLResponse)
    def report_html(request: Request, as_of: str = "") -> Response:
        signed_in(request)
        return HTMLResponse(render(gather(engine, _day(as_of), rules)))

    return app


# --- helpers ------------------------------------------------------------------------


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _roles_for(permission: str) -> list[str]:
    from reconcile.web.users import PERMISSIONS, ROLES

    return [r for r in ROLES if r in PERMISSIONS[permission]]


def _local(path: str) -> str:
    """Only redirect within this site."""
    return path if path.startswith("/") and not path.startswith("//") else "/queue"


def _day(text: str) -> date:
    if not text:
        return utcnow().date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReconcileError(f"{text!r} is not a date: use YYYY-MM-DD") from None


def _filters(reason: str, assignee: str, min_amount: str, max_amount: str, min_age: str, status: str) -> QueueFilter:
    age = None
    if min_age.strip():
        if not min_age.strip().isdigit():
            raise ReconcileError(f"age {min_age!r}: give a whole number of days")
        age = int(min_age)
    return QueueFilter(status=None if status == "all" else (status or "open"), reason=reason or None,
                       assignee=assignee.strip() or None, min_amount=min_amount.strip() or None,
                       max_amount=max_amount.strip() or None, min_age_days=age)


def _state(item: dict[str, Any]) -> str:
    """What the form's page saw: a change in any of these makes the page stale."""
    return f"{item['status']}:{item['resolution'] or ''}:{item['proposed_by'] or ''}"


def _decision(form: Any, item: dict[str, Any]) -> Decision:
    action = str(form.get("action", ""))
    note = str(form.get("note") or "").strip() or None
    if action == "accept":
        choice = str(form.get("choice", "1"))
        if not choice.isdigit():
            raise ReconcileError("choose a suggestion by its rank")
        return Decision("accept", choice=int(choice), note=note)
    if action == "allocate":
        targets, amounts = form.getlist("target"), form.getlist("amount")
        # the form lists the customer's open items: a row counts when it has an amount
        parts = tuple((str(t).strip(), str(a).strip()) for t, a in zip(targets, amounts, strict=False)
                      if str(a).strip())
        if any(not t for t, _ in parts):
            raise ReconcileError("an amount was given without saying which invoice (or on_account) it is for")
        on_account = str(form.get("on_account_amount") or "").strip()
        if on_account:
            parts += ((ON_ACCOUNT, on_account),)
        if not parts:
            raise ReconcileError("enter the amount to allocate to at least one invoice (or on account)")
        return Decision("allocate", parts=parts, customer=str(form.get("customer") or "").strip() or None,
                        rest_on_account=bool(form.get("rest_on_account")), note=note)
    if action == "on_account":
        return Decision("on_account", customer=str(form.get("customer") or "").strip() or None, note=note)
    if action == "write_off":
        return Decision("write_off", invoice=str(form.get("invoice") or "").strip() or None,
                        code=str(form.get("code") or "").strip() or None, note=note)
    if action in ("not_receivable", "refund"):
        return Decision(action, code=str(form.get("code") or "").strip() or None, note=note)
    raise ReconcileError(f"unknown action {action!r}")


def _money_text(frame: pl.DataFrame, rules: Collections) -> pl.DataFrame:
    money = ["open", *bucket_labels(rules.edges), "overdue", "on_account", "pending_application", "last_payment"]
    return frame.with_columns([decimal_text(pl.col(c), pl.col("currency")).alias(c) for c in money])
