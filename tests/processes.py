"""Real processes for tests: a Celery worker (with beat) on the test database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.db import connection

from dmed.gunicorn_conf import gunicorn_command

ROOT = Path(__file__).resolve().parent.parent


def live_database_url() -> str:
    """Return a DATABASE_URL for the test database the live server uses."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user, host, port, name = (settings_dict[k] for k in ("USER", "HOST", "PORT", "NAME"))
    return f"postgres://{user}@{host}:{port}/{name}"


# Fast retries so faults play out in seconds; the same rules as production otherwise.
FAST_EXCHANGE = {
    "EXCHANGE_RETRY_BASE_SECONDS": "0.2",
    "EXCHANGE_RETRY_CAP_SECONDS": "1",
    "EXCHANGE_LEASE_SECONDS": "3",
    "EXCHANGE_SWEEP_SECONDS": "0.5",
    "EXCHANGE_REQUEUE_SECONDS": "2",
    "EXCHANGE_READ_TIMEOUT": "10",
}


class Worker:
    """A Celery worker with embedded beat, as `make demo` runs it, in its own process."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.env = os.environ | {"DATABASE_URL": live_database_url(), **FAST_EXCHANGE, **env}
        self.process: subprocess.Popen | None = None
        self.output: list[str] = []
        self._ready = threading.Event()

    def start(self) -> Worker:
        self._ready.clear()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "dmed",
                "worker",
                "-B",
                "--pool",
                "solo",
                "--loglevel",
                "INFO",
                "-s",
                str(self.tmp_path / "beat-schedule"),
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, with the embedded beat process
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(60):
            raise RuntimeError("the Celery worker did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(20)
        self._kill_group()
        self.process.wait()

    def kill(self) -> None:
        """Kill the worker at once, as a crash would (SIGKILL: no warm shutdown)."""
        assert self.process is not None
        self._kill_group()
        self.process.wait()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)


def wait_for(check, timeout: float = 30, interval: float = 0.2, message: str = "condition"):
    """Poll check() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")


class Web:
    """The web app under gunicorn, as `make demo` runs it, on the test database."""

    def __init__(self, port: int, workers: int = 1, **env: str) -> None:
        self.url = f"http://127.0.0.1:{port}"
        # Tokens and engines looked up every time, as in the test process: a module's server
        # outlives the nodes (and their tokens) of each test.
        self.env = os.environ | {
            "DATABASE_URL": live_database_url(),
            "FHIR_AUTH_CACHE_SECONDS": "0",
            "ENGINE_ROUTES_CACHE_SECONDS": "0",
            **env,
        }
        self.command = gunicorn_command(f"127.0.0.1:{port}", workers=workers, threads=4)
        self.process: subprocess.Popen | None = None

    def start(self) -> Web:
        import requests

        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def answering() -> bool:
            try:
                return requests.get(f"{self.url}/accounts/login/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(answering, timeout=60, message=f"gunicorn at {self.url}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
