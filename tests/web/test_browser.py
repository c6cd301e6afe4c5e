"""End to end in headless Chromium (Playwright driving the system's browser, never a download).

On a team-sized book (tests/web/scale.py: 1,500 customers, over 2,000 open queue items): paging with
the true total, search, the keyboard flow (the view kept across Claim next, keys 1-9, the next item
of the view after a decision), undo of a decision and of a bulk batch, leaving an item gives its
claim back, the manual allocation form, the collector's landing page, and the 390 px layout.
Screenshots of the main pages go to docs/web-*.png.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconcile.queue import views
from reconcile.queue.views import QueueFilter
from reconcile.store import db
from tests.web.conftest import PASSWORD, SETTINGS, add_people
from tests.web.scale import build_book

DOCS = Path(__file__).resolve().parents[2] / "docs"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _unavailable(why: str) -> None:
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"browser tests must run in CI: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, object]]:
    folder = tmp_path_factory.mktemp("web")
    engine = db.make_engine(f"sqlite:///{folder / 'reconcile.db'}")
    db.upgrade(engine)
    built = build_book(engine, SETTINGS, customers=1500, queued=2600)
    assert built.queued >= 2000, built
    add_people(engine)
    yield engine, built
    engine.dispose()


@pytest.fixture(scope="module")
def server(book) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """uvicorn on a free port, in a thread, over the team-sized SQLite book."""
    import uvicorn

    from reconcile.web import create_app

    engine, _ = book
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(engine, SETTINGS, secret_key="browser-test"),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
    )
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    path = _chromium()
    if path is None:
        _unavailable(
            "no system Chromium found (/usr/bin/chromium; .ci/run installs it with apt-get)"
        )
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=path, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _sign_in(browser, server: str, name: str, width: int = 1280, height: int = 900):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.problems = problems  # CSP refusals and script errors show up here
    page.goto(f"{server}/")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / f"web-{name}.png"), full_page=True)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _item_id(url: str) -> int:
    return int(re.search(r"/items/(\d+)", url).group(1))  # type: ignore[union-attr]


def test_paging_shows_the_true_total_and_search_finds(browser, server: str, book) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    login = browser.new_context(viewport={"width": 1280, "height": 700}).new_page()
    login.goto(f"{server}/login")
    _shot(login, "login")
    login.context.close()

    page = _sign_in(browser, server, "alice")
    assert page.url.endswith("/queue")
    total = views.count_items(engine, filters=QueueFilter())
    assert total >= 2000
    shown = page.locator("#range-top").inner_text()
    assert shown == f"1–50 of {total:,}"
    assert page.locator("#queue tbody tr").count() == 50
    _shot(page, "queue")
    page.click("nav[aria-label='Pages (top)'] >> text=Next")
    page.wait_for_url("**page=2")
    assert page.locator("#range-top").inner_text() == f"51–100 of {total:,}"

    # search by payer name: the count is the database's, every row is that payer
    payer = views.list_items(engine, config=SETTINGS.queue, sort="payer", limit=1)[
        "counterparty_name"
    ][0]
    page.fill("input[name=q]", payer)
    page.click("text=Show")
    page.wait_for_url("**q=*")
    expected = views.count_items(engine, filters=QueueFilter(search=payer))
    assert page.locator("#queue-heading").inner_text().startswith(f"{expected:,} item(s)")
    payers = page.locator("#queue tbody tr td:nth-child(7)").all_inner_texts()
    assert payers and all(p == payer for p in payers)

    # by amount: exact, and a range
    amount = views.list_items(engine, config=SETTINGS.queue, limit=1)["amount"][0]
    page.goto(f"{server}/queue?q={amount}")
    exact = views.count_items(engine, filters=QueueFilter(search=amount))
    assert exact >= 1 and page.locator("#queue tbody tr[data-id]").count() == min(exact, 50)
    page.goto(f"{server}/queue?q=100..200&sort=largest")
    ranged = views.count_items(engine, filters=QueueFilter(search="100..200"))
    amounts = [
        _number(a.split()[0].replace(".", ""))
        for a in page.locator("#queue tbody tr td:nth-child(6)").all_inner_texts()
    ]
    assert len(amounts) == min(ranged, 50) and all(10000 <= a <= 20000 for a in amounts)
    assert amounts == sorted(amounts, reverse=True)
    # an empty result says so
    page.goto(f"{server}/queue?q=no+such+payer+anywhere")
    assert "No item matches" in page.locator("#empty").inner_text()
    for name in ("runs", "approvals"):
        page.goto(f"{server}/{name}")
        _shot(page, name)
    page.goto(f"{server}/report")
    page.frame_locator("#report").locator("h1").wait_for()
    _shot(page, "report")
    assert page.problems == []
    page.context.close()


def test_keyboard_flow_keeps_the_view_and_undoes(browser, server: str, book) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    with_suggestions = views.list_items(engine, config=SETTINGS.queue).filter(
        views.pl.col("suggestions").is_not_null()
    )
    reason = with_suggestions["reason"].value_counts(sort=True)["reason"][0]
    page = _sign_in(browser, server, "bob")
    page.goto(f"{server}/queue?reason={reason}&sort=largest")
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("#queue tbody tr.current").count() == 1
    page.keyboard.press("?")
    assert page.locator("#keys").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("n")  # claim next in this view
    page.wait_for_url("**/items/*")
    first = _item_id(page.url)
    assert "reason%3D" + reason in page.url and "sort%3Dlargest" in page.url
    assert page.locator("#claimed-by").inner_text() == "bob"
    item = views.get_item(engine, first, config=SETTINGS.queue)
    assert item["reason"] == reason
    largest = views.list_items(
        engine, filters=QueueFilter(reason=reason), sort="largest", limit=1, config=SETTINGS.queue
    )
    assert int(largest["id"][0]) == first  # the view's own order
    if not item["ranked_suggestions"]:
        pytest.skip("the largest item of this reason has no suggestion on this book")
    _shot(page, "exception")
    page.keyboard.press("1")  # accept suggestion 1: posted, and the next item of the view opens
    page.wait_for_function(f"!location.pathname.endsWith('/items/{first}')")
    second = _item_id(page.url)
    assert second != first and "reason%3D" + reason in page.url
    assert f"Exception {first} resolved (accept)" in page.locator("#flash").inner_text()
    assert page.locator("#flash-rows tbody tr").count() >= 1
    assert views.get_item(engine, first, config=SETTINGS.queue)["status"] == "resolved"
    assert views.get_item(engine, second, config=SETTINGS.queue)["claimed_by"] == "bob"
    page.click("#undo button")  # undo the decision just made
    page.wait_for_url("**/items/*")
    reopened = _item_id(page.url)
    assert "reopened" in page.locator("#flash").inner_text()
    assert views.get_item(engine, reopened, config=SETTINGS.queue)["status"] == "open"
    kinds = page.locator("#line-rows tbody tr td:nth-child(2)").all_inner_texts()
    assert "reversal" in kinds and kinds.count("reversal") == len(kinds) // 2  # each row taken back
    history = page.locator("#history").inner_text()
    assert "reopen" in history and "bob" in history
    assert page.problems == []
    page.context.close()


def test_leaving_an_item_gives_its_claim_back(browser, server: str, book) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    page = _sign_in(browser, server, "ada")
    page.goto(f"{server}/queue?sort=newest")
    page.keyboard.press("n")
    page.wait_for_url("**/items/*")
    item = _item_id(page.url)
    assert views.get_item(engine, item, config=SETTINGS.queue)["claimed_by"] == "ada"
    page.click("header nav >> text=Balances")
    page.wait_for_url("**/customers")
    deadline = time.monotonic() + 5
    while (
        views.get_item(engine, item, config=SETTINGS.queue)["claimed_by"]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert views.get_item(engine, item, config=SETTINGS.queue)["claimed_by"] is None
    page.context.close()


def test_a_bulk_action_is_undone_as_a_batch(browser, server: str, book) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    page = _sign_in(browser, server, "alice")
    page.goto(f"{server}/queue?reason=no_candidate&sort=smallest")
    ticked = [
        int(page.locator("#queue tbody tr[data-id]").nth(i).get_attribute("data-id"))
        for i in range(3)
    ]
    for i in range(3):
        page.locator("input[name=ids]").nth(i).check()
    page.select_option("select[name=bulk_action]", "not_receivable")
    page.fill("#bulk input[name=code]", "fee")
    page.click("#bulk button[type=submit]")
    page.wait_for_selector("#message")
    assert "3 item(s) resolved as batch" in page.locator("#message").inner_text()
    assert page.locator("#posted tbody tr").count() == 3
    assert all(
        views.get_item(engine, i, config=SETTINGS.queue)["status"] == "resolved" for i in ticked
    )
    page.click("#undo-batch button")
    page.wait_for_url("**/queue")
    assert "undone: 3 item(s) open again" in page.locator("#flash").inner_text()
    assert all(views.get_item(engine, i, config=SETTINGS.queue)["status"] == "open" for i in ticked)
    page.context.close()


def test_allocation_form_prefills_and_posts(browser, server: str, book) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    frame = views.list_items(
        engine, config=SETTINGS.queue, filters=QueueFilter(reason="amount_mismatch")
    )
    target = next(
        i for i in frame.iter_rows(named=True) if i["customer_id"] and i["currency"] == "EUR"
    )
    page = _sign_in(browser, server, "alice")
    page.goto(f"{server}/customers/{target['customer_id']}")
    before = _number(page.locator("#totals td.open").first.get_attribute("data-minor"))
    page.goto(f"{server}/items/{target['id']}")
    check = page.locator("#alloc-check")
    assert "bad" not in (check.get_attribute("class") or "")  # no error before anything is typed
    assert check.inner_text() in ("", "The amounts add up.")
    amounts = page.locator("#allocate input[name=amount]")
    first = amounts.first.input_value()
    assert first != ""  # pre-filled from the customer's oldest open item
    amounts.first.fill("1.234")
    assert "is not an amount" in check.inner_text()
    amounts.first.fill(first)
    assert check.inner_text() == "The amounts add up."
    page.click("#allocate button[type=submit]")
    page.wait_for_selector("#flash")
    assert "resolved (allocate)" in page.locator("#flash").inner_text()
    page.goto(f"{server}/customers/{target['customer_id']}")
    after = _number(page.locator("#totals td.open").first.get_attribute("data-minor"))
    assert before - after > 0
    page.context.close()


def test_the_collector_lands_on_balances_and_sees_unapplied_payments(
    browser, server: str, book
) -> None:  # type: ignore[no-untyped-def]
    engine, _ = book
    page = _sign_in(browser, server, "carl")
    assert page.url.endswith("/customers")
    assert re.fullmatch(r"1–50 of [\d,]+", page.locator("#range-top").inner_text())
    _shot(page, "customers")
    waiting = views.list_items(engine, config=SETTINGS.queue).filter(
        views.pl.col("customer_id").is_not_null()
    )
    customer = waiting["customer_id"][0]
    page.fill("input[name=q]", customer)
    page.click("form[role=search] button[type=submit]")
    page.wait_for_url("**q=*")
    page.click(f"#balances a:text-is('{customer}')")
    page.wait_for_url(f"**/customers/{customer}")
    rows = page.locator("#unapplied-payments tbody tr")
    mine = waiting.filter(views.pl.col("customer_id") == customer)
    assert rows.count() == mine.height
    assert "HOLD" in page.locator("#hold").inner_text()
    link = rows.first.locator("a")
    assert link.get_attribute("href") == f"/items/{mine['id'][0]}"
    _shot(page, "customer")
    assert (
        page.locator("#allocate").count() == 0 and page.locator("#posted-lines form").count() == 0
    )
    link.click()
    page.wait_for_url("**/items/*")
    assert page.locator("#allocate").count() == 0  # a collector reads, an accountant decides
    page.context.close()


@pytest.mark.parametrize("path", ["/queue", "/customers", "/approvals", "/items/1"])
def test_the_layout_fits_a_390_px_phone(browser, server: str, path: str) -> None:  # type: ignore[no-untyped-def]
    page = _sign_in(browser, server, "ada", width=390, height=844)
    page.goto(f"{server}{path}")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    sign_out = page.locator("#sign-out").bounding_box()
    assert sign_out is not None and sign_out["x"] >= 0 and sign_out["x"] + sign_out["width"] <= 390
    if path == "/queue":
        _shot(page, "phone-queue")
        page.keyboard.press("Tab")  # the skip link first, and it leads to the queue
        assert page.evaluate("document.activeElement.textContent") == "Skip to the queue"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "queue-list"
    assert page.locator("a[aria-current=page]").count() >= 1
    unlabelled = page.evaluate("""[...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea')]
        .filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.name)""")
    assert unlabelled == []
    assert page.problems == []
    page.context.close()
