"""Whether a service's answer is what a case expects: the cards by topic and indicator, their
suggestions and texts, and no others when the case says so."""

from __future__ import annotations

from typing import Any

# -- comparing cards --------------------------------------------------------------------------------


_PERIOD_DAYS = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0, "a": 365.0}


def daily_dose_mg(resource: dict[str, Any]) -> float | None:
    """``doseAndRate[0].doseQuantity`` in mg × doses per day, from the first dosage instruction.

    None when the dose is missing or not in mg (the caller reports it).
    """
    dosages = resource.get("dosageInstruction") or []
    if not dosages or not isinstance(dosages[0], dict):
        return None
    dosage = dosages[0]
    dose_and_rate = dosage.get("doseAndRate") or []
    quantity = dose_and_rate[0].get("doseQuantity") if dose_and_rate and isinstance(dose_and_rate[0], dict) else None
    if not isinstance(quantity, dict) or not isinstance(quantity.get("value"), (int, float)):
        return None
    unit = quantity.get("code") or quantity.get("unit")
    if unit != "mg":
        return None
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = repeat.get("frequency", 1)
    period = repeat.get("period", 1)
    period_days = _PERIOD_DAYS.get(repeat.get("periodUnit", "d"))
    if not isinstance(frequency, (int, float)) or not isinstance(period, (int, float)) or not period or period_days is None:
        return None
    return float(quantity["value"]) * frequency / (period * period_days)


def card_topic(card: dict[str, Any]) -> str | None:
    topic = (card.get("source") or {}).get("topic") or {}
    return topic.get("code") if isinstance(topic, dict) else None


def _resource_ids(action: dict[str, Any]) -> list[str]:
    resource_id = action.get("resourceId")
    if isinstance(resource_id, str):
        return [resource_id]
    if isinstance(resource_id, list):
        return [r for r in resource_id if isinstance(r, str)]
    return []


def _suggestion_problem(expected: dict[str, Any], card: dict[str, Any]) -> str | None:
    """None when one of the card's suggestions does what ``expected`` says; else why not."""
    action_type = expected["action"]
    target = expected.get("resourceId", "")
    seen: list[str] = []
    for suggestion in card.get("suggestions") or []:
        for action in (suggestion or {}).get("actions") or []:
            if not isinstance(action, dict):
                continue
            if action.get("type") != action_type:
                seen.append(f"{action.get('type')}")
                continue
            if action_type == "delete":
                if target in _resource_ids(action):
                    return None
                seen.append(f"delete {_resource_ids(action)}")
                continue
            resource = action.get("resource") or {}
            ref = f"{resource.get('resourceType')}/{resource.get('id')}"
            dose = daily_dose_mg(resource)
            if ref == target and dose is not None and abs(dose - float(expected["dailyDoseMg"])) < 1e-6:
                return None
            seen.append(f"update {ref} to {dose} mg/day")
    want = f"{action_type} {target}" + (f" to {expected['dailyDoseMg']} mg/day" if action_type == "update" else "")
    return f"suggestion '{want}' not found (actions seen: {seen or 'none'})"


def _text_problem(expected: dict[str, Any], card: dict[str, Any]) -> str | None:
    """None when the card's summary and detail say (and do not say) what ``expected`` asks:
    ``summaryIncludes``, ``detailIncludes``, ``detailExcludes`` (lists of texts, case-sensitive)."""
    for key, element, wanted in (("summaryIncludes", "summary", True), ("detailIncludes", "detail", True),
                                 ("detailExcludes", "detail", False)):
        text = card.get(element) if isinstance(card.get(element), str) else ""
        for fragment in expected.get(key) or []:
            if (fragment in text) != wanted:
                return f"{element} {'lacks' if wanted else 'says'} {fragment!r}: {text!r}"
    return None


def compare_cards(expect: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """The ways ``response`` differs from a scenario's ``expect``; an empty list means it matches.

    Expected cards are matched by topic code and indicator (and, when given, their suggestion and
    what their summary and detail say); each actual card answers at most one expected card. With
    ``noOtherCards``, every unmatched card is a false alarm.
    """
    cards = response.get("cards") if isinstance(response, dict) else None
    if not isinstance(cards, list):
        return [f"response has no 'cards' list: {str(response)[:300]}"]
    problems: list[str] = []
    used: set[int] = set()
    for expected in expect.get("cards", []):
        label = f"{expected['topic']}/{expected['indicator']}"
        candidates = [
            i for i, card in enumerate(cards)
            if i not in used and isinstance(card, dict)
            and card_topic(card) == expected["topic"] and card.get("indicator") == expected["indicator"]
        ]
        if not candidates:
            got = [f"{card_topic(c)}/{c.get('indicator')}" for c in cards if isinstance(c, dict)]
            problems.append(f"missing card {label} (cards: {got or 'none'})")
            continue
        suggestion = expected.get("suggestion")
        reasons = {i: _text_problem(expected, cards[i]) or (_suggestion_problem(suggestion, cards[i]) if suggestion else None)
                   for i in candidates}
        good = [i for i, reason in reasons.items() if reason is None]
        if good:
            used.add(good[0])
        else:
            used.add(candidates[0])
            problems.append(f"card {label}: {reasons[candidates[0]]}")
    if expect.get("noOtherCards"):
        for i, card in enumerate(cards):
            if i not in used:
                summary = card.get("summary") if isinstance(card, dict) else card
                topic = card_topic(card) if isinstance(card, dict) else None
                indicator = card.get("indicator") if isinstance(card, dict) else None
                problems.append(f"unexpected card {topic}/{indicator}: {summary!r}")
    return problems
