"""Defensive accessors for FHIR JSON held as plain dicts.

Charts come from many EHRs and are often malformed: a list where an object belongs, a string
where a number belongs. Every clinical function reads through these helpers so that odd input
gives "nothing here" instead of an exception.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any


def as_dict(value: Any) -> dict:
    """*value* if it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list:
    """*value* if it is a list, else an empty list (a lone object is not silently promoted)."""
    return value if isinstance(value, list) else []


def dicts(value: Any) -> list[dict]:
    """The dict items of a list (other items are skipped)."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def json_copy(value: Any) -> Any:
    """A copy of JSON data (dicts, lists and scalars), several times faster than copy.deepcopy;
    a list or object that appears twice is copied twice (JSON has no shared parts)."""
    if isinstance(value, dict):
        return {key: json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_copy(item) for item in value]
    return value


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
    # as_dict, dicts and as_str written out: this reads every code of every chart resource.
    found = concept.get("coding") if isinstance(concept, dict) else None
    if not isinstance(found, list):
        return []
    out = []
    for coding in found:
        if not isinstance(coding, dict):
            continue
        code = coding.get("code")
        if not isinstance(code, str):
            continue
        # The code without its whitespace: split drops it (and a blank code has no part); most
        # codes have none, and come back whole as the one part.
        parts = code.split()
        if not parts:
            continue
        system = coding.get("system")
        display = coding.get("display")
        out.append((system.strip() if isinstance(system, str) else "",
                    parts[0] if len(parts) == 1 else "".join(parts),
                    (display.strip() or None) if isinstance(display, str) else None))
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


def fmt_rounded(value: float, *, cut: bool = True) -> str:
    """A computed clinical value for card text: whole numbers without decimals, else one decimal.

    A value a rule compares is cut, not rounded (29.96 -> "29.9", 14.99 -> "14.9"): the text never
    shows a value at a band edge it has not reached ("below 30" never reads "30.0"), and never more
    than one decimal (a computed "15.000" is noise, not precision). An input shown converted (a
    weight in pounds as kg) is rounded (`cut=False`: 69.998 -> "70").
    """
    if not math.isfinite(value):
        return str(value)
    if (type(value) is float or type(value) is int) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))  # what the quantizing below gives a whole number, without it
    tenths = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_DOWN if cut else ROUND_HALF_UP)
    if tenths == tenths.to_integral_value():
        return str(int(tenths))
    return str(tenths)


# Computed values (Cockcroft-Gault, unit conversions, frequencies) are compared as the numbers a
# clinician would write: binary floating point gives 14.999999999999998 for an exact 15.
SIGNIFICANT_DIGITS = 6


def as_written(value: float) -> float:
    """*value* rounded to 6 significant digits, so an exact threshold computed in floating point
    (15.0 as 14.999999999999998) falls on the side the written number does."""
    if value == 0 or not math.isfinite(value):
        return value
    if -1e6 < value < 1e6 and value == int(value):
        return float(value)  # a whole number of at most 6 digits is written as it is
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
