"""The inbox's plain functions (no Prefect): which files are picked up, archive, quarantine, retry sorting."""

from __future__ import annotations

import errno
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from reconcile.config import load_config
from reconcile.core.errors import ConfigError, InputError
from reconcile.statements import inbox


def test_pending_files_are_the_statements_waiting_in_the_inbox(tmp_path: Path) -> None:
    for name in ("b.xml", "a.csv", ".hidden.csv", "upload.csv.part", "c.ofx.tmp", "x.csv.reason.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "old.csv").write_text("x")
    assert [p.name for p in inbox.pending_files(tmp_path)] == ["a.csv", "b.xml"]
    assert inbox.pending_files(tmp_path / "missing") == []


def test_archive_goes_to_a_dated_folder_and_never_overwrites(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    for content in ("first", "second"):
        (tmp_path / "s.csv").write_text(content)
        inbox.archive_file(tmp_path / "s.csv", archive, date(2026, 11, 24))
    day = archive / "2026-11-24"
    assert (day / "s.csv").read_text() == "first" and (day / "s-2.csv").read_text() == "second"
    assert not (tmp_path / "s.csv").exists()


def test_quarantine_keeps_the_file_and_writes_its_reason_beside_it(tmp_path: Path) -> None:
    (tmp_path / "bad.xml").write_text("<Document")
    moved = inbox.quarantine_file(tmp_path / "bad.xml", tmp_path / "q", "bad.xml: line 1: XML is cut off")
    assert moved == tmp_path / "q" / "bad.xml" and moved.read_text() == "<Document"
    assert (tmp_path / "q" / "bad.xml.reason.txt").read_text() == "bad.xml: line 1: XML is cut off\n"


def test_only_passing_io_and_dropped_connections_are_retried() -> None:
    assert inbox.is_transient(OSError(errno.EIO, "Input/output error"))
    assert inbox.is_transient(TimeoutError("share did not answer"))
    assert inbox.is_transient(OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert not inbox.is_transient(InputError("s.csv", "line 3", "amount is not a number"))
    assert not inbox.is_transient(FileNotFoundError(errno.ENOENT, "No such file"))
    assert not inbox.is_transient(PermissionError(errno.EACCES, "Permission denied"))
    assert not inbox.is_transient(ValueError("a bug"))


def _config(tmp_path: Path, toml: str) -> Path:
    (tmp_path / "reconcile.toml").write_text(toml)
    return tmp_path


def test_inbox_folders_come_from_config_relative_to_the_inbox(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, '[inbox]\npath = "/data/in"\narchive = "done"\nquarantine = "/data/bad"\n'))
    box = inbox.InboxSettings.from_config(config.inbox)
    assert (box.path, box.archive, box.quarantine) == (Path("/data/in"), Path("/data/in/done"), Path("/data/bad"))
    assert inbox.InboxSettings.from_config(config.inbox, "/elsewhere").archive == Path("/elsewhere/done")
    assert inbox.InboxSettings.from_config(load_config(_config(tmp_path, "")).inbox).path == Path("inbox")
    with pytest.raises(ConfigError, match=r"\[inbox\] archive must be text, not 3"):
        load_config(_config(tmp_path, "[inbox]\narchive = 3\n"))
