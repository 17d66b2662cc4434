"""The JWT clients sign real tokens that verify against the JWKS fetched over HTTP."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.jwt_clients import JwtClient, JwtClientFactory, write_trusted_clients

AUD = "http://127.0.0.1:8000/cds-services/levomilnacipran-order-select"


def _verify(token: str, jwks_url: str, aud: str = AUD) -> dict:
    """Verifies the way a CDS service does: kid from the header, key from the JWKS over HTTP."""
    signing_key = jwt.PyJWKClient(jwks_url, cache_keys=False).get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        signing_key.key,
        algorithms=["ES384", "RS384"],
        audience=aud,
        options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
    )


def test_jwks_is_served_over_http(jwt_client: JwtClient) -> None:
    response = httpx.get(jwt_client.jwks_url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    keys = response.json()["keys"]
    assert {k["alg"] for k in keys} == {"ES384", "RS384"}
    assert {k["kty"] for k in keys} == {"EC", "RSA"}
    assert all("d" not in k for k in keys), "the JWKS must not publish private key material"
    assert response.json() == jwt_client.jwks


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_token_verifies_against_the_jwks(jwt_client: JwtClient, alg: str) -> None:
    token = jwt_client.token(AUD, alg=alg)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == alg
    assert header["typ"] == "JWT"
    assert header["kid"] == jwt_client.keys[alg].kid
    assert "jku" not in header
    claims = _verify(token, jwt_client.jwks_url)
    assert claims["iss"] == jwt_client.iss
    assert claims["aud"] == AUD
    assert 290 <= claims["exp"] - claims["iat"] <= 300
    assert abs(claims["iat"] - time.time()) < 60


def test_each_token_has_a_unique_jti(jwt_client: JwtClient) -> None:
    jtis = {jwt.decode(jwt_client.token(AUD), options={"verify_signature": False})["jti"] for _ in range(20)}
    assert len(jtis) == 20


def test_wrong_audience_is_rejected(jwt_client: JwtClient) -> None:
    token = jwt_client.token("http://127.0.0.1:8000/cds-services/other")
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(token, jwt_client.jwks_url)


def test_overrides_change_and_remove_claims(jwt_client: JwtClient) -> None:
    token = jwt_client.token(AUD, tenant="clinic-7", jti=None)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tenant"] == "clinic-7"
    assert "jti" not in claims
    with pytest.raises(jwt.MissingRequiredClaimError, match="jti"):
        _verify(token, jwt_client.jwks_url)
    expired = jwt_client.token(AUD, exp=int(time.time()) - 10)
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(expired, jwt_client.jwks_url)


def test_jku_header(jwt_client: JwtClient) -> None:
    header = jwt.get_unverified_header(jwt_client.token(AUD, jku=True))
    assert header["jku"] == jwt_client.jwks_url
    header = jwt.get_unverified_header(jwt_client.token(AUD, jku="https://evil.example/jwks.json"))
    assert header["jku"] == "https://evil.example/jwks.json"


def test_untrusted_key_with_published_kid_fails_verification(jwt_client: JwtClient) -> None:
    forged = jwt_client.token(AUD, key=jwt_client.untrusted_key("ES384"))
    assert jwt.get_unverified_header(forged)["kid"] == jwt_client.keys["ES384"].kid
    with pytest.raises(jwt.InvalidSignatureError):
        _verify(forged, jwt_client.jwks_url)


def test_untrusted_key_with_unknown_kid_is_not_in_the_jwks(jwt_client: JwtClient) -> None:
    token = jwt_client.token(AUD, key=jwt_client.untrusted_key("RS384", same_kid=False))
    with pytest.raises(jwt.PyJWKClientError):
        _verify(token, jwt_client.jwks_url)


def test_second_client_has_its_own_keys(jwt_client: JwtClient, jwt_client_factory: JwtClientFactory) -> None:
    other = jwt_client_factory(tenant="other-tenant")
    assert other.iss != jwt_client.iss
    assert other.jwks_url != jwt_client.jwks_url
    token = other.token(AUD)
    assert _verify(token, other.jwks_url)["tenant"] == "other-tenant"
    with pytest.raises(jwt.PyJWKClientError):
        _verify(token, jwt_client.jwks_url)


def test_rotation_and_hit_count(jwt_client_factory: JwtClientFactory) -> None:
    client = jwt_client_factory()
    old_token = client.token(AUD)
    hits = client.jwks_server.hits
    client.rotate("ES384")
    assert _verify(client.token(AUD), client.jwks_url)["iss"] == client.iss
    with pytest.raises(jwt.PyJWKClientError):
        _verify(old_token, client.jwks_url)
    assert client.jwks_server.hits == hits + 2


def test_unavailable_jwks_endpoint(jwt_client_factory: JwtClientFactory) -> None:
    client = jwt_client_factory()
    client.jwks_server.status = 503
    assert httpx.get(client.jwks_url).status_code == 503
    assert httpx.get(client.jwks_url.replace("/jwks.json", "/other")).status_code == 404


def test_write_trusted_clients(tmp_path: Path, jwt_client: JwtClient, jwt_client_factory: JwtClientFactory) -> None:
    tenant_client = jwt_client_factory(tenant="t1")
    path = write_trusted_clients(tmp_path / "clients.json", [jwt_client, tenant_client])
    entries = json.loads(path.read_text())
    assert entries == [
        {"iss": jwt_client.iss, "jwks_url": jwt_client.jwks_url},
        {"iss": tenant_client.iss, "jwks_url": tenant_client.jwks_url, "tenant": "t1"},
    ]
    inline = json.loads(write_trusted_clients(tmp_path / "inline.json", [jwt_client], inline_jwks=True).read_text())
    assert inline == [{"iss": jwt_client.iss, "jwks": jwt_client.jwks}]
    raw = json.loads(write_trusted_clients(tmp_path / "raw.json", [{"iss": "x"}]).read_text())
    assert raw == [{"iss": "x"}]


def test_unsupported_algorithm_is_a_clear_error(jwt_client: JwtClient) -> None:
    with pytest.raises(ValueError, match="ES384"):
        jwt_client.token(AUD, alg="HS256")
