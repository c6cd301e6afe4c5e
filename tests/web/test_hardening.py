"""The web workspace hardened: server-side sessions, sign-in throttling, headers, 400s, CSV, audit.

A cookie copied before sign-out (or before a password change) is refused afterwards; the sixth wrong
password within a minute is refused without being checked and every failure is audited; idle and
absolute timeouts come from [web]; malformed parameters give 400, never 500; exports neutralise
cells a spreadsheet would run; PostgreSQL refuses TRUNCATE of the audit log; a CLI approval needs
the approver's own password.
"""

from __future__ import annotations

import csv
import dataclasses
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from typer.testing import CliRunner

from reconcile.services import daily as service
from reconcile.services.exports import exceptions_frame, write_csv
from reconcile.store import db, tables
from tests.web.conftest import PASSWORD, SETTINGS, TOKEN, add_people, load_demo


def _client(app):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    return TestClient(app, follow_redirects=False)


def _sign_in(client, name: str = "alice", password: str = PASSWORD):  # type: ignore[no-untyped-def]
    token = TOKEN.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    return client.post(
        "/login", data={"csrf": token, "name": name, "password": password, "next": "/queue"}
    )


def _token(client) -> str:  # type: ignore[no-untyped-def]
    return TOKEN.search(client.get("/runs").text).group(1)  # type: ignore[union-attr]


def _audit(engine: Engine, action: str) -> list[tuple[str, str]]:
    a = tables.AuditEntry
    with db.transaction(engine) as session:
        return [
            tuple(r)
            for r in session.execute(select(a.actor, a.action).where(a.action == action)).all()
        ]


