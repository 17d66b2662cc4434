"""Defensive accessors for FHIR JSON held as plain dicts.

Charts come from many EHRs and are often malformed: a list where an object belongs, a string
where a number belongs. Every clinical function reads through these helpers so that odd input
gives "nothing here" instead of an exception.
"""

from __future__ import annotations

import math
from typing import Any


def as_dict(value: Any) -> dict:
    """*value* if it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    """*value* if it is a list, else an empty list (a lone object is not silently promoted)."""
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict]:
    """The dict items of a list (other items are skipped)."""
    return [item for item in as_list(value) if isinstance(item, dict)]


def as_str(value: Any) -> str | None:
    """A non-blank string, stripped; anything else is None."""
    if isinstance(value, str):
        stripped = value.strip()
        return stripped or None
    return None


def as_number(value: Any) -> float | None:
    """A finite JSON number as float; strings, booleans, NaN and infinities are None.

    FHIR JSON writes decimals as numbers, so a string here is malformed data, not a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def reference_of(resource: Any) -> str:
    """The relative reference of a resource ("Observation/abc") for evidence text."""
    res = as_dict(resource)
    rtype = as_str(res.get("resourceType")) or "Resource"
    rid = as_str(res.get("id"))
    return f"{rtype}/{rid}" if rid else f"{rtype}/(no id)"


def has_type(resource: Any, *types: str) -> bool:
    """True when *resource* is a dict whose resourceType is one of *types* (absent type allowed)."""
    if not isinstance(resource, dict):
        return False
    rtype = resource.get("resourceType")
    return rtype is None or rtype in types


def codings(concept: Any) -> list[tuple[str, str, str | None]]:
    """(system, code, display) of each usable coding of a CodeableConcept; code whitespace removed."""
    out = []
    for coding in dicts(as_dict(concept).get("coding")):
        code = as_str(coding.get("code"))
        if code is None:
            continue
        system = as_str(coding.get("system")) or ""
        out.append((system, "".join(code.split()), as_str(coding.get("display"))))
    return out


def concept_has_code(concept: Any, codes: frozenset[tuple[str, str]] | set) -> bool:
    """True when any coding of *concept* is one of the (system, code) pairs."""
    return any((system, code) in codes for system, code, _ in codings(concept))


def fmt_number(value: float) -> str:
    """A number as written in the data, for evidence text: no trailing zeros, at most 4 decimals."""
    if value == int(value):
        return str(int(value))
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def fmt_rounded(value: float) -> str:
    """A computed number for evidence text: whole numbers without decimals, else one decimal.

    When one decimal would round to a whole number the value is not (29.96 -> "30"), more
    decimals are kept so the text never shows a value on the wrong side of a threshold.
    """
    if value == int(value):
        return str(int(value))
    for places in (1, 2, 3):
        text = f"{value:.{places}f}"
        if float(text) != int(float(text)):
            return text
    return f"{value:.3f}"
