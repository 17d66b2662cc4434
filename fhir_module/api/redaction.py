"""Keep bearer tokens out of the logs.

JWTs from CDS clients and `fhirAuthorization.access_token`s are credentials: whoever reads a log
line holding one could call the EHR's FHIR server as the user. Query parameters named like
credentials (`?key=`, `?api_key=`, `?client_secret=`...) are redacted everywhere, and the access
log shows no query value at all. `RedactingFilter` rewrites each
record's message (after formatting its arguments) and exception text, replacing the secret part.
`install_log_redaction()` attaches it to every handler of the root and uvicorn loggers, which is
where all records end up.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"

_PATTERNS = [
    # Authorization: Bearer <token>
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), r"\1" + REDACTED),
    # "access_token": "..." (JSON) and access_token=... / access_token: ... (forms, reprs)
    (re.compile(r"""(?i)(["']?access_token["']?\s*[:=]\s*["']?)[^"'\s,&}]+"""), r"\1" + REDACTED),
    # A bare JWT anywhere (three base64url parts, the first starting with '{"' encoded)
    (re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*"), REDACTED),
    # A query parameter named like a credential: ?key=, &api_key=, ?client_secret=, ?sig= ...
    (re.compile(r"(?i)([?&;][A-Za-z0-9_.\-]*(?:key|token|secret|passw(?:or)?d|pwd|sig|signature|auth|session"
                r"|jwt|credential)[A-Za-z0-9_.\-]*=)[^&#\s\"']*"), r"\1" + REDACTED),
]
_QUERY_VALUE = re.compile(r"([?&;][^=&#\s]*=)[^&#\s]*")


def redact(text: str) -> str:
    """`text` with bearer tokens, access tokens, JWTs and credential-named query values replaced
    by [REDACTED]."""
    if not _may_hold_secrets(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _may_hold_secrets(text: str) -> bool:
    """Whether any pattern could match: every one needs one of these words or a '=' (casefold
    matches as the patterns' (?i) does, 'ſ' for 's' included). Most log lines, every access line
    without a query among them, have none."""
    folded = text.casefold()
    return "bearer" in folded or "access_token" in folded or "eyJ" in text or "=" in text


def redact_query(target: str) -> str:
    """A request target with every query value replaced: the access log does not know which of a
    client's parameters are secrets (`?key=...`), and this service reads none of them."""
    return _QUERY_VALUE.sub(r"\1" + REDACTED, target) if "?" in target else target


def _redacted_arg(value: object) -> object:
    """A log argument without secrets; numbers stay numbers so `%d` still formats them."""
    if isinstance(value, (int, float)) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    cleaned = redact(text)
    return value if cleaned == text else cleaned


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from the message and any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            # (client, method, path with query, http version, status)
            client, method, target, version, status = record.args
            record.args = (client, method, redact_query(str(target)), version, status)
            # An access line's template and arguments looked at once: when none of them could hold
            # a secret, the steps below would change nothing (one access line in every request).
            if (isinstance(record.msg, str) and not record.exc_info and not record.exc_text
                    and not _may_hold_secrets(" ".join([record.msg, *map(str, record.args)]))):
                return True
        # Redact the template and each argument in place, keeping `args` as they came: some
        # formatters (uvicorn's access log) unpack them and break when they are gone.
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted_arg(value) for key, value in record.args.items()}
        # A secret split between template and argument ("Bearer %s", token) shows only once
        # formatted: then the formatted, redacted text replaces both. The access log is exempt
        # (its formatter needs the args; its arguments hold a whole path each, redacted above).
        if record.args and record.name != "uvicorn.access":
            try:
                message = record.getMessage()
            except Exception:  # a malformed record: leave it to the formatter to report
                message = None
            if message is not None and redact(message) != message:
                record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "fhir_module", "httpx")


def install_log_redaction() -> None:
    """Attach one RedactingFilter to every handler of the loggers the service writes through."""
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
