"""The web workspace's fixtures: a database with the demo's data, people with each role, a signed-in client."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from reconcile.config import load_config
from reconcile.services import daily as service
from reconcile.services.demo_data import write_demo_data

SETTINGS = load_config(Path(__file__).resolve().parents[2] / "config")
PASSWORD = "correct horse battery"
PEOPLE = {"alice": "accountant", "bob": "accountant", "vera": "approver", "carl": "collector", "ada": "admin"}
TOKEN = re.compile(r'name="csrf" value="([^"]+)"')


def load_demo(engine: Engine, directory: Path) -> None:
    """The demo's snapshot and statements, one posting run: two credits wait in the queue."""
    files = write_demo_data(directory)
    service.load_ar(engine, files.snapshot_dir)
    for path in files.statements:
        service.ingest_file(engine, path, SETTINGS.parse_options())
    service.run_posting(engine, config=SETTINGS, as_of=files.as_of)


def add_people(engine: Engine) -> None:
    from reconcile.web.users import add_user

    for name, role in PEOPLE.items():
        add_user(engine, name, role, PASSWORD, now=service.utcnow())


@dataclass
class Browser:
    """A TestClient signed in as one person, with the session's CSRF token."""

    client: object
    csrf: str

    def post(self, url: str, data: dict | None = None, **kw):  # type: ignore[no-untyped-def]
        return self.client.post(url, data={"csrf": self.csrf, **(data or {})}, **kw)  # type: ignore[attr-defined]

    def get(self, url: str, **kw):  # type: ignore[no-untyped-def]
        return self.client.get(url, **kw)  # type: ignore[attr-defined]


@pytest.fixture
def web(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A function that signs a person in to a fresh client of the app on the demo database."""
    load_demo(engine, tmp_path / "demo")
    return signer(engine)


@pytest.fixture
def web_suggested(engine: Engine, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The same on the queue tests' book, whose items have ranked suggestions (Q1: two invoices of Acme)."""
    from tests.integration.test_queue_actions import queued_book

    queued_book(engine, tmp_path)
    return signer(engine)


def signer(engine: Engine):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    from reconcile.web import create_app

    add_people(engine)
    app = create_app(engine, SETTINGS, secret_key="test-secret")

    def sign_in(name: str | None = None) -> Browser:
        client = TestClient(app, follow_redirects=False)
        token = TOKEN.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
        if name is None:
            return Browser(client, token)
        done = client.post("/login", data={"csrf": token, "name": name, "password": PASSWORD, "next": "/queue"})
        assert done.status_code == 303, done.text
        token = TOKEN.search(client.get("/runs").text).group(1)  # type: ignore[union-attr]
        return Browser(client, token)

    return sign_in
