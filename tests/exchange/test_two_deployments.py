"""A prescriber and a pharmacy in two deployments: separate processes, databases and brokers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.exchange.partner import free_port
from tests.processes import FAST_EXCHANGE, ROOT, Worker, wait_for

SETUP = """
from exchange.models import Partner
from nodes.models import Node
from nodes.services import api_client_issue
me = Node.objects.create(slug={slug!r}, kind={kind!r}, ods_code={ods!r}, name={slug!r})
api_client_issue(node=me, name={other_ods!r}, token={my_token!r}, scopes="system/*.cruds")
api_client_issue(node=me, name="test", token="test-" + {my_token!r}, scopes="system/*.cruds")
Partner.objects.create(
    node=me, ods_code={other_ods!r}, name={other!r}, role={role!r}, topology="peer-to-peer",
    fhir_base={other_base!r} + "/fhir", notification_url={other_base!r} + "/notifications",
    token={other_token!r},
)
"""
ISSUE = """
from nodes.models import Node
from prescribing.services import Item, prescription_issue
item = Item("39720311000001101", "Paracetamol 500mg soluble tablets", 32, "tablet", "Two when needed")
(request,) = prescription_issue(node=Node.objects.get(slug="gp"), nhs_number="9449304130", items=[item],
    pharmacy_ods="FA565")
print(request.logical_id)
"""
COMPLETE = """
from dispensing.services import dispense_complete, worklist
from nodes.models import Node
pharmacy = Node.objects.get(slug="pharmacy")
dispense_complete(node=pharmacy, request=worklist(node=pharmacy).get())
"""


class Deployment:
    def __init__(self, tmp_path, name: str) -> None:
        self.port = free_port()
        var = tmp_path / name
        self.env = (
            os.environ
            | FAST_EXCHANGE
            | {
                "DMED_VAR_DIR": str(var),
                "DATABASE_URL": f"sqlite:///{var / 'dmed.sqlite3'}",
                "CELERY_BROKER_URL": "filesystem://",
            }
        )
        self.var = var
        self.server: subprocess.Popen | None = None
        self.worker: Worker | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def start(self) -> None:
        """Start this deployment's web server and its Celery worker (with beat)."""
        self.server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "dmed.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--threads",
                "4",
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        self.worker = Worker(self.var, **self.env).start()

    def stop(self) -> None:
        if self.server is not None:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait()
        if self.worker is not None:
            self.worker.stop()


@pytest.fixture
def deployments(tmp_path):
    gp, pharmacy = Deployment(tmp_path, "gp"), Deployment(tmp_path, "pharmacy")
    yield gp, pharmacy
    gp.stop()
    pharmacy.stop()


def test_a_prescription_crosses_two_deployments_and_completes(deployments):
    gp, pharmacy = deployments
    for me, other, slug, kind, ods, other_ods, role in (
        (gp, pharmacy, "gp", "prescribing", "A83008", "FA565", "pharmacy"),
        (pharmacy, gp, "pharmacy", "dispensing", "FA565", "A83008", "prescriber"),
    ):
        me.manage("migrate", "--noinput")
        me.manage(
            "shell",
            "-c",
            SETUP.format(
                slug=slug,
                kind=kind,
                ods=ods,
                other_ods=other_ods,
                other=other_ods,
                role=role,
                my_token=f"to-{slug}",
                other_token=f"to-{'pharmacy' if slug == 'gp' else 'gp'}",
                other_base=f"{other.url}/{'pharmacy' if slug == 'gp' else 'gp'}",
            ),
        )
        me.start()
    request_id = gp.manage("shell", "-c", ISSUE).strip().splitlines()[-1]

    def fetch(deployment: Deployment, slug: str, path: str) -> dict | None:
        try:
            answer = requests.get(
                f"{deployment.url}/{slug}/fhir/{path}",
                headers={"Authorization": f"Bearer test-to-{slug}"},
                timeout=5,
            )
        except requests.ConnectionError:
            return None
        return answer.json() if answer.ok else None

    wait_for(
        lambda: (fetch(pharmacy, "pharmacy", "MedicationRequest") or {}).get("total") == 1,
        timeout=60,
        message="the request reaching the other deployment",
    )
    pharmacy.manage("shell", "-c", COMPLETE)
    wait_for(
        lambda: (fetch(gp, "gp", f"MedicationRequest/{request_id}") or {}).get("status") == "completed",
        timeout=60,
        message="the prescriber's request completing",
    )
    dispenses = fetch(gp, "gp", "MedicationDispense")
    assert dispenses["total"] == 1
    assert json.dumps(dispenses["entry"][0]["resource"]["performer"]).count("FA565") == 1
