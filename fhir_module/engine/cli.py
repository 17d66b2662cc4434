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
    try:
        # Only what the checked orders' rules read: an unrelated order needs no prefetch at all.
        needed = engine.needed_prefetch(service_id, request, today=getattr(args, "today", None))
    except RequestError as error:
        print(f"fhir-module cards: {error.message}", file=sys.stderr)
        return 1
    missing = engine.missing_prefetch(service_id, request.get("prefetch"), needed)
    if missing:
        # Offline there is no FHIR server to fetch from: judging on part of the chart could
        # miss a contraindication, so refuse as the service does (412), naming what is missing.
        print(f"fhir-module cards: the request's prefetch lacks {', '.join(missing)}; the offline "
              "command does not fetch, so fill them (a searchset Bundle, empty if there is nothing)",
              file=sys.stderr)
        return 1
    try:
        response = engine.evaluate(service_id, request, today=getattr(args, "today", None))
    except RequestError as error:
        print(f"fhir-module cards: {error.message}", file=sys.stderr)
        return 1
    try:
        json.dump(response, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `fhir-module cards X | head`: the reader left, nothing to report
        sys.stderr.close()
    return 0
