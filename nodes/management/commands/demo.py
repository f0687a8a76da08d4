"""Run the whole demo: web server, Celery worker and beat, until Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import time

from django.core.management.base import BaseCommand, CommandError

from dmed.celery import beat_command, worker_command
from dmed.gunicorn_conf import gunicorn_command
from nodes.demo import NODES, USERS, demo_api_token, demo_password

# A worker or beat that stops is started again, unless it stops this often (then all stop).
RESTARTS_IN_WINDOW, RESTART_WINDOW_SECONDS = 3, 60


class Command(BaseCommand):
    help = "Start web, Celery worker and beat on the embedded defaults; stop them all on Ctrl-C."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options) -> None:
        if _port_in_use(host, port):
            raise CommandError(f"{host}:{port} is already in use: stop what runs there, or pass --port.")
        commands = {
            "web": [*gunicorn_command(f"{host}:{port}"), "--preload"],
            "worker": worker_command(),
            "beat": beat_command(),
        }
        processes = {name: subprocess.Popen(command) for name, command in commands.items()}
        stopping = False

        def stop(signum, frame) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            if not _wait_for_port(host, port, processes["web"]):
                raise CommandError("The web server did not start; see the lines above.")
            self._print_welcome(f"http://{host}:{port}")
            restarts: dict[str, list[float]] = {name: [] for name in commands}
            while not stopping:
                for name, process in list(processes.items()):
                    if process.poll() is None:
                        continue
                    now = time.monotonic()
                    restarts[name] = [t for t in restarts[name] if t > now - RESTART_WINDOW_SECONDS]
                    if name == "web" or len(restarts[name]) >= RESTARTS_IN_WINDOW:
                        raise CommandError(f"The {name} process stopped (exit {process.returncode}).")
                    self.stderr.write(
                        f"The {name} process stopped (exit {process.returncode}); starting it again."
                    )
                    processes[name] = subprocess.Popen(commands[name])
                    restarts[name].append(now)
                time.sleep(0.5)
        finally:
            _stop_all(processes)
            self.stdout.write("dmed demo stopped.")

    def _print_welcome(self, url: str) -> None:
        lines = ["", f"dmed demo is running at {url}/  (Ctrl-C stops web, worker and beat)", ""]
        lines.append("Nodes (screens, FHIR base):")
        for slug, _kind, ods_code, name in NODES:
            lines.append(f"  {slug:32} {url}/{slug}/   {url}/{slug}/fhir/   {name}, ODS {ods_code}")
        lines += ["", f"Logins (password: {demo_password()}):"]
        for username, slug, role, _ in USERS:
            lines.append(f"  {username:34} {role} at {slug}")
        lines.append(f"  {'admin':34} administrator console at {url}/admin/")
        lines += ["", "FHIR API tokens: Authorization: Bearer <node>.<password>, e.g.", ""]
        lines.append(
            f"  curl -s -H 'Authorization: Bearer {demo_api_token('gp')}' {url}/gp/fhir/MedicationRequest"
        )
        lines += ["", "Drive prescriptions through a topology, in another terminal:", ""]
        lines.append("  .venv/bin/python manage.py scenario --topology peer-to-peer --count 20")
        lines.append(
            "  (peer-to-peer, dispenser-hosted, prescriber-hosted, shared-record, shared-record-events)"
        )
        lines += ["", "A hospital trust's prescriptions through its integration engine:", ""]
        lines.append(
            "  .venv/bin/python manage.py scenario --topology shared-record-events "
            "--via integration-engine --count 20"
        )
        lines.append(f"  (what passed through: {url}/engine/traffic, as engine-admin)")
        lines.append("")
        self.stdout.write("\n".join(lines))


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) == 0


def _wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if _port_in_use(host, port):
            return True
        time.sleep(0.2)
    return False


def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 15
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
