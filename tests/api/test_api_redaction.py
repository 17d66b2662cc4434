"""Tokens never reach the logs: the filter itself, and a real server process's log output."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.api.redaction import REDACTED, RedactingFilter, redact
from tests.api.helpers import free_port, running_service, scenario_request
from tests.support.jwt_clients import JwtClient, write_trusted_clients

JWT_LIKE = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"


def test_redact_replaces_bearer_tokens_access_tokens_and_jwts() -> None:
    assert redact(f"Authorization: Bearer {JWT_LIKE}") == f"Authorization: Bearer {REDACTED}"
    assert redact("authorization: bearer abc.DEF-123_x~+/=") == f"authorization: bearer {REDACTED}"
    assert redact('{"access_token": "s3cr3t-value", "scope": "x"}') == f'{{"access_token": "{REDACTED}", "scope": "x"}}'
    assert redact("{'access_token': 's3cr3t'}") == f"{{'access_token': '{REDACTED}'}}"
    assert redact("access_token=s3cr3t&x=1") == f"access_token={REDACTED}&x=1"
    assert redact(f"token {JWT_LIKE} seen") == f"token {REDACTED} seen"
    assert redact("patient 123 has 2 cards") == "patient 123 has 2 cards"


def test_filter_redacts_arguments_and_exceptions() -> None:
    logger = logging.getLogger("fhir_module.test.redaction")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    keep = Keep()
    keep.addFilter(RedactingFilter())
    logger.addHandler(keep)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("header was %s", f"Bearer {JWT_LIKE}")
        logger.info("request %r", {"fhirAuthorization": {"access_token": "opaque-123"}})
        try:
            raise ValueError(f"bad token Bearer {JWT_LIKE}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(keep)
        logger.propagate = True
    joined = "\n".join(records)
    assert JWT_LIKE not in joined and "opaque-123" not in joined
    assert joined.count(REDACTED) >= 3
    assert "ValueError" in joined  # the exception is still reported


def test_a_running_service_logs_no_tokens(discovery: dict[str, Any], jwt_client: JwtClient, tmp_path: Path) -> None:
    """A real `fhir-module serve` with auth on: bad and good calls, a failing fetch; no secret in the log."""
    clients = write_trusted_clients(tmp_path / "clients.json", [jwt_client])
    port = free_port()
    log = tmp_path / "service.log"
    env = {**os.environ, "FHIR_MODULE_TRUSTED_CLIENTS": str(clients),
           "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'fb.sqlite3'}",
           # An allowed server nobody listens on: the fetch fails and is logged.
           "FHIR_MODULE_ALLOWED_FHIR_SERVERS": f"http://127.0.0.1:{free_port()}/fhir"}
    command = [sys.executable, "-m", "fhir_module.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running_service(command, env, port, log) as base:
        service_id, body = scenario_request("pub-clean", discovery,
                                            fhir_server=env["FHIR_MODULE_ALLOWED_FHIR_SERVERS"], prefetch=False)
        secret = "ehr-access-token-must-not-leak"
        body["fhirAuthorization"] = {"access_token": secret, "token_type": "Bearer", "expires_in": 60,
                                     "scope": "user/*.read", "subject": "svc"}
        url = f"{base}/cds-services/{service_id}"
        token = jwt_client.token(url)
        assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 412
        bad = jwt_client.token(f"{base}/elsewhere")
        assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {bad}"}).status_code == 401
        assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {token}"}).status_code == 401  # replay
    text = log.read_text()
    assert "client authentication on" in text
    assert "could not be fetched" in text  # the fetch failure was logged ...
    for leaked in (secret, token, bad, token.split(".")[2], bad.split(".")[2]):
        assert leaked not in text  # ... without any secret


def test_the_access_log_formats_after_redaction() -> None:
    """uvicorn's access formatter unpacks the record's args: the filter must keep them (a bug
    once turned every request into a 'Logging error' traceback and lost the access line)."""
    import io
    import logging.config

    from fhir_module.api.server import _log_config

    config = _log_config()
    stream = io.StringIO()
    config["handlers"]["access"]["stream"] = stream
    logging.config.dictConfig(config)
    access = logging.getLogger("uvicorn.access")
    errors: list[BaseException] = []
    handler = access.handlers[0]
    handler.handleError = lambda record: errors.append(__import__("sys").exc_info()[1])  # type: ignore[method-assign]
    access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET",
                "/cds-services?access_token=s3cr3t", "1.1", 200)
    line = stream.getvalue()
    assert not errors, errors
    assert '"GET /cds-services?access_token=[REDACTED] HTTP/1.1" 200' in line, line
    assert "s3cr3t" not in line


@pytest.mark.parametrize("args", [("127.0.0.1:5000", "POST", "/cds-services/x?key=[REDACTED]", "1.1", 200),
                                  ("[::1]:80", "GET", "/", "1.0", 599), ("10.0.0.1:1", "PATCH", "/a", "1.1", 404)])
@pytest.mark.parametrize("colours", [False, True])
def test_the_access_line_is_uvicorns(args: tuple[Any, ...], colours: bool) -> None:
    """The service's access formatter (without uvicorn's copies of each record) writes uvicorn's text."""
    from uvicorn.logging import AccessFormatter

    from fhir_module.api.server import AccessLineFormatter, _log_config

    fmt = _log_config()["formatters"]["access"]["fmt"]
    lines = [formatter.format(logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                                                '%s - "%s %s HTTP/%s" %d', args, None))
             for formatter in (AccessLineFormatter(fmt, use_colors=colours), AccessFormatter(fmt, use_colors=colours))]
    assert lines[0] == lines[1]


