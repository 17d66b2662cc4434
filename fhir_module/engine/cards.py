"""Cards as CDS Hooks 2.0 wants them: merged per problem, ordered by severity, with source and links."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from .actions import doc_url
from .knowledgebase import KnowledgeBase

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
CARD_NAMESPACE = uuid.UUID("6f1c4f8e-6a43-4a58-9a8e-3e0d3c1d9b57")
SUMMARY_LIMIT = 140


def truncate(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) < SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2].rstrip() + "…"


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

    @property
    def merge_key(self) -> tuple[str, frozenset[str]] | None:
        return (self.topic, frozenset(self.orders | self.involves)) if self.involves else None


class CardWriter:
    """Writes one request's cards; card and suggestion uuids are stable for the same request."""

    def __init__(self, kb: KnowledgeBase, hook_instance: str) -> None:
        self.kb = kb
        self.hook_instance = hook_instance

    def finish(self, cards: list[Card]) -> list[dict[str, Any]]:
        merged: list[Card] = []
        by_key: dict[tuple[str, frozenset[str]], Card] = {}
        for card in cards:
            key = card.merge_key
            if key is not None and key in by_key:
                kept = by_key[key]
                known = {(a["type"], a.get("resourceId")) for s in kept.suggestions for a in s["actions"]}
                for suggestion in card.suggestions:
                    action = suggestion["actions"][0]
                    if (action["type"], action.get("resourceId")) not in known:
                        kept.suggestions.append(suggestion)
                kept.orders |= card.orders
                continue
            if key is not None:
                by_key[key] = card
            merged.append(card)
        merged.sort(key=lambda card: SEVERITY_RANK[card.indicator])
        return [self._card_json(card) for card in merged]

    def _card_json(self, card: Card) -> dict[str, Any]:
        identity = f"{self.hook_instance}|{card.topic}|{','.join(sorted(card.orders | card.involves))}"
        first = card.documentation[0] if card.documentation else {}
        source: dict[str, Any] = {"label": f"{first.get('display', '').split(',')[0] or 'Knowledge module'} "
                                           f"(fhir_module knowledge {self.kb.version})"}
        if doc_url(first):
            source["url"] = doc_url(first)
        source["topic"] = {"system": f"{self.kb.base}/CodeSystem/rule-topic", "code": card.topic,
                           "display": self.kb.topic_displays.get(card.topic, card.topic)}
        result: dict[str, Any] = {
            "uuid": str(uuid.uuid5(CARD_NAMESPACE, identity)),
            "summary": card.summary,
            "detail": card.detail,
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
                suggestion["uuid"] = str(uuid.uuid5(CARD_NAMESPACE, f"{identity}|{index}"))
            result["suggestions"] = card.suggestions
            result["selectionBehavior"] = "at-most-one"
        if card.indicator in ("warning", "critical") and self.kb.override_reasons:
            result["overrideReasons"] = [dict(reason) for reason in self.kb.override_reasons]
        return result
