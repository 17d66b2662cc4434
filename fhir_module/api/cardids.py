"""Card and suggestion uuids the service can recognise as its own, without remembering them.

Feedback names a card by its uuid and may name suggestions and an override reason. To accept only
what this service issued, without storing every card it ever answered, each uuid carries a MAC:

    card uuid (UUIDv8, 122 free bits) = nonce (56) | topic tag (16) | overridable (1) | MAC (49)
    suggestion uuid (UUIDv8)          = nonce (56) | MAC over service, card uuid and nonce (66)

The nonce comes from the engine's own uuid for the card (derived from the hookInstance, the topic
and the orders), so the same request gets the same uuids and a resent feedback item is the same
item. The topic tag names the card's rule (one of the service's topics, `Engine.card_topics`), so
feedback is stored with its rule for the override-rate report; the overridable bit says whether
the card offered override reasons (warning and critical cards offer their module's). The MAC key
is a random secret kept in the service's database (`store.secret`), the same for every worker and
instance on it. Forging a card uuid takes about 2^48 guesses at the feedback endpoint.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

SECRET_NAME = "card-ids"
_NONCE_BITS, _TAG_BITS, _CARD_MAC_BITS, _SUGGESTION_MAC_BITS = 56, 16, 49, 66


def _to_uuid(payload: int) -> str:
    """A UUIDv8 (RFC 9562) holding 122 payload bits, as `str(uuid.UUID(...))` writes it."""
    high, middle, low = payload >> 74, (payload >> 62) & 0xFFF, payload & ((1 << 62) - 1)
    hexadecimal = f"{(high << 80) | (0x8 << 76) | (middle << 64) | (0b10 << 62) | low:032x}"
    return (f"{hexadecimal[:8]}-{hexadecimal[8:12]}-{hexadecimal[12:16]}-{hexadecimal[16:20]}-"
            f"{hexadecimal[20:]}")


def _from_uuid(text: Any) -> int | None:
    """The 122 payload bits of a UUIDv8, else None."""
    try:
        value = uuid.UUID(str(text))
    except ValueError:
        return None
    if value.version != 8 or value.variant != uuid.RFC_4122:
        return None
    number = value.int
    return ((number >> 80) << 74) | (((number >> 64) & 0xFFF) << 62) | (number & ((1 << 62) - 1))


def _canonical(card_uuid: str) -> str:
    return str(uuid.UUID(card_uuid))


def _bits(data: bytes, count: int) -> int:
    return int.from_bytes(data, "big") >> (len(data) * 8 - count)


def topic_key(coding: dict[str, Any]) -> str:
    """How a topic is named in storage and reports: `system|code`."""
    return f"{coding.get('system', '')}|{coding.get('code', '')}"


@functools.lru_cache(maxsize=1024)  # the topics of the knowledge: a few dozen
def _tag(topic: str) -> int:
    return _bits(hashlib.sha256(topic.encode()).digest(), _TAG_BITS)


@dataclass(frozen=True)
class IssuedCard:
    """What a verified card uuid says: its rule (None when not among the service's topics now,
    e.g. the knowledge changed since) and whether the card offered override reasons."""

    topic: str | None
    overridable: bool


class CardIds:
    """Signs the uuids of a response's cards and recognises them in feedback."""

    def __init__(self, secret: bytes, engine: Any) -> None:
        # HMAC-SHA256 keyed once, copied for each MAC: `hmac.digest` sets the key up and looks
        # the digest up by name on every call (half of a card uuid's cost); the MACs are the same.
        self._keyed = hmac.new(secret, digestmod="sha256")
        self._engine = engine
        self._topics: dict[str, dict[int, str]] = {}

    def _mac(self, message: str, count: int) -> int:
        mac = self._keyed.copy()
        mac.update(message.encode())
        return _bits(mac.digest(), count)

    def _topics_of(self, service_id: str) -> dict[int, str]:
        if service_id not in self._topics:
            self._topics[service_id] = {_tag(topic_key(c)): topic_key(c) for c in self._engine.card_topics(service_id)}
        return self._topics[service_id]

    def _card_uuid(self, service_id: str, seed: str, topic: str, overridable: bool) -> str:
        nonce = _bits(hashlib.sha256(f"card|{seed}".encode()).digest(), _NONCE_BITS)
        head = (nonce << (_TAG_BITS + 1)) | (_tag(topic) << 1) | int(overridable)
        mac = self._mac(f"card|{service_id}|{head}", _CARD_MAC_BITS)
        return _to_uuid((head << _CARD_MAC_BITS) | mac)

    def _suggestion_uuid(self, service_id: str, card_uuid: str, seed: str) -> str:
        """`card_uuid` as `_to_uuid` writes it (canonical)."""
        nonce = _bits(hashlib.sha256(f"suggestion|{seed}".encode()).digest(), _NONCE_BITS)
        mac = self._mac(f"suggestion|{service_id}|{card_uuid}|{nonce}", _SUGGESTION_MAC_BITS)
        return _to_uuid((nonce << _SUGGESTION_MAC_BITS) | mac)

    def sign(self, service_id: str, response: dict[str, Any]) -> dict[str, Any]:
        """The response with every card's and suggestion's uuid replaced by a signed one."""
        for card in response.get("cards") or []:
            topic = topic_key((card.get("source") or {}).get("topic") or {})
            seed = str(card.get("uuid") or card.get("summary"))
            card["uuid"] = self._card_uuid(service_id, seed, topic, bool(card.get("overrideReasons")))
            for index, suggestion in enumerate(card.get("suggestions") or []):
                suggestion["uuid"] = self._suggestion_uuid(service_id, card["uuid"],
                                                           f"{seed}|{suggestion.get('uuid') or index}")
        return response

    def card(self, service_id: str, card_uuid: str) -> IssuedCard | None:
        """What the uuid says, when this service issued it; else None."""
        payload = _from_uuid(card_uuid)
        if payload is None:
            return None
        head, mac = payload >> _CARD_MAC_BITS, payload & ((1 << _CARD_MAC_BITS) - 1)
        if not hmac.compare_digest(self._mac(f"card|{service_id}|{head}", _CARD_MAC_BITS).to_bytes(7, "big"),
                                   mac.to_bytes(7, "big")):
            return None
        tag, overridable = (head >> 1) & ((1 << _TAG_BITS) - 1), bool(head & 1)
        return IssuedCard(self._topics_of(service_id).get(tag), overridable)

    def suggestion_issued(self, service_id: str, card_uuid: str, suggestion_uuid: str) -> bool:
        """Whether this service issued the suggestion uuid on that card."""
        payload = _from_uuid(suggestion_uuid)
        if payload is None or _from_uuid(card_uuid) is None:
            return False
        nonce, mac = payload >> _SUGGESTION_MAC_BITS, payload & ((1 << _SUGGESTION_MAC_BITS) - 1)
        expected = self._mac(f"suggestion|{service_id}|{_canonical(card_uuid)}|{nonce}", _SUGGESTION_MAC_BITS)
        return hmac.compare_digest(expected.to_bytes(9, "big"), mac.to_bytes(9, "big"))
