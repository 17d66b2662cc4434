"""`fhir-module serve`: build settings and engine, then run uvicorn.

Without trusted clients the service accepts unauthenticated calls, so it refuses to listen on
anything but a loopback address; with them, every CDS call needs a client JWT.
"""

from __future__ import annotations

import argparse
import dataclasses
import copy
import logging
import sys
from typing import Any

from fhir_module.config import ConfigError, Settings, is_loopback_host, load_settings
from fhir_module.engine.knowledgecheck import EXIT_REFUSED, KnowledgeCheckError

from .protocol import GuardedH11Protocol
from .redaction import RedactingFilter, install_log_redaction

# An idle kept-alive connection is closed after this long (uvicorn's default, said here).
KEEP_ALIVE_SECONDS = 5


def _log_config() -> dict[str, Any]:
    """uvicorn's logging, with the redaction filter on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": RedactingFilter}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
    config["loggers"]["fhir_module"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["httpx"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def check_bind(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address when no client authentication is configured."""
    if not settings.auth_enabled and not is_loopback_host(host):
        raise ConfigError(
            f"refusing to listen on {host!r} without client authentication: configure trusted "
            "clients (FHIR_MODULE_TRUSTED_CLIENTS) or bind 127.0.0.1"
        )


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of `fhir-module serve --host H --port P [--module DIR]... [--bundle FILE]...`."""
    import uvicorn

    from .app import create_app

    try:
        settings = load_settings()
        # Knowledge named on the command line replaces the configured knowledge.
        if getattr(args, "module", None) or getattr(args, "bundle", None):
            settings = dataclasses.replace(settings, module_paths=tuple(args.module or ()),
                                           bundle_paths=tuple(args.bundle or ()))
        check_bind(settings, args.host)
    except ConfigError as exc:
        print(f"fhir-module serve: configuration error: {exc}", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO)
    install_log_redaction()
    try:
        from .app import load_engine

        engine = load_engine(settings, allow_draft=bool(getattr(args, "allow_draft", False)))
        app = create_app(settings, engine)
    except KnowledgeCheckError as exc:  # knowledge that would not run as written never serves
        print(f"fhir-module serve: refusing to serve: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # a broken bundle or database: say which, do not dump a traceback
        print(f"fhir-module serve: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2

    knowledge = ", ".join([*settings.module_paths, *settings.bundle_paths]) or "the built-in modules"
    auth = (
        f"on ({len(settings.trusted_clients)} trusted client(s))"
        if settings.auth_enabled
        else "OFF (no trusted clients; loopback only)"
    )
    print(f"fhir-module: serving {knowledge} at http://{args.host}:{args.port}/cds-services", flush=True)
    print(f"fhir-module: client authentication {auth}", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=_log_config(),
        proxy_headers=False,
        server_header=False,
        http=GuardedH11Protocol,  # closes connections whose request head never completes
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return 0
