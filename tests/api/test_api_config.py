"""Settings: TOML file, environment overrides, and clear errors for unsafe or malformed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fhir_module.config import ConfigError, Settings, load_settings, load_trusted_clients
from tests.support.jwt_clients import JwtClient, write_trusted_clients


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///./fhir_module_feedback.sqlite3"
    assert settings.max_body_bytes == 5 * 1024 * 1024
    assert settings.cors_origins == ("*",)
    assert not settings.auth_enabled


def test_toml_then_environment(tmp_path: Path, jwt_client: JwtClient) -> None:
    clients = write_trusted_clients(tmp_path / "clients.json", [jwt_client])
    toml = tmp_path / "config.toml"
    toml.write_text(
        'allowed_fhir_servers = ["https://ehr.example.org/fhir/", "http://127.0.0.1:8080/fhir"]\n'
        f'trusted_clients = "{clients}"\n'
        'database_url = "postgresql://u@db.example.org/feedback"\n'
        'bundle = "/srv/bundle.json"\n'
        "fetch_timeout = 2.5\n"
        "fetch_concurrency = 4\n"
        "max_body_bytes = 1000\n"
        'cors_origins = ["https://ehr.example.org"]\n'
    )
    settings = load_settings({"FHIR_MODULE_CONFIG": str(toml)})
    assert settings.allowed_fhir_servers == ("https://ehr.example.org/fhir", "http://127.0.0.1:8080/fhir")
    assert settings.trusted_clients[0].iss == jwt_client.iss and settings.auth_enabled
    assert settings.database_url.startswith("postgresql://")
    assert (settings.bundle_paths, settings.fetch_timeout, settings.max_body_bytes) == (("/srv/bundle.json",), 2.5, 1000)
    assert settings.cors_origins == ("https://ehr.example.org",)
    assert settings.fetch_concurrency == 4
    env = {
        "FHIR_MODULE_CONFIG": str(toml),
        "FHIR_MODULE_ALLOWED_FHIR_SERVERS": "https://a.example.org/r4, http://localhost:9/fhir",
        "FHIR_MODULE_DATABASE_URL": "sqlite:////tmp/x.sqlite3",
        "FHIR_MODULE_MAX_BODY_BYTES": "2048",
        "FHIR_MODULE_FETCH_CONCURRENCY": "8",
        "FHIR_MODULE_CORS_ORIGINS": "https://one.example.org,https://two.example.org",
    }
    overridden = load_settings(env)
    assert overridden.allowed_fhir_servers == ("https://a.example.org/r4", "http://localhost:9/fhir")
    assert overridden.database_url == "sqlite:////tmp/x.sqlite3"
    assert overridden.max_body_bytes == 2048 and overridden.fetch_concurrency == 8
    assert overridden.cors_origins == ("https://one.example.org", "https://two.example.org")
    assert overridden.fetch_timeout == 2.5  # not overridden: from the file


@pytest.mark.parametrize(
    "env, message",
    [
        ({"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "http://ehr.example.org/fhir"}, "plain http to a non-loopback"),
        ({"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "http://10.0.0.5/fhir"}, "plain http to a non-loopback"),
        ({"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "ftp://ehr.example.org"}, "not an absolute http(s) URL"),
        ({"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "ehr.example.org/fhir"}, "not an absolute"),
        ({"FHIR_MODULE_ALLOWED_FHIR_SERVERS": "https://u:p@ehr.example.org"}, "credentials"),
        ({"FHIR_MODULE_DATABASE_URL": "mysql://x"}, "sqlite:/// or postgresql://"),
        ({"FHIR_MODULE_FETCH_TIMEOUT": "soon"}, "not a number"),
        ({"FHIR_MODULE_MAX_BODY_BYTES": "0"}, "positive"),
        ({"FHIR_MODULE_FETCH_CONCURRENCY": "0"}, "positive"),
        ({"FHIR_MODULE_TRUSTED_CLIENTS": "/nonexistent/clients.json"}, "does not exist"),
        ({"FHIR_MODULE_CONFIG": "/nonexistent/config.toml"}, "does not exist"),
        ({"FHIR_MODULE_PUBLIC_BASE_URL": "http://cds.example.org"}, "plain http"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env)


def test_bad_toml(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("allowed_fhir_servers = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({"FHIR_MODULE_CONFIG": str(broken)})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('alowed_fhir_servers = ["https://x.example.org"]\n')
    with pytest.raises(ConfigError, match="unknown settings"):
        load_settings({"FHIR_MODULE_CONFIG": str(unknown)})


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ('{"iss": "x"}', "JSON list"),
        ('[{"jwks_url": "https://x.example.org/jwks"}]', "'iss'"),
        ('[{"iss": "x"}]', "exactly one of"),
        ('[{"iss": "x", "jwks_url": "https://a.example.org/j", "jwks": {"keys": [{"kty": "EC"}]}}]', "exactly one of"),
        ('[{"iss": "x", "jwks_url": "http://evil.example.org/jwks"}]', "plain http"),
        ('[{"iss": "x", "jwks": {"keys": []}}]', "non-empty 'keys'"),
        ('[{"iss": "x", "jwks": {"keys": [{"kty": "EC", "d": "secret"}]}}]', "private key"),
        ('[{"iss": "x", "jwks_url": "https://a.example.org/j"}, {"iss": "x", "jwks_url": "https://b.example.org/j"}]',
         "listed twice"),
        ('[{"iss": "x", "jwks_url": "https://a.example.org/j", "tenant": 5}]', "tenant"),
        ('[{"iss": "x", "jwks_url": "https://a.example.org/j", "secret": 1}]', "unknown keys"),
    ],
)
def test_bad_trusted_clients_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "clients.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_trusted_clients(str(path))


def test_trusted_clients_file(tmp_path: Path, jwt_client: JwtClient) -> None:
    path = write_trusted_clients(tmp_path / "c.json", [jwt_client, {"iss": "https://b.example.org", "tenant": "t1",
                                                                    "jwks": jwt_client.jwks}])
    clients = load_trusted_clients(str(path))
    assert [c.iss for c in clients] == [jwt_client.iss, "https://b.example.org"]
    assert clients[0].jwks_url == jwt_client.jwks_url and clients[0].jwks is None
    assert clients[1].tenant == "t1" and clients[1].jwks == json.loads(path.read_text())[1]["jwks"]
