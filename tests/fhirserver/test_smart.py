"""SMART Backend Services: a client with a keypair made here signs an assertion, gets an access
token from the node's token endpoint, and uses the FHIR API within its scopes, through fhirpy."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from django.utils import timezone
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from nodes.models import AccessToken, ApiClient
from tests.exchange.partner import free_port
from tests.processes import Web

SCOPES = "system/MedicationRequest.rs system/Patient.cruds"


def keypair(alg: str):
    if alg == "RS384":
        return RSAKey.generate_key(2048, parameters={"kid": f"rsa-{uuid.uuid4().hex[:8]}", "alg": alg})
    return ECKey.generate_key("P-384", parameters={"kid": f"ec-{uuid.uuid4().hex[:8]}", "alg": alg})


def public(*keys) -> dict:
    return KeySet(list(keys)).as_dict(private=False)


def assertion(key, client_id: str, aud: str | list[str], *, exp_in: float = 240, jti: str | None = None):
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "exp": int(time.time() + exp_in),
        "jti": jti or str(uuid.uuid4()),
    }
    header = {"alg": key.alg, "kid": key.kid, "typ": "JWT"}
    return jwt.encode(header, claims, key, algorithms=[key.alg])


def token_request(endpoint: str, signed: str, scope: str = SCOPES) -> requests.Response:
    return requests.post(
        endpoint,
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": signed,
        },
        timeout=10,
    )


@pytest.fixture
def registered(store):
    """A backend service registered at the store node with an RS384 and an ES384 key."""
    keys = {alg: keypair(alg) for alg in ("RS384", "ES384")}
    client = ApiClient.objects.create(node=store, name="backend", scopes=SCOPES, jwks=public(*keys.values()))
    return client, keys


@pytest.fixture
def endpoint(store_base) -> str:
    config = requests.get(f"{store_base}/.well-known/smart-configuration", timeout=10).json()
    assert "private_key_jwt" in config["token_endpoint_auth_methods_supported"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    return config["token_endpoint"]


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_backend_service_gets_a_token_and_works_within_its_scopes(store_base, registered, endpoint, alg):
    client, keys = registered
    answer = token_request(endpoint, assertion(keys[alg], client.client_id, endpoint))
    assert answer.status_code == 200, answer.text
    assert "no-store" in answer.headers["Cache-Control"]
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 300
    assert body["scope"] == SCOPES

    api = SyncFHIRClient(store_base, authorization=f"Bearer {body['access_token']}")
    patient = api.resource("Patient", name=[{"family": "Smart"}])
    patient.save()  # Patient.c is granted
    assert api.resources("Patient").search(family="Smart").fetch()[0].id == patient.id
    assert api.resources("MedicationRequest").fetch() == []  # MedicationRequest.s is granted
    with pytest.raises(ForbiddenError) as refused:  # MedicationRequest.c is not
        api.resource("MedicationRequest", status="active").save()
    assert "system/MedicationRequest.c" in str(refused.value)


def test_the_token_holds_only_the_scopes_asked_for_that_the_client_holds(registered, endpoint):
    client, keys = registered
    asked = "system/Patient.rs system/MedicationDispense.cruds"
    answer = token_request(endpoint, assertion(keys["ES384"], client.client_id, endpoint), asked)
    assert answer.json()["scope"] == "system/Patient.rs"
    none = token_request(
        endpoint, assertion(keys["ES384"], client.client_id, endpoint), "system/MedicationDispense.r"
    )
    assert (none.status_code, none.json()["error"]) == (400, "invalid_scope")


def test_bad_assertions_are_refused_each_with_its_reason(store, registered, endpoint):
    client, keys = registered
    good = keys["RS384"]
    stranger = keypair("RS384")
    replayed = assertion(good, client.client_id, endpoint)
    assert token_request(endpoint, replayed).status_code == 200  # the positive control
    cases = {
        "signature": assertion(stranger, client.client_id, endpoint),
        "expired": assertion(good, client.client_id, endpoint, exp_in=-120),
        "5 minutes": assertion(good, client.client_id, endpoint, exp_in=3600),
        "used already": replayed,
        "aud": assertion(good, client.client_id, endpoint.replace("/store/", "/other/")),
        "No client": assertion(good, "not-registered", endpoint),
    }
    for reason, signed in cases.items():
        answer = token_request(endpoint, signed)
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), reason
        assert reason in answer.json()["error_description"], answer.json()
    assert AccessToken.objects.filter(client=client).count() == 1


def test_an_expired_or_revoked_access_token_is_401(store_base, registered, endpoint):
    client, keys = registered
    token = token_request(endpoint, assertion(keys["ES384"], client.client_id, endpoint)).json()
    url = f"{store_base}/MedicationRequest"
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    AccessToken.objects.filter(client=client).update(expires=timezone.now() - timedelta(seconds=1))
    expired = requests.get(url, headers=headers, timeout=10)
    assert expired.status_code == 401
    assert "expired" in expired.json()["issue"][0]["diagnostics"]


def test_keys_published_at_a_jwks_uri_are_fetched(store, endpoint):
    key = keypair("ES384")
    published = json.dumps(public(key)).encode()

    class JWKS(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(published)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), JWKS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_port}/jwks.json"
        client = ApiClient.objects.create(node=store, name="published", scopes=SCOPES, jwks_uri=uri)
        answer = token_request(endpoint, assertion(key, client.client_id, endpoint))
        assert answer.status_code == 200, answer.text
        other = token_request(endpoint, assertion(keypair("ES384"), client.client_id, endpoint))
        assert other.status_code == 401
    finally:
        server.shutdown()


def test_metadata_declares_smart_and_the_token_endpoint(store_base, endpoint):
    security = requests.get(f"{store_base}/metadata", timeout=10).json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    (uris,) = security["extension"]
    assert uris["url"].endswith("/oauth-uris")
    assert uris["extension"] == [{"url": "token", "valueUri": endpoint}]


def test_a_replayed_assertion_is_refused_by_another_web_process(live_server, registered):
    """Two gunicorn processes on one database: the second use of a jti, in the other process,
    is refused (the replay record is in the database, not in a process's memory)."""
    client, keys = registered
    first, second = Web(free_port()).start(), Web(free_port()).start()
    try:
        # Each process checks aud against its own address: the assertion names both.
        endpoints = [f"{web.url}/store/oauth/token" for web in (first, second)]
        signed = assertion(keys["ES384"], client.client_id, endpoints)
        assert token_request(endpoints[0], signed).status_code == 200
        replay = token_request(endpoints[1], signed)
        assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
        assert "used already" in replay.json()["error_description"]
        fresh = assertion(keys["ES384"], client.client_id, endpoints)
        assert token_request(endpoints[1], fresh).status_code == 200  # the positive control
    finally:
        first.stop()
        second.stop()
