"""Hostile XML is refused before it can expand or reach the file system or network."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconcile.core.errors import InputError
from reconcile.parsers import parse_bytes

HEAD = b'<?xml version="1.0"?>\n'
BODY = (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><Stmt>'
        b"<Id>&x;</Id></Stmt></BkToCstmrStmt></Document>")

LAUGHS = HEAD + b"<!DOCTYPE Document [" + b'<!ENTITY a "lol">' + b"".join(
    f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
) + b'<!ENTITY x "&j;">]>' + BODY
EXTERNAL = HEAD + b'<!DOCTYPE Document [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + BODY
NETWORK = HEAD + b'<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/evil.dtd">' + BODY.replace(b"&x;", b"S")


@pytest.mark.parametrize("payload", [LAUGHS, EXTERNAL], ids=["billion-laughs", "external-entity"])
def test_entity_declarations_are_refused(payload: bytes) -> None:
    with pytest.raises(InputError) as caught:
        parse_bytes(payload, Path("evil.xml"))
    assert "entity declarations are not allowed" in str(caught.value)
    assert "root:" not in str(caught.value)


def test_external_dtd_is_never_fetched() -> None:
    # no_network + load_dtd=False: the document parses without touching 127.0.0.1:9, and is then
    # refused for having no account, not for a network error.
    with pytest.raises(InputError) as caught:
        parse_bytes(NETWORK, Path("dtd.xml"))
    assert "names no account" in str(caught.value)
