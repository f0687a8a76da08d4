"""`manage.py demo` runs web, worker and beat, serves every demo node, and stops on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from nodes.demo import NODES, demo_api_token

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True)


def _children(pid: int, role: str) -> list[int]:
    """The pids of a process's children running Celery's `role` (worker, beat)."""
    found = subprocess.run(
        ["pgrep", "-P", str(pid), "-f", f"celery -A dmed {role}"], capture_output=True, text=True
    )
    return [int(line) for line in found.stdout.split()]


@pytest.fixture
def demo_env(tmp_path) -> dict:
    env = os.environ | {"DMED_VAR_DIR": str(tmp_path / "var")}
    env.pop("DATABASE_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    return env


def test_demo_serves_every_node_and_stops_cleanly_on_ctrl_c(demo_env):
    _manage("migrate", "--noinput", env=demo_env)
    _manage("collectstatic", "--noinput", env=demo_env)
    _manage("seed_demo", env=demo_env)
    port = _free_port()
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port)],
        cwd=ROOT,
        env=demo_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{base}/gp/fhir/metadata", timeout=10)
                break
            except requests.ConnectionError:
                time.sleep(0.3)
        for slug, *_ in NODES:
            response = requests.get(f"{base}/{slug}/fhir/metadata", timeout=10)
            assert response.status_code == 200, slug
            assert response.json()["resourceType"] == "CapabilityStatement"
            token = {"Authorization": f"Bearer {demo_api_token(slug)}"}
            held = "ConceptMap" if slug == "engine" else "Patient"  # an engine holds only its maps
            assert requests.get(f"{base}/{slug}/fhir/{held}", headers=token, timeout=10).status_code == 200
        assert requests.get(f"{base}/gp/fhir/Patient", timeout=10).status_code == 401
        login = requests.get(f"{base}/accounts/login/", timeout=10)
        assert login.status_code == 200
        assert "nhsuk" in requests.get(f"{base}/static/nhsuk/nhsuk-frontend.min.css", timeout=10).text[:2000]
        missing = requests.get(f"{base}/no-such-page/x/y", timeout=10)
        assert missing.status_code == 404
        assert "Traceback" not in missing.text

        (worker,) = _children(demo.pid, "worker")
        os.kill(worker, signal.SIGKILL)  # a worker that dies is started again
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _children(demo.pid, "worker") in ([], [worker]):
            time.sleep(0.3)
        assert _children(demo.pid, "worker") not in ([], [worker])
    finally:
        os.killpg(demo.pid, signal.SIGINT)
        output, _ = demo.communicate(timeout=60)
    assert demo.returncode == 0, output
    assert "dmed demo stopped." in output
    assert "prescriber" in output
    assert "pharmacist-peer-to-peer" in output
    assert "celery@" in output, "the worker started"
    assert "manage.py scenario --topology" in output
    assert "The worker process stopped (exit -9); starting it again." in output
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the web server is gone"
