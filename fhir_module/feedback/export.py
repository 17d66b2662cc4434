"""`fhir-module feedback export`: the stored feedback as CSV or JSON, or a report per rule.

The report says, for each service and rule (the card's topic, recorded when the feedback came in),
how many cards were accepted and overridden, the override rate (overridden / both) and the reasons
given: a rule overridden most of the time is a rule to look at. Exit status: 0 written, 1 output
not writable, 2 no database (configuration or connection).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Sequence

from .records import StoredFeedback
from .store import store_from_url

ITEM_FIELDS = ("id", "service", "rule", "card", "outcome", "outcomeTimestamp", "receivedAt", "acceptedSuggestions",
               "overrideSystem", "overrideCode", "overrideDisplay", "userComment")
REPORT_FIELDS = ("service", "rule", "cards", "accepted", "overridden", "overrideRate", "reasons")
UNKNOWN_RULE = "(unknown rule)"


def item_rows(stored: Sequence[StoredFeedback]) -> list[dict[str, Any]]:
    rows = []
    for row in stored:
        entry = row.entry
        rows.append({
            "id": row.id, "service": row.service_id, "rule": entry.rule, "card": entry.card, "outcome": entry.outcome,
            "outcomeTimestamp": entry.outcome_timestamp.isoformat(), "receivedAt": row.received_at.isoformat(),
            "acceptedSuggestions": list(entry.accepted_suggestions), "overrideSystem": entry.override_system,
            "overrideCode": entry.override_code, "overrideDisplay": entry.override_display,
            "userComment": entry.user_comment,
        })
    return rows


def report_rows(stored: Sequence[StoredFeedback]) -> list[dict[str, Any]]:
    """One row per service and rule, the most overridden first."""
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"cards": set(), "accepted": 0, "overridden": 0, "reasons": Counter()})
    for row in stored:
        group = groups[(row.service_id, row.entry.rule or UNKNOWN_RULE)]
        group["cards"].add(row.entry.card)
        group[row.entry.outcome] += 1
        if row.entry.outcome == "overridden":
            reason = row.entry.override_code or ("(comment only)" if row.entry.user_comment else "(no reason)")
            group["reasons"][reason] += 1
    rows = []
    for (service, rule), group in groups.items():
        judged = group["accepted"] + group["overridden"]
        rows.append({
            "service": service, "rule": rule, "cards": len(group["cards"]), "accepted": group["accepted"],
            "overridden": group["overridden"], "overrideRate": round(group["overridden"] / judged, 3) if judged else None,
            "reasons": dict(group["reasons"].most_common()),
        })
    rows.sort(key=lambda r: (-(r["overrideRate"] or 0), r["service"], r["rule"]))
    return rows


# A cell a spreadsheet would run as a formula (user comments are free text from the EHR): CSV cells
# starting so get a leading apostrophe, as OWASP advises; JSON keeps the text as sent.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def _csv(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        if isinstance(flat.get("acceptedSuggestions"), list):
            flat["acceptedSuggestions"] = " ".join(flat["acceptedSuggestions"])
        if isinstance(flat.get("reasons"), dict):
            flat["reasons"] = "; ".join(f"{code}: {count}" for code, count in flat["reasons"].items())
        writer.writerow({name: _cell(value) for name, value in flat.items()})
    return out.getvalue()


def render(stored: Sequence[StoredFeedback], *, report: bool, form: str) -> str:
    rows = report_rows(stored) if report else item_rows(stored)
    if form == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    return _csv(rows, REPORT_FIELDS if report else ITEM_FIELDS)


def export_command(args: argparse.Namespace) -> int:
    from fhir_module.config import ConfigError, load_settings

    try:
        url = args.database or load_settings().database_url
        if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).expanduser().is_file():
            raise ValueError(f"no feedback database at {url[len('sqlite:///'):]!r}")
        store = store_from_url(url)
    except (ConfigError, ValueError) as exc:
        print(f"fhir-module feedback export: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database cannot be reached
        print(f"fhir-module feedback export: cannot open the database: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    try:
        stored = store.list(args.service)
    finally:
        store.close()
    text = render(stored, report=args.report, form=args.format)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        with open(args.output, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        print(f"fhir-module feedback export: cannot write {args.output}: {exc}", file=sys.stderr)
        return 1
    return 0
