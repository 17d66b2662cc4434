"""The artifacts the PlanDefinitions use: value sets the engine can evaluate, the monographs the
rules quote, and the manifest Library's list of what the knowledge holds."""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Any

from fhir_module.engine.clinical._json import as_dict, as_list

from fhir_module.monograph import Monograph, MonographError, parse_monograph_once

from .index import Index, label

# What ValueSetIndex (clinical/valueset.py) evaluates; any other filter matches nothing there.
SUPPORTED_FILTER_OPS = ("=", "in", "not-in", "is-a", "descendent-of", "is-not-a", "regex")
CODE_PROPERTIES = ("concept", "code")
_RECOGNITION_NAME = "/StructureDefinition/recognition-name"


def valueset_problems(index: Index, valueset: dict[str, Any]) -> list[tuple[str, str]]:
    """(element, message) for what would make the engine's membership test wrong or empty."""
    problems: list[tuple[str, str]] = []
    compose = valueset.get("compose") if isinstance(valueset.get("compose"), dict) else {}
    includes = [i for i in as_list(compose.get("include")) if isinstance(i, dict)]
    expansion = (valueset.get("expansion") or {}).get("contains") if isinstance(valueset.get("expansion"), dict) else None
    names = [e for e in as_list(valueset.get("extension")) if isinstance(e, dict)
             and str(e.get("url", "")).endswith(_RECOGNITION_NAME) and e.get("valueString")]
    if not includes and not expansion and not names:
        problems.append(("compose", "lists no codes, filters, value sets or names: nothing can match it"))
    for part in ("include", "exclude"):
        for i, rule in enumerate(as_list(compose.get(part))):
            element = f"compose.{part}[{i}]"
            if not isinstance(rule, dict):
                continue
            if not rule.get("system") and not rule.get("valueSet"):
                problems.append((element, "names neither a system nor a value set: it matches nothing"))
            for j, item in enumerate(as_list(rule.get("filter"))):
                problems += [(f"{element}.filter[{j}]", p) for p in _filter_problems(item)]
            for j, nested in enumerate(as_list(rule.get("valueSet"))):
                if index.canonical(nested, "ValueSet") is None:
                    problems.append((f"{element}.valueSet[{j}]", f"value set {nested!r} is not in the knowledge"))
    return problems


def _filter_problems(item: Any) -> list[str]:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("property", "op", "value")):
        return ["a filter needs a property, an op and a value"]
    op, prop = item["op"], item["property"]
    if op not in SUPPORTED_FILTER_OPS:
        return [f"filter op {op!r} is not evaluated here (supported: {', '.join(SUPPORTED_FILTER_OPS)}): it would match nothing"]
    if op != "regex" and prop not in CODE_PROPERTIES:
        return [f"filter property {prop!r} needs the code system's data, which the knowledge does not hold: "
                f"it would match nothing (use {' or '.join(CODE_PROPERTIES)})"]
    if op == "regex":
        try:
            re.compile(item["value"])
        except re.error as error:
            return [f"filter regex {item['value']!r} does not compile: {error}"]
    return []


def nested_valuesets(index: Index, valueset: dict[str, Any]) -> list[dict[str, Any]]:
    """The value sets a value set includes or excludes (found ones only)."""
    compose = valueset.get("compose") if isinstance(valueset.get("compose"), dict) else {}
    found = []
    for part in ("include", "exclude"):
        for rule in as_list(compose.get(part)):
            for nested in (as_list(rule.get("valueSet"))) if isinstance(rule, dict) else []:
                resource = index.canonical(nested, "ValueSet")
                if resource is not None:
                    found.append(resource)
    return found


def library_problems(index: Index, library: dict[str, Any]) -> list[tuple[str, str]]:
    """A manifest lists what the knowledge holds: each artifact it lists must be there."""
    problems = []
    for i, related in enumerate(as_list(library.get("relatedArtifact"))):
        if not isinstance(related, dict) or related.get("type") not in ("composed-of", "depends-on"):
            continue
        reference = related.get("resource")
        if isinstance(reference, str) and index.canonical(reference) is None:
            problems.append((f"relatedArtifact[{i}].resource", f"lists {reference}, which is not in the knowledge"))
    return problems


# -- monographs and the rules' quotes -------------------------------------------------------------


@lru_cache(maxsize=16)
def _parsed(text: str) -> Monograph | MonographError:
    # A module's monograph was parsed by the loader already: the same text is not parsed again
    # (parse_monograph_once); kept here too for a text that is not a monograph, checked per citation.
    try:
        return parse_monograph_once(text)
    except MonographError as error:
        return error


class Monographs:
    """The monographs the knowledge carries (DocumentReference attachments), by their URL."""

    def __init__(self, index: Index) -> None:
        self.documents: dict[str, tuple[dict[str, Any], str | None]] = {}
        for document in index.of_type("DocumentReference"):
            for content in as_list(document.get("content")):
                attachment = content.get("attachment") if isinstance(content, dict) else None
                if not isinstance(attachment, dict) or not isinstance(attachment.get("url"), str):
                    continue
                text = None
                try:
                    text = base64.b64decode(attachment.get("data") or "", validate=True).decode("utf-8") or None
                except (ValueError, TypeError, UnicodeDecodeError):
                    pass
                self.documents.setdefault(attachment["url"], (document, text))

    def citation_problems(self, document: Any) -> tuple[list[str], dict[str, Any] | None]:
        """Why a rule's citation does not hold (and the DocumentReference it cites, when found)."""
        if not isinstance(document, dict) or document.get("type") != "citation":
            return [], None
        address = document.get("url") or as_dict(document.get("document")).get("url")
        if not isinstance(address, str) or not address:
            return ["a citation needs the URL of the monograph it quotes"], None
        url, _, section = address.partition("#")
        found = self.documents.get(url)
        if found is None:
            return [f"cites {url}, a monograph that is not in the knowledge"], None
        resource, text = found
        parsed = _parsed(text) if text else None
        if not isinstance(parsed, Monograph):
            return [f"{label(resource)} does not carry a readable monograph: its quotes cannot be checked"], resource
        problems = []
        citation = document.get("citation")
        if not isinstance(citation, str) or not citation.strip():
            problems.append("a citation needs the sentence it quotes")
        elif parsed.find(citation) is None:
            problems.append(f"the cited sentence is not in the monograph {url}: {citation!r}")
        for extension in as_list(document.get("extension")):
            quote = extension.get("valueString") if isinstance(extension, dict) else None
            if str(extension.get("url", "")).endswith("/monograph-quote") and isinstance(quote, str):
                if parsed.find(quote) is None:
                    problems.append(f"the quote is not in the monograph {url}: {quote!r}")
                elif isinstance(citation, str) and parsed.find(citation) not in parsed.find_all(quote):
                    problems.append(f"the quote {quote!r} is not in the cited sentence {citation!r}")
        if section and section not in {s.id for s in parsed.sections}:
            problems.append(f"the monograph {url} has no section {section!r}")
        return problems, resource
