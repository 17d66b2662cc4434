"""`fhir-module cards REQUEST.json`: evaluate one hook request offline, with the service's engine."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import RequestError
from .knowledgebase import KnowledgeLoadError
from .service import Engine


def cards_command(args: argparse.Namespace) -> int:
    try:
        engine = Engine.from_bundle_file(args.bundle) if args.bundle else Engine.default()
    except KnowledgeLoadError as error:
        print(f"fhir-module cards: {error}", file=sys.stderr)
        return 2
    try:
        request = json.loads(Path(args.request).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"fhir-module cards: cannot read {args.request}: {error}", file=sys.stderr)
        return 2
    service_id = args.service
    if service_id is None:
        hook = request.get("hook") if isinstance(request, dict) else None
        matching = [s["id"] for s in engine.services() if s["hook"] == hook]
        if not matching:
            print(f"fhir-module cards: no service for hook {hook!r}", file=sys.stderr)
            return 2
        service_id = matching[0]
    missing = engine.missing_prefetch(service_id, request.get("prefetch"))
    if missing:
        print(f"fhir-module cards: prefetch without {', '.join(missing)}: those data are taken as absent", file=sys.stderr)
    try:
        response = engine.evaluate(service_id, request)
    except RequestError as error:
        print(f"fhir-module cards: {error.message}", file=sys.stderr)
        return 1
    json.dump(response, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0
