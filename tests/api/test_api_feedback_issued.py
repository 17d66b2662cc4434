"""Feedback takes only what the service issued: its signed card uuids, the suggestions it put on
each card, the override reasons each card offered (issue 12); uuids are stable per request."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from fhir_module.api.cardids import CardIds, IssuedCard, _from_uuid, _to_uuid
from tests.api.helpers import scenario_request

WHEN = "2026-11-26T10:00:00Z"


class Engine:
    """A stand-in for the topic list only (the signing itself is what is tested here)."""

    def card_topics(self, service_id: str) -> list[dict[str, str]]:
        return [{"system": "s", "code": "dose-limit"}, {"system": "s", "code": "maoi"}]


def response(topic: str = "dose-limit", reasons: bool = True) -> dict[str, Any]:
    card = {"uuid": str(uuid.uuid4()), "summary": "x", "source": {"topic": {"system": "s", "code": topic}},
            "suggestions": [{"label": "a", "uuid": "s1"}, {"label": "b", "uuid": "s2"}]}
    if reasons:
        card["overrideReasons"] = [{"system": "r", "code": "benefit"}]
    return {"cards": [card]}


def test_uuid_payload_round_trip() -> None:
    for payload in (0, 1, 2**122 - 1, 0x2A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5):
        text = _to_uuid(payload)
        assert uuid.UUID(text).version == 8 and _from_uuid(text) == payload and _from_uuid(text.upper()) == payload
    assert _from_uuid(str(uuid.uuid4())) is None and _from_uuid("not-a-uuid") is None


def test_uuids_are_those_earlier_versions_issued() -> None:
    """Cards answered before an upgrade get their feedback after it: the same secret signs the same
    card to the same uuids (these were issued by the first version of the signing)."""
    ids = CardIds(b"k" * 32, Engine())
    card = {"uuid": "engine-card-1", "summary": "x", "source": {"topic": {"system": "s", "code": "maoi"}},
            "overrideReasons": [{"code": "a"}], "suggestions": [{"label": "a", "uuid": "sg-1"}, {"label": "b"}]}
    signed = ids.sign("svc", {"cards": [card]})["cards"][0]
    assert signed["uuid"] == "4cf2613a-7f91-8367-a95e-f3f567baa447"
    assert [s["uuid"] for s in signed["suggestions"]] == ["21b3f59d-77c4-8a45-a54e-f025192962f8",
                                                          "d5c92415-88f5-815f-ab00-e09d5ba4569b"]
    assert ids.card("svc", signed["uuid"].upper()) == IssuedCard("s|maoi", True)
    assert ids.suggestion_issued("svc", signed["uuid"].upper(), signed["suggestions"][1]["uuid"])


def test_signed_cards_are_recognised_and_nothing_else() -> None:
    ids = CardIds(b"k" * 32, Engine())
    signed = ids.sign("svc", response())["cards"][0]
    card = ids.card("svc", signed["uuid"])
    assert card is not None and card.topic == "s|dose-limit" and card.overridable
    assert ids.card("svc", signed["uuid"].upper()) == card
    assert ids.card("other-svc", signed["uuid"]) is None  # signed for one service only
    assert CardIds(b"j" * 32, Engine()).card("svc", signed["uuid"]) is None  # another database's key
    payload = _from_uuid(signed["uuid"])
    for bit in (0, 30, 49, 50, 66, 121):  # any bit changed: not ours
        assert ids.card("svc", _to_uuid(payload ^ (1 << bit))) is None
    suggestions = [s["uuid"] for s in signed["suggestions"]]
    assert len(set(suggestions)) == 2 and all(ids.suggestion_issued("svc", signed["uuid"], s) for s in suggestions)
    other = ids.sign("svc", response())["cards"][0]
    assert not ids.suggestion_issued("svc", other["uuid"], suggestions[0])  # another card's suggestion
    plain = ids.sign("svc", response("maoi", reasons=False))["cards"][0]
    assert ids.card("svc", plain["uuid"]).overridable is False
    unknown = ids.sign("svc", response("gone-from-the-knowledge"))["cards"][0]
    assert ids.card("svc", unknown["uuid"]).topic is None


def call(url: str, name: str, discovery: dict[str, Any], hook_instance: str | None = None) -> tuple[str, dict[str, Any]]:
    sid, body = scenario_request(name, discovery)
    if hook_instance:
        body["hookInstance"] = hook_instance
    answer = httpx.post(f"{url}/cds-services/{sid}", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    return sid, answer.json()


def test_uuids_are_stable_for_a_request_and_differ_between_requests(base_url: str, discovery: dict[str, Any]) -> None:
    hook_instance = str(uuid.uuid4())
    _, first = call(base_url, "pub-max-dose", discovery, hook_instance)
    _, again = call(base_url, "pub-max-dose", discovery, hook_instance)  # the same request, resent
    _, other = call(base_url, "pub-max-dose", discovery, str(uuid.uuid4()))
    assert first["cards"][0]["uuid"] == again["cards"][0]["uuid"]
    assert first["cards"][0]["suggestions"][0]["uuid"] == again["cards"][0]["suggestions"][0]["uuid"]
    assert first["cards"][0]["uuid"] != other["cards"][0]["uuid"]


def item(of: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """An overridden item on the card `of`, with `changes`."""
    base = {"card": of["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN}
    return {**base, **changes}


def test_only_what_the_service_issued_is_accepted(live: Any, discovery: dict[str, Any], tmp_db: str) -> None:
    with live() as url:
        sid, warning = call(url, "pub-max-dose", discovery)
        _, info = call(url, "pub-new-start", discovery)
        _, maoi = call(url, "pub-maoi-active", discovery)
        card, info_card, maoi_card = warning["cards"][0], info["cards"][0], maoi["cards"][0]
        assert info_card["indicator"] == "info" and "overrideReasons" not in info_card
        reason = card["overrideReasons"][0]
        sign_sid, sign_answer = call(url, "pub-sign-esrd", discovery)
        forged = str(uuid.UUID(int=uuid.UUID(card["uuid"]).int ^ 1))
        bad = [
            (item(card, card=str(uuid.uuid4())), "feedback[0].card"),  # a uuid it never issued
            (item(card, card=forged), "feedback[0].card"),  # one bit off
            (item(sign_answer["cards"][0]), "feedback[0].card"),  # another service's card
            (item(card, outcome="accepted", acceptedSuggestions=[{"id": maoi_card["suggestions"][0]["uuid"]}]),
             "feedback[0].acceptedSuggestions[0].id"),  # another card's suggestion
            (item(card, outcome="accepted", acceptedSuggestions=[{"id": str(uuid.uuid4())}]),
             "feedback[0].acceptedSuggestions[0].id"),
            (item(card, overrideReason={"reason": {**reason, "code": "made-up"}}), "feedback[0].overrideReason.reason"),
            (item(card, overrideReason={"reason": {**reason, "system": "http://example.org/other"}}),
             "feedback[0].overrideReason.reason"),
            (item(info_card, overrideReason={"reason": reason}), "feedback[0].overrideReason.reason"),  # none offered
        ]
        for body, where in bad:
            answer = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": [body]})
            assert answer.status_code == 400, (where, answer.text)
            assert [where] in [i.get("expression") for i in answer.json()["issue"]], answer.text
        # Every bad item of a call is named, and nothing of the call is stored.
        mixed = [item(card, overrideReason={"reason": reason}), item(card, card=str(uuid.uuid4())),
                 item(info_card, overrideReason={"reason": reason})]
        answer = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": mixed})
        assert answer.status_code == 400
        assert [i["expression"] for i in answer.json()["issue"]] == [["feedback[1].card"], ["feedback[2].overrideReason.reason"]]
        good = [item(card, overrideReason={"reason": reason, "userComment": "ok"}),
                item(info_card, overrideReason={"userComment": "dismissed"}),  # a comment needs no offered reason
                item(card, outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])]
        answer = httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": good})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"stored": 3, "alreadyStored": 0}
        sign_card = sign_answer["cards"][0]
        answer = httpx.post(f"{url}/cds-services/{sign_sid}/feedback",
                            json={"feedback": [item(sign_card, overrideReason={"reason": sign_card["overrideReasons"][0]})]})
        assert answer.status_code == 200, answer.text


def test_resending_is_idempotent_per_card_and_outcome(live: Any, discovery: dict[str, Any]) -> None:
    with live() as url:
        sid, answer = call(url, "pub-max-dose", discovery)
        card = answer["cards"][0]
        overridden = item(card, overrideReason={"reason": card["overrideReasons"][0]})
        accepted = item(card, outcome="accepted", acceptedSuggestions=[{"id": card["suggestions"][0]["uuid"]}])
        post = lambda items: httpx.post(f"{url}/cds-services/{sid}/feedback", json={"feedback": items}).json()  # noqa: E731
        assert post([overridden]) == {"stored": 1, "alreadyStored": 0}
        assert post([overridden]) == {"stored": 0, "alreadyStored": 1}  # its 200 was lost, say
        assert post([copy.deepcopy(overridden), accepted, accepted]) == {"stored": 1, "alreadyStored": 2}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_what_no_database_can_store_is_400_not_503(kind: str, live: Any, discovery: dict[str, Any],
                                                   postgres_url: str) -> None:
    """A NUL character (U+0000) is valid JSON, but PostgreSQL keeps none in text or JSONB: such an
    item once got 503 "send it again later" on every resend. 400 on either database, naming it."""
    with live(**({"database_url": postgres_url} if kind == "postgresql" else {})) as url:
        sid, answer = call(url, "pub-max-dose", discovery, str(uuid.uuid4()))
        card = answer["cards"][0]
        reason = card["overrideReasons"][0]
        feedback = f"{url}/cds-services/{sid}/feedback"
        for body, where in [
            (item(card, overrideReason={"reason": reason, "userComment": "dose \u0000 checked"}),
             "feedback[0].overrideReason.userComment"),
            (item(card, overrideReason={"reason": reason}, extension={"note\u0000": "x"}), "feedback[0].extension.note?"),
            (item(card, overrideReason={"reason": {**reason, "display": "\u0000"}}),
             "feedback[0].overrideReason.reason.display"),
        ]:
            refused = httpx.post(feedback, json={"feedback": [body]}, timeout=30)
            assert refused.status_code == 400, (where, refused.text)
            assert [where] in [i.get("expression") for i in refused.json()["issue"]], refused.text
            assert "U+0000" in refused.text
        stored = httpx.post(feedback, json={"feedback": [item(card, overrideReason={"reason": reason})]}, timeout=30)
        assert stored.json() == {"stored": 1, "alreadyStored": 0}, stored.text  # nothing was kept before