def test_a_token_split_between_template_and_argument_is_redacted() -> None:
    from fhir_module.api.redaction import RedactingFilter

    record = logging.LogRecord("fhir_module", logging.INFO, __file__, 1, "Authorization: Bearer %s", ("abc.def",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "Authorization: Bearer [REDACTED]"


def test_redaction_shortcut_misses_nothing_the_patterns_catch() -> None:
    """Lines without the patterns' words skip the regexes; every spelling the (?i) patterns
    match still reaches them (casefold: 'ſ' is an 's', the Kelvin sign a 'k')."""
    from fhir_module.api.redaction import _PATTERNS

    def slow(text: str) -> str:
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text

    samples = ["BEARER abc", "BeArEr x.y", "ACCESS_TOKEN=abc", "acceſſ_token=abc", "acceſs_to\u212aen: abc",
               f"x {JWT_LIKE}", '127.0.0.1:5000 - "POST /cds-services/x HTTP/1.1" 200', "bear er abc", "eyj.abc.def"]
    for text in samples:
        assert redact(text) == slow(text), text
    assert redact("acceſſ_token=abc") != "acceſſ_token=abc"


@pytest.mark.parametrize("target", ["/cds-services/x", f"/cds-services/{JWT_LIKE}", "/a/Bearer%20abc",
                                    "/a/bearer abc", "/a?key=s3cr3t", "/a/access_token:abc", "/"])
def test_an_access_line_is_redacted_as_every_line_is(target: str) -> None:
    """Access lines whose template and arguments hold nothing a pattern needs skip the
    per-argument steps: the record is the same as through those steps."""
    from fhir_module.api.redaction import RedactingFilter, _redacted_arg, redact_query

    template = '%s - "%s %s HTTP/%s" %d'
    args = ("127.0.0.1:5000", "POST", target, "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, template, args, None)
    assert RedactingFilter().filter(record)
    client, method, path, version, status = args
    expected = tuple(_redacted_arg(arg) for arg in (client, method, redact_query(path), version, status))
    assert record.msg == redact(template) and record.args == expected
    assert JWT_LIKE not in record.getMessage() and "s3cr3t" not in record.getMessage()
