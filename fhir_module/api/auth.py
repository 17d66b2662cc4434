"""Authentication of CDS clients by signed JWT (CDS Hooks 2.0, "Trusting CDS Clients").

With trusted clients configured, discovery, service calls and feedback all need
`Authorization: Bearer <JWT>` (the spec says the JWT accompanies every call, discovery included;
we follow it so that the list of services and their prefetch templates is not public either).
`/healthz`, `/readyz` and the OpenAPI document stay open: they reveal nothing about patients or clients.

A JWT is accepted when:

- its header `alg` is ES384 or RS384 (`none`, HMAC and everything else are refused) and names a
  `kid` found in the issuer's JWK Set, whose key type fits the algorithm;
- `iss` is a trusted client; `jku`, if sent, equals that client's configured `jwks_url` (keys are
  never fetched from a URL the token itself names);
- `aud` is the URL of the endpoint being called (the configured public base URL + path, else the
  URL the request arrived at);
- `exp`, `iat` and `jti` are present, `exp` is in the future and at most an hour ahead;
- the `jti` has not been seen before from that issuer while still valid (replay);
- `tenant` equals the client's configured tenant, when one is configured.

Replay protection is kept in the service's database (`ReplayGuard`), so it holds across worker
processes, instances on the same database and restarts; when the database cannot be reached a
token cannot be checked, and the call is refused (503).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from fhir_module.config import Settings, TrustedClient, is_loopback_host

from .errors import ApiError

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("fhir_module.api.auth")

ALLOWED_ALGORITHMS = {"ES384": ("EC", "P-384"), "RS384": ("RSA", None)}
CLOCK_SKEW_SECONDS = 30
MAX_LIFETIME_SECONDS = 3600


def _is_numeric_date(value: Any) -> bool:
    """RFC 7519 NumericDate: a JSON number of seconds, here within years 1970..5138. PyJWT takes
    numeric strings too, and an integer of 400 digits passed its checks and then overflowed float
    arithmetic (a 500); NaN and infinities fail the comparisons. Checked before PyJWT sees them."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e11


def _unauthorized(reason: str) -> ApiError:
    # The reason is safe to return: it describes the token's shape, never its content.
    description = reason.replace('"', "'")
    return ApiError(
        401,
        f"authentication failed: {reason}",
        code="login",
        headers={"WWW-Authenticate": f'Bearer realm="cds-services", error="invalid_token", '
                                     f'error_description="{description}"'},
    )


