"""CDS Hooks clients that sign real JWTs, with their public keys served as a JWKS over loopback HTTP.

CDS Hooks 2.0 clients authenticate with a JWT signed by a key the service fetches from the client's JWKS
(``jku`` header or the configured ``jwks_url``). Tests use real ES384/RS384 keys (``cryptography``),
real signatures (PyJWT) and a real HTTP JWKS endpoint, so the service's verification is exercised end
to end.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SUPPORTED_ALGORITHMS = ("ES384", "RS384")
TOKEN_LIFETIME_SECONDS = 300
_client_numbers = itertools.count(1)


@dataclass(frozen=True)
class SigningKey:
    """A private key with the id and algorithm it is published under."""

    kid: str
    alg: str
    private_key: Any

    @classmethod
    def generate(cls, alg: str = "ES384", kid: str | None = None) -> SigningKey:
        if alg == "ES384":
            private_key: Any = ec.generate_private_key(ec.SECP384R1())
        elif alg == "RS384":
            private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            raise ValueError(f"unsupported algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
        return cls(kid=kid or f"{alg.lower()}-{uuid.uuid4().hex[:12]}", alg=alg, private_key=private_key)

    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK, with ``kid``, ``alg`` and ``use`` set."""
        algorithm = ECAlgorithm if self.alg.startswith("ES") else RSAAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


