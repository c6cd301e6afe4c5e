"""Progress of long commands on stderr: Rich bars on a terminal; elsewhere (CI, cron, a pipe) plain
lines, the first after a few seconds and then every ten, so quick commands stay quiet.

Standard output is left to the command's result (a table, CSV or JSON). The steps a command
reports are its own (files, chunks, lines); this module only shows them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Self

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from reconcile.cli.common import clean, err_console

FIRST_LINE_AFTER = 3.0   # seconds before a plain progress line is worth printing
LINE_EVERY = 10.0
UNITS = {"ingest": "files", "posting": "chunks", "matching": "lines"}


class Reporter:
    """`reporter(phase, done, total)` from any thread; `with reporter.phase(text):` for a step
    without a count. Use as a context manager around the command's work."""

    def __init__(self, live: bool | None = None) -> None:
        self.live = err_console.is_terminal if live is None else live
        self.started = time.monotonic()
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}
        self._bars: Progress | None = None

    def __enter__(self) -> Self:
        if self.live:
            self._bars = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console)
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def _line(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and (now - self.started < FIRST_LINE_AFTER or now - self._last_line < LINE_EVERY):
                return
            self._last_line = now
        err_console.print(f"{time.strftime('%H:%M:%S')} {clean(text)}", markup=False, highlight=False)

    def __call__(self, phase: str, done: int, total: int) -> None:
        unit = UNITS.get(phase, "")
        if self._bars is not None:
            with self._lock:
                task = self._tasks.get(phase)
                if task is None:
                    task = self._tasks[phase] = self._bars.add_task(f"{phase} ({unit})" if unit else phase,
                                                                    total=total)
            self._bars.update(task, completed=done, total=total)
            return
        finished = done >= total and self._last_line > 0  # close a phase whose progress was shown
        self._line(f"{phase}: {done} of {total} {unit}".rstrip(), force=finished)

    @contextmanager
    def phase(self, text: str, *, announce: bool = False) -> Iterator[None]:
        """A step with no count: a spinner on a terminal, a line when it is slow elsewhere (at
        once with `announce`)."""
        began = time.monotonic()
        if self._bars is not None:
            task = self._bars.add_task(text, total=None)
            try:
                yield
            finally:
                self._bars.update(task, total=1, completed=1)
            return
        self._line(f"{text} ...", force=announce)
        yield
        if time.monotonic() - began >= FIRST_LINE_AFTER:
            self._line(f"{text}: done in {time.monotonic() - began:.1f} s", force=True)
