"""A Prefect server of our own, for `reconcile serve` (and reused by `reconcile run`) when no
PREFECT_API_URL names one.

Prefect's temporary server runs no scheduler and keeps deployment concurrency leases in the
memory of whichever process started it, so served deployments never get a scheduled run and a
run started by hand is cancelled ("slot lost during provisioning"). This module starts the real
`prefect server start` (API, scheduler, triggers, lease reaper) as a child on 127.0.0.1, waits
until it answers, restarts it if it dies, stops it with its parent, and leaves a note in
PREFECT_HOME so a `reconcile run` on the same machine reuses it instead of starting its own.
What runs on it (deployments, flows) is left to the callers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

DEFAULT_PORT = 4200
NOTE = "reconcile-server.json"  # in PREFECT_HOME: {"url", "pid"} of the server `reconcile serve` runs
# The child server's services poll faster than Prefect's defaults (60 s), so a schedule of a few
# minutes (or a test's few seconds) gets its runs made promptly; a user's own settings win.
SERVICE_DEFAULTS = {
    "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "10",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
}


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def port_free(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def running_server() -> str | None:
    """The API URL of a healthy server that a `reconcile serve` on this machine runs, if any."""
    try:
        note = json.loads((prefect_home() / NOTE).read_text(encoding="utf-8"))
        url, pid = str(note["url"]), int(note["pid"])
        os.kill(pid, 0)  # the serving process is still there
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if healthy(url, timeout=0.5) else None


def _die_with_parent() -> None:
    """In the child, before exec: a SIGTERM when the parent dies, even by SIGKILL (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalServer:
    """`prefect server start` as a supervised child process on 127.0.0.1."""

    def __init__(self, port: int | None = None, *, ui: bool = False,
                 log: Callable[[str], None] = print) -> None:
        self.port = port or (DEFAULT_PORT if port_free(DEFAULT_PORT) else free_port())
        self.ui = ui
        self.log = log
        self.home = prefect_home()
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None
        self.restarts = 0

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def log_file(self) -> Path:
        return self.home / "reconcile-server.log"

    def _spawn(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        env = {**SERVICE_DEFAULTS, **os.environ, "PREFECT_HOME": str(self.home)}
        env.pop("PREFECT_API_URL", None)  # the server is not a client of another one
        args = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                "--port", str(self.port)]
        if not self.ui:
            args.append("--no-ui")
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            # one prctl call, no locks taken: safe beside our threads
                                            preexec_fn=_die_with_parent)  # noqa: PLW1509

    def start(self, timeout: float = 180.0) -> str:
        """Start the server and wait until its API answers; its URL. Raises RuntimeError naming the
        log file when it does not come up."""
        if not port_free(self.port):
            raise RuntimeError(f"port {self.port} on 127.0.0.1 is taken: choose another with "
                               "--prefect-port, or point PREFECT_API_URL at the server using it")
        started = time.monotonic()
        self.log(f"starting a Prefect server on http://127.0.0.1:{self.port} "
                 f"(PREFECT_HOME {self.home}; its log: {self.log_file}) ...")
        self._spawn()
        self._wait(started, timeout)
        self.log(f"Prefect server ready on {self.api_url} in {time.monotonic() - started:.1f} s")
        note = {"url": self.api_url, "pid": os.getpid(), "server_pid": self.process.pid}  # type: ignore[union-attr]
        (self.home / NOTE).write_text(json.dumps(note), encoding="utf-8")
        self._watch = threading.Thread(target=self._supervise, name="prefect-server-watch", daemon=True)
        self._watch.start()
        return self.api_url

    def _wait(self, started: float, timeout: float) -> None:
        assert self.process is not None
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Prefect server exited with status {self.process.returncode} "
                                   f"while starting: see {self.log_file}")
            if healthy(self.api_url, timeout=1.0):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the Prefect server did not answer within {timeout:.0f} s: see {self.log_file}")

    def _supervise(self) -> None:
        """Restart the server if it dies (the runner's calls fail meanwhile and are retried)."""
        while not self._stopping.wait(2.0):
            process = self.process
            if process is None or process.poll() is None:
                continue
            self.restarts += 1
            self.log(f"the Prefect server exited (status {process.returncode}); restarting it "
                     f"(restart {self.restarts}, log {self.log_file})")
            try:
                self._spawn()
                self._wait(time.monotonic(), 180.0)
                self.log("Prefect server back")
            except RuntimeError as exc:
                self.log(str(exc))

    def stop(self) -> None:
        self._stopping.set()
        process, self.process = self.process, None
        with contextlib.suppress(OSError, ValueError):
            note = self.home / NOTE
            if json.loads(note.read_text(encoding="utf-8")).get("pid") == os.getpid():
                note.unlink()
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.log("Prefect server stopped")


class TemporaryServer:
    """Prefect's temporary API server (what Prefect starts on its own when no API is configured,
    with no scheduler), started by us as early as possible so it boots while the flow's modules
    load instead of after; PREFECT_API_URL points at it until `stop`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        env = {**SERVICE_DEFAULTS, **os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        self.process: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
             "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - one prctl call, safe beside threads
        )
        os.environ["PREFECT_API_URL"] = self.api_url

    def wait(self, timeout: float = 180.0) -> None:
        """Until the API answers; RuntimeError if the server exits or stays silent."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError("Prefect's temporary server exited while starting")
            if healthy(self.api_url, timeout=1.0):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Prefect's temporary server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if os.environ.get("PREFECT_API_URL") == self.api_url:
            del os.environ["PREFECT_API_URL"]
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