@dataclass
class _KeySet:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    """Public keys per trusted client: inline sets as given, URLs fetched and cached with a TTL."""

    def __init__(self, client: httpx.AsyncClient | None, ttl: float, timeout: float, refetch_interval: float) -> None:
        self._client = client
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._timeout = timeout
        self._sets: dict[str, _KeySet] = {}

    @staticmethod
    def _index(jwks: Any) -> dict[str, dict[str, Any]]:
        keys = jwks.get("keys") if isinstance(jwks, dict) else None
        if not isinstance(keys, list):
            raise ValueError("not a JWK Set")
        return {k["kid"]: k for k in keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}

    async def _fetch(self, client: TrustedClient) -> dict[str, dict[str, Any]]:
        import httpx  # loaded with the client (app.py): only a service with trusted clients has one

        assert client.jwks_url is not None and self._client is not None
        try:
            response = await self._client.get(client.jwks_url, timeout=self._timeout)
            response.raise_for_status()
            return self._index(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWK Set of issuer %s could not be fetched: %s", client.iss, type(exc).__name__)
            raise _unauthorized("the client's public keys could not be obtained") from None

    async def key(self, client: TrustedClient, kid: str) -> dict[str, Any] | None:
        if client.jwks is not None:
            return self._index(client.jwks).get(kid)
        entry = self._sets.setdefault(client.iss, _KeySet())
        async with entry.lock:
            age = time.monotonic() - entry.fetched_at
            stale = not entry.fetched_at or age > self._ttl
            unknown = kid not in entry.keys and age > self._refetch_interval  # rate limit
            if stale or unknown:
                entry.keys = await self._fetch(client)
                entry.fetched_at = time.monotonic()
            return entry.keys.get(kid)


class ReplayGuard:
    """JWT ids already used, kept in the service's database: shared by every worker process and
    instance on it, and kept across restarts. (In memory, each worker of `uvicorn --workers 4`
    accepted a token once, and a restart forgot them all.)"""

    def __init__(self, store: Any) -> None:
        self._store = store

    async def first_use(self, iss: str, jti: str, exp: float) -> bool:
        # Remembered until the token could no longer be accepted, the leeway included.
        try:
            return await run_in_threadpool(self._store.claim_jti, iss, jti, exp + CLOCK_SKEW_SECONDS, time.time())
        except Exception as exc:  # the database is down: a token that cannot be checked is refused
            log.error("JWT replay check failed (%s): the call is refused", type(exc).__name__)
            raise ApiError(503, "client tokens cannot be checked for replay right now (the service's database "
                                "is unavailable); try again later", code="transient") from None


@dataclass(frozen=True)
class Principal:
    """The authenticated CDS client of one request."""

    iss: str
    tenant: str | None
    jti: str


class Authenticator:
    """Checks the bearer JWT of a request against the trusted clients."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None, store: Any) -> None:
        self._settings = settings
        self._clients = {c.iss: c for c in settings.trusted_clients}
        self._keys = JwksCache(
            client, settings.jwks_cache_seconds, settings.fetch_timeout, settings.jwks_refetch_interval
        )
        self._replay = ReplayGuard(store)
        # (issuer, kid, alg) -> (the JWK, the key read from it); only keys found in a client's set.
        self._keys_read: dict[tuple[str, str, str], tuple[dict[str, Any], Any]] = {}
        if self.enabled:
            import jwt  # noqa: F401 - loaded now, not by the first call; without clients never needed

    @property
    def enabled(self) -> bool:
        return bool(self._clients)

    def _public_key(self, iss: str, kid: str, alg: str, jwk: dict[str, Any]) -> Any:
        """The key read from its JWK once per key set (13 us of an ES384 call): a key set fetched
        again brings new JWK objects, which are read again."""
        import jwt

        cached = self._keys_read.get((iss, kid, alg))
        if cached is not None and cached[0] is jwk:
            return cached[1]
        key = jwt.PyJWK(jwk, algorithm=alg)
        self._keys_read[(iss, kid, alg)] = (jwk, key)
        return key

    def audience(self, request: Request) -> str:
        """The endpoint URL a JWT for this request must be addressed to."""
        path = request.url.path
        if self._settings.public_base_url:
            return self._settings.public_base_url + path
        return f"{request.url.scheme}://{request.url.netloc}{path}"

    async def authenticate(self, request: Request) -> Principal | None:
        if not self.enabled:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("a Bearer JWT is required")
        return await self.verify(token.strip(), self.audience(request))

    async def verify(self, token: str, audience: str) -> Principal:
        import jwt  # PyJWT and cryptography: only a service with trusted clients loads them

        try:
            read = jwt.decode_complete(token, options={"verify_signature": False})  # header and claims, one parse
            header, unverified = read["header"], read["payload"]
        except jwt.PyJWTError:
            raise _unauthorized("the token is not a well-formed JWT") from None
        for name in ("exp", "iat", "nbf"):
            if name in unverified and not _is_numeric_date(unverified[name]):
                raise _unauthorized(f"{name} must be a number of seconds since 1970 (NumericDate)")
        alg = header.get("alg")
        if alg not in ALLOWED_ALGORITHMS:
            raise _unauthorized(f"algorithm {alg!r} is not accepted (ES384 or RS384)")
        if "typ" in header and str(header["typ"]).upper() != "JWT":
            raise _unauthorized("typ must be JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthorized("the JWT header has no kid")
        iss = unverified.get("iss")
        client = self._clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise _unauthorized("the issuer is not a trusted client")
        if "jku" in header and header["jku"] != client.jwks_url:
            raise _unauthorized("jku is not the client's registered JWK Set URL")
        jwk = await self._keys.key(client, kid)
        if jwk is None:
            raise _unauthorized("unknown key id")
        kty, crv = ALLOWED_ALGORITHMS[alg]
        if jwk.get("kty") != kty or (crv and jwk.get("crv") != crv) or jwk.get("alg", alg) != alg:
            raise _unauthorized("the key does not fit the algorithm")
        try:
            key = self._public_key(client.iss, kid, alg, jwk)
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=[audience, audience + "/"],
                issuer=client.iss,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "aud", "exp", "iat", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise _unauthorized("aud is not this endpoint's URL") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _unauthorized(f"the token has no {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("the signature does not verify") from None
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"the token is invalid ({type(exc).__name__})") from None
        exp, jti = claims["exp"], claims["jti"]
        if not isinstance(jti, str) or not jti or "\x00" in jti:  # PostgreSQL stores no NUL: once a 503
            raise _unauthorized("jti must be a non-empty string (without U+0000)")
        if exp - time.time() > MAX_LIFETIME_SECONDS:
            raise _unauthorized(f"exp is more than {MAX_LIFETIME_SECONDS} s ahead")
        if client.tenant is not None and claims.get("tenant") != client.tenant:
            raise _unauthorized("tenant does not match the client's registration")
        if not await self._replay.first_use(client.iss, jti, float(exp)):
            raise _unauthorized("the token was already used (jti replay)")
        return Principal(iss=client.iss, tenant=claims.get("tenant"), jti=jti)


async def require_client(request: Request) -> Principal | None:
    """FastAPI dependency: the authenticated client, or None when authentication is off."""
    authenticator: Authenticator = request.app.state.authenticator
    try:
        return await authenticator.authenticate(request)
    except ApiError as exc:
        if exc.status == 401 and getattr(request.app.state, "metrics", None) is not None:
            request.app.state.metrics.inc("fhir_module_auth_failures_total", {})
        raise


class LoopbackOnly:
    """Without trusted clients the service accepts unauthenticated calls, so it answers only
    clients on this machine (403 for any other). `fhir-module serve` also refuses to bind anything
    but loopback then; this holds the rule under any server (`uvicorn --factory`, a container that
    binds 0.0.0.0). Liveness and readiness stay open for probes."""

    OPEN_PATHS = ("/healthz", "/readyz")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("path") not in self.OPEN_PATHS:
            client = scope.get("client")
            if not client or not is_loopback_host(client[0]):
                log.warning("refused a call from %s: no client authentication is configured, so only "
                            "loopback clients are served", client[0] if client else "an unknown client")
                response = ApiError(403, "this service has no client authentication configured and answers "
                                         "only clients on its own machine", code="forbidden").response()
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
