"""`fhir-module serve`: build settings and engine, prove the knowledge, then run uvicorn.

Without trusted clients the service accepts unauthenticated calls, so it refuses to listen on
anything but a loopback address; with them, every CDS call needs a client JWT. Before it listens,
the knowledge passes the knowledge check and the modules' own test cases (the self-test).

Exit status: 0 after a clean shutdown; 1 the knowledge is refused: it fails the knowledge check, or
its own test cases (each finding or failing case printed); 2 a configuration error, knowledge or a
database that cannot be opened, or an address that cannot be bound.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import http
import logging
import os
import sys
import tempfile
from datetime import date
from typing import Any

import uvicorn
from uvicorn.logging import AccessFormatter
from uvicorn.supervisors import Multiprocess

from fhir_module.config import ENV_BUNDLE, ENV_CASES, ENV_MODULES, ConfigError, Settings, is_loopback_host, load_settings
from fhir_module.engine.knowledgecheck import EXIT_REFUSED, KnowledgeCheckError
from fhir_module.knowledge import KnowledgeError, KnowledgeUnreadable

from .logs import JsonFormatter
from .metrics import ENV_METRICS_DIR
from .protocol import GuardedH11Protocol
from .redaction import RedactingFilter, install_log_redaction

log = logging.getLogger("fhir_module.serve")

# An idle kept-alive connection is closed after this long (uvicorn's default, said here).
KEEP_ALIVE_SECONDS = 5


class AccessLineFormatter(AccessFormatter):
    """uvicorn's access line, the same text, without the two copies of each record its formatter
    makes (3 us of every request); in colour (on a terminal) uvicorn's own."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        if self.use_colors or not (isinstance(record.args, tuple) and len(record.args) == 5):
            return super().formatMessage(record)
        client_addr, method, full_path, http_version, status = record.args
        status_code = _STATUS_CODES.get(status) or self.get_status_code(int(status))
        return self._fmt % {**record.__dict__, "levelprefix": f"{record.levelname}:".ljust(9),
                            "client_addr": client_addr, "request_line": f"{method} {full_path} HTTP/{http_version}",
                            "status_code": status_code}


# "200 OK" as uvicorn's access line writes a status.
_STATUS_CODES = {status.value: f"{status.value} {status.phrase}" for status in http.HTTPStatus}


