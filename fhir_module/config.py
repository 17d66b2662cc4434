"""Service configuration: a TOML file named by `FHIR_MODULE_CONFIG`, then environment variables.

Environment variables win over the file, so a deployment can keep one file and override a value
per host. Every value is checked when it is loaded: a wrong setting stops the service at start with
a message naming the setting, instead of failing on the first request.

TOML keys (all optional)::

    allowed_fhir_servers = ["https://ehr.example.org/fhir"]
    trusted_clients = "/etc/fhir-module/clients.json"
    database_url = "sqlite:///./fhir_module_feedback.sqlite3"
    modules = ["/srv/modules/duloxetine"]   # module folders to serve (built in memory)
    bundles = ["/srv/knowledge/bundle.json"]  # exported bundles to serve (`bundle = "..."`: one)
    cases = ["/srv/knowledge/cases"]        # the bundles' test cases, run before serving (module folders bring theirs)
    fetch_timeout = 10.0
    max_body_bytes = 5242880
    cors_origins = ["*"]
    public_base_url = "https://cds.example.org"
    fetch_concurrency = 20
    header_timeout = 10.0
    body_timeout = 15.0
    log_format = "text"
    validate_concurrency = 1
    validate_timeout = 30.0
    validate_max_resources = 10000
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

ENV_CONFIG = "FHIR_MODULE_CONFIG"
ENV_ALLOWED_FHIR_SERVERS = "FHIR_MODULE_ALLOWED_FHIR_SERVERS"
ENV_TRUSTED_CLIENTS = "FHIR_MODULE_TRUSTED_CLIENTS"
ENV_DATABASE_URL = "FHIR_MODULE_DATABASE_URL"
ENV_BUNDLE = "FHIR_MODULE_BUNDLE"
ENV_MODULES = "FHIR_MODULE_MODULES"
ENV_CASES = "FHIR_MODULE_CASES"
ENV_FETCH_TIMEOUT = "FHIR_MODULE_FETCH_TIMEOUT"
ENV_MAX_BODY_BYTES = "FHIR_MODULE_MAX_BODY_BYTES"
ENV_CORS_ORIGINS = "FHIR_MODULE_CORS_ORIGINS"
ENV_PUBLIC_BASE_URL = "FHIR_MODULE_PUBLIC_BASE_URL"
ENV_FETCH_CONCURRENCY = "FHIR_MODULE_FETCH_CONCURRENCY"
ENV_HEADER_TIMEOUT = "FHIR_MODULE_HEADER_TIMEOUT"
ENV_BODY_TIMEOUT = "FHIR_MODULE_BODY_TIMEOUT"
ENV_LOG_FORMAT = "FHIR_MODULE_LOG_FORMAT"
ENV_VALIDATE_CONCURRENCY = "FHIR_MODULE_VALIDATE_CONCURRENCY"
ENV_VALIDATE_TIMEOUT = "FHIR_MODULE_VALIDATE_TIMEOUT"
ENV_VALIDATE_MAX_RESOURCES = "FHIR_MODULE_VALIDATE_MAX_RESOURCES"
ENV_PREVIEW_PAGE = "FHIR_MODULE_PREVIEW_PAGE"

DEFAULT_DATABASE_URL = "sqlite:///./fhir_module_feedback.sqlite3"
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024

_TOML_KEYS = {
    "preview_page",
    "allowed_fhir_servers",
    "trusted_clients",
    "database_url",
    "bundle",
    "bundles",
    "modules",
    "cases",
    "fetch_timeout",
    "max_body_bytes",
    "cors_origins",
    "public_base_url",
    "fetch_concurrency",
    "header_timeout",
    "body_timeout",
    "validate_concurrency",
    "validate_timeout",
    "validate_max_resources",
    "log_format",
}


class ConfigError(ValueError):
    """A setting is missing, malformed or unsafe; the message names the setting."""


@dataclass(frozen=True)
class TrustedClient:
    """A CDS client whose JWTs the service accepts.

    Exactly one of `jwks_url` (fetched and cached) or `jwks` (an inline JWK Set) is set.
    """

    iss: str
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    tenant: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the HTTP service needs to know about its deployment."""

    allowed_fhir_servers: tuple[str, ...] = ()
    trusted_clients: tuple[TrustedClient, ...] = ()
    database_url: str = DEFAULT_DATABASE_URL
    # What to serve: module folders and exported bundles, side by side; neither: the built-in modules.
    module_paths: tuple[str, ...] = ()
    bundle_paths: tuple[str, ...] = ()
    case_paths: tuple[str, ...] = ()  # folders of test cases for the bundles' self-test
    fetch_timeout: float = 10.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    cors_origins: tuple[str, ...] = ("*",)
    # The externally visible base URL (scheme://host[:port][/prefix]); JWT `aud` is checked
    # against it. Unset: the URL the request arrived at.
    public_base_url: str | None = None
    # Seconds a client has to send a request's head (serve's protocol) and then its body (408).
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    # Log lines as text (uvicorn's) or one JSON object per line (logs.py).
    log_format: str = "text"
    # $validate: worker processes per service process, seconds per call, resources per call.
    validate_concurrency: int = 1
    validate_timeout: float = 30.0
    validate_max_resources: int = 10_000
    # Fetches in flight to one FHIR server at a time; more wait (bounded) for a free slot.
    fetch_concurrency: int = 20
    # Pages of a searchset Bundle followed through `link[next]` before giving up (412).
    max_prefetch_pages: int = 20
    jwks_cache_seconds: float = 300.0
    # After a JWKS fetch, a token with an unknown kid causes no new fetch for this long.
    jwks_refetch_interval: float = 10.0
    # The card preview page at `/`: None = on exactly when there are no trusted clients (the
    # service then answers loopback clients only); with trusted clients it must be turned on.
    preview_page: bool | None = None

    @property
    def auth_enabled(self) -> bool:
        """JWTs are required exactly when at least one trusted client is configured."""
        return bool(self.trusted_clients)

    @property
    def preview_enabled(self) -> bool:
        return (not self.auth_enabled) if self.preview_page is None else self.preview_page

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read the TOML file named by FHIR_MODULE_CONFIG (if any), then the environment."""
        return load_settings(environ)


@lru_cache(maxsize=1024)  # asked on every request of a service without trusted clients
def is_loopback_host(host: str | None) -> bool:
    """True for `localhost` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_service_url(url: str, setting: str) -> str:
    """An absolute https URL, or plain http to a loopback host; returned without a trailing slash."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"{setting}: empty URL")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{setting}: {url!r} is not an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{setting}: {url!r} must not have a query or fragment")
    if parts.username or parts.password:
        raise ConfigError(f"{setting}: {url!r} must not carry credentials")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"{setting}: {url!r} uses plain http to a non-loopback host; use https "
            "(plain http is allowed only for localhost/127.0.0.1/::1)"
        )
    return url.rstrip("/")


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _as_str_list(value: Any, setting: str) -> list[str]:
    if isinstance(value, str):
        return _split_list(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ConfigError(f"{setting}: expected a list of strings or a comma-separated string")


def _parse_jwks(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list) or not value["keys"]:
        raise ConfigError(f"{where}: 'jwks' must be a JWK Set object with a non-empty 'keys' list")
    for index, key in enumerate(value["keys"]):
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            raise ConfigError(f"{where}: jwks.keys[{index}] is not a JWK (no 'kty')")
        if "d" in key:
            raise ConfigError(f"{where}: jwks.keys[{index}] holds a private key; give only public keys")
    return value


def load_trusted_clients(path: str) -> tuple[TrustedClient, ...]:
    """Parse the JSON list of trusted CDS clients; every entry is checked."""
    setting = ENV_TRUSTED_CLIENTS
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{setting}: file {path!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read {path!r}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{setting}: {path!r} is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ConfigError(f"{setting}: {path!r} must hold a JSON list of clients")
    clients: list[TrustedClient] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        where = f"{setting}: {path}[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: each client must be an object")
        unknown = set(entry) - {"iss", "jwks_url", "jwks", "tenant"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        iss = entry.get("iss")
        if not isinstance(iss, str) or not iss:
            raise ConfigError(f"{where}: 'iss' must be a non-empty string")
        if iss in seen:
            raise ConfigError(f"{where}: issuer {iss!r} is listed twice")
        seen.add(iss)
        has_url, has_jwks = "jwks_url" in entry, "jwks" in entry
        if has_url == has_jwks:
            raise ConfigError(f"{where}: give exactly one of 'jwks_url' or 'jwks'")
        tenant = entry.get("tenant")
        if tenant is not None and (not isinstance(tenant, str) or not tenant):
            raise ConfigError(f"{where}: 'tenant' must be a non-empty string when given")
        clients.append(
            TrustedClient(
                iss=iss,
                jwks_url=check_service_url(entry["jwks_url"], f"{where}.jwks_url") if has_url else None,
                jwks=_parse_jwks(entry["jwks"], where) if has_jwks else None,
                tenant=tenant,
            )
        )
    return tuple(clients)


def _check_database_url(url: str) -> str:
    if not isinstance(url, str) or not url:
        raise ConfigError(f"{ENV_DATABASE_URL}: empty database URL")
    if url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://")):
        return url
    raise ConfigError(f"{ENV_DATABASE_URL}: {url!r} must start with sqlite:/// or postgresql://")


def _positive(value: Any, setting: str, kind: type) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{setting}: {value!r} is not a number") from None
    if isinstance(value, bool) or number <= 0:
        raise ConfigError(f"{setting}: must be a positive number, got {value!r}")
    return number


def _on_off(value: Any, setting: str) -> bool | None:
    """on/off (true/false, 1/0, yes/no); unset or "auto" is None (the default applies)."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "auto"):
        return None
    if text in ("on", "true", "1", "yes"):
        return True
    if text in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{setting}: {value!r} is not on, off or auto")


