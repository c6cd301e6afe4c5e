"""What every page of the web workspace shares: the signed-in user, CSRF, rendering, messages.

The routers (web/routes) call these and the service, queue and collector functions; they never
touch tables. A request's user comes from its server-side session (sessions.py); forms carry the
cookie session's CSRF token. Request parameters are checked in params.py; amounts and times are
formatted by the filters registered here (format_amount, the one formatter, and the time zone).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from reconcile.collectors.balances import Collections
from reconcile.config import Config
from reconcile.core.errors import ConfigError, ReconcileError
from reconcile.core.money import format_amount, parse_decimal, to_minor
from reconcile.web import sessions
from reconcile.web.users import PERMISSIONS, ROLES, WebUser, find_user

HERE = Path(__file__).parent


class NeedLogin(Exception):
    """No live session: the browser is sent to sign in."""


class Refused(Exception):
    """A request the user may not make (role, CSRF): a message page, status 403."""


class Stale(Exception):
    """The page the form came from no longer shows the item as it is."""


class BadRequest(Exception):
    """A malformed parameter (not a number, a date out of range): a message page, status 400."""


@dataclass
class Web:
    """The app's settings and collaborators, on app.state.web for every router."""

    engine: Engine
    config: Config
    rules: Collections
    templates: Jinja2Templates
    zone: ZoneInfo
    clock: Callable[[], datetime]

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        return self.clock().astimezone(self.zone).date()


def make_web(engine: Engine, config: Config, clock: Callable[[], datetime]) -> Web:
    zone_name = config.web.timezone or config.schedule.timezone or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[web] timezone {zone_name!r} is not an IANA time zone") from None
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    style = config.web.number_style
    templates.env.filters["money"] = lambda value, currency: money(value, currency, style)
    templates.env.filters["when"] = lambda value: when(value, zone)
    templates.env.filters["count"] = lambda value: format_amount(int(value or 0), "JPY", style)
    templates.env.globals["zone"] = zone_name
    return Web(engine, config, Collections.from_config(config), templates, zone, clock)


def web_of(request: Request) -> Web:
    return request.app.state.web  # type: ignore[no-any-return]


# --- formatting (template filters) ------------------------------------------------------------


def money(value: Any, currency: str | None, style: str = "en") -> str:
    """Minor units (int) or decimal text ("-12.50"), as people read it ("1,234.50")."""
    if value is None or value == "" or not currency:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return format_amount(value, currency, style)
    try:
        minor = to_minor(
            parse_decimal(str(value)) if not isinstance(value, Decimal) else value, currency
        )
    except ValueError:
        return str(value)
    return format_amount(minor, currency, style)


def when(value: Any, zone: ZoneInfo) -> str:
    """A timestamp in the workspace's time zone, with the zone: "2026-11-21 07:00 CET"."""
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    return str(value)


# --- users, CSRF, pages -------------------------------------------------------------------------


def ensure_csrf(request: Request) -> str:
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return str(request.session["csrf"])


def check_csrf(request: Request, token: Any) -> None:
    expected = request.session.get("csrf")
    if not expected or not isinstance(token, str) or not hmac.compare_digest(expected, token):
        raise Refused(
            "The form's security token is missing or out of date (an old page, or a form from "
            "another site). Reload the page and try again. Nothing was changed."
        )


def signed_in(request: Request, permission: str = "view") -> WebUser:
    """The user of the request's live session, allowed `permission`; else NeedLogin / Refused."""
    web = web_of(request)
    record = sessions.current(
        web.engine, request.session.get("sid"), now=web.now(), web=web.config.web
    )
    user = (
        find_user(web.engine, record.user_name) if record else None
    )  # a removed user loses access
    if user is None:
        request.session.pop("sid", None)
        raise NeedLogin()
    request.state.user = user
    if not user.may(permission):
        raise Refused(
            f"{user.name} is {_article(user.role)} {user.role}: "
            f"only {' or '.join(_roles_for(permission))} may {permission} here."
        )
    return user


async def posted(request: Request, permission: str) -> tuple[WebUser, Any]:
    """The signed-in user (with `permission`) and the form, whose CSRF token is the session's."""
    user = signed_in(request, permission)
    form = await request.form()
    check_csrf(request, form.get("csrf"))
    return user, form


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    web = web_of(request)
    user = getattr(request.state, "user", None)
    flash = request.session.pop("flash", None)
    return web.templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "csrf": request.session.get("csrf", ""),
            "flash": flash,
            "path": request.url.path,
            **context,
        },
        status_code=status,
    )


def message(
    request: Request,
    title: str,
    text: str,
    status: int,
    back: str | None = None,
    ok: bool = False,
    **extra: Any,
) -> HTMLResponse:
    return page(
        request,
        "message.html",
        status,
        title=title,
        text=text,
        ok=ok,
        back=local(back or request.headers.get("referer") or "/queue", absolute_ok=True),
        **extra,
    )


def flash(request: Request, text: str, **extra: Any) -> None:
    """A message for the next page (kept in the signed cookie session until shown)."""
    request.session["flash"] = {"text": text, **extra}


def local(path: str, *, absolute_ok: bool = False) -> str:
    """Only redirect within this site."""
    if absolute_ok and "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return path if path.startswith("/") and not path.startswith("//") else "/queue"


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _roles_for(permission: str) -> list[str]:
    return [r for r in ROLES if r in PERMISSIONS[permission]]


def refuse_service(exc: ReconcileError) -> str:
    return str(exc)
