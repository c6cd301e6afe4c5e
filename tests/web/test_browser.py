"""End to end in headless Chromium (Playwright driving the system's browser, never a downloaded one).

An accountant signs in, claims the next item with the keyboard, allocates it by
hand (the page refuses amounts that do not add up before sending them) and sees
the customer's balance change; a collector is refused the same decision.
Screenshots of the main pages go to docs/web-*.png.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from reconcile.store import db
from tests.web.conftest import PASSWORD, SETTINGS, add_people, load_demo

DOCS = Path(__file__).resolve().parents[2] / "docs"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"browser tests must run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn on a free port, in a thread, over a temporary SQLite database with the demo's data."""
    import uvicorn

    from reconcile.web import create_app

    folder = tmp_path_factory.mktemp("web")
    engine = db.make_engine(f"sqlite:///{folder / 'reconcile.db'}")
    db.upgrade(engine)
    load_demo(engine, folder / "demo")
    add_people(engine)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(engine, SETTINGS, secret_key="browser-test"), host="127.0.0.1", port=port,
                            log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the web server did not start within 10 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    path = _chromium()
    if path is None:
        _unavailable("no system Chromium found (/usr/bin/chromium; .ci/run installs it with apt-get)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _sign_in(browser, server: str, name: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    page.goto(f"{server}/queue")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"web-{name}.png"), full_page=True)


def _balance(page, server: str, customer: str) -> tuple[Decimal, Decimal]:  # type: ignore[no-untyped-def]
    page.goto(f"{server}/customers/{customer}")
    row = page.locator("#totals tbody tr").first
    return Decimal(row.locator("td.open").inner_text()), Decimal(row.locator("td.on-account").inner_text())


def test_accountant_claims_resolves_and_sees_the_balance_change(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    login = browser.new_context(viewport={"width": 1280, "height": 700}).new_page()
    login.goto(f"{server}/login")
    _shot(login, "login")
    login.context.close()

    page = _sign_in(browser, server, "alice")
    assert page.url.endswith("/queue")
    assert page.locator("#queue tbody tr").count() == 2
    _shot(page, "queue")
    open_before, credit_before = _balance(page, server, "C0001")

    page.goto(f"{server}/queue")
    page.keyboard.press("n")  # claim next
    page.wait_for_url("**/items/*")
    assert page.locator("#claimed-by").inner_text() == "alice"
    payment = Decimal(page.locator("#payment").inner_text())
    page.fill("input[name=customer][list=customers] >> nth=0", "C0001")
    page.click("text=Show open items")
    page.wait_for_url("**customer=C0001")
    first_open = Decimal(page.locator("#open-items tbody tr td.num >> nth=1").inner_text())
    part = min(first_open, Decimal("100.00"))

    form = page.locator("#allocate")
    check = page.locator("#alloc-check")
    assert "Enter the amount" in check.inner_text()
    amount = form.locator("input[name=amount]").first
    amount.fill(str(part))
    assert "unallocated" in check.inner_text()  # checked in the page before anything is sent
    url = page.url
    form.locator("button[type=submit]").click()
    assert page.url == url and "bad" in (check.get_attribute("class") or "")
    form.locator("input[name=on_account_amount]").fill(str(payment))
    assert "more than the payment" in check.inner_text()
    form.locator("input[name=on_account_amount]").fill("")
    form.locator("#rest").check()
    assert check.inner_text() == "The amounts add up."
    _shot(page, "exception")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#resolved")
    assert "Resolved (allocate) by alice" in page.locator("#resolved").inner_text()

    open_after, credit_after = _balance(page, server, "C0001")
    assert open_after == open_before - part
    assert credit_after == credit_before + payment - part
    _shot(page, "customer")
    page.goto(f"{server}/runs")
    assert page.locator("#runs tbody tr").count() >= 1
    _shot(page, "runs")
    page.goto(f"{server}/report")
    page.frame_locator("#report").locator("h1").wait_for()
    _shot(page, "report")
    page.context.close()


def test_collector_reads_but_is_refused_resolving(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    page = _sign_in(browser, server, "carl")
    page.goto(f"{server}/queue")
    assert page.locator("#claim-next").count() == 0
    page.locator("#queue tbody a").first.click()
    page.wait_for_url("**/items/*")
    assert page.locator("#allocate").count() == 0
    item = page.url.rsplit("/", 1)[1]
    token = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(f"{server}/items/{item}/resolve",
                                form={"csrf": token, "action": "on_account", "customer": "C0001"})
    assert refused.status == 403 and "carl is a collector" in refused.text()
    page.fill("input[name=text]", "promised to pay on Friday")
    page.click("text=Add note")
    assert "promised to pay on Friday" in page.locator("#notes").inner_text()
    page.context.close()