def _log_format(value: Any) -> str:
    if value not in ("text", "json"):
        raise ConfigError(f"{ENV_LOG_FORMAT}: {value!r} is not a log format; use text or json")
    return value


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib  # only for a configuration file: most starts have none (22M instructions to load)

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{ENV_CONFIG}: file {path!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{ENV_CONFIG}: {path!r} is not valid TOML: {exc}") from None
    unknown = set(data) - _TOML_KEYS
    if unknown:
        raise ConfigError(f"{ENV_CONFIG}: unknown settings {sorted(unknown)} in {path!r}")
    return data


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the TOML file (FHIR_MODULE_CONFIG) and the environment, which wins."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if env.get(ENV_CONFIG):
        values.update(_read_toml(env[ENV_CONFIG]))
    overrides = {
        ENV_ALLOWED_FHIR_SERVERS: "allowed_fhir_servers",
        ENV_TRUSTED_CLIENTS: "trusted_clients",
        ENV_DATABASE_URL: "database_url",
        ENV_BUNDLE: "bundles",
        ENV_MODULES: "modules",
        ENV_CASES: "cases",
        ENV_FETCH_TIMEOUT: "fetch_timeout",
        ENV_MAX_BODY_BYTES: "max_body_bytes",
        ENV_CORS_ORIGINS: "cors_origins",
        ENV_PUBLIC_BASE_URL: "public_base_url",
        ENV_FETCH_CONCURRENCY: "fetch_concurrency",
        ENV_HEADER_TIMEOUT: "header_timeout",
        ENV_BODY_TIMEOUT: "body_timeout",
        ENV_VALIDATE_CONCURRENCY: "validate_concurrency",
        ENV_LOG_FORMAT: "log_format",
        ENV_VALIDATE_TIMEOUT: "validate_timeout",
        ENV_VALIDATE_MAX_RESOURCES: "validate_max_resources",
        ENV_PREVIEW_PAGE: "preview_page",
    }
    for name, key in overrides.items():
        if name in env:
            values[key] = env[name]

    servers = [
        check_service_url(url, ENV_ALLOWED_FHIR_SERVERS)
        for url in _as_str_list(values.get("allowed_fhir_servers", []), ENV_ALLOWED_FHIR_SERVERS)
    ]
    clients_path = values.get("trusted_clients")
    if clients_path is not None and not isinstance(clients_path, str):
        raise ConfigError(f"{ENV_TRUSTED_CLIENTS}: expected the path of a JSON file")
    clients = load_trusted_clients(clients_path) if clients_path else ()
    if values.get("bundle") is not None and not isinstance(values["bundle"], str):
        raise ConfigError(f"{ENV_BUNDLE}: expected a file path")
    bundles = _as_str_list(values.get("bundles", []), ENV_BUNDLE)
    if values.get("bundle") and "bundles" not in values:
        bundles = [values["bundle"]]
    modules = _as_str_list(values.get("modules", []), ENV_MODULES)
    cases = _as_str_list(values.get("cases", []), ENV_CASES)
    public = values.get("public_base_url") or None
    if public is not None:
        public = check_service_url(public, ENV_PUBLIC_BASE_URL)
    origins = _as_str_list(values.get("cors_origins", ["*"]), ENV_CORS_ORIGINS)
    return Settings(
        allowed_fhir_servers=tuple(servers),
        trusted_clients=clients,
        database_url=_check_database_url(values.get("database_url", DEFAULT_DATABASE_URL)),
        module_paths=tuple(modules),
        bundle_paths=tuple(bundles),
        case_paths=tuple(cases),
        fetch_timeout=_positive(values.get("fetch_timeout", 10.0), ENV_FETCH_TIMEOUT, float),
        max_body_bytes=_positive(values.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES), ENV_MAX_BODY_BYTES, int),
        cors_origins=tuple(origins) or ("*",),
        public_base_url=public,
        fetch_concurrency=_positive(values.get("fetch_concurrency", 20), ENV_FETCH_CONCURRENCY, int),
        header_timeout=_positive(values.get("header_timeout", 10.0), ENV_HEADER_TIMEOUT, float),
        body_timeout=_positive(values.get("body_timeout", 15.0), ENV_BODY_TIMEOUT, float),
        log_format=_log_format(values.get("log_format", "text")),
        validate_concurrency=_positive(values.get("validate_concurrency", 1), ENV_VALIDATE_CONCURRENCY, int),
        validate_timeout=_positive(values.get("validate_timeout", 30.0), ENV_VALIDATE_TIMEOUT, float),
        validate_max_resources=_positive(values.get("validate_max_resources", 10_000), ENV_VALIDATE_MAX_RESOURCES, int),
        preview_page=_on_off(values.get("preview_page"), ENV_PREVIEW_PAGE),
    )
