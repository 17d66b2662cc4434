"""Cards as CDS Hooks 2.0 wants them: merged per problem, ordered by severity, with source and links."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from .actions import doc_url
from .knowledgebase import ModuleInfo

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# Cards the engine writes itself, not a rule of the knowledge: their topic is from this system.
ENGINE_NOTICE_SYSTEM = "http://fhir-module.org/fhir/CodeSystem/engine-notice"
NOT_EVALUATED = "not-evaluated"
CARD_NAMESPACE = uuid.UUID("6f1c4f8e-6a43-4a58-9a8e-3e0d3c1d9b57")
SUMMARY_LIMIT = 140
_NAMESPACE_BYTES = CARD_NAMESPACE.bytes


def card_uuid(name: str) -> str:
    """`str(uuid.uuid5(CARD_NAMESPACE, name))`, without building a UUID object: a card's and its
    suggestions' ids are worked out for every card of every request."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def truncate(text: str) -> str:
    """A summary on one line under 140 characters, cut between words (never mid-word) when longer."""
    text = " ".join(text.split())
    if len(text) < SUMMARY_LIMIT:
        return text
    cut = text[: SUMMARY_LIMIT - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:(-–") + "…"


@dataclass
class Card:
    """A card before it is written out, with what is needed to merge cards of one problem."""

    topic: str
    indicator: str
    summary: str
    detail: str
    documentation: list[dict[str, Any]]
    suggestions: list[dict[str, Any]]
    orders: set[str]
    involves: set[str] = field(default_factory=set)
    # The variables its rules read to decide (see Scope.reads): a note about data goes only on the
    # cards whose rules needed that data.
    reads: frozenset[tuple[int, str]] = frozenset()
    # The chart records the card's facts come from ("Observation/abc"), listed after the text a
    # clinician reads first, under their own heading.
    sources: list[str] = field(default_factory=list)
    topic_coding: dict[str, Any] = field(default_factory=dict)  # the topic as its module codes it
    module: ModuleInfo = field(default_factory=ModuleInfo.unknown)  # whose PlanDefinition made it

    @property
    def draft_orders(self) -> set[str]:
        """The draft orders this problem involves: the checked one and any other it names."""
        return self.orders | self.involves

    def absorb(self, other: "Card") -> None:
        """Take in another card of the same problem: its orders and the suggestions not yet here."""
        known = {(a["type"], a.get("resourceId")) for s in self.suggestions for a in s["actions"]}
        for suggestion in other.suggestions:
            action = suggestion["actions"][0]
            if (action["type"], action.get("resourceId")) not in known:
                self.suggestions.append(suggestion)
        self.orders |= other.orders
        self.involves |= other.involves
        self.sources = list(dict.fromkeys([*self.sources, *other.sources]))


def _evidence(sources: list[str]) -> str:
    if not sources:
        return ""
    return "\n\n**Evidence** (chart records used):\n" + "\n".join(f"- {source}" for source in sources)


def not_evaluated_card(order: str, checks: list[str], module: ModuleInfo) -> Card:
    """The card for an order none of whose rules fired while some could not be evaluated."""
    listed = "\n".join(f"- {check}" for check in checks)
    return Card(
        topic=NOT_EVALUATED,
        indicator="info",
        summary=truncate(f"{len(checks)} check(s) could not be evaluated on this order's data: they may apply"),
        detail=(f"No rule fired for {order}, but these checks could not be evaluated on the data sent, so "
                f"their silence does not mean they were checked and found fine:\n{listed}\n\n"
                "Check the order and the patient's record for these yourself; the service has logged the failure."),
        documentation=[],
        suggestions=[],
        orders={order},
        topic_coding={"system": ENGINE_NOTICE_SYSTEM, "code": NOT_EVALUATED, "display": "Checks that could not be evaluated"},
        module=module,
    )


class CardWriter:
    """Writes one request's cards; card and suggestion uuids are stable for the same request."""

    def __init__(self, hook_instance: str) -> None:
        self.hook_instance = hook_instance

    def finish(self, cards: list[Card]) -> list[dict[str, Any]]:
        """One card per problem: cards of one topic that involve other draft orders merge with every
        card of that topic sharing an order with them (orders drafted together are one problem)."""
        merged: list[Card] = []
        for card in cards:
            overlapping = [kept for kept in merged if kept.involves and card.involves and kept.topic == card.topic
                           and kept.draft_orders & card.draft_orders]
            if not overlapping:
                merged.append(card)
                continue
            keep = overlapping[0]
            keep.absorb(card)
            for other in overlapping[1:]:  # the new card joined two problems into one
                keep.absorb(other)
                merged.remove(other)
        merged.sort(key=lambda card: SEVERITY_RANK[card.indicator])
        return [self._card_json(card) for card in merged]

    def _card_json(self, card: Card) -> dict[str, Any]:
        identity = f"{self.hook_instance}|{card.topic}|{','.join(sorted(card.orders | card.involves))}"
        # The card's source is the first monograph sentence it cites (a policy has no address).
        first = next((doc for doc in card.documentation if doc_url(doc)), {})
        # The card names its own module and version: several modules may answer one EHR.
        module = card.module
        source: dict[str, Any] = {"label": f"{first.get('display', '').split(',')[0] or module.label} ({module.name})"}
        if doc_url(first):
            source["url"] = doc_url(first)
        source["topic"] = {key: card.topic_coding[key] for key in ("system", "code", "display") if card.topic_coding.get(key)}
        source["topic"].setdefault("code", card.topic)
        result: dict[str, Any] = {
            "uuid": card_uuid(identity),
            "summary": card.summary,
            "detail": card.detail + _evidence(card.sources),
            "indicator": card.indicator,
            "source": source,
        }
        links, seen = [], set()
        for doc in card.documentation:
            url = doc_url(doc)
            if url and url not in seen:
                seen.add(url)
                links.append({"label": doc.get("display") or "Monograph", "url": url, "type": "absolute"})
        if links:
            result["links"] = links
        if card.suggestions:
            for index, suggestion in enumerate(card.suggestions):
                suggestion["uuid"] = card_uuid(f"{identity}|{index}")
            result["suggestions"] = card.suggestions
            result["selectionBehavior"] = "at-most-one"
        if card.indicator in ("warning", "critical") and module.override_reasons:
            result["overrideReasons"] = [dict(reason) for reason in module.override_reasons]
        return result
