"""The project's error types.

Every error a user can cause is a ReconcileError; InputError names the file,
the position in it (line, element path, row) and the reason, so a bad bank
file or snapshot row can be found and fixed without a traceback.
"""

from __future__ import annotations

from pathlib import Path


class ReconcileError(Exception):
    """Base class of every error the project raises on purpose."""


class InputError(ReconcileError):
    """A file (or one of its records) that cannot be read as what it claims to be."""

    def __init__(self, path: str | Path | None, where: str | None, why: str) -> None:
        self.path = str(path) if path is not None else None
        self.where = where
        self.why = why
        super().__init__(self.__str__())

    def __str__(self) -> str:
        parts = [p for p in (self.path, self.where) if p]
        return ": ".join([*parts, self.why])


class ConfigError(ReconcileError):
    """A configuration file or setting that is missing or malformed."""


class LedgerError(ReconcileError):
    """A posting that would break a ledger invariant (double post, negative open amount)."""


class NotFoundError(ReconcileError):
    """A named thing (bank line, invoice, exception item) that does not exist."""