class JwksServer:
    """Serves a JWKS document at ``/jwks.json`` from a loopback ``http.server`` thread.

    The document is re-read on every request, so tests can rotate keys; ``hits`` counts fetches so
    tests can observe caching.
    """

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.hits = 0
        self.status = 200  # tests may set 500 to simulate an unavailable JWKS endpoint
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?", 1)[0] != "/jwks.json":
                    self.send_error(404)
                    return
                owner.hits += 1
                body = json.dumps(owner.jwks if owner.status == 200 else {"error": "unavailable"}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="jwks-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/jwks.json"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@dataclass
class JwtClient:
    """One CDS client: an issuer, its signing keys (ES384 and RS384) and its JWKS endpoint."""

    iss: str
    jwks_server: JwksServer
    keys: dict[str, SigningKey] = field(default_factory=dict)
    sub: str = "fhir-module-test-client"
    tenant: str | None = None
    # Keys rotated out but still published (an EHR keeps an old key in its JWK Set for a while).
    previous: list[SigningKey] = field(default_factory=list)

    @classmethod
    def create(cls, iss: str | None = None, *, tenant: str | None = None) -> JwtClient:
        number = next(_client_numbers)
        client = cls(
            iss=iss or f"https://ehr-{number}.example.org/cds-client",
            jwks_server=JwksServer(),
            sub=f"fhir-module-test-client-{number}",
            tenant=tenant,
        )
        for alg in SUPPORTED_ALGORITHMS:
            client.keys[alg] = SigningKey.generate(alg)
        client.publish()
        return client

    @property
    def jwks_url(self) -> str:
        return self.jwks_server.url

    @property
    def jwks(self) -> dict[str, Any]:
        """The published JWKS (public keys only)."""
        return {"keys": [key.public_jwk() for key in [*self.keys.values(), *self.previous]]}

    def publish(self) -> None:
        """Serves the current keys at ``jwks_url``."""
        self.jwks_server.jwks = self.jwks

    def rotate(self, alg: str = "ES384", *, keep_previous: bool = False) -> SigningKey:
        """Replaces the key for ``alg`` with a new one (new ``kid``) and publishes it; with
        ``keep_previous`` the old key stays published, so tokens it signed still verify."""
        if keep_previous:
            self.previous.append(self.keys[alg])
        self.keys[alg] = SigningKey.generate(alg)
        self.publish()
        return self.keys[alg]

    def untrusted_key(self, alg: str = "ES384", *, same_kid: bool = True) -> SigningKey:
        """A key that is NOT in this client's JWKS.

        With ``same_kid`` it reuses the published ``kid`` for ``alg``, i.e. a forgery the service must
        catch by the signature, not by a missing kid.
        """
        kid = self.keys[alg].kid if same_kid else None
        return SigningKey.generate(alg, kid=kid)

    def claims(self, aud: str, **overrides: Any) -> dict[str, Any]:
        """The claims a CDS client sends; an override of ``None`` removes that claim."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": aud,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        if self.tenant is not None:
            claims["tenant"] = self.tenant
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        aud: str,
        *,
        alg: str = "ES384",
        key: SigningKey | None = None,
        jku: bool | str = False,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        """A signed JWT for the service endpoint ``aud`` (its full URL).

        ``key`` signs with another key (see :meth:`untrusted_key`); ``jku=True`` adds this client's JWKS
        URL as the ``jku`` header (a string sets any URL); ``headers`` adds or replaces header fields
        (``None`` removes one); other keyword arguments override claims (``exp=...``, ``iss=...``,
        ``tenant=...``, ``jti=None`` to drop it).
        """
        signing_key = key or self.keys.get(alg)
        if signing_key is None:
            raise ValueError(f"no key for algorithm {alg!r}; use one of {SUPPORTED_ALGORITHMS}")
        header: dict[str, Any] = {"kid": signing_key.kid, "typ": "JWT"}
        if jku:
            header["jku"] = self.jwks_url if jku is True else jku
        header.update(headers or {})
        header = {name: value for name, value in header.items() if value is not None}
        return jwt.encode(self.claims(aud, **overrides), signing_key.private_key, algorithm=signing_key.alg, headers=header)

    def authorization(self, aud: str, **kwargs: Any) -> dict[str, str]:
        """The ``Authorization`` header carrying :meth:`token`."""
        return {"Authorization": f"Bearer {self.token(aud, **kwargs)}"}

    def trusted_entry(self, *, inline_jwks: bool = False, tenant: str | None = None) -> dict[str, Any]:
        """This client as one entry of the trusted-clients file."""
        entry: dict[str, Any] = {"iss": self.iss}
        if inline_jwks:
            entry["jwks"] = self.jwks
        else:
            entry["jwks_url"] = self.jwks_url
        if tenant or self.tenant:
            entry["tenant"] = tenant or self.tenant
        return entry

    def stop(self) -> None:
        self.jwks_server.stop()


def write_trusted_clients(
    path: Path | str, clients: Iterable[JwtClient | dict[str, Any]], *, inline_jwks: bool = False
) -> Path:
    """Writes the JSON file named by ``FHIR_MODULE_TRUSTED_CLIENTS``.

    Format (architecture.md): ``[{"iss": ..., "jwks_url": ... | "jwks": {...}, "tenant": optional}]``.
    Clients may be :class:`JwtClient` objects or ready-made entry dicts (to write odd entries on purpose).
    """
    entries = [c.trusted_entry(inline_jwks=inline_jwks) if isinstance(c, JwtClient) else dict(c) for c in clients]
    path = Path(path)
    path.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return path


class JwtClientFactory:
    """Makes extra clients (e.g. one the service does not trust) and stops their JWKS servers at the end."""

    def __init__(self) -> None:
        self._clients: list[JwtClient] = []

    def __call__(self, iss: str | None = None, *, tenant: str | None = None) -> JwtClient:
        client = JwtClient.create(iss, tenant=tenant)
        self._clients.append(client)
        return client

    def stop_all(self) -> None:
        for client in self._clients:
            client.stop()
        self._clients.clear()


@pytest.fixture(scope="session")
def jwt_client_factory() -> Iterator[JwtClientFactory]:
    """Call it to get a new :class:`JwtClient` with its own keys and JWKS endpoint."""
    factory = JwtClientFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def jwt_client(jwt_client_factory: JwtClientFactory) -> JwtClient:
    """The session's main CDS client (ES384 and RS384 keys, JWKS served on loopback)."""
    return jwt_client_factory()
