"""Sign in (throttled, audited, the password checked in a worker thread), sign out, change password.

A sign-in opens a server-side session (sessions.py) whose token goes into the signed cookie;
signing out or changing the password revokes it, so a copied cookie stops working at once.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from reconcile.core.errors import ReconcileError
from reconcile.web import sessions
from reconcile.web.common import (
    check_csrf,
    ensure_csrf,
    flash,
    local,
    page,
    posted,
    signed_in,
    web_of,
)
from reconcile.web.users import authenticate, set_password

router = APIRouter()


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:
    ensure_csrf(request)
    return page(request, "login.html", next=local(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    name, password = str(form.get("name", "")).strip()[:64], str(form.get("password", ""))
    target = local(str(form.get("next", "/")))
    address = _address(request)
    wait = await run_in_threadpool(
        sessions.throttled, web.engine, name, address, now=web.now(), web=web.config.web
    )
    if wait:
        await run_in_threadpool(
            sessions.record_failure, web.engine, name, address, now=web.now(), refused=True
        )
        return page(
            request,
            "login.html",
            429,
            next=target,
            error=f"Too many wrong passwords for this account or from this address: "
            f"try again in {wait} seconds.",
        )
    user = await run_in_threadpool(authenticate, web.engine, name, password)  # argon2: off the loop
    if user is None:
        await run_in_threadpool(
            sessions.record_failure, web.engine, name, address, now=web.now(), refused=False
        )
        return page(
            request, "login.html", 401, next=target, error="Unknown user name or wrong password."
        )
    token = await run_in_threadpool(
        sessions.open_session, web.engine, user.name, now=web.now(), address=address, role=user.role
    )
    request.session.clear()
    request.session.update({"sid": token, "csrf": secrets.token_urlsafe(32)})
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = web_of(request)
    await posted(request, "view")
    sessions.revoke(web.engine, request.session.get("sid"), now=web.now(), why="logout")
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request) -> Response:
    signed_in(request)
    return page(request, "account.html", error=None)


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request) -> Response:
    web = web_of(request)
    user, form = await posted(request, "view")
    current, new = str(form.get("current", "")), str(form.get("new", ""))
    if await run_in_threadpool(authenticate, web.engine, user.name, current) is None:
        return page(
            request,
            "account.html",
            403,
            error="The current password is wrong. Nothing was changed.",
        )
    if new != str(form.get("again", "")):
        return page(
            request, "account.html", 409, error="The two new passwords differ. Nothing was changed."
        )
    try:
        await run_in_threadpool(set_password, web.engine, user.name, new, now=web.now())
    except ReconcileError as exc:
        return page(request, "account.html", 409, error=f"{exc}. Nothing was changed.")
    request.session.clear()  # every session of this user was revoked, this one too
    ensure_csrf(request)
    flash(request, "Password changed: sign in again with the new one.")
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    user = signed_in(request)
    return RedirectResponse("/customers" if user.role == "collector" else "/queue", status_code=303)
