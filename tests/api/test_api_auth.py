"""Client authentication with real signed JWTs (ES384/RS384 keys, JWKS served over loopback HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from fhir_module.config import load_trusted_clients
from tests.api.helpers import scenario_request
from tests.support.jwt_clients import JwtClient, SigningKey, write_trusted_clients

FEEDBACK = {"feedback": [{"card": "c-1", "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}]}


@pytest.fixture
def secured(live: Any, jwt_client: JwtClient, tmp_path: Path) -> Iterator[str]:
    path = write_trusted_clients(tmp_path / "clients.json", [jwt_client])
    with live(trusted_clients=load_trusted_clients(str(path))) as url:
        yield url


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] == "login"
    assert reason in body["issue"][0]["diagnostics"], body


def test_every_cds_endpoint_needs_a_token(secured: str, discovery: dict[str, Any]) -> None:
    service_id, body = scenario_request("pub-clean", discovery)
    assert_401(httpx.get(f"{secured}/cds-services"), "Bearer JWT is required")
    assert_401(httpx.post(f"{secured}/cds-services/{service_id}", json=body), "Bearer JWT is required")
    assert_401(httpx.post(f"{secured}/cds-services/{service_id}/feedback", json=FEEDBACK), "required")
    assert_401(httpx.get(f"{secured}/cds-services", headers={"Authorization": "Basic dXNlcjpwdw=="}), "required")
    # Unknown services are not revealed to anonymous callers either.
    assert_401(httpx.post(f"{secured}/cds-services/no-such", json=body), "required")
    # The client is checked before the service id (too long: 422 for an authenticated client).
    assert_401(httpx.post(f"{secured}/cds-services/{'x' * 201}", json=body), "required")
    assert_401(httpx.post(f"{secured}/fhir/$validate", json={"resourceType": "Patient"}), "required")
    # Health and the API description stay open.
    assert httpx.get(f"{secured}/healthz").json()["auth"] is True
    document = httpx.get(f"{secured}/openapi.json").json()
    assert document["paths"]["/cds-services"]["get"]["security"] == [{"cdsClientJwt": []}]


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_valid_tokens_are_accepted_on_every_endpoint(secured: str, jwt_client: JwtClient,
                                                    discovery: dict[str, Any], alg: str) -> None:
    service_id, body = scenario_request("pub-max-dose", discovery)
    url = f"{secured}/cds-services"
    assert httpx.get(url, headers=jwt_client.authorization(url, alg=alg)).status_code == 200
    call = f"{url}/{service_id}"
    response = httpx.post(call, json=body, headers=jwt_client.authorization(call, alg=alg, jku=True))
    assert response.status_code == 200, response.text
    fb = f"{call}/feedback"
    card = response.json()["cards"][0]["uuid"]
    feedback = {"feedback": [{**FEEDBACK["feedback"][0], "card": card}]}
    response = httpx.post(fb, json=feedback, headers=jwt_client.authorization([fb], alg=alg))
    assert response.status_code == 200, response.text


def test_unsigned_and_symmetric_tokens_are_refused(secured: str, jwt_client: JwtClient) -> None:
    url = f"{secured}/cds-services"
    claims = jwt_client.claims(url)
    kid = jwt_client.keys["ES384"].kid
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}."
    assert_401(httpx.get(url, headers=bearer(unsigned)), "'none' is not accepted")
    hs = jwt.encode(jwt_client.claims(url), "a-shared-secret-long-enough-for-hmac-sha384-use!!", algorithm="HS384",
                    headers={"kid": kid})
    assert_401(httpx.get(url, headers=bearer(hs)), "'HS384' is not accepted")
    # Algorithm confusion: the client's public key (which anyone can fetch) used as an HMAC secret.
    public_pem = jwt_client.keys["RS384"].private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64({'alg': 'HS384', 'typ': 'JWT', 'kid': jwt_client.keys['RS384'].kid})}.{b64(claims)}"
    mac = base64.urlsafe_b64encode(hmac.new(public_pem, signing_input.encode(), hashlib.sha384).digest())
    confused = f"{signing_input}.{mac.rstrip(b'=').decode()}"
    assert_401(httpx.get(url, headers=bearer(confused)), "'HS384' is not accepted")
    assert_401(httpx.get(url, headers=bearer("not.a.jwt")), "not a well-formed JWT")


def test_keys_and_issuers_are_checked(secured: str, jwt_client: JwtClient, jwt_client_factory: Any) -> None:
    url = f"{secured}/cds-services"
    forged = jwt_client.untrusted_key("ES384", same_kid=True)
    assert_401(httpx.get(url, headers=jwt_client.authorization(url, key=forged)), "signature does not verify")
    stranger_key = jwt_client.untrusted_key("ES384", same_kid=False)
    assert_401(httpx.get(url, headers=jwt_client.authorization(url, key=stranger_key)), "unknown key id")
    no_kid = jwt_client.token(url, headers={"kid": None})
    assert_401(httpx.get(url, headers=bearer(no_kid)), "no kid")
    # An RSA key's kid with an ES384 header: key type must fit the algorithm.
    mixed = jwt_client.token(url, key=jwt_client.keys["ES384"], headers={"kid": jwt_client.keys["RS384"].kid})
    assert_401(httpx.get(url, headers=bearer(mixed)), "does not fit the algorithm")
    stranger = jwt_client_factory()
    assert_401(httpx.get(url, headers=stranger.authorization(url)), "not a trusted client")
    spoofed = stranger.token(url, iss=jwt_client.iss)  # claims to be the trusted client
    assert_401(httpx.get(url, headers=bearer(spoofed)), "unknown key id")
    other_jku = jwt_client.token(url, jku=stranger.jwks_url)
    assert_401(httpx.get(url, headers=bearer(other_jku)), "jku")


def test_claims_are_checked(secured: str, jwt_client: JwtClient, discovery: dict[str, Any]) -> None:
    url = f"{secured}/cds-services"
    service_url = f"{url}/{discovery['services'][0]['id']}"
    now = int(time.time())
    key = jwt_client.keys["ES384"]
    cases = [
        (jwt_client.token(service_url), "aud is not this endpoint"),  # token for another endpoint
        (jwt_client.token("https://cds.example.org/cds-services"), "aud is not this endpoint"),
        (jwt.encode({k: v for k, v in jwt_client.claims(url).items() if k != "aud"}, key.private_key,
                    algorithm="ES384", headers={"kid": key.kid}), "'aud'"),
        (jwt_client.token(url, exp=now - 120, iat=now - 420), "expired"),
        (jwt_client.token(url, exp=None), "'exp'"),
        (jwt_client.token(url, iat=None), "'iat'"),
        (jwt_client.token(url, jti=None), "'jti'"),
        (jwt_client.token(url, jti=""), "jti"),
        (jwt_client.token(url, jti="a\u0000b"), "jti must be"),  # PostgreSQL stores no NUL: once a 503
        (jwt_client.token(url, exp=now + 86400), "more than 3600"),
        (jwt_client.token(url, exp=str(now + 120)), "exp must be a number"),  # once a 500
        (jwt_client.token(url, iat=str(now)), "iat must be a number"),
        (jwt_client.token(url, exp=10**400), "exp must be a number"),  # once a 500 (OverflowError)
        (jwt_client.token(url, nbf=10**400), "nbf must be a number"),
        (jwt_client.token(url, exp=float("inf")), "exp must be a number"),  # signed as Infinity
        (jwt_client.token(url, iat=float("nan")), "iat must be a number"),
        (jwt_client.token(url, exp=True), "exp must be a number"),
        (jwt_client.token(url, headers={"typ": "at+jwt"}), "typ"),
    ]
    for token, reason in cases:
        assert_401(httpx.get(url, headers=bearer(token)), reason)


def test_a_replayed_token_is_refused(secured: str, jwt_client: JwtClient) -> None:
    url = f"{secured}/cds-services"
    token = jwt_client.token(url)
    assert httpx.get(url, headers=bearer(token)).status_code == 200
    assert_401(httpx.get(url, headers=bearer(token)), "replay")
    # A new jti is fine.
    assert httpx.get(url, headers=jwt_client.authorization(url, jti=uuid.uuid4().hex)).status_code == 200


def test_tenant_is_checked_when_configured(live: Any, jwt_client_factory: Any, tmp_path: Path) -> None:
    client = jwt_client_factory(tenant="hospital-a")
    path = write_trusted_clients(tmp_path / "clients.json", [client])
    with live(trusted_clients=load_trusted_clients(str(path))) as base:
        url = f"{base}/cds-services"
        assert httpx.get(url, headers=client.authorization(url)).status_code == 200
        assert_401(httpx.get(url, headers=client.authorization(url, tenant="hospital-b")), "tenant")
        assert_401(httpx.get(url, headers=client.authorization(url, tenant=None)), "tenant")


def test_inline_jwks_needs_no_fetch(live: Any, jwt_client_factory: Any, tmp_path: Path) -> None:
    client = jwt_client_factory()
    path = write_trusted_clients(tmp_path / "clients.json", [client], inline_jwks=True)
    with live(trusted_clients=load_trusted_clients(str(path))) as base:
        url = f"{base}/cds-services"
        assert httpx.get(url, headers=client.authorization(url, alg="RS384")).status_code == 200
    assert client.jwks_server.hits == 0


def test_jwks_is_cached_refetched_on_rotation_and_rate_limited(
    live: Any, jwt_client_factory: Any, tmp_path: Path
) -> None:
    client = jwt_client_factory()
    path = write_trusted_clients(tmp_path / "clients.json", [client])
    clients = load_trusted_clients(str(path))
    interval = 2.0  # long enough that "right after the fetch" holds on a slow, loaded machine
    with live(trusted_clients=clients, jwks_refetch_interval=interval) as base:
        url = f"{base}/cds-services"
        fetched = time.monotonic()
        for _ in range(3):
            assert httpx.get(url, headers=client.authorization(url)).status_code == 200
        assert client.jwks_server.hits == 1
        old = client.keys["ES384"]
        client.rotate("ES384")
        # Right after a fetch an unknown kid does not cause another fetch (rate limit) ...
        assert_401(httpx.get(url, headers=client.authorization(url)), "unknown key id")
        assert client.jwks_server.hits == 1
        time.sleep(max(0.0, fetched + interval + 0.1 - time.monotonic()))
        # ... later it does, and the new key is accepted; the old one is gone.
        assert httpx.get(url, headers=client.authorization(url)).status_code == 200
        assert client.jwks_server.hits == 2
        assert_401(httpx.get(url, headers=client.authorization(url, key=old)), "unknown key id")


def test_a_key_replaced_under_the_same_kid_is_read_again(live: Any, jwt_client_factory: Any, tmp_path: Path) -> None:
    """The service keeps each key it read from a JWK Set; once the set is fetched again, a key
    published under the same kid is the new one, not the one read from the earlier set."""
    client = jwt_client_factory()
    clients = load_trusted_clients(str(write_trusted_clients(tmp_path / "clients.json", [client])))
    with live(trusted_clients=clients, jwks_cache_seconds=1.0) as base:
        url = f"{base}/cds-services"
        assert httpx.get(url, headers=client.authorization(url)).status_code == 200
        old = client.keys["ES384"]
        client.keys["ES384"] = SigningKey.generate("ES384", kid=old.kid)
        client.publish()
        time.sleep(1.2)  # the cached set is stale: the next call fetches it again
        assert httpx.get(url, headers=client.authorization(url)).status_code == 200
        assert client.jwks_server.hits == 2
        assert_401(httpx.get(url, headers=client.authorization(url, key=old)), "signature does not verify")


def test_an_unreachable_jwks_is_401(live: Any, jwt_client_factory: Any, tmp_path: Path) -> None:
    client = jwt_client_factory()
    client.jwks_server.status = 500
    path = write_trusted_clients(tmp_path / "clients.json", [client])
    with live(trusted_clients=load_trusted_clients(str(path))) as base:
        url = f"{base}/cds-services"
        assert_401(httpx.get(url, headers=client.authorization(url)), "could not be obtained")


def test_public_base_url_sets_the_audience(live: Any, jwt_client: JwtClient, tmp_path: Path) -> None:
    path = write_trusted_clients(tmp_path / "clients.json", [jwt_client])
    public = "https://cds.example.org/prefix"
    with live(trusted_clients=load_trusted_clients(str(path)), public_base_url=public) as base:
        url = f"{base}/cds-services"
        assert httpx.get(url, headers=jwt_client.authorization(f"{public}/cds-services")).status_code == 200
        assert_401(httpx.get(url, headers=jwt_client.authorization(url)), "aud")
