"""`fhir-module cards REQUEST.json`: evaluate one hook request offline, with the service's engine.

Without `--service`, the request goes to every service of its hook (an EHR calls them all: one per
module) and the cards of all are printed together, each naming its module.

Exit status: 0 cards printed (maybe none); 1 the service would refuse the request (no service for its
hook, bad context, prefetch its orders need missing); 2 the file is not a CDS Hooks request, or the
knowledge bundle cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from fhir_module.knowledge import KnowledgeError, KnowledgeUnreadable

from .errors import RequestError
from .knowledgebase import KnowledgeLoadError
from .knowledgecheck import EXIT_REFUSED, KnowledgeCheckError
from .service import Engine


class NotARequest(ValueError):
    """The file is not a CDS Hooks request; the message says what it is instead."""


def _read_request(path: Path) -> dict[str, Any]:
    """The hook request in the file, or NotARequest saying what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NotARequest(f"cannot read: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotARequest("not a UTF-8 text file (a CDS Hooks request is JSON)") from None
    try:
        request = json.loads(text)
    except ValueError as error:
        raise NotARequest(f"not JSON ({error}); a CDS Hooks request is a JSON object") from None
    if not isinstance(request, dict):
        raise NotARequest(f"a JSON {type(request).__name__}, not a CDS Hooks request (a JSON object with hook, "
                          "hookInstance, context and prefetch)")
    if "hook" not in request and isinstance(request.get("resourceType"), str):
        raise NotARequest(f"a FHIR {request['resourceType']}, not a CDS Hooks request (a JSON object with hook, "
                          "hookInstance, context and prefetch); `fhir-module validate` checks FHIR resources")
    if not isinstance(request.get("hook"), str) or not request["hook"]:
        raise NotARequest("not a CDS Hooks request: it has no 'hook' (a string such as 'order-select')")
    return request


def engine_or_status(prog: str, modules: Sequence[str | Path] = (), bundles: Sequence[str | Path] = (),
                     packages: Sequence[str | Path] = (), *, allow_draft: bool = False) -> Engine | int:
    """The engine of these sources, or the exit status after saying why there is none: knowledge
    that fails its checks is refused (EXIT_REFUSED), sources that cannot be read are 2."""
    try:
        return Engine.from_sources(modules, bundles, packages, allow_draft=allow_draft)
    except (KnowledgeCheckError, KnowledgeError) as error:
        if isinstance(error, KnowledgeUnreadable):
            print(f"{prog}: {error}", file=sys.stderr)
            return 2
        print(f"{prog}: refusing the knowledge: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except KnowledgeLoadError as error:  # a bundle or package that cannot be read
        print(f"{prog}: {error}", file=sys.stderr)
        return 2


def cards_command(args: argparse.Namespace) -> int:
    engine = engine_or_status("fhir-module cards", modules=getattr(args, "module", None) or (),
                              bundles=args.bundle or (), allow_draft=bool(getattr(args, "allow_draft", False)))
    if isinstance(engine, int):
        return engine
    try:
        request = _read_request(Path(args.request))
    except NotARequest as error:
        print(f"fhir-module cards: {args.request}: {error}", file=sys.stderr)
        return 2
    if args.service is not None:
        service_ids = [args.service]
    else:
        service_ids = [s["id"] for s in engine.services() if s["hook"] == request["hook"]]
        if not service_ids:
            # The service would answer 400 for a hook it does not serve: a refused request.
            hooks = sorted({s["hook"] for s in engine.services()})
            print(f"fhir-module cards: no service for hook {request['hook']!r} (served: {', '.join(hooks)})",
                  file=sys.stderr)
            return 1
    cards: list[dict[str, Any]] = []
    for service_id in service_ids:
        try:
            cards += _evaluate(engine, service_id, request, args)
        except RequestError as error:
            print(f"fhir-module cards: {error.message}", file=sys.stderr)
            return 1
    json.dump({"cards": cards}, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def _evaluate(engine: Engine, service_id: str, request: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    today = getattr(args, "today", None)
    # Only what the checked orders' rules read: an unrelated order needs no prefetch at all.
    needed = engine.needed_prefetch(service_id, request, today=today)
    missing = engine.missing_prefetch(service_id, request.get("prefetch"), needed)
    if missing:
        # Offline there is no FHIR server to fetch from: judging on part of the chart could
        # miss a contraindication, so refuse as the service does (412), naming what is missing.
        raise RequestError(412, f"the request's prefetch lacks {', '.join(missing)} (service {service_id}); the "
                           "offline command does not fetch, so fill them (a searchset Bundle, empty if there is nothing)")
    return engine.evaluate(service_id, request, today=today)["cards"]