def _log_config(log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging, with the redaction filter on every handler (and JSON lines if asked)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["()"] = AccessLineFormatter
    config.setdefault("filters", {})["redact"] = {"()": RedactingFilter}
    if log_format == "json":
        config["formatters"] = {"json": {"()": JsonFormatter}}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact")
        if log_format == "json":
            handler["formatter"] = "json"
    config["loggers"]["fhir_module"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["httpx"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    return config


def _lean_log_records() -> None:
    """Log records without what no format of the service shows: the calling function and line,
    thread and process names (logging's documented switches; 2 us of every access line)."""
    logging._srcfile = None  # noqa: SLF001 - the switch logging's documentation names
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def check_bind(settings: Settings, host: str) -> None:
    """Refuse a non-loopback address when no client authentication is configured."""
    if not settings.auth_enabled and not is_loopback_host(host):
        raise ConfigError(
            f"refusing to listen on {host!r} without client authentication: configure trusted "
            "clients (FHIR_MODULE_TRUSTED_CLIENTS) or bind 127.0.0.1"
        )


def self_test(engine: Any, settings: Settings, args: argparse.Namespace) -> int:
    """Run the modules' own cases before serving them: 0 when they all pass, else EXIT_REFUSED
    (each failing case printed). The built-in and `--module` modules bring their `cases/`; bundles
    bring none, so their cases are named with `--cases` or the `cases` setting (or the expert skips
    the self-test, loudly)."""
    from fhir_module.knowledge import builtin_module_dirs
    from fhir_module.selftest import case_sources, load_cases, report, run_cases

    if getattr(args, "skip_self_test", False):
        log.warning("SELF-TEST SKIPPED (--skip-self-test): the modules' own test cases were NOT run; "
                    "this knowledge serves without having proved it answers as its cases expect")
        return 0
    modules = list(settings.module_paths)
    if not modules and not settings.bundle_paths:
        modules = builtin_module_dirs()
    case_dirs = list(settings.case_paths)
    if settings.bundle_paths and not case_dirs:
        print("fhir-module serve: refusing to serve: a bundle carries no test cases, so it cannot prove itself; "
              f"name its module's cases with --cases DIR or {ENV_CASES} (a module's cases/, a package's tests/), "
              "or start with --skip-self-test", file=sys.stderr)
        return EXIT_REFUSED
    today = date.today()
    results = run_cases(engine, load_cases(case_sources(modules, (), case_dirs), today), today)
    failed = [result for result in results if not result.passed]
    if failed or not results:
        print("fhir-module serve: refusing to serve: the modules' own test cases fail:", file=sys.stderr)
        for line in report(results, passes=False) if results else ["no test cases to run"]:
            print(f"  {line}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"fhir-module: self-test passed: {len(results)} case(s)", flush=True)
    return 0


def served_modules(engine: Any) -> list[str]:
    """One line per served module: its name and version, and its services (what discovery lists)."""
    by_module: dict[str, list[str]] = {}
    for service in engine.services():
        plan = engine.plan(service["id"])
        name = engine.kb.module_of(plan).name if plan else "unknown module"
        by_module.setdefault(name, []).append(service["id"])
    return [f"{name}: {', '.join(ids)}" for name, ids in sorted(by_module.items())]


def serve_command(args: argparse.Namespace) -> int:
    """Entry point of `fhir-module serve --host H --port P [--module DIR]... [--bundle FILE]...`."""
    # The start runs without the cyclic garbage collector (cli.py turns it off before the imports):
    # nearly all it makes lives as long as the process (modules, the knowledge) or is freed by
    # reference counting (the self-test's requests; the built-in knowledge's start leaves ~4,000
    # objects in cycles), so the collector's passes over it, again and again, found nothing: 0.15 s
    # of a 1.2 s start. It is on again, with what was loaded out of its sight, before serving.
    gc.disable()
    try:
        started = _start(args)
    finally:
        # What the start loaded stays (the app's lifespan freezes it too): frozen, the first young
        # collection does not walk it all.
        gc.freeze()
        gc.enable()
    if isinstance(started, int):
        return started
    settings, engine, app, workers = started

    knowledge = ", ".join([*settings.module_paths, *settings.bundle_paths]) or "the built-in modules"
    auth = (
        f"on ({len(settings.trusted_clients)} trusted client(s))"
        if settings.auth_enabled
        else "OFF (no trusted clients; loopback only)"
    )
    options: dict[str, Any] = dict(
        host=args.host,
        port=args.port,
        log_config=_log_config(settings.log_format),
        proxy_headers=False,
        server_header=False,
        http=GuardedH11Protocol,  # closes connections whose request head never completes
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    announce = [f"serving {knowledge} at {{url}}/cds-services", f"client authentication {auth}",
                *(f"module {line}" for line in served_modules(engine))]
    if workers == 1:
        server = AnnouncingServer(uvicorn.Config(app, **options), announce)
        try:
            server.run()
        except SystemExit:  # uvicorn exits when it cannot bind (its log says why) or start the app
            print(f"fhir-module serve: cannot listen on {args.host}:{args.port} (see the error above)", file=sys.stderr)
            return 2
        return 0
    # Each worker process builds its app from the environment (the factory), so what the command
    # line chose goes there; per-process state (JWT ids used, secrets) is in the database.
    os.environ[ENV_MODULES] = ",".join(settings.module_paths)
    os.environ[ENV_BUNDLE] = ",".join(settings.bundle_paths)
    del app, engine
    gc.unfreeze()  # the supervisor serves nothing: what it loaded may go, cycles included
    # Each worker keeps its metrics snapshot here; the scraped one answers the sum (metrics.py).
    metrics_dir = tempfile.TemporaryDirectory(prefix="fhir-module-metrics-")
    os.environ[ENV_METRICS_DIR] = metrics_dir.name
    config = uvicorn.Config("fhir_module.api:create_app", factory=True, workers=workers,
                            **{**options, "http": f"{GuardedH11Protocol.__module__}:{GuardedH11Protocol.__name__}"})
    # The supervisor binds the socket the workers share; listening on it at once queues the first
    # calls until a worker takes them, so "serving" is true when it is said.
    try:
        sock = config.bind_socket()
    except SystemExit:
        print(f"fhir-module serve: cannot listen on {args.host}:{args.port} (see the error above)", file=sys.stderr)
        return 2
    sock.listen(config.backlog)
    announce_serving(sock, [*announce, f"{workers} worker processes"])
    Multiprocess(config, sockets=[sock]).run()
    return 0


def _start(args: argparse.Namespace) -> int | tuple[Settings, Any, Any, int]:
    """Settings, engine (its knowledge checked, its cases passed) and app, with the number of
    workers; or the exit status of a start that failed (said on standard error)."""
    from .app import create_app

    try:
        settings = load_settings()
        # Knowledge named on the command line replaces the configured knowledge (and its cases).
        if getattr(args, "module", None) or getattr(args, "bundle", None):
            settings = dataclasses.replace(settings, module_paths=tuple(args.module or ()),
                                           bundle_paths=tuple(args.bundle or ()), case_paths=())
        if getattr(args, "cases", None):
            settings = dataclasses.replace(settings, case_paths=tuple(args.cases))
        check_bind(settings, args.host)
    except ConfigError as exc:
        print(f"fhir-module serve: configuration error: {exc}", file=sys.stderr)
        return 2

    workers = getattr(args, "workers", 1) or 1
    if workers < 1:
        print("fhir-module serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if workers > 1 and getattr(args, "allow_draft", False):
        print("fhir-module serve: --allow-draft is for trying knowledge out: serve it with one worker",
              file=sys.stderr)
        return 2
    if workers > 1 and settings.database_url.rstrip("/").endswith(":memory:"):
        print("fhir-module serve: several workers share state through the database: give a database "
              "file or PostgreSQL, not :memory:", file=sys.stderr)
        return 2

    logging.basicConfig(level=logging.INFO)
    _lean_log_records()
    install_log_redaction()
    try:
        from .app import load_engine

        # Built here even for several workers: a broken bundle or database is said once, before
        # any worker starts (and the database schema is made once).
        engine = load_engine(settings, allow_draft=bool(getattr(args, "allow_draft", False)))
        refused = self_test(engine, settings, args)
        if refused:
            return refused
        app = create_app(settings, engine)
    except (KnowledgeCheckError, KnowledgeError) as exc:
        if isinstance(exc, KnowledgeUnreadable):
            print(f"fhir-module serve: cannot start: {exc}", file=sys.stderr)
            return 2
        # Knowledge that fails its checks, or would not run as written, never serves.
        print(f"fhir-module serve: refusing to serve: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except Exception as exc:  # a broken bundle or database: say which, do not dump a traceback
        print(f"fhir-module serve: cannot start: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return settings, engine, app, workers


class AnnouncingServer(uvicorn.Server):
    """uvicorn's server that says it is serving only once its socket is bound (a supervisor or a
    test waiting for the line can connect then), naming the port actually bound (`--port 0`)."""

    def __init__(self, config: uvicorn.Config, lines: list[str]) -> None:
        super().__init__(config)
        self.lines = lines

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            announce_serving(self.servers[0].sockets[0], self.lines)


def announce_serving(sock: Any, lines: list[str]) -> None:
    """Print the lines, `{url}` standing for the address the socket is actually bound to."""
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    for line in lines:
        print(f"fhir-module: {line.replace('{url}', url)}", flush=True)
