"""The monograph as a DocumentReference: the Markdown attached whole, its sections indexed.

The knowledge cites monograph sentences as `<section id>.<n>`; the description lists each section's
id, title and sentence count so that a reader of the bundle can find any cited sentence in the
attached text. The attachment carries its SHA-1 (`hash`, as FHIR defines it) and size so a consumer
can check that it holds the very text the knowledge was checked against.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from fhir_module.knowledge import Knowledge

from .canonical import PROFILE_DOCUMENT_REFERENCE
from .common import R4, artifact, monograph_url

MARKDOWN = "text/markdown"


def document_id(knowledge: Knowledge) -> str:
    return f"{knowledge.module['id']}-monograph"


def document_title(knowledge: Knowledge) -> str:
    return f"{knowledge.monograph.title} monograph"


def section_index(knowledge: Knowledge) -> str:
    """One line per section: `- usage: Usage (4 sentences)`."""
    lines = []
    for section in knowledge.monograph.sections:
        count = len(section.sentences)
        lines.append(f"- {section.id}: {section.title} ({count} sentence{'' if count == 1 else 's'})")
    return "\n".join(lines)


def _attachment(knowledge: Knowledge, version: str) -> dict[str, Any]:
    data = knowledge.monograph.text.encode("utf-8")
    return {
        "contentType": MARKDOWN,
        "data": base64.b64encode(data).decode("ascii"),
        "url": monograph_url(knowledge),
        # R5 types size as integer64, which JSON carries as a string.
        "size": len(data) if version == R4 else str(len(data)),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),
        "title": document_title(knowledge),
    }


def build_document_reference(knowledge: Knowledge, version: str) -> list[dict[str, Any]]:
    """The monograph DocumentReference (a list, like every builder)."""
    module = knowledge.module
    resource = artifact(knowledge, "DocumentReference", document_id(knowledge), title=document_title(knowledge),
                        profile=PROFILE_DOCUMENT_REFERENCE, canonical=False)
    # A DocumentReference's status is that of the reference (current), docStatus that of the document.
    resource["status"] = "current" if module["status"] != "retired" else "superseded"
    resource["docStatus"] = "final" if module["status"] == "active" else "preliminary"
    identifier = {"system": "urn:ietf:rfc:3986", "value": monograph_url(knowledge)}
    if version == R4:
        resource["masterIdentifier"] = identifier
    else:
        resource["identifier"] = [identifier]
        resource["version"] = module["version"]
    resource["type"] = {"text": "Drug monograph"}
    # An instant needs a time; the knowledge date (never the clock) at midnight UTC.
    resource["date"] = f"{module['date']}T00:00:00Z"
    resource["description"] = (
        f"{document_title(knowledge)} (SHA-256 {knowledge.monograph.sha256}). The knowledge cites its sentences "
        f"as <section>.<n>, n counting from 1 within a section. Sections:\n{section_index(knowledge)}"
    )
    resource["content"] = [{"attachment": _attachment(knowledge, version)}]
    return [resource]