@pytest.fixture
def app(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    from reconcile.web import create_app

    load_demo(engine, tmp_path / "demo")
    add_people(engine)
    return create_app(engine, SETTINGS, secret_key="hardening")


def test_a_cookie_replayed_after_sign_out_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    alice = _client(app)
    assert _sign_in(alice).status_code == 303
    copied = alice.cookies.get("reconcile_session")
    assert alice.get("/queue").status_code == 200
    assert alice.post("/logout", data={"csrf": _token(alice)}).status_code == 303
    thief = _client(app)
    thief.cookies.set("reconcile_session", copied)
    answer = thief.get("/queue")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert (
        thief.post("/items/1/note", data={"text": "x"}).status_code == 303
    )  # to sign in, not a note


def test_a_password_change_signs_out_every_session(engine: Engine, app) -> None:  # type: ignore[no-untyped-def]
    laptop, phone = _client(app), _client(app)
    _sign_in(laptop), _sign_in(phone)
    assert phone.get("/queue").status_code == 200
    wrong = laptop.post(
        "/account/password",
        data={
            "csrf": _token(laptop),
            "current": "nope",
            "new": "another password",
            "again": "another password",
        },
    )
    assert wrong.status_code == 403 and phone.get("/queue").status_code == 200
    changed = laptop.post(
        "/account/password",
        data={
            "csrf": _token(laptop),
            "current": PASSWORD,
            "new": "another password",
            "again": "another password",
        },
    )
    assert changed.status_code == 303
    assert phone.get("/queue").status_code == 303 and laptop.get("/queue").status_code == 303
    assert _sign_in(_client(app), password="another password").status_code == 303
    with db.transaction(engine) as session:
        why = set(
            session.execute(
                select(tables.WebSession.revoked_why).where(tables.WebSession.user_name == "alice")
            ).scalars()
        )
    assert "password" in why


def test_the_sixth_wrong_password_in_a_minute_is_refused_and_audited(engine: Engine, app) -> None:  # type: ignore[no-untyped-def]
    browser = _client(app)
    for _ in range(5):
        assert _sign_in(browser, "bob", "guess").status_code == 401
    sixth = _sign_in(
        browser, "bob", PASSWORD
    )  # even the right one: the account waits out the minute
    assert sixth.status_code == 429 and "try again in" in sixth.text
    assert _audit(engine, "web_login_failed") == [("bob", "web_login_failed")] * 5
    assert _audit(engine, "web_login_refused") == [("bob", "web_login_refused")]
    assert _sign_in(_client(app), "alice").status_code == 303  # another account is not held up


def test_sessions_end_after_the_idle_and_the_absolute_timeout(
    engine: Engine, tmp_path: Path
) -> None:
    from reconcile.web import create_app

    add_people(engine)
    now = [service.utcnow()]
    config = dataclasses.replace(
        SETTINGS,
        web=dataclasses.replace(SETTINGS.web, session_idle_minutes=30, session_absolute_hours=2),
    )
    app = create_app(engine, config, secret_key="clock", clock=lambda: now[0])
    browser = _client(app)
    assert _sign_in(browser).status_code == 303
    for _ in range(5):  # busy for 100 minutes: never idle, still signed in
        now[0] += timedelta(minutes=20)
        assert browser.get("/runs").status_code == 200
    now[0] += timedelta(minutes=31)
    assert browser.get("/runs").status_code == 303  # idle
    assert _sign_in(browser).status_code == 303
    for _ in range(7):
        now[0] += timedelta(minutes=20)
        answer = browser.get("/runs")
    assert answer.status_code == 303  # 2 hours 20 after signing in: past the absolute limit


@pytest.mark.parametrize(
    "url",
    [
        "/queue?min_amount=1e999",
        "/queue?max_amount=NaN",
        "/queue?page=0",
        "/queue?page=abc",
        "/queue?sort=random",
        "/queue?status=maybe",
        "/queue?min_age=-3",
        "/items/99999999999999999999",
        "/items/abc",
        "/items/1?view=min_amount%3D1e999",
        "/customers?as_of=9999-12-31",
        "/customers?as_of=0001-01-01",
        "/customers?as_of=yesterday",
        "/customers?page=-1",
        "/customers?sort=drop",
        "/customers/C0001?as_of=9999-12-31",
        "/report.html?as_of=9999-12-31",
        "/report?as_of=2026-13-01",
    ],
)
def test_malformed_parameters_give_400_not_500(app, url: str) -> None:  # type: ignore[no-untyped-def]
    alice = _client(app)
    _sign_in(alice)
    answer = alice.get(url)
    assert answer.status_code == 400, (url, answer.status_code, answer.text[:500])
    assert "Traceback" not in answer.text and "Nothing was changed" in answer.text


def test_malformed_form_amounts_and_ids_give_400(engine: Engine, app) -> None:  # type: ignore[no-untyped-def]
    alice = _client(app)
    _sign_in(alice)
    token = _token(alice)
    item = 1
    huge = alice.post(
        f"/items/{item}/resolve",
        data={"csrf": token, "action": "allocate", "target": "X", "amount": "1e999"},
    )
    assert huge.status_code == 400
    ids = alice.post(
        "/queue/bulk", data={"csrf": token, "ids": "99999999999999999999", "bulk_action": "accept"}
    )
    assert ids.status_code == 400


def test_pages_carry_a_content_security_policy_and_nosniff(app) -> None:  # type: ignore[no-untyped-def]
    alice = _client(app)
    _sign_in(alice)
    for url in ("/login", "/queue", "/customers", "/static/app.js"):
        headers = _client(app).get(url).headers if url == "/login" else alice.get(url).headers
        assert headers["x-content-type-options"] == "nosniff", url
        assert "script-src 'self'" in headers["content-security-policy"], url
    page = alice.get("/queue").text
    assert "<script>" not in page and " style=" not in page and "onclick" not in page


def test_secure_cookie_setting_marks_the_cookie_secure(engine: Engine) -> None:
    from reconcile.web import create_app

    add_people(engine)
    config = dataclasses.replace(
        SETTINGS, web=dataclasses.replace(SETTINGS.web, secure_cookie=True)
    )
    browser = _client(create_app(engine, config, secret_key="s"))
    cookie = browser.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    plain = (
        _client(create_app(engine, SETTINGS, secret_key="s"))
        .get("/login")
        .headers["set-cookie"]
        .lower()
    )
    assert "secure" not in plain


def test_an_exported_cell_starting_with_a_formula_is_neutralised(
    engine: Engine, tmp_path: Path
) -> None:
    load_demo(engine, tmp_path / "demo")
    with db.transaction(engine) as session:
        first = session.execute(
            select(tables.ExceptionItem.bank_line_id).order_by(tables.ExceptionItem.id)
        ).scalar()
        session.execute(
            update(tables.BankLine)
            .where(tables.BankLine.id == first)
            .values(source_ref='=HYPERLINK("http://x","click")')
        )
        session.execute(
            update(tables.ExceptionItem)
            .where(tables.ExceptionItem.bank_line_id == first)
            .values(suggestions="@SUM(A1)|-INV")
        )
        session.execute(
            update(tables.BankLine).where(tables.BankLine.id == first).values(amount_minor=-1250)
        )
    frame = exceptions_frame(engine)
    out = tmp_path / "exceptions.csv"
    write_csv(frame, out)
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    hit = next(r for r in rows if "HYPERLINK" in r["source_ref"])
    assert hit["source_ref"] == '\'=HYPERLINK("http://x","click")'
    assert hit["suggestions"] == "'@SUM(A1)|-INV"
    assert hit["amount"] == "-12.50"  # a contract amount, never touched
    assert all(not r[c].startswith(("=", "+", "-", "@")) for r in rows for c in r if c != "amount")


@pytest.mark.pg
def test_truncate_of_the_audit_log_fails_on_postgresql(pg_url: str) -> None:
    engine = db.make_engine(pg_url)
    try:
        db.upgrade(engine)
        with db.transaction(engine) as session:
            session.add(tables.AuditEntry(at=service.utcnow(), actor="t", action="note"))
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("TRUNCATE audit_log"))
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_log"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_cli_approval_needs_the_approvers_own_password(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconcile.cli import app as cli
    from reconcile.queue import actions
    from reconcile.queue.actions import Decision

    load_demo(engine, tmp_path / "demo")
    add_people(engine)
    ex, inv = tables.ExceptionItem, tables.Invoice
    with db.transaction(engine) as session:
        item = session.execute(select(ex.id).where(ex.status == "open").order_by(ex.id)).scalar()
        number = session.execute(
            select(inv.invoice_number).where(
                inv.customer_id == "C0001", inv.open_amount_minor >= 100000
            )
        ).scalar()
    done = actions.resolve(
        engine,
        item,
        Decision("write_off", invoice=number, code="discount"),
        actor="alice",
        now=service.utcnow(),
        config=SETTINGS.queue,
    )
    assert done["status"] == "pending_approval"
    url = engine.url.render_as_string(hide_password=False)
    runner = CliRunner()

    def approve(actor: str, password: str | None, config_dir: Path | None = None):  # type: ignore[no-untyped-def]
        env = {"RECONCILE_PASSWORD": password} if password is not None else {}
        extra = ["--config", str(config_dir)] if config_dir else []
        return runner.invoke(
            cli,
            ["exceptions", "approve", str(item), "--actor", actor, "--db", url, *extra],
            env=env,
            input="\n",
        )

    monkeypatch.delenv("RECONCILE_PASSWORD", raising=False)
    assert approve("vera", "wrong").exit_code == 2
    assert approve("vera", None).exit_code == 2  # an empty answer at the prompt
    refused = approve("alice", PASSWORD)
    assert refused.exit_code == 2 and "only an approver" in refused.output
    folder = tmp_path / "conf"
    folder.mkdir()
    (folder / "reconcile.toml").write_text("[web]\ncli_approvals = false\n")
    off = approve("vera", PASSWORD, folder)
    assert off.exit_code == 2 and "cli_approvals = false" in off.output
    ok = approve("vera", PASSWORD)
    assert ok.exit_code == 0, ok.output
    with db.transaction(engine) as session:
        assert session.execute(select(ex.approved_by).where(ex.id == item)).scalar_one() == "vera"
